using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ResNet.ML.Data;
using ResNet.ML.Training;
using ResNet.ML.Training.Backends;

namespace ResNet.ML.Cli.Commands;

/// <summary><c>resnet train</c>: trains on --data (or the embedded Fashion-MNIST subset), writes model.onnx and model.safetensors.</summary>
internal static class TrainCommand
{
    /// <summary>The defaults of a bare <c>resnet train</c>, measured to reach the README's accuracy in a few minutes on 2 cores.</summary>
    internal const string DefaultArchitecture = "resnet20";
    internal const int DefaultEpochs = 4;
    internal const int DefaultBatchSize = 64;

    public static Command Create(CommandContext context)
    {
        var data = new Option<string?>("--data") { Description = "Training images: an IDX folder (MNIST/Fashion-MNIST), a CIFAR-10 binary folder, or an image folder with one subfolder per class. Default: the embedded Fashion-MNIST subset." };
        var validationData = new Option<string?>("--validation-data") { Description = "Validation images in the same forms; default: a stratified split of --data (see --validation-fraction)." };
        var arch = new Option<string>("--arch") { Description = "Preset (resnet20, resnet56, resnet18, resnet50, ...) or a spec such as 'resnet20 widths=8,16,32'.", DefaultValueFactory = _ => DefaultArchitecture };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training data.", DefaultValueFactory = _ => DefaultEpochs };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per step.", DefaultValueFactory = _ => DefaultBatchSize };
        var optimizer = new Option<OptimizerKind>("--optimizer") { Description = "SgdMomentum, Adam or AdamW.", DefaultValueFactory = _ => OptimizerKind.SgdMomentum };
        var lr = new Option<float?>("--lr") { Description = "Peak learning rate (default 0.1 for SGD, 0.01 for SGD with --pretrained, 0.001 for Adam/AdamW)." };
        var momentum = new Option<float>("--momentum") { Description = "SGD momentum.", DefaultValueFactory = _ => 0.9f };
        var nesterov = new Option<bool>("--nesterov") { Description = "Nesterov momentum." };
        var weightDecay = new Option<float?>("--weight-decay") { Description = "Weight decay (default 5e-4 for SGD, 0.01 for AdamW, 0 for Adam)." };
        var schedule = new Option<ScheduleKind>("--schedule") { Description = "Constant, Step (divide by 10 at 50% and 75%), Cosine, OneCycle.", DefaultValueFactory = _ => ScheduleKind.OneCycle };
        var warmup = new Option<double>("--warmup") { Description = "Warm-up fraction of the run (OneCycle: 0 means 30%).", DefaultValueFactory = _ => 0.0 };
        var smoothing = new Option<float>("--label-smoothing") { Description = "Label smoothing in [0, 1).", DefaultValueFactory = _ => 0f };
        var augment = new Option<string>("--augment") { Description = "none, flip, cifar (pad 4 + random crop + flip, the paper's recipe) or imagenet (random resized crop + flip).", DefaultValueFactory = _ => "none" };
        augment.AcceptOnlyFromAmong("none", "flip", "cifar", "imagenet");
        var cropPadding = new Option<int?>("--crop-padding") { Description = "With --augment cifar: pixels of zero padding before the random crop (default 4; 2 suits 28x28 images)." };
        var erasing = new Option<double>("--random-erasing") { Description = "Probability of erasing a random rectangle of each training image (0: off; 0.5 is usual).", DefaultValueFactory = _ => 0.0 };
        var valFraction = new Option<double>("--validation-fraction") { Description = "Fraction of --data held out for validation when no --validation-data.", DefaultValueFactory = _ => 0.1 };
        var patience = new Option<int>("--early-stopping") { Description = "Stop after this many epochs without validation-accuracy improvement, keeping the best epoch's weights (0: off).", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "Seeds initialization, split, shuffling and augmentation.", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "Engine threads (0: all cores).", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--output", "-o") { Description = "Folder for model.onnx, model.safetensors, metrics.json, training-curves.svg and checkpoints/.", DefaultValueFactory = _ => "resnet-output" };
        var resume = new Option<string?>("--resume") { Description = "Continue from a checkpoint (run the same command with it added)." };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Also checkpoint every N steps (0: at epoch ends and on Ctrl-C only).", DefaultValueFactory = _ => 0 };
        var imageSize = new Option<int?>("--image-size") { Description = "Resize images to SxS (required for folders of mixed sizes; IDX and CIFAR images are resampled as read)." };
        var channels = new Option<int?>("--channels") { Description = "Decode folder images as 1 (grayscale) or 3 (RGB) channels." };
        var initialWeights = new Option<string?>("--initial-weights") { Description = "Pretrained safetensors weights (torchvision names) to start from; the head is replaced." };
        var freeze = new Option<int>("--freeze-backbone-epochs") { Description = "With --initial-weights or --pretrained: train only the head for the first N epochs (the backbone's batch norms on their running statistics).", DefaultValueFactory = _ => 0 };
        var pretrained = new Option<string?>("--pretrained") { Description = "Start from pretrained ImageNet weights: dnn-resnet18 (NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1); sets the architecture and preprocessing, replaces the head. Images of at least 32x32." };
        var fineTuneFactor = new Option<float?>("--fine-tune-lr-factor") { Description = "Learning-rate multiplier once the backbone trains (default 0.1 with --pretrained, else 1)." };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N training images (quick trials)." };
        var backend = new Option<TrainingBackend>("--backend") { Description = "managed (this library's engine) or torchsharp (libtorch).", DefaultValueFactory = _ => TrainingBackend.Managed };
        var device = new Option<TrainingDevice>("--device") { Description = "auto (CUDA through TorchSharp when present, else --backend on the CPU), cpu or cuda.", DefaultValueFactory = _ => TrainingDevice.Auto };
        var skipBad = new Option<bool>("--skip-bad-images") { Description = "Leave out folder images that fail to decode (and say how many) instead of stopping." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Start a new run in an --output folder that holds an earlier run's checkpoint, deleting that run's files." };

        var ttaFlip = new Option<bool>("--tta-flip") { Description = "Export model.onnx with test-time flips inside the graph: each image's logits averaged with its mirror image's (twice the inference cost)." };
        var command = new Command("train", "Train a ResNet and export it to ONNX.")
        {
            data, validationData, arch, epochs, batchSize, optimizer, lr, momentum, nesterov, weightDecay, schedule, warmup, smoothing,
            augment, cropPadding, erasing, valFraction, patience, seed, threads, output, resume, checkpointEvery, imageSize, channels, initialWeights, freeze, pretrained, fineTuneFactor, limit, skipBad, overwrite, ttaFlip,
            backend, device,
        };
        command.SetAction(context.Guard((p, cli, ct) =>
        {
            string outputFolder = Path.GetFullPath(p.GetValue(output)!);
            OutputFolder.EnsureWritable(outputFolder);
            using var folderLock = OutputFolder.Lock(outputFolder);
            string? resumeFrom = p.GetValue(resume);
            bool replaceEarlierRun = OutputFolder.CheckPreviousRun(outputFolder, resumeFrom, p.GetValue(overwrite));
            var kind = p.GetValue(optimizer);
            var options = new ResNetTrainerOptions
            {
                Architecture = p.GetValue(arch)!,
                Epochs = p.GetValue(epochs),
                BatchSize = p.GetValue(batchSize),
                Optimizer = kind,
                // A new head on pretrained features (unnormalized, large) diverges at SGD's 0.1.
                LearningRate = p.GetValue(lr) ?? (kind == OptimizerKind.SgdMomentum ? (p.GetValue(pretrained) is null ? 0.1f : 0.01f) : 0.001f),
                Momentum = p.GetValue(momentum),
                Nesterov = p.GetValue(nesterov),
                WeightDecay = p.GetValue(weightDecay) ?? kind switch { OptimizerKind.SgdMomentum => 5e-4f, OptimizerKind.AdamW => 0.01f, _ => 0f },
                Schedule = p.GetValue(schedule),
                WarmupFraction = p.GetValue(warmup),
                LabelSmoothing = p.GetValue(smoothing),
                Augmentation = WithErasing(p.GetValue(augment) switch
                {
                    "flip" => Augmentation.FlipOnly,
                    "cifar" => p.GetValue(cropPadding) is int pad ? Augmentation.CifarPaper with { Padding = pad } : Augmentation.CifarPaper,
                    "imagenet" => Augmentation.ImageNet,
                    _ => null,
                }, p.GetValue(erasing)),
                ValidationFraction = p.GetValue(valFraction),
                EarlyStopping = p.GetValue(patience) > 0 ? new EarlyStoppingOptions(Patience: p.GetValue(patience)) : null,
                Seed = p.GetValue(seed),
                Threads = p.GetValue(threads),
                CheckpointFolder = Path.Combine(outputFolder, "checkpoints"),
                CheckpointIntervalSteps = p.GetValue(checkpointEvery),
                InitialWeights = p.GetValue(initialWeights),
                FreezeBackboneEpochs = p.GetValue(freeze),
                Backend = p.GetValue(backend),
                Device = p.GetValue(device),
                Pretrained = p.GetValue(pretrained),
                FineTuneLearningRateFactor = p.GetValue(fineTuneFactor),
            };
            // Everything that can be checked without the data is checked before loading it. The model files are written
            // before the final checkpoint (BeforeFinalCheckpoint): on a nearly full disk the model must be safe first.
            TrainedModel? finished = null;
            var trainer = new ImageClassifierTrainer(options) { BeforeFinalCheckpoint = m => { OutputFolder.WriteDeliverables(outputFolder, m, p.GetValue(ttaFlip)); finished = m; } };
            TrainChecks.BeforeLoading(p.GetValue(imageSize), p.GetValue(channels));
            var checkpoint = resumeFrom is null ? null : TrainingCheckpoint.Load(resumeFrom);
            TrainChecks.WarnThreads(cli, options.Threads, checkpoint);
            var load = new DataRequest(p.GetValue(imageSize), p.GetValue(channels), p.GetValue(skipBad), cli.Error);
            string? dataPath = p.GetValue(data);
            var train = dataPath is null ? DataLocator.EmbeddedDefault() : DataLocator.Load(dataPath, DataSplit.Train, load);
            TrainChecks.RequestUsed(train, load.ImageSize, load.Channels);
            if (p.GetValue(limit) is int n) train = DataLocator.Limit(train, n);
            var validation = p.GetValue(validationData) is string v ? DataLocator.Load(v, DataSplit.Test, load) : null;
            if (validation is not null) TrainChecks.RequestUsed(validation, load.ImageSize, load.Channels);

            string what = options.Pretrained is null ? options.Architecture : $"{options.Pretrained} ({trainer.Options.Architecture})";
            cli.Markup($"Training [bold]{Markup(what)}[/] on {Markup(train.Source)}: {train.Count} images of [[{train.Channels}, {train.Height}, {train.Width}]], {train.ClassCount} classes" +
                       (validation is null ? (options.ValidationFraction > 0 ? $", {options.ValidationFraction:P0} held out for validation" : "") : $", validating on {validation.Count} images of {Markup(validation.Source)}") + ".");
            cli.Line($"{options.Epochs} epochs, batch {options.BatchSize}, {options.Optimizer} lr {options.LearningRate.ToString(CultureInfo.InvariantCulture)}, {options.Schedule} schedule, seed {options.Seed}, {(options.Threads == 0 ? Environment.ProcessorCount : options.Threads)} threads.");

            var (resolvedBackend, resolvedDevice, _) = TrainingRunners.Resolve(options);
            cli.Line($"Backend: {resolvedBackend} on {resolvedDevice}.");
            OutputFolder.StartRun(outputFolder, replaceEarlierRun);
            var started = DateTime.UtcNow;
            TrainedModel model;
            bool checkpointWritten = true;
            using (var reporter = TrainingReporter.Create(cli))
            {
                try
                {
                    model = reporter.Run(progress => checkpoint is null
                        ? trainer.Fit(train, validation, progress, ct)
                        : trainer.Resume(checkpoint, train, validation, progress, ct));
                }
                catch (IOException e) when (finished is not null)
                {
                    cli.Error.WriteLine($"warning: the model files are complete, but the final checkpoint was not written: {e.Message}");
                    (model, checkpointWritten) = (finished, false);
                }
            }
            var elapsed = DateTime.UtcNow - started;
            OutputFolder.WriteManifest(outputFolder, checkpointWritten);

            string onnxPath = Path.Combine(outputFolder, "model.onnx");
            string weightsPath = Path.Combine(outputFolder, "model.safetensors");

            TrainingReporter.PrintHistory(cli, model.History);
            var last = model.History.LastOrDefault();
            string accuracy = last?.ValidationAccuracy is double a ? $", validation accuracy {a:P2}" : "";
            cli.Markup($"Trained in {elapsed.TotalMinutes:F1} min{accuracy}.");
            cli.Markup($"ONNX model: [bold]{Markup(onnxPath)}[/] (takes raw 0-255 pixels, [[batch, {model.Channels}, {model.Height}, {model.Width}]]; outputs logits, probabilities, predicted_label)");
            cli.Markup($"Weights:    {Markup(weightsPath)}");
            cli.Markup($"Score with: resnet predict --model {Markup(Quote(onnxPath))} IMAGE_OR_FOLDER --top 3");
            cli.Markup($"Evaluate:   resnet evaluate --model {Markup(Quote(onnxPath))} --data PATH");
            return ResNetCli.ExitOk;
        }));
        return command;
    }

    /// <summary>Adds random erasing with probability <paramref name="probability"/> (0: unchanged) to any augmentation.</summary>
    private static Augmentation? WithErasing(Augmentation? augmentation, double probability)
    {
        if (probability == 0) return augmentation;
        if (!(probability > 0 && probability <= 1))
            throw new ArgumentException($"--random-erasing must be a probability in [0, 1], not {probability}.");
        return (augmentation ?? new Augmentation()) with { RandomErasing = new RandomErasing(probability) };
    }

    internal static string Markup(string text) => Spectre.Console.Markup.Escape(text);
    internal static string Quote(string path) => path.Contains(' ') ? $"\"{path}\"" : path;
}
