using System.CommandLine;
using ResNet.ML.Training;

namespace ResNet.ML.Cli.Commands;

/// <summary>
/// <c>resnet export</c>: a trained model (--model, a ResNet.ML safetensors file) or a freshly initialized seeded one
/// (--arch/--classes/--channels/--image-size/--seed, for interop checks and speed tests) to ONNX or safetensors.
/// </summary>
internal static class ExportCommand
{
    public static Command Create(CommandContext context)
    {
        var model = new Option<string?>("--model") { Description = "A model.safetensors written by 'resnet train' (an ONNX file is already exported)." };
        var output = new Option<string>("--output", "-o") { Description = "The file to write.", Required = true };
        var format = new Option<string?>("--format") { Description = "onnx or safetensors (default: from the --output extension, else onnx)." };
        format.AcceptOnlyFromAmong("onnx", "safetensors");
        var arch = new Option<string?>("--arch") { Description = "Export a freshly initialized model of this architecture instead of --model." };
        var classes = new Option<int>("--classes") { Description = "Classes of the fresh model.", DefaultValueFactory = _ => 10 };
        var channels = new Option<int>("--channels") { Description = "Input channels of the fresh model.", DefaultValueFactory = _ => 3 };
        var imageSize = new Option<int>("--image-size") { Description = "Input size of the fresh model.", DefaultValueFactory = _ => 32 };
        var seed = new Option<int>("--seed") { Description = "Initialization seed of the fresh model.", DefaultValueFactory = _ => 0 };
        var noFold = new Option<bool>("--no-fold-bn") { Description = "Keep BatchNormalization nodes instead of folding them into the convolutions." };

        var ttaFlip = new Option<bool>("--tta-flip") { Description = "ONNX only: average each image's logits with its mirror image's inside the graph (test-time flips)." };
        var ttaTranslate = new Option<bool>("--tta-translate") { Description = "ONNX only: also average each image's logits with its one-pixel shifts up-left and down-right (weights 1/2, 1/4, 1/4; with --tta-flip six views)." };
        var command = new Command("export", "Export a model to ONNX or safetensors.") { model, output, format, arch, classes, channels, imageSize, seed, noFold, ttaFlip, ttaTranslate };
        command.SetAction(context.Guard((p, cli, ct) =>
        {
            string outputPath = Path.GetFullPath(p.GetValue(output)!);
            string kind = p.GetValue(format) ?? (outputPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? "safetensors" : "onnx");
            if (kind != "onnx" && (p.GetValue(ttaFlip) || p.GetValue(ttaTranslate))) throw new UsageException($"{(p.GetValue(ttaFlip) ? "--tta-flip" : "--tta-translate")} applies to ONNX exports only; safetensors files hold weights, not a scoring graph.");
            TrainedModel trained;
            if (p.GetValue(model) is string modelPath)
            {
                if (p.GetValue(arch) is not null) throw new UsageException("Give either --model or --arch, not both.");
                trained = ModelFiles.LoadTrained(modelPath);
            }
            else if (p.GetValue(arch) is string architecture)
            {
                trained = TrainedModel.CreateInitialized(architecture, p.GetValue(channels), ModelFiles.NumberedClasses(p.GetValue(classes)),
                    p.GetValue(imageSize), p.GetValue(imageSize), p.GetValue(seed));
            }
            else throw new UsageException("Give --model FILE, or --arch NAME (with --classes, --channels, --image-size, --seed) for a fresh model.");

            OutputFolder.EnsureWritable(Path.GetDirectoryName(outputPath)!);
            if (kind == "onnx") trained.ExportOnnx(outputPath, foldBatchNorm: !p.GetValue(noFold), testTimeFlip: p.GetValue(ttaFlip), testTimeTranslate: p.GetValue(ttaTranslate));
            else trained.SaveWeights(outputPath);
            cli.Line($"Wrote {outputPath} ({kind}, {trained.Architecture}, {trained.Network.ParameterCount:N0} parameters, input [{trained.Channels}, {trained.Height}, {trained.Width}], {trained.ClassNames.Count} classes).");
            return ResNetCli.ExitOk;
        }));
        return command;
    }
}
