using System.Runtime.InteropServices;
using Google.Protobuf;
using ResNet.ML.Layers;
using ResNet.ML.Onnx.Proto;
using ResNet.ML.Tensors;

namespace ResNet.ML.Onnx;

/// <summary>
/// Appends ONNX nodes and initializers for the layers of a network, one value per layer output, named after the
/// layers (PyTorch paths such as <c>layer1.0.conv1</c>) so the graph reads like the network in a viewer.
/// </summary>
internal sealed class GraphBuilder
{
    private readonly OnnxExportOptions _options;
    private readonly HashSet<string> _values = new(StringComparer.Ordinal);   // ONNX keeps value and node names apart
    private readonly HashSet<string> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _sharedConstants = new(StringComparer.Ordinal);

    public GraphBuilder(string name, OnnxExportOptions options)
    {
        _options = options;
        Graph = new GraphProto { Name = string.IsNullOrWhiteSpace(name) ? "resnet" : name };
    }

    public GraphProto Graph { get; }

    public string Input(string name, int channels, int height, int width, string doc)
    {
        Graph.Input.Add(Value(name, TensorProto.Types.DataType.Float, doc, channels, height, width));
        return Claim(name);
    }

    /// <summary>x * scale, - mean, / std: the three steps as ML.NET and torchvision users write them.</summary>
    public string Preprocess(string x, int channels, OnnxExportOptions o)
    {
        if (o.PixelScale != 1f)
        {
            string scale = Initializer("preprocess.scale", [o.PixelScale], []);
            x = Node("Mul", "preprocess.mul", [x, scale]);
        }
        if (o.Mean is not null)
        {
            string mean = Initializer("preprocess.mean", o.Mean.ToArray(), [1, channels, 1, 1]);
            x = Node("Sub", "preprocess.sub", [x, mean]);
        }
        if (o.Std is not null)
        {
            string std = Initializer("preprocess.std", o.Std.ToArray(), [1, channels, 1, 1]);
            x = Node("Div", "preprocess.div", [x, std]);
        }
        return x;
    }

    /// <summary>One top-level or shortcut layer; <paramref name="flat"/> tracks whether the value is [N, features].</summary>
    public string Layer(Layer layer, string x, ref bool flat)
    {
        switch (layer)
        {
            case Conv2d conv: return Conv(conv, null, x);
            case BatchNorm2d bn: return BatchNorm(bn, x);
            case ReLU relu: return Node("Relu", relu.Name, [x]);
            case MaxPool2d pool:
                return Node("MaxPool", pool.Name, [x],
                    Ints("kernel_shape", pool.KernelSize, pool.KernelSize),
                    Ints("strides", pool.Stride, pool.Stride),
                    Ints("pads", pool.Padding, pool.Padding, pool.Padding, pool.Padding));
            case GlobalAvgPool2d gap: return Node("GlobalAveragePool", gap.Name, [x]);
            case Linear linear:
                if (!flat) x = Flatten(x, $"{linear.Name}.flatten");
                flat = true;
                return Gemm(linear, x);
            case ResidualBlock block: return Block(block, x);
            default:
                throw new NotSupportedException($"Layer '{layer.Name}' is a {layer.GetType().Name}, which the ONNX exporter does not know how to write.");
        }
    }

    public string Flatten(string x, string name) => Node("Flatten", name, [x], Int("axis", 1));

