namespace ResNet.ML.Onnx;

/// <summary>
/// How <see cref="OnnxExporter"/> writes a network as an ONNX model. Only the input size is required; every other
/// setting has the default documented on it.
/// </summary>
/// <example>
/// A CIFAR model that takes raw 0-255 RGB pixels as ML.NET's <c>ExtractPixels</c> gives them (planar CHW floats):
/// <code>
/// var options = new OnnxExportOptions
/// {
///     InputHeight = 32, InputWidth = 32,
///     ClassNames = ["airplane", "automobile", ...],
///     PixelScale = 1f / 255, Mean = [0.4914f, 0.4822f, 0.4465f], Std = [0.2470f, 0.2435f, 0.2616f],
/// };
/// OnnxExporter.Export(network, "cifar10.onnx", options);
/// </code>
/// </example>
public sealed record OnnxExportOptions
{
    /// <summary>The smallest opset the exporter writes (Softmax, ArgMax, Slice and Pad as of opset 13).</summary>
    public const int MinOpset = 13;

    /// <summary>The largest opset the exporter writes.</summary>
    public const int MaxOpset = 21;

    /// <summary>Image height the model takes (fixed in the graph's input shape; the batch dimension stays dynamic). Required.</summary>
    public required int InputHeight { get; init; }

    /// <summary>Image width the model takes. Required.</summary>
    public required int InputWidth { get; init; }

    /// <summary>ONNX operator set of the default domain. Default 17 (IR version 8); <see cref="MinOpset"/> to <see cref="MaxOpset"/>.</summary>
    public int Opset { get; init; } = 17;

    /// <summary>
    /// Fold each batch norm into the convolution before it (inference only: the running statistics become part of the
    /// conv's weight and bias), which removes every BatchNormalization node. Default true.
    /// </summary>
    public bool FoldBatchNorm { get; init; } = true;

    /// <summary>
    /// Test-time augmentation inside the graph: each image and its left-right mirror image go through the network as one
    /// batch of 2N, and the outputs are the mean of the two logits. Scoring with ONNX Runtime or ML.NET then gives the
    /// augmented number with no code on the caller's side, at twice the inference cost. Default false.
    /// </summary>
    public bool TestTimeFlip { get; init; }

    /// <summary>
    /// Test-time translations inside the graph: each image also goes through the network shifted one pixel up-left and
    /// one pixel down-right (reflect-padded), and its logits are weighted 1/2, 1/4, 1/4 (airbench's scheme). With
    /// <see cref="TestTimeFlip"/> every view is also mirrored: six views, six times the inference cost. Default false.
    /// </summary>
    public bool TestTimeTranslate { get; init; }

    /// <summary>Class names in class-index order, stored in the metadata. Default null: "0", "1", ... .</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>
    /// Factor applied to every input value before the mean/std normalization, e.g. 1/255 for raw 0-255 pixels.
    /// Default 1 (the input is used as given).
    /// </summary>
    public float PixelScale { get; init; } = 1f;

    /// <summary>Per-channel mean subtracted after <see cref="PixelScale"/>. Default null (no mean subtraction).</summary>
    public IReadOnlyList<float>? Mean { get; init; }

    /// <summary>Per-channel standard deviation the result is divided by. Default null (no division).</summary>
    public IReadOnlyList<float>? Std { get; init; }

    /// <summary>
    /// When true (default), the scale and normalization above are nodes at the start of the graph, so the model takes
    /// un-normalized input. When false they are only recorded in the metadata, as what the caller must apply.
    /// </summary>
    public bool EmbedPreprocessing { get; init; } = true;

    /// <summary>Order of the input channels, recorded in the metadata. Default "RGB" (ML.NET's ExtractPixels order without alpha).</summary>
    public string ChannelOrder { get; init; } = "RGB";

    /// <summary>Name of the graph input [batch, C, H, W] float. Default "input".</summary>
    public string InputName { get; init; } = "input";

    /// <summary>Name of the output [batch, classes] of raw scores. Default "logits".</summary>
    public string LogitsName { get; init; } = "logits";

    /// <summary>Name of the output [batch, classes] of softmax probabilities. Default "probabilities".</summary>
    public string ProbabilitiesName { get; init; } = "probabilities";

    /// <summary>Name of the output [batch] int64 of the arg-max class index. Default "predicted_label".</summary>
    public string PredictedLabelName { get; init; } = "predicted_label";

    /// <summary>Symbolic name of the dynamic batch dimension. Default "batch".</summary>
    public string BatchDimensionName { get; init; } = "batch";

    /// <summary>ModelProto.model_version. Default 1.</summary>
    public long ModelVersion { get; init; } = 1;

    /// <summary>Extra metadata_props entries (must not reuse a key of <see cref="OnnxMetadataKeys"/>). Default none.</summary>
    public IReadOnlyDictionary<string, string>? ExtraMetadata { get; init; }

    /// <summary>The IR version that goes with an opset (the ONNX release that introduced the opset).</summary>
    public static long IrVersionFor(int opset) => opset switch
    {
        <= 14 => 7,
        <= 17 => 8,
        <= 19 => 9,
        _ => 10,
    };
}

/// <summary>The metadata_props keys an exported model carries (all values are strings; lists are JSON arrays).</summary>
public static class OnnxMetadataKeys
{
    /// <summary>JSON array of class names in class-index order.</summary>
    public const string ClassNames = "class_names";
    public const string InputChannels = "input_channels";
    public const string InputHeight = "input_height";
    public const string InputWidth = "input_width";
    /// <summary>e.g. "RGB".</summary>
    public const string ChannelOrder = "channel_order";
    /// <summary>Scale applied to the raw input, invariant-culture float (e.g. "0.003921569").</summary>
    public const string PixelScale = "pixel_scale";
    /// <summary>JSON array of per-channel means, or "null".</summary>
    public const string Mean = "mean";
    /// <summary>JSON array of per-channel standard deviations, or "null".</summary>
    public const string Std = "std";
    /// <summary>"true" when scale/mean/std are nodes of the graph (feed raw input), "false" when the caller applies them.</summary>
    public const string PreprocessingInGraph = "preprocessing_in_graph";
    /// <summary>The network's architecture, e.g. "resnet20" (the key weights files use too).</summary>
    public const string Architecture = Models.ModelWeights.ArchitectureKey;
    /// <summary>"true" when batch norms were folded into the convolutions.</summary>
    public const string BatchNormFolded = "batch_norm_folded";
    /// <summary>Output names, so a reader need not guess: logits, probabilities, predicted label.</summary>
    public const string LogitsOutput = "logits_output";
    public const string ProbabilitiesOutput = "probabilities_output";
    public const string PredictedLabelOutput = "predicted_label_output";
    /// <summary>The test-time views the graph averages: "none", "flip", "translate" or "flip+translate".</summary>
    public const string TestTimeAugmentation = "test_time_augmentation";

    internal static readonly string[] All =
    [
        ClassNames, InputChannels, InputHeight, InputWidth, ChannelOrder, PixelScale, Mean, Std, PreprocessingInGraph,
        Architecture, BatchNormFolded, LogitsOutput, ProbabilitiesOutput, PredictedLabelOutput, TestTimeAugmentation,
    ];
}
