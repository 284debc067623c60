using System.Runtime.InteropServices;
using ResNet.ML.Models;
using ResNet.ML.Onnx.Proto;

namespace ResNet.ML.Onnx;

/// <summary>
/// A ResNet featurizer read from an ONNX graph: its architecture, its weights as a torchvision state dict without the
/// head (<c>conv1.weight</c>, <c>bn1.running_mean</c>, <c>layer4.2.downsample.1.bias</c>, ...), and the input the graph
/// declares. The stem's weight keeps the graph's input channel order.
/// </summary>
/// <param name="Spec">The architecture (basic blocks, ImageNet stem, projection shortcuts), blocks per stage as found.</param>
/// <param name="Tensors">Every weight of the graph, once, in torchvision's names and dims; BN counters are 0.</param>
/// <param name="InputName">The graph's input.</param>
/// <param name="InputChannels">Channels of the declared input.</param>
/// <param name="InputHeight">Height of the declared input.</param>
/// <param name="InputWidth">Width of the declared input.</param>
/// <param name="OutputName">The graph's output: the globally pooled features [N, C, 1, 1].</param>
/// <param name="Producer">ModelProto.producer_name and producer_version.</param>
public sealed record ImportedResNet(ResNetSpec Spec, IReadOnlyList<SafetensorsTensor> Tensors, string InputName, int InputChannels,
    int InputHeight, int InputWidth, string OutputName, string Producer);

/// <summary>
/// Reads a ResNet made of basic blocks from an ONNX graph by following its nodes from the input: the stem
/// (Conv 7x7/2, BatchNormalization, Relu, MaxPool 3x3/2), then blocks (Conv, BatchNormalization, Relu, Conv,
/// BatchNormalization, Add with the block's input or with a 1x1 Conv + BatchNormalization shortcut, Relu), up to a
/// global average pool that is the graph's output. Every initializer must be consumed once and every shape must fit;
/// anything else is refused with one <see cref="InvalidDataException"/> naming the ONNX node at fault. Weights are read
/// as stored (float_data or raw_data), never through an inference run.
/// </summary>
public static class OnnxResNetImporter
{
    /// <summary>The epsilon of our <see cref="Layers.BatchNorm2d"/>; a graph whose BN uses another one would compute something else.</summary>
    private const float Epsilon = 1e-5f;

    /// <summary>Reads and maps the ONNX file at <paramref name="path"/>.</summary>
    public static ImportedResNet Import(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX model '{path}' does not exist.", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Import(stream, path);
    }

    /// <summary>Reads and maps an ONNX model from <paramref name="input"/>; <paramref name="source"/> names it in messages.</summary>
    public static ImportedResNet Import(Stream input, string source = "the ONNX model")
    {
        ArgumentNullException.ThrowIfNull(input);
        ModelProto model;
        try { model = ModelProto.Parser.ParseFrom(input); }
        catch (Google.Protobuf.InvalidProtocolBufferException e) { throw new InvalidDataException($"{source} is not an ONNX model: {e.Message}", e); }
        return Import(model, source);
    }

