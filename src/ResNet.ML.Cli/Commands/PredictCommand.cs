using System.CommandLine;
using System.Globalization;
using ResNet.ML.Data;

namespace ResNet.ML.Cli.Commands;

/// <summary><c>resnet predict --model model.onnx IMAGE|FOLDER [--top K]</c>: the top-k classes with probabilities, scored by ONNX Runtime.</summary>
internal static class PredictCommand
{
    public static Command Create(CommandContext context)
    {
        var model = new Option<string>("--model") { Description = "An ONNX model written by 'resnet train' or 'resnet export'.", Required = true };
        var input = new Argument<string>("IMAGE|FOLDER") { Description = "A PNG/JPEG file, or a folder of them (searched recursively)." };
        var top = new Option<int>("--top") { Description = "How many classes to show per image.", DefaultValueFactory = _ => 3 };
        var stretch = new Option<bool>("--stretch") { Description = "Resize by stretching instead of shorter side + center crop." };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime threads (0: its default).", DefaultValueFactory = _ => 0 };

        var command = new Command("predict", "Classify images with an ONNX model.") { model, input, top, stretch, threads };
        command.SetAction(context.Guard((p, cli, ct) =>
        {
            int k = p.GetValue(top);
            if (k <= 0) throw new UsageException($"--top must be positive, not {k}.");
            using var predictor = ModelFiles.LoadOnnx(p.GetValue(model)!, p.GetValue(threads));
            if (predictor.Channels is not (1 or 3))
                throw new UsageException($"The model takes {predictor.Channels}-channel input; images decode to 1 (grayscale) or 3 (RGB) channels.");
            string path = p.GetValue(input)!;
            var files = ImageFolders.ImageFiles(path, recursive: true).ToList();
            if (files.Count == 0) throw new UsageException($"'{path}' holds no PNG or JPEG images.");
            var resize = p.GetValue(stretch) ? ResizeMode.Stretch : ResizeMode.ShorterSideCenterCrop;
            var inv = CultureInfo.InvariantCulture;
            foreach (var file in files)
            {
                ct.ThrowIfCancellationRequested();
                // Pixels stay 0-255: the exported graph scales and normalizes them itself.
                var pixels = ImageDecoder.DecodeToChw(File.ReadAllBytes(file), predictor.Channels, predictor.Height, predictor.Width, resize, file);
                var prediction = predictor.Predict(pixels, Math.Min(k, predictor.NumClasses));
                cli.Line($"{file}: " + string.Join(", ", prediction.TopK.Select(s => $"{s.Label} {s.Probability.ToString("P1", inv)}")));
            }
            return ResNetCli.ExitOk;
        }));
        return command;
    }
}
