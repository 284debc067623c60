using System.CommandLine;
using System.Globalization;
using ResNet.ML.Onnx;
using ResNet.ML.Onnx.Proto;
using ResNet.ML.Training;

namespace ResNet.ML.Cli.Commands;

/// <summary><c>resnet info FILE</c>: what a model, weights or checkpoint file holds.</summary>
internal static class InfoCommand
{
    public static Command Create(CommandContext context)
    {
        var file = new Argument<string>("FILE") { Description = "model.onnx, model.safetensors or a training checkpoint." };
        var command = new Command("info", "Describe a model file: architecture, parameters, classes, input, preprocessing.") { file };
        command.SetAction(context.Guard((p, cli, ct) =>
        {
            string path = p.GetValue(file)!;
            switch (ModelFiles.Detect(path))
            {
                case ModelFileKind.Onnx: DescribeOnnx(cli, path); break;
                case ModelFileKind.Weights: DescribeModel(cli, path, TrainedModel.LoadWeights(path), "ResNet.ML weights (safetensors)"); break;
                case ModelFileKind.Checkpoint:
                {
                    var checkpoint = TrainingCheckpoint.Load(path);
                    DescribeModel(cli, path, TrainedModel.FromCheckpoint(checkpoint), "ResNet.ML training checkpoint (safetensors)");
                    cli.Line($"Resumes at:     epoch {checkpoint.Epoch + 1}, after step {checkpoint.StepInEpoch} ({checkpoint.GlobalStep} steps done)");
                    Commands.TrainingReporterAccess.PrintHistory(cli, checkpoint.History);
                    break;
                }
                default: throw new UsageException($"'{path}' is not a model file ResNet.ML knows (ONNX, or safetensors with ResNet.ML metadata).");
            }
            return ResNetCli.ExitOk;
        }));
        return command;
    }

    private static void DescribeModel(CliOutput cli, string path, TrainedModel m, string kind)
    {
        var inv = CultureInfo.InvariantCulture;
        cli.Line($"File:           {path}");
        cli.Line($"Kind:           {kind}");
        cli.Line($"Architecture:   {m.Architecture}");
        cli.Line($"Parameters:     {m.Network.ParameterCount.ToString("N0", inv)}");
        cli.Line($"Input:          [batch, {m.Channels}, {m.Height}, {m.Width}] raw pixels");
        cli.Line($"Normalization:  x * {m.Normalization.Scale.ToString("G6", inv)}, mean [{string.Join(", ", m.Normalization.Mean.Select(v => v.ToString("G4", inv)))}], std [{string.Join(", ", m.Normalization.Std.Select(v => v.ToString("G4", inv)))}]");
        cli.Line($"Classes ({m.ClassNames.Count}):   {string.Join(", ", m.ClassNames)}");
    }

    private static void DescribeOnnx(CliOutput cli, string path)
    {
        ModelProto model;
        try
        {
            using var stream = File.OpenRead(path);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (Google.Protobuf.InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"'{path}' is not a readable ONNX model ({e.Message.TrimEnd('.')}).");
        }
        var meta = model.MetadataProps.ToDictionary(e => e.Key, e => e.Value);
        string[] shown = [OnnxMetadataKeys.Architecture, OnnxMetadataKeys.ClassNames, OnnxMetadataKeys.PixelScale, OnnxMetadataKeys.Mean, OnnxMetadataKeys.Std];
        long parameters = model.Graph?.Initializer.Sum(t => t.Dims.Aggregate(1L, (a, d) => a * d)) ?? 0;
        string Shape(ValueInfoProto v) => v.Type?.TensorType?.Shape is { } s
            ? "[" + string.Join(", ", s.Dim.Select(d => d.HasDimParam ? d.DimParam : d.DimValue.ToString(CultureInfo.InvariantCulture))) + "]" : "?";
        cli.Line($"File:           {path}");
        cli.Line($"Kind:           ONNX model (IR {model.IrVersion}, opset {string.Join(", ", model.OpsetImport.Select(o => (o.Domain.Length == 0 ? "" : o.Domain + ":") + o.Version))}, producer {model.ProducerName} {model.ProducerVersion})");
        cli.Line($"Architecture:   {meta.GetValueOrDefault(OnnxMetadataKeys.Architecture, "(not recorded)")}");
        cli.Line($"Parameters:     {parameters.ToString("N0", CultureInfo.InvariantCulture)} (initializer elements{(meta.GetValueOrDefault(OnnxMetadataKeys.BatchNormFolded) == "true" ? ", BN folded" : "")})");
        foreach (var input in model.Graph?.Input ?? []) cli.Line($"Input:          {input.Name} {Shape(input)}");
        foreach (var output in model.Graph?.Output ?? []) cli.Line($"Output:         {output.Name} {Shape(output)}");
        if (meta.ContainsKey(OnnxMetadataKeys.PixelScale) || meta.ContainsKey(OnnxMetadataKeys.Mean))
            cli.Line($"Normalization:  x * {meta.GetValueOrDefault(OnnxMetadataKeys.PixelScale, "1")}, mean {meta.GetValueOrDefault(OnnxMetadataKeys.Mean, "-")}, std {meta.GetValueOrDefault(OnnxMetadataKeys.Std, "-")} ({(meta.GetValueOrDefault(OnnxMetadataKeys.PreprocessingInGraph) == "true" ? "inside the graph: feed raw pixels" : "not in the graph: apply it before scoring")})");
        if (meta.TryGetValue(OnnxMetadataKeys.ClassNames, out var names)) cli.Line($"Classes:        {names}");
        // The model description's entries repeat, in ResNet.ML's form, what the lines above already show.
        foreach (var (key, value) in meta.Where(kv => !shown.Contains(kv.Key) && !ModelDescription.Keys.Contains(kv.Key)))
            cli.Line($"  {key}: {value}");
    }
}

internal static class TrainingReporterAccess
{
    public static void PrintHistory(CliOutput cli, IReadOnlyList<EpochMetrics> history) => TrainingReporter.PrintHistory(cli, history);
}