    /// <summary>Maps a parsed model (see the class summary).</summary>
    public static ImportedResNet Import(ModelProto model, string source = "the ONNX model")
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Graph is null) throw new InvalidDataException($"{source} has no graph.");
        return new Walker(model, source).Run();
    }

    /// <summary>Reads a float initializer (float_data or little-endian raw_data) after checking its type and size.</summary>
    internal static float[] Floats(TensorProto t, string where)
    {
        if (t.DataType != (int)TensorProto.Types.DataType.Float)
            throw new InvalidDataException($"{where}: tensor '{t.Name}' has ONNX data type {t.DataType}, not float (1).");
        long count = t.Dims.Aggregate(1L, (a, d) => a * d);
        if (t.Dims.Any(d => d < 0) || count > int.MaxValue) throw new InvalidDataException($"{where}: tensor '{t.Name}' has dims [{string.Join(", ", t.Dims)}].");
        float[] values;
        if (t.HasRawData)
        {
            if (t.RawData.Length != count * 4)
                throw new InvalidDataException($"{where}: tensor '{t.Name}' has {t.RawData.Length} bytes of raw data for {count} floats.");
            values = MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray();
            if (!BitConverter.IsLittleEndian)
                for (int i = 0; i < values.Length; i++) values[i] = BitConverter.Int32BitsToSingle(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(BitConverter.SingleToInt32Bits(values[i])));
        }
        else
        {
            if (t.FloatData.Count != count)
                throw new InvalidDataException($"{where}: tensor '{t.Name}' holds {t.FloatData.Count} floats for dims [{string.Join(", ", t.Dims)}].");
            values = [.. t.FloatData];
        }
        foreach (float v in values)
            if (!float.IsFinite(v)) throw new InvalidDataException($"{where}: tensor '{t.Name}' holds a NaN or infinity.");
        return values;
    }

    internal static string Describe(NodeProto n) => $"ONNX node '{(n.Name.Length > 0 ? n.Name : "(unnamed)")}' ({n.OpType})";

    private sealed class Walker
    {
        private readonly ModelProto _model;
        private readonly string _source;
        private readonly Dictionary<string, TensorProto> _initializers = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<NodeProto>> _consumers = new(StringComparer.Ordinal);
        private readonly HashSet<string> _consumed = new(StringComparer.Ordinal);
        private readonly HashSet<NodeProto> _visited = [];
        private readonly List<SafetensorsTensor> _tensors = [];

        public Walker(ModelProto model, string source)
        {
            (_model, _source) = (model, source);
            foreach (var t in model.Graph.Initializer)
                if (!_initializers.TryAdd(t.Name, t)) throw new InvalidDataException($"{source}: initializer '{t.Name}' appears twice.");
            foreach (var n in model.Graph.Node)
            {
                if (n.Domain.Length > 0 && n.Domain != "ai.onnx")
                    throw Fail(n, $"is in operator domain '{n.Domain}'; only standard ONNX operators are read");
                foreach (string i in n.Input)
                {
                    if (i.Length == 0 || _initializers.ContainsKey(i)) continue;
                    if (!_consumers.TryGetValue(i, out var list)) _consumers[i] = list = [];
                    list.Add(n);
                }
            }
        }

        private InvalidDataException Fail(NodeProto n, string message) =>
            new($"{_source}: {Describe(n)} {message}; it cannot be read as a ResNet of basic blocks.");

        public ImportedResNet Run()
        {
            var g = _model.Graph;
            var inputs = g.Input.Where(i => !_initializers.ContainsKey(i.Name)).ToList();
            if (inputs.Count != 1) throw new InvalidDataException($"{_source}: the graph has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => i.Name))}), not one image input.");
            var input = inputs[0];
            var dims = input.Type?.TensorType?.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue : -1).ToArray() ?? [];
            if (dims.Length != 4 || dims[1] <= 0 || dims[2] <= 0 || dims[3] <= 0)
                throw new InvalidDataException($"{_source}: input '{input.Name}' has shape [{string.Join(", ", dims)}], not [N, C, H, W] with known C, H and W.");
            var shape = (C: (int)dims[1], H: (int)dims[2], W: (int)dims[3]);

            // Stem: conv1, bn1, relu, maxpool.
            string x = input.Name;
            var conv = Only(x, "Conv", "the stem");
            x = Conv(conv, "conv1.weight", ref shape, kernel: 7, stride: 2);
            x = BatchNorm(Only(x, "BatchNormalization", "the stem"), "bn1", shape.C);
            x = Relu(Only(x, "Relu", "the stem"));
            x = MaxPool(Only(x, "MaxPool", "the stem"), ref shape);
            int stemWidth = shape.C;

            var blocks = new List<int>();
            var widths = new List<int>();
            while (true)
            {
                var next = Consumers(x);
                if (next.Count == 1 && next[0].OpType is "AveragePool" or "GlobalAveragePool")
                {
                    string output = Pool(next[0], shape);
                    return Finish(input.Name, ((int)dims[1], (int)dims[2], (int)dims[3]), output, stemWidth, blocks, widths);
                }
                x = Block(x, next, blocks, widths, ref shape);
            }
        }

        private ImportedResNet Finish(string inputName, (int C, int H, int W) input, string output, int stemWidth, List<int> blocks, List<int> widths)
        {
            var g = _model.Graph;
            if (g.Output.Count != 1 || g.Output[0].Name != output)
                throw new InvalidDataException($"{_source}: the graph's outputs are [{string.Join(", ", g.Output.Select(o => o.Name))}], not only the pooled features '{output}'.");
            var unvisited = g.Node.FirstOrDefault(n => !_visited.Contains(n));
            if (unvisited is not null) throw Fail(unvisited, "is not part of the stem, a residual block or the final pooling");
            var unused = _initializers.Keys.FirstOrDefault(k => !_consumed.Contains(k));
            if (unused is not null) throw new InvalidDataException($"{_source}: initializer '{unused}' is not consumed by any mapped node.");
            if (blocks.Count == 0) throw new InvalidDataException($"{_source}: the graph has no residual block after its stem.");
            var spec = new ResNetSpec(BlockKind.Basic, blocks, widths, StemKind.ImageNet, stemWidth, ShortcutKind.Projection).Validate();
            string producer = $"{_model.ProducerName} {_model.ProducerVersion}".Trim();
            return new ImportedResNet(spec, _tensors, inputName, input.C, input.H, input.W, output, producer);
        }

        // ---- graph walking -----------------------------------------------------------------------------------------

        private List<NodeProto> Consumers(string value) => _consumers.TryGetValue(value, out var list) ? list : [];

        /// <summary>The single node reading <paramref name="value"/>, which must be of <paramref name="op"/>.</summary>
        private NodeProto Only(string value, string op, string where)
        {
            var next = Consumers(value);
            if (next.Count == 1 && next[0].OpType == op) return next[0];
            string found = next.Count == 0 ? "no node" : string.Join(", ", next.Select(Describe));
            throw new InvalidDataException($"{_source}: in {where}, value '{value}' should feed one {op} node but feeds {found}; it cannot be read as a ResNet of basic blocks.");
        }

        private NodeProto Visit(NodeProto n, int inputs, int outputs = 1)
        {
            if (!_visited.Add(n)) throw Fail(n, "is reached twice");
            if (n.Input.Count != inputs) throw Fail(n, $"has {n.Input.Count} inputs, not {inputs}");
            if (n.Output.Count != outputs) throw Fail(n, $"has {n.Output.Count} outputs, not {outputs}");
            return n;
        }

        /// <summary>One residual block from its input value; records its stage in <paramref name="blocks"/>/<paramref name="widths"/>.</summary>
        private string Block(string x, List<NodeProto> next, List<int> blocks, List<int> widths, ref (int C, int H, int W) shape)
        {
            var convs = next.Where(n => n.OpType == "Conv").ToList();
            var adds = next.Where(n => n.OpType == "Add").ToList();
            bool projection = convs.Count == 2 && adds.Count == 0, identity = convs.Count == 1 && adds.Count == 1;
            if (next.Count != 2 || !(projection || identity))
            {
                string found = next.Count == 0 ? "no node" : string.Join(", ", next.Select(Describe));
                throw new InvalidDataException($"{_source}: value '{x}' should feed a residual block (two Conv nodes, or a Conv and an Add) or the final pooling, but feeds {found}; it cannot be read as a ResNet of basic blocks.");
            }
            // The main branch starts with the 3x3 conv, the projection is the 1x1 one.
            var main = convs.FirstOrDefault(c => Ints(c, "kernel_shape") is [3, 3]) ?? throw Fail(convs[0], "should be a block's first 3x3 convolution");
            var side = projection ? convs.Single(c => c != main) : null;
            int stride = Ints(main, "strides") is [var s, _] ? (int)s : 1;
            int stage = blocks.Count - 1, inChannels = shape.C;
            int width = (int)Dims(main, 1)[0];
            bool newStage = blocks.Count == 0 || stride != 1;
            if (newStage)
            {
                if (blocks.Count == 0 && stride != 1) throw Fail(main, $"has stride {stride}, but the first stage keeps the stem's resolution");
                blocks.Add(0);
                widths.Add(width);
                stage++;
            }
            else if (width != widths[stage]) throw Fail(main, $"has {width} output channels inside a stage of width {widths[stage]}");
            string prefix = $"layer{stage + 1}.{blocks[stage]}";
            blocks[stage]++;
            bool needsProjection = stride != 1 || inChannels != width;
            if (needsProjection != projection)
                throw Fail(main, needsProjection
                    ? $"starts a block from {inChannels} to {width} channels at stride {stride} whose shortcut is the identity; it needs a 1x1 projection"
                    : "starts a block whose input and output shapes agree but whose shortcut is a projection; torchvision's layout has the identity there");

            var start = shape;
            string h = Conv(main, $"{prefix}.conv1.weight", ref shape, kernel: 3, stride: stride);
            h = BatchNorm(Only(h, "BatchNormalization", prefix), $"{prefix}.bn1", shape.C);
            h = Relu(Only(h, "Relu", prefix));
            h = Conv(Only(h, "Conv", prefix), $"{prefix}.conv2.weight", ref shape, kernel: 3, stride: 1);
            h = BatchNorm(Only(h, "BatchNormalization", prefix), $"{prefix}.bn2", shape.C);
            var add = Only(h, "Add", prefix);

            string shortcut = x;
            if (side is not null)
            {
                var sideShape = start;
                string p = Conv(side, $"{prefix}.downsample.0.weight", ref sideShape, kernel: 1, stride: stride);
                shortcut = BatchNorm(Only(p, "BatchNormalization", prefix + " shortcut"), $"{prefix}.downsample.1", sideShape.C);
                if (sideShape != shape) throw Fail(side, $"gives [{sideShape.C}, {sideShape.H}, {sideShape.W}] where the block's branch gives [{shape.C}, {shape.H}, {shape.W}]");
            }
            else if (!adds.Contains(add)) throw Fail(add, $"should add the block's input '{x}'");
            Visit(add, 2);
            if (!add.Input.Contains(h) || !add.Input.Contains(shortcut) || h == shortcut)
                throw Fail(add, $"adds [{string.Join(", ", add.Input)}], not the branch '{h}' and the shortcut '{shortcut}'");
            return Relu(Only(add.Output[0], "Relu", prefix));
        }

        private string Conv(NodeProto n, string name, ref (int C, int H, int W) shape, int kernel, int stride)
        {
            Visit(n, 2);
            if (Ints(n, "kernel_shape") is { } ks && !ks.SequenceEqual([kernel, kernel])) throw Fail(n, $"has kernel [{string.Join(", ", ks)}] where {kernel}x{kernel} is needed");
            if (Int(n, "group", 1) != 1) throw Fail(n, $"is a grouped convolution (group {Int(n, "group", 1)})");
            if (Ints(n, "dilations") is { } d && d.Any(v => v != 1)) throw Fail(n, $"has dilations [{string.Join(", ", d)}]");
            var strides = Ints(n, "strides") ?? [1, 1];
            if (!strides.SequenceEqual([stride, stride])) throw Fail(n, $"has strides [{string.Join(", ", strides)}] where {stride} is needed");
            var w = Weight(n, 1, name);
            if (w.Dims.Count != 4 || w.Dims[1] != shape.C || w.Dims[2] != kernel || w.Dims[3] != kernel)
                throw Fail(n, $"has weight '{w.Name}' of dims [{string.Join(", ", w.Dims)}] where [O, {shape.C}, {kernel}, {kernel}] is needed");
            var (h, wd) = (Window(n, shape.H, kernel, stride, 0), Window(n, shape.W, kernel, stride, 1));
            shape = ((int)w.Dims[0], h, wd);
            return n.Output[0];
        }

        private string MaxPool(NodeProto n, ref (int C, int H, int W) shape)
        {
            Visit(n, 1);
            if (Ints(n, "kernel_shape") is not [3, 3] || Ints(n, "strides") is not [2, 2]) throw Fail(n, "is not a 3x3 stride-2 max pool (torchvision's stem)");
            if (Int(n, "storage_order", 0) != 0 || Ints(n, "dilations") is { } d && d.Any(v => v != 1)) throw Fail(n, "has storage_order or dilations torchvision's max pool lacks");
            if (Int(n, "ceil_mode", 0) != 0) throw Fail(n, "uses ceil_mode");
            shape = (shape.C, Window(n, shape.H, 3, 2, 0), Window(n, shape.W, 3, 2, 1));
            return n.Output[0];
        }

        private string Pool(NodeProto n, (int C, int H, int W) shape)
        {
            Visit(n, 1);
            if (n.OpType == "AveragePool")
            {
                // An average pool over the whole declared map is the global pool our network has at any input size.
                if (Ints(n, "kernel_shape") is not { } k || k.Count != 2 || k[0] != shape.H || k[1] != shape.W)
                    throw Fail(n, $"pools [{string.Join(", ", Ints(n, "kernel_shape") ?? [])}], not the whole {shape.H}x{shape.W} map");
                if (Ints(n, "pads") is { } p && p.Any(v => v != 0)) throw Fail(n, "pads its input");
            }
            return n.Output[0];
        }

        private string Relu(NodeProto n) => Visit(n, 1).Output[0];

        private string BatchNorm(NodeProto n, string prefix, int channels)
        {
            Visit(n, 5);
            float eps = Float(n, "epsilon", 1e-5f);
            if (Math.Abs(eps - Epsilon) > 1e-9f) throw Fail(n, $"has epsilon {eps}, but our BatchNorm2d uses {Epsilon}");
            if (Int(n, "spatial", 1) != 1) throw Fail(n, "normalizes per activation (spatial = 0), not per channel");
            string[] names = ["weight", "bias", "running_mean", "running_var"];
            for (int i = 0; i < 4; i++)
            {
                var t = Weight(n, i + 1, $"{prefix}.{names[i]}");
                if (t.Dims.Count != 1 || t.Dims[0] != channels)
                    throw Fail(n, $"has {names[i]} '{t.Name}' of dims [{string.Join(", ", t.Dims)}] where [{channels}] is needed");
            }
            if (_tensors[^1].ToFloats().Any(v => v < 0)) throw Fail(n, "has a negative running variance");
            _tensors.Add(SafetensorsTensor.FromInt64($"{prefix}.num_batches_tracked", [0L]));
            return n.Output[0];
        }

        /// <summary>Consumes input <paramref name="index"/> of <paramref name="n"/>, an initializer, as state-dict tensor <paramref name="name"/>.</summary>
        private TensorProto Weight(NodeProto n, int index, string name)
        {
            string key = n.Input[index];
            if (!_initializers.TryGetValue(key, out var t)) throw Fail(n, $"takes input {index} ('{key}') from another node, not from a stored weight");
            if (!_consumed.Add(key)) throw Fail(n, $"shares weight '{key}' with another node");
            _tensors.Add(SafetensorsTensor.FromFloats(name, Floats(t, $"{_source}: {Describe(n)}"), [.. t.Dims]));
            return t;
        }

        /// <summary>
        /// The output size along one axis. torchvision pads k/2 on both sides; CNTK exports its "same" padding for stride 2
        /// as one less at the end ([1, 1, 0, 0] for a 3x3). Where both give the same output count (every even size), the
        /// windows read the same values, so the graph is the torchvision layer; elsewhere it is refused.
        /// </summary>
        private int Window(NodeProto n, int size, int kernel, int stride, int axis)
        {
            if (Str(n, "auto_pad") is { } ap && ap != "NOTSET") throw Fail(n, $"uses auto_pad {ap}");
            var pads = Ints(n, "pads") ?? [0, 0, 0, 0];
            if (pads.Count != 4) throw Fail(n, $"has pads [{string.Join(", ", pads)}]");
            long begin = pads[axis], end = pads[axis + 2], half = kernel / 2;
            int ours = (int)((size + 2 * half - kernel) / stride + 1);
            long theirs = (size + begin + end - kernel) / stride + 1;
            if (begin != half || (end != half && end != half - 1) || theirs != ours)
                throw Fail(n, $"pads [{string.Join(", ", pads)}], which differs from torchvision's {half} on each side at its {size}-pixel input");
            return ours;
        }

        // ---- attributes --------------------------------------------------------------------------------------------

        private static AttributeProto? Attribute(NodeProto n, string name) => n.Attribute.FirstOrDefault(a => a.Name == name);
        private static IReadOnlyList<long>? Ints(NodeProto n, string name) => Attribute(n, name)?.Ints;
        private static long Int(NodeProto n, string name, long fallback) => Attribute(n, name) is { } a ? a.I : fallback;
        private static float Float(NodeProto n, string name, float fallback) => Attribute(n, name) is { } a ? a.F : fallback;
        private static string? Str(NodeProto n, string name) => Attribute(n, name) is { } a ? a.S.ToStringUtf8() : null;

        private IReadOnlyList<long> Dims(NodeProto n, int input) =>
            _initializers.TryGetValue(n.Input.Count > input ? n.Input[input] : "", out var t) ? t.Dims : throw Fail(n, $"has no stored weight as input {input}");
    }
}