    /// <summary>Conv, with <paramref name="foldedBn"/>'s inference transform merged into its weight and bias when given.</summary>
    public string Conv(Conv2d conv, BatchNorm2d? foldedBn, string x)
    {
        int o = conv.OutChannels;
        float[] weight = conv.Weight.Value.Data;
        float[]? bias = conv.Bias?.Value.Data;
        string doc = "";
        if (foldedBn is not null)
        {
            if (foldedBn.Channels != o) throw new InvalidOperationException($"Cannot fold '{foldedBn.Name}' ({foldedBn.Channels} channels) into '{conv.Name}' ({o} channels).");
            (weight, bias) = Fold(conv, foldedBn);
            doc = $"{conv.Name} with {foldedBn.Name} folded in (inference statistics)";
        }
        string w = Initializer($"{conv.Name}.weight", weight, [o, conv.InChannels, conv.KernelSize, conv.KernelSize], doc);
        var inputs = new List<string> { x, w };
        if (bias is not null) inputs.Add(Initializer($"{conv.Name}.bias", bias, [o], doc));
        int p = conv.Padding, s = conv.Stride, k = conv.KernelSize;
        return Node("Conv", foldedBn is null ? conv.Name : $"{conv.Name}+{foldedBn.Name}", inputs.ToArray(),
            Ints("kernel_shape", k, k), Ints("strides", s, s), Ints("pads", p, p, p, p), Ints("dilations", 1, 1), Int("group", 1));
    }

    /// <summary>
    /// W' = W·γ/√(σ²+ε) per output channel and b' = (b − μ)·γ/√(σ²+ε) + β, computed in double so folding adds no
    /// error beyond the final rounding to float.
    /// </summary>
    internal static (float[] Weight, float[] Bias) Fold(Conv2d conv, BatchNorm2d bn)
    {
        int o = conv.OutChannels, per = conv.InChannels * conv.KernelSize * conv.KernelSize;
        float[] w = conv.Weight.Value.Data, gamma = bn.Weight.Value.Data, beta = bn.Bias.Value.Data;
        float[] mean = bn.RunningMean.Data, variance = bn.RunningVar.Data;
        float[]? b = conv.Bias?.Value.Data;
        var fw = new float[w.Length];
        var fb = new float[o];
        for (int c = 0; c < o; c++)
        {
            double scale = gamma[c] / Math.Sqrt((double)variance[c] + bn.Eps);
            for (int j = 0; j < per; j++) fw[c * per + j] = (float)(w[c * per + j] * scale);
            fb[c] = (float)(((b?[c] ?? 0.0) - mean[c]) * scale + beta[c]);
        }
        return (fw, fb);
    }

    private string BatchNorm(BatchNorm2d bn, string x)
    {
        long[] dims = [bn.Channels];
        string scale = Initializer($"{bn.Name}.weight", bn.Weight.Value.Data, dims);
        string bias = Initializer($"{bn.Name}.bias", bn.Bias.Value.Data, dims);
        string mean = Initializer($"{bn.Name}.running_mean", bn.RunningMean.Data, dims);
        string variance = Initializer($"{bn.Name}.running_var", bn.RunningVar.Data, dims);
        return Node("BatchNormalization", bn.Name, [x, scale, bias, mean, variance], Float("epsilon", bn.Eps), Float("momentum", 1 - bn.Momentum));
    }

    private string Gemm(Linear linear, string x)
    {
        string w = Initializer($"{linear.Name}.weight", linear.Weight.Value.Data, [linear.OutFeatures, linear.InFeatures]);
        var inputs = new List<string> { x, w };
        if (linear.Bias is not null) inputs.Add(Initializer($"{linear.Name}.bias", linear.Bias.Value.Data, [linear.OutFeatures]));
        return Node("Gemm", linear.Name, inputs.ToArray(), Float("alpha", 1f), Float("beta", 1f), Int("transA", 0), Int("transB", 1));
    }

    private string ConvBn(Conv2d conv, BatchNorm2d bn, string x) =>
        _options.FoldBatchNorm ? Conv(conv, bn, x) : BatchNorm(bn, Conv(conv, null, x));

    private string Block(ResidualBlock block, string x)
    {
        string input = x;
        for (int i = 0; i < block.Branch.Count; i++)
        {
            var (conv, bn) = block.Branch[i];
            x = ConvBn(conv, bn, x);
            if (i < block.Branch.Count - 1) x = Node("Relu", $"{block.Name}.relu{i + 1}", [x]);
        }
        if (!block.Plain)
        {
            string shortcut = block.Shortcut switch
            {
                null => input,
                ProjectionShortcut projection => ConvBn(projection.Conv, projection.Bn, input),
                ZeroPadShortcut zeroPad => ZeroPad(zeroPad, input),
                var other => throw new NotSupportedException($"Block '{block.Name}' has a {other.GetType().Name} shortcut '{other.Name}', which the ONNX exporter does not know how to write."),
            };
            x = Node("Add", $"{block.Name}.add", [x, shortcut]);
        }
        return Node("Relu", $"{block.Name}.relu", [x]);
    }

