using System.Runtime.InteropServices;
using Google.Protobuf;
using ResNet.ML.MLNet.Mappings;
using ResNet.ML.Onnx.Proto;

namespace ResNet.ML.MLNet.Scoring;

/// <summary>
/// Turns the ONNX model ResNet.ML exports into the one ML.NET's OnnxTransformer scores: it adds the predicted class's
/// key value (a Gather over the label's key values), the Score column's slot names (the node OnnxTransformer reads
/// them from), and for encoded images a front that takes the decoded pixels as a flat vector.
/// </summary>
internal static class ScoringGraph
{
    /// <summary>What the exporter names the network's [N, C, H, W] input when a front feeds it.</summary>
    public const string NetworkInput = "ResNet.ML.Image";
    public const string ScoreOutput = "Score";
    public const string LogitsOutput = "ResNet.ML.Logits";
    public const string IndexOutput = "ResNet.ML.PredictedIndex";

    /// <summary>
    /// Adds the predicted key value output (<see cref="ScoringColumns.PredictedValueVector"/>, [N] of the key values'
    /// type) and the slot names of <see cref="ScoreOutput"/>.
    /// </summary>
    public static void AddLabelOutputs(ModelProto model, KeyValueTable keyValues)
    {
        var graph = model.Graph;
        var values = keyValues.ToTensor("ResNet.ML.KeyValues");
        graph.Initializer.Add(values);
        var gather = new NodeProto { OpType = "Gather", Name = "ResNet.ML.PredictedValue" };
        gather.Input.Add(values.Name);
        gather.Input.Add(IndexOutput);
        gather.Output.Add(ScoringColumns.PredictedValueVector);
        gather.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 0 });
        graph.Node.Add(gather);
        graph.Output.Add(TensorValue(ScoringColumns.PredictedValueVector, keyValues.OnnxType, Batch()));

        // ML.NET's OnnxTransformer takes a column's slot names from the keys_strings of a node named
        // "mlnet.<column>.SlotNames" and skips outputs named "mlnet.<column>.unusedOutput" (as its own ONNX export writes them).
        string one = "mlnet.Score.SlotNames.one";
        var oneTensor = new TensorProto { Name = one, DataType = (int)TensorProto.Types.DataType.String };
        oneTensor.Dims.Add([1, 1]);
        oneTensor.StringData.Add(ByteString.CopyFromUtf8("one"));
        graph.Initializer.Add(oneTensor);
        var encoder = new NodeProto { OpType = "LabelEncoder", Domain = "ai.onnx.ml", Name = $"mlnet.{ScoreOutput}.SlotNames" };
        encoder.Input.Add(one);
        encoder.Output.Add($"mlnet.{ScoreOutput}.unusedOutput");
        var keys = new AttributeProto { Name = "keys_strings", Type = AttributeProto.Types.AttributeType.Strings };
        keys.Strings.Add(keyValues.Names.Select(ByteString.CopyFromUtf8));
        encoder.Attribute.Add(keys);
        var codes = new AttributeProto { Name = "values_int64s", Type = AttributeProto.Types.AttributeType.Ints };
        codes.Ints.Add(Enumerable.Range(0, keyValues.Names.Count).Select(i => (long)i));
        encoder.Attribute.Add(codes);
        graph.Node.Add(encoder);
        graph.Output.Add(TensorValue($"mlnet.{ScoreOutput}.unusedOutput", TensorProto.Types.DataType.Int64, Dim(1), Dim(1)));
        if (!model.OpsetImport.Any(o => o.Domain == "ai.onnx.ml"))
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "ai.onnx.ml", Version = 2 });
    }

    /// <summary>
    /// Replaces the network input <see cref="NetworkInput"/> with <see cref="ScoringColumns.Pixels"/>: one decoded image
    /// as a flat vector ([1, C·H·W], as the decoding mapping gives it), reshaped to [1, C, H, W].
    /// </summary>
    public static void AddFlatPixelsFront(ModelProto model, ImageShape shape)
    {
        var graph = model.Graph;
        var input = graph.Input.SingleOrDefault(i => i.Name == NetworkInput)
            ?? throw new InvalidOperationException($"The exported ONNX model has no input named '{NetworkInput}'.");
        graph.Input.Remove(input);
        var target = Int64Tensor("ResNet.ML.Front.shape", [-1, shape.Channels, shape.Height, shape.Width]);
        graph.Initializer.Add(target);
        var reshape = new NodeProto { OpType = "Reshape", Name = "ResNet.ML.Front.reshape" };
        reshape.Input.Add([ScoringColumns.Pixels, target.Name]);
        reshape.Output.Add(NetworkInput);
        graph.Node.Insert(0, reshape);
        graph.Input.Add(TensorValue(ScoringColumns.Pixels, TensorProto.Types.DataType.Float, Batch(), new TensorShapeProto.Types.Dimension { DimParam = "pixels" }));
    }

    /// <summary>
    /// A model whose only output, <see cref="ScoringColumns.DecodeTarget"/>, is the constant [C, H, W, resize mode] the
    /// decoding mapping needs. A CustomMapping carries no state of its own, so the fitted model carries it this way: a
    /// second OnnxTransformer that reads the image bytes column (its input, unused) and emits the constant per row.
    /// </summary>
    public static ModelProto DecodeTargetModel(ImageShape shape, int resizeMode)
    {
        var graph = new GraphProto { Name = "ResNet.ML.DecodeTarget" };
        var value = Int64Tensor("ResNet.ML.DecodeTarget.value", [shape.Channels, shape.Height, shape.Width, resizeMode]);
        var constant = new NodeProto { OpType = "Constant", Name = "ResNet.ML.DecodeTarget" };
        constant.Output.Add(ScoringColumns.DecodeTarget);
        constant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = value });
        graph.Node.Add(constant);
        graph.Input.Add(TensorValue(ScoringColumns.ImageBytes, TensorProto.Types.DataType.Uint8, Batch(), new TensorShapeProto.Types.Dimension { DimParam = "bytes" }));
        graph.Output.Add(TensorValue(ScoringColumns.DecodeTarget, TensorProto.Types.DataType.Int64, Dim(4)));
        var model = new ModelProto { IrVersion = 8, ProducerName = "ResNet.ML.MLNet", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return model;
    }

    private static TensorProto Int64Tensor(string name, long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())) };
        t.Dims.Add(values.Length);
        return t;
    }

    private static TensorShapeProto.Types.Dimension Dim(long value) => new() { DimValue = value };
    private static TensorShapeProto.Types.Dimension Batch() => new() { DimParam = "batch" };

    internal static ValueInfoProto TensorValue(string name, TensorProto.Types.DataType type, params TensorShapeProto.Types.Dimension[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(dims);
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }
}
