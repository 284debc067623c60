using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ResNet.ML.Tensors;
using ResNet.ML.Models;
using ResNet.ML.Training;

namespace ResNet.ML.Cli.Commands;

/// <summary>
/// <c>resnet benchmark</c>: training and inference throughput of the engine on synthetic batches, as one JSON line
/// {arch, batch, threads, train_images_per_sec, infer_images_per_sec, peak_rss_mb} with --json.
/// </summary>
internal static class BenchmarkCommand
{
    public static Command Create(CommandContext context)
    {
        var arch = new Option<string>("--arch") { Description = "Architecture.", DefaultValueFactory = _ => "resnet20" };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per step.", DefaultValueFactory = _ => 128 };
        var threads = new Option<int>("--threads") { Description = "Engine threads (0: all cores).", DefaultValueFactory = _ => 0 };
        var imageSize = new Option<int>("--image-size") { Description = "Synthetic image size.", DefaultValueFactory = _ => 32 };
        var channels = new Option<int>("--channels") { Description = "Synthetic image channels.", DefaultValueFactory = _ => 3 };
        var classes = new Option<int>("--classes") { Description = "Classes.", DefaultValueFactory = _ => 10 };
        var steps = new Option<int>("--steps") { Description = "Timed steps (after 2 warm-up steps).", DefaultValueFactory = _ => 10 };
        var json = new Option<bool>("--json") { Description = "Print one JSON line only." };
        var backend = new Option<TrainingBackend>("--backend") { Description = "managed or torchsharp.", DefaultValueFactory = _ => TrainingBackend.Managed };
        var device = new Option<TrainingDevice>("--device") { Description = "auto, cpu or cuda (as resnet train).", DefaultValueFactory = _ => TrainingDevice.Auto };

        var command = new Command("benchmark", "Measure training and inference throughput on synthetic data.") { arch, batchSize, threads, imageSize, channels, classes, steps, json, backend, device };
        command.SetAction(context.Guard((p, cli, ct) =>
        {
            int batch = p.GetValue(batchSize), size = p.GetValue(imageSize), c = p.GetValue(channels), n = p.GetValue(steps), k = p.GetValue(classes);
            if (batch <= 0 || size <= 0 || c <= 0 || n <= 0 || k < 2)
                throw new UsageException("--batch-size, --image-size, --channels and --steps must be positive and --classes at least 2.");
            using var engineThreads = Engine.UseThreads(p.GetValue(threads) > 0 ? p.GetValue(threads) : Environment.ProcessorCount);
            var options = new ResNetTrainerOptions
            {
                Architecture = p.GetValue(arch)!, BatchSize = batch, Epochs = 1, Backend = p.GetValue(backend), Device = p.GetValue(device), Threads = p.GetValue(threads),
            };
            options.Validate();
            var network = ModelFactory.Build(options.Architecture, c, k, size, size);
            Initializer.Initialize(network, new Rng(0x1A17UL));
            // The trainer's own path: the runner the options choose, its step and its inference.
            using var runner = TrainingRunners.Create(network, options);
            var rng = new Rng(1);
            var images = new Tensor(batch, c, size, size);
            for (int i = 0; i < images.Length; i++) images.Data[i] = (float)rng.NextGaussian();
            var labels = Enumerable.Range(0, batch).Select(i => i % k).ToArray();

            for (int i = 0; i < 2; i++) runner.TrainStep(images, labels, 0.01f, i);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < n; i++) { ct.ThrowIfCancellationRequested(); runner.TrainStep(images, labels, 0.01f, i); }
            double train = (double)batch * n / sw.Elapsed.TotalSeconds;

            runner.Infer(images);
            sw.Restart();
            for (int i = 0; i < n; i++) { ct.ThrowIfCancellationRequested(); runner.Infer(images); }
            double infer = (double)batch * n / sw.Elapsed.TotalSeconds;
            double peakMb = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);

            var line = JsonSerializer.Serialize(new
            {
                arch = network.Architecture, backend = runner.Description, batch, threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount,
                train_images_per_sec = Math.Round(train, 1), infer_images_per_sec = Math.Round(infer, 1), peak_rss_mb = Math.Round(peakMb, 1),
            });
            if (p.GetValue(json)) cli.Line(line);
            else
            {
                cli.Line(string.Create(CultureInfo.InvariantCulture,
                    $"{network.Architecture} on the {runner.Description}, batch {batch}, {(options.Threads > 0 ? options.Threads : Environment.ProcessorCount)} threads, [{c}, {size}, {size}] images: training {train:F1} images/s, inference {infer:F1} images/s, peak RSS {peakMb:F0} MB"));
            }
            return ResNetCli.ExitOk;
        }));
        return command;
    }
}