    /// <summary>Option A as standard ops: x[:, :, ::s, ::s] (Slice with steps) then zero channels around it (Pad).</summary>
    private string ZeroPad(ZeroPadShortcut shortcut, string x)
    {
        if (shortcut.Stride != 1)
        {
            long s = shortcut.Stride;
            string starts = SharedInt64("shortcut.slice_starts", [0, 0]);
            string ends = SharedInt64("shortcut.slice_ends", [long.MaxValue, long.MaxValue]);
            string axes = SharedInt64("shortcut.slice_axes", [2, 3]);
            string steps = SharedInt64($"shortcut.slice_steps_{s}", [s, s]);
            x = Node("Slice", $"{shortcut.Name}.subsample", [x, starts, ends, axes, steps]);
        }
        if (shortcut.OutChannels != shortcut.InChannels)
        {
            // pads lists the begin of every axis, then the end of every axis: [N, C, H, W] begins, [N, C, H, W] ends.
            string pads = SharedInt64($"shortcut.pads_{shortcut.PadBefore}_{shortcut.PadAfter}", [0, shortcut.PadBefore, 0, 0, 0, shortcut.PadAfter, 0, 0]);
            x = Node("Pad", $"{shortcut.Name}.zero_pad", [x, pads], Str("mode", "constant"));
        }
        return x;
    }

    /// <summary>
    /// The test-time views of [N, C, H, W] images as one batch [V*N, C, H, W], with the weight of each view in the mean
    /// of the logits (<see cref="MeanOverViews"/>). Translate adds the images shifted one pixel up-left and one pixel
    /// down-right (reflect-padded by 1, then cropped), weighted 1/4 each against the originals' 1/2, as airbench does;
    /// flip adds every view mirrored left to right (Slice, step -1 on W) and halves the weights.
    /// </summary>
    public (string Batch, float[] Weights) WithTestTimeViews(string x, bool flip, bool translate)
    {
        var views = new List<string> { x };
        var weights = new List<float> { 1f };
        if (translate)
        {
            string pads = SharedInt64("tta.translate_pads", [0, 0, 1, 1, 0, 0, 1, 1]);
            string padded = Node("Pad", "tta.translate_pad", [x, pads], Str("mode", "reflect"));
            string axes = SharedInt64("tta.translate_axes", [2, 3]);
            views.Add(Node("Slice", "tta.shift_up_left", [padded, SharedInt64("tta.shift_up_left_starts", [0, 0]), SharedInt64("tta.shift_up_left_ends", [-2, -2]), axes]));
            views.Add(Node("Slice", "tta.shift_down_right", [padded, SharedInt64("tta.shift_down_right_starts", [2, 2]), SharedInt64("tta.shift_down_right_ends", [long.MaxValue, long.MaxValue]), axes]));
            weights = [0.5f, 0.25f, 0.25f];
        }
        if (flip)
        {
            string starts = SharedInt64("tta.flip_starts", [-1]);
            string ends = SharedInt64("tta.flip_ends", [long.MinValue]);
            string axes = SharedInt64("tta.flip_axes", [3]);
            string steps = SharedInt64("tta.flip_steps", [-1]);
            views.AddRange(views.Select((v, i) => Node("Slice", i == 0 ? "tta.mirror" : $"tta.mirror_{i}", [v, starts, ends, axes, steps])).ToList());
            weights = [.. weights.Concat(weights).Select(w => w / 2)];
        }
        return views.Count == 1 ? (x, [1f]) : (Node("Concat", "tta.batch", [.. views], Int("axis", 0)), [.. weights]);
    }

