using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Google.Protobuf;
using ResNet.ML.Layers;
using ResNet.ML.Onnx.Proto;

namespace ResNet.ML.Onnx;

/// <summary>
/// Writes a <see cref="Network"/> as a standard ONNX model (ModelProto, opset 17 by default) that ONNX Runtime,
/// ML.NET's <c>ApplyOnnxModel</c> and other runtimes load unchanged. The graph takes
/// <c>input</c> [batch, C, H, W] float and gives three outputs: <c>logits</c> [batch, classes],
/// <c>probabilities</c> [batch, classes] (Softmax) and <c>predicted_label</c> [batch] int64 (ArgMax); names, the
/// preprocessing and the rest are set by <see cref="OnnxExportOptions"/>. The exported graph is the network in
/// inference mode: batch norms use their running statistics (folded into the convolutions by default).
/// </summary>
public static class OnnxExporter
{
    /// <summary>ModelProto.producer_name of every model we write.</summary>
    public const string ProducerName = "ResNet.ML";

    /// <summary>ModelProto.producer_version: this library's version.</summary>
    public static string ProducerVersion { get; } = ReadProducerVersion();

    /// <summary>
    /// Writes the model to <paramref name="path"/> atomically: a temporary file in the same folder (created if missing),
    /// then a rename, so an interrupted export never leaves a partial file under the final name.
    /// </summary>
    public static void Export(Network network, string path, OnnxExportOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var model = BuildModel(network, options);   // fails on bad input before anything touches the disk
        Training.AtomicFile.Write(path, model.WriteTo);
    }

    /// <summary>Writes the model as ONNX protobuf bytes to <paramref name="output"/>.</summary>
    public static void Export(Network network, Stream output, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(output);
        BuildModel(network, options).WriteTo(output);
    }

    /// <summary>The model as ONNX protobuf bytes.</summary>
    public static byte[] ExportToBytes(Network network, OnnxExportOptions options) => BuildModel(network, options).ToByteArray();

    /// <summary>Builds the ModelProto (graph, initializers, metadata) without writing it.</summary>
    public static ModelProto BuildModel(Network network, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(options);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw tensor data is little-endian; exporting on a big-endian machine is not supported.");
        var classNames = Validate(network, options);
        Models.FiniteWeights.ThrowIfNotFinite(network, "an ONNX model");

        var graph = new GraphBuilder(network.Architecture, options);
        string x = graph.Input(options.InputName, network.InputChannels, options.InputHeight, options.InputWidth, InputDoc(network, options));
        if (options.EmbedPreprocessing) x = graph.Preprocess(x, network.InputChannels, options);
        var (views, viewWeights) = graph.WithTestTimeViews(x, options.TestTimeFlip, options.TestTimeTranslate);
        x = views;

        bool flat = false;   // the value is [N, features] after a Linear layer, [N, C, H, W] before
        var layers = network.Layers;
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            if (flat && layer is not Linear)
                throw new NotSupportedException($"Layer '{layer.Name}' ({layer.GetType().Name}) follows a Linear layer; the exporter supports only Linear layers after the first Linear.");
            if (options.FoldBatchNorm && layer is Conv2d conv && i + 1 < layers.Count && layers[i + 1] is BatchNorm2d next && next.Channels == conv.OutChannels)
            {
                x = graph.Conv(conv, next, x);
                i++;
                continue;
            }
            x = graph.Layer(layer, x, ref flat);
        }
        if (!flat) x = graph.Flatten(x, "logits_flatten");
        if (viewWeights.Length > 1) x = graph.MeanOverViews(x, network.NumClasses, viewWeights);
        graph.Outputs(x, network.NumClasses, options);

        var model = new ModelProto
        {
            IrVersion = OnnxExportOptions.IrVersionFor(options.Opset),
            ProducerName = ProducerName,
            ProducerVersion = ProducerVersion,
            Domain = "ai.resnet-ml",
            ModelVersion = options.ModelVersion,
            DocString = $"{network.Architecture} ({network.NumClasses} classes, input [batch, {network.InputChannels}, {options.InputHeight}, {options.InputWidth}]) exported by ResNet.ML {ProducerVersion}.",
            Graph = graph.Graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        foreach (var (key, value) in Metadata(network, options, classNames))
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }

    private static IReadOnlyList<string> Validate(Network network, OnnxExportOptions o)
    {
        if (o.InputHeight <= 0 || o.InputWidth <= 0)
            throw new ArgumentException($"OnnxExportOptions.InputHeight and InputWidth must be positive (got {o.InputHeight}x{o.InputWidth}).", nameof(o));
        if (o.Opset < OnnxExportOptions.MinOpset || o.Opset > OnnxExportOptions.MaxOpset)
            throw new ArgumentException($"OnnxExportOptions.Opset {o.Opset} is not supported: the exporter writes opsets {OnnxExportOptions.MinOpset} to {OnnxExportOptions.MaxOpset}.", nameof(o));
        network.ValidateInput(network.InputChannels, o.InputHeight, o.InputWidth);

        var classNames = o.ClassNames ?? Enumerable.Range(0, network.NumClasses).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        if (classNames.Count != network.NumClasses)
            throw new ArgumentException($"OnnxExportOptions.ClassNames has {classNames.Count} names, but {network.Architecture} has {network.NumClasses} classes.", nameof(o));
        if (classNames.Any(n => n is null)) throw new ArgumentException("OnnxExportOptions.ClassNames contains a null name.", nameof(o));

        if (!float.IsFinite(o.PixelScale) || o.PixelScale == 0)
            throw new ArgumentException($"OnnxExportOptions.PixelScale must be a finite, non-zero number (got {o.PixelScale}).", nameof(o));
        if (o.Mean is not null && (o.Mean.Count != network.InputChannels || o.Mean.Any(m => !float.IsFinite(m))))
            throw new ArgumentException($"OnnxExportOptions.Mean must hold {network.InputChannels} finite values, one per input channel (got [{string.Join(", ", o.Mean)}]).", nameof(o));
        if (o.Std is not null && (o.Std.Count != network.InputChannels || o.Std.Any(s => !float.IsFinite(s) || s <= 0)))
            throw new ArgumentException($"OnnxExportOptions.Std must hold {network.InputChannels} positive finite values, one per input channel (got [{string.Join(", ", o.Std)}]).", nameof(o));

        string[] names = [o.InputName, o.LogitsName, o.ProbabilitiesName, o.PredictedLabelName];
        if (names.Any(string.IsNullOrWhiteSpace) || names.Distinct(StringComparer.Ordinal).Count() != names.Length)
            throw new ArgumentException($"OnnxExportOptions needs four distinct, non-empty names for the input and outputs (got '{string.Join("', '", names)}').", nameof(o));
        if (string.IsNullOrWhiteSpace(o.BatchDimensionName)) throw new ArgumentException("OnnxExportOptions.BatchDimensionName must not be empty.", nameof(o));
        if (o.ExtraMetadata?.Keys.FirstOrDefault(OnnxMetadataKeys.All.Contains) is string clash)
            throw new ArgumentException($"OnnxExportOptions.ExtraMetadata must not set '{clash}': the exporter writes that key itself.", nameof(o));
        return classNames;
    }

    private static IEnumerable<(string Key, string Value)> Metadata(Network network, OnnxExportOptions o, IReadOnlyList<string> classNames)
    {
        yield return (OnnxMetadataKeys.ClassNames, JsonSerializer.Serialize(classNames));
        yield return (OnnxMetadataKeys.InputChannels, network.InputChannels.ToString(CultureInfo.InvariantCulture));
        yield return (OnnxMetadataKeys.InputHeight, o.InputHeight.ToString(CultureInfo.InvariantCulture));
        yield return (OnnxMetadataKeys.InputWidth, o.InputWidth.ToString(CultureInfo.InvariantCulture));
        yield return (OnnxMetadataKeys.ChannelOrder, o.ChannelOrder);
        yield return (OnnxMetadataKeys.PixelScale, o.PixelScale.ToString("R", CultureInfo.InvariantCulture));
        yield return (OnnxMetadataKeys.Mean, JsonSerializer.Serialize(o.Mean));
        yield return (OnnxMetadataKeys.Std, JsonSerializer.Serialize(o.Std));
        yield return (OnnxMetadataKeys.PreprocessingInGraph, o.EmbedPreprocessing ? "true" : "false");
        yield return (OnnxMetadataKeys.Architecture, network.Architecture);
        yield return (OnnxMetadataKeys.BatchNormFolded, o.FoldBatchNorm ? "true" : "false");
        yield return (OnnxMetadataKeys.LogitsOutput, o.LogitsName);
        yield return (OnnxMetadataKeys.ProbabilitiesOutput, o.ProbabilitiesName);
        yield return (OnnxMetadataKeys.PredictedLabelOutput, o.PredictedLabelName);
        yield return (OnnxMetadataKeys.TestTimeAugmentation, TestTimeAugmentationName(o));
        if (o.ExtraMetadata is not null)
            foreach (var (k, v) in o.ExtraMetadata) yield return (k, v);
    }

    private static string InputDoc(Network network, OnnxExportOptions o)
    {
        var inv = CultureInfo.InvariantCulture;
        string pre = $"x * {o.PixelScale.ToString("R", inv)}" +
                     (o.Mean is null ? "" : $" - mean [{string.Join(", ", o.Mean.Select(v => v.ToString("R", inv)))}]") +
                     (o.Std is null ? "" : $", / std [{string.Join(", ", o.Std.Select(v => v.ToString("R", inv)))}]");
        return $"Images as planar CHW float32, {network.InputChannels} channels ({o.ChannelOrder}), {o.InputHeight}x{o.InputWidth}. " +
               (o.EmbedPreprocessing ? $"Feed them un-normalized: the graph applies {pre}." : $"Apply {pre} before feeding them.") +
               (o.TestTimeFlip ? " The outputs average each image with its left-right mirror image." : "") +
               (o.TestTimeTranslate ? " The outputs average each image with its copies shifted one pixel up-left and down-right (weights 1/2, 1/4, 1/4)." : "");
    }

    /// <summary>The metadata value of the test-time augmentation: none, flip, translate or flip+translate.</summary>
    internal static string TestTimeAugmentationName(OnnxExportOptions o) => (o.TestTimeFlip, o.TestTimeTranslate) switch
    {
        (false, false) => "none",
        (true, false) => "flip",
        (false, true) => "translate",
        (true, true) => "flip+translate",
    };

    private static string ReadProducerVersion()
    {
        var assembly = typeof(OnnxExporter).Assembly;
        string? v = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (string.IsNullOrEmpty(v)) v = assembly.GetName().Version?.ToString() ?? "0";
        int plus = v.IndexOf('+');   // drop the source-revision suffix the SDK appends
        return plus >= 0 ? v[..plus] : v;
    }
}