    /// <summary>
    /// [V*N, classes] back to [N, classes], the weighted mean of each image's V rows: reshaped to [V, N*classes] and
    /// multiplied by the [1, V] weights. MatMul and Reshape mean the same in every opset the exporter writes, where
    /// ReduceMean and Split changed.
    /// </summary>
    public string MeanOverViews(string logits, int classes, float[] weights)
    {
        string rows = Node("Reshape", "tta.views", [logits, SharedInt64($"tta.views_shape_{weights.Length}", [weights.Length, -1])]);
        string w = Initializer("tta.view_weights", weights, [1, weights.Length], "the weight of each test-time view in the mean of an image's logits");
        string mean = Node("MatMul", "tta.mean", [w, rows]);
        return Node("Reshape", "tta.logits", [mean, SharedInt64($"tta.logits_shape_{classes}", [-1, classes])]);
    }

    public void Outputs(string logits, int classes, OnnxExportOptions o)
    {
        string named = Node("Identity", o.LogitsName, [logits], output: o.LogitsName);
        Node("Softmax", o.ProbabilitiesName, [named], output: o.ProbabilitiesName, attributes: Int("axis", 1));
        Node("ArgMax", o.PredictedLabelName, [named], output: o.PredictedLabelName, attributes: [Int("axis", 1), Int("keepdims", 0)]);
        Graph.Output.Add(Value(o.LogitsName, TensorProto.Types.DataType.Float, null, classes));
        Graph.Output.Add(Value(o.ProbabilitiesName, TensorProto.Types.DataType.Float, null, classes));
        Graph.Output.Add(Value(o.PredictedLabelName, TensorProto.Types.DataType.Int64, null));
    }

    // --- protobuf plumbing ---

    private ValueInfoProto Value(string name, TensorProto.Types.DataType type, string? doc, params int[] dimsAfterBatch)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = _options.BatchDimensionName });
        foreach (int d in dimsAfterBatch) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        var info = new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
        if (doc is not null) info.DocString = doc;
        return info;
    }

    private string Node(string opType, string name, string[] inputs, params AttributeProto[] attributes) =>
        Node(opType, name, inputs, output: null, attributes: attributes);

    private string Node(string opType, string name, string[] inputs, string? output, params AttributeProto[] attributes)
    {
        string value = output is null ? Unique(_values, name) : Claim(output);
        string nodeName = Unique(_nodes, name);
        var node = new NodeProto { OpType = opType, Name = nodeName };
        node.Input.Add(inputs);
        node.Output.Add(value);
        node.Attribute.Add(attributes);
        Graph.Node.Add(node);
        return value;
    }

    private string Initializer(string name, float[] data, long[] dims, string doc = "")
    {
        var t = new TensorProto { Name = Claim(name), DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data.AsSpan())) };
        t.Dims.Add(dims);
        if (doc.Length > 0) t.DocString = doc;
        Graph.Initializer.Add(t);
        return t.Name;
    }

    private string SharedInt64(string key, long[] data)
    {
        if (_sharedConstants.TryGetValue(key, out string? existing)) return existing;
        var t = new TensorProto { Name = Claim(key), DataType = (int)TensorProto.Types.DataType.Int64, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data.AsSpan())) };
        t.Dims.Add(data.Length);
        Graph.Initializer.Add(t);
        _sharedConstants[key] = t.Name;
        return t.Name;
    }

    /// <summary>Claims an exact name (graph inputs, outputs, initializers); a clash means two layers share a name.</summary>
    private string Claim(string name)
    {
        if (!_values.Add(name))
            throw new InvalidOperationException($"The ONNX graph would have two values named '{name}': every layer of the network needs a distinct name, and the input/output names must not equal a layer's name.");
        return name;
    }

    /// <summary>A node/value name derived from a layer name, suffixed when a hand-built network repeats a name.</summary>
    private static string Unique(HashSet<string> taken, string name)
    {
        if (string.IsNullOrEmpty(name)) name = "node";
        if (taken.Add(name)) return name;
        for (int i = 1; ; i++)
            if (taken.Add($"{name}_{i}")) return $"{name}_{i}";
    }

    private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
    private static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };
    private static AttributeProto Str(string name, string value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    private static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }
}
