using System.Runtime.InteropServices;
using ResNet.ML.Layers;
using ResNet.ML.Tensors;

namespace ResNet.ML.Models;

/// <summary>
/// A network's weights as a safetensors state dict in PyTorch's layout: torchvision's names (<c>conv1.weight</c>,
/// <c>layer1.0.bn1.running_mean</c>, <c>fc.bias</c>, ...), NCHW float32 with PyTorch's dims (a conv weight
/// [out, in, k, k], a linear weight [out, in], BN vectors [C]) and each BN's <c>num_batches_tracked</c> as an int64
/// scalar (shape []). Such a file loads into torchvision with <c>load_state_dict(strict=True)</c>, and a torchvision
/// state dict saved as safetensors loads here. Loading checks every tensor before copying any, so a bad file leaves the
/// network as it was.
/// </summary>
public static class ModelWeights
{
    /// <summary>Metadata keys written by <see cref="Save(Network, Stream, IReadOnlyDictionary{string, string}?)"/> unless the caller gives them.</summary>
    public const string ArchitectureKey = "architecture", InputChannelsKey = "input_channels", NumClassesKey = "num_classes", FormatKey = "format";

    /// <summary>Optional metadata keys for the input size (give them to <c>Save</c>; <see cref="LoadNetwork(Stream, string, int?, int?)"/> reads them).</summary>
    public const string InputHeightKey = "input_height", InputWidthKey = "input_width";

    /// <summary>
    /// Writes the state dict of <paramref name="network"/> to <paramref name="output"/>. The metadata gets
    /// <c>format=pt</c>, <c>architecture</c>, <c>input_channels</c> and <c>num_classes</c> unless
    /// <paramref name="metadata"/> sets them.
    /// </summary>
    public static void Save(Network network, Stream output, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(output);
        FiniteWeights.ThrowIfNotFinite(network, "the weights");
        var meta = new Dictionary<string, string>
        {
            [FormatKey] = "pt",
            [ArchitectureKey] = network.Architecture,
            [InputChannelsKey] = network.InputChannels.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [NumClassesKey] = network.NumClasses.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        Safetensors.Write(output, network.State.Select(ToTensor), meta);
    }

    /// <summary>Writes to <paramref name="path"/> atomically: a temporary file in the same folder, then a rename.</summary>
    public static void Save(Network network, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FiniteWeights.ThrowIfNotFinite(network, $"'{Path.GetFullPath(path)}'");
        Training.AtomicFile.Write(path, stream => Save(network, stream, metadata));
    }

    /// <summary>
    /// Loads every tensor of the network's state dict from <paramref name="input"/>. Fails with
    /// <see cref="InvalidDataException"/> naming the tensor when one is missing, extra, of the wrong shape or dtype;
    /// then nothing is loaded. Returns the file's metadata.
    /// </summary>
    /// <param name="network">The network to fill (built for the file's architecture, channels and classes).</param>
    /// <param name="input">A safetensors stream.</param>
    /// <param name="source">Names the stream in messages (a file path, say).</param>
    public static IReadOnlyDictionary<string, string> Load(Network network, Stream input, string source = "the stream")
    {
        ArgumentNullException.ThrowIfNull(input);
        var (tensors, metadata) = Safetensors.Read(input, source);
        Apply(network, tensors, source, skipHead: false, adaptInputChannels: false);
        return metadata;
    }

    /// <summary>Loads from a file (see <see cref="Load(Network, Stream, string)"/>).</summary>
    public static IReadOnlyDictionary<string, string> Load(Network network, string path)
    {
        using var stream = OpenRead(path);
        return Load(network, stream, path);
    }

    /// <summary>
    /// Transfer learning: loads everything but the head (the network's last layer, <c>fc</c>), whose tensors in the file
    /// are ignored whatever their shape, so a checkpoint trained for 1000 classes (e.g. torchvision's ImageNet weights
    /// converted to safetensors) fills a network built for another class count. The network's own head keeps its values
    /// (initialize it as for a new model). All other tensors must match exactly, as for <see cref="Load(Network, Stream, string)"/>,
    /// except the stem's weight when <paramref name="adaptInputChannels"/> is set.
    /// </summary>
    /// <param name="network">The network to fill.</param>
    /// <param name="input">A safetensors stream.</param>
    /// <param name="source">Names the stream in messages.</param>
    /// <param name="adaptInputChannels">
    /// Lets RGB weights serve a network with another input channel count (grayscale, say): the first convolution's
    /// weight [O, Cf, k, k] becomes [O, Cn, k, k] by summing over the file's channels when Cn = 1, else by repeating them
    /// cyclically and scaling by Cf / Cn (so a constant image gives the same response either way).
    /// </param>
    public static IReadOnlyDictionary<string, string> LoadBackbone(Network network, Stream input, string source = "the stream", bool adaptInputChannels = false)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (tensors, metadata) = Safetensors.Read(input, source);
        Apply(network, tensors, source, skipHead: true, adaptInputChannels);
        return metadata;
    }

    /// <summary>Loads a backbone from a file (see <see cref="LoadBackbone(Network, Stream, string, bool)"/>).</summary>
    public static IReadOnlyDictionary<string, string> LoadBackbone(Network network, string path, bool adaptInputChannels = false)
    {
        using var stream = OpenRead(path);
        return LoadBackbone(network, stream, path, adaptInputChannels);
    }

    /// <summary>Loads a backbone from tensors already in memory (an imported model, say); see <see cref="LoadBackbone(Network, Stream, string, bool)"/>.</summary>
    internal static void LoadBackbone(Network network, IReadOnlyList<SafetensorsTensor> tensors, string source, bool adaptInputChannels) =>
        Apply(network, tensors, source, skipHead: true, adaptInputChannels);

    /// <summary>
    /// Builds the network a ResNet.ML weights file describes (its <c>architecture</c>, <c>input_channels</c> and
    /// <c>num_classes</c> metadata, as <see cref="Save(Network, Stream, IReadOnlyDictionary{string, string}?)"/> writes
    /// them) and loads it. The input size comes from <paramref name="inputHeight"/>/<paramref name="inputWidth"/>, else
    /// from <c>input_height</c>/<c>input_width</c> metadata (write them when saving a <c>simplecnn</c>, whose head
    /// depends on it), else 32x32 (a ResNet's weights do not depend on the input size).
    /// </summary>
    public static (Network Network, IReadOnlyDictionary<string, string> Metadata) LoadNetwork(Stream input, string source = "the stream",
        int? inputHeight = null, int? inputWidth = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (tensors, metadata) = Safetensors.Read(input, source);
        string Need(string key) => metadata.TryGetValue(key, out var v) && v.Length > 0 ? v
            : throw new InvalidDataException($"{source} has no '{key}' metadata: it was not written by ResNet.ML; build the network yourself and use Load.");
        int Int(string key, int? given, int fallback)
        {
            if (given is int g) return g;
            if (!metadata.TryGetValue(key, out var v)) return fallback;
            return int.TryParse(v, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n > 0
                ? n : throw new InvalidDataException($"{source}: metadata '{key}' is '{v}', not a positive whole number.");
        }
        string architecture = Need(ArchitectureKey);
        Need(InputChannelsKey);
        Need(NumClassesKey);
        int channels = Int(InputChannelsKey, null, 0), classes = Int(NumClassesKey, null, 0);
        var network = ModelFactory.Build(architecture, channels, classes, Int(InputHeightKey, inputHeight, 32), Int(InputWidthKey, inputWidth, 32));
        Apply(network, tensors, source, skipHead: false, adaptInputChannels: false);
        return (network, metadata);
    }

    /// <summary>Builds and loads the network a weights file describes (see <see cref="LoadNetwork(Stream, string, int?, int?)"/>).</summary>
    public static (Network Network, IReadOnlyDictionary<string, string> Metadata) LoadNetwork(string path, int? inputHeight = null, int? inputWidth = null)
    {
        using var stream = OpenRead(path);
        return LoadNetwork(stream, path, inputHeight, inputWidth);
    }

    /// <summary>The metadata of a weights file without loading it (e.g. to rebuild its architecture with <see cref="ModelFactory"/>).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(Stream input, string source = "the stream") =>
        Safetensors.Read(input, source).Metadata;

    private static FileStream OpenRead(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Weights file '{path}' does not exist.", path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    private static SafetensorsTensor ToTensor(StateEntry e) =>
        e.Counter
            ? SafetensorsTensor.FromInt64(e.Name, [e.GetCounter!()])
            : SafetensorsTensor.FromFloats(e.Name, e.Value!.Data, e.Dims.Select(d => (long)d).ToArray());

    private static void Apply(Network network, IReadOnlyList<SafetensorsTensor> tensors, string source, bool skipHead, bool adaptInputChannels)
    {
        ArgumentNullException.ThrowIfNull(network);
        string headPrefix = network.Layers[^1].Name + ".";
        bool IsHead(string name) => skipHead && name.StartsWith(headPrefix, StringComparison.Ordinal);
        string? stemWeight = adaptInputChannels && network.Layers[0] is Conv2d stem ? stem.Weight.Name : null;

        var byName = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        foreach (var t in tensors)
            if (!byName.TryAdd(t.Name, t)) throw new InvalidDataException($"{source}: tensor '{t.Name}' appears twice.");

        var entries = network.State.Where(e => !IsHead(e.Name)).ToList();
        var expected = entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var errors = new List<string>();
        foreach (var e in entries)
        {
            if (!byName.TryGetValue(e.Name, out var t))
            {
                errors.Add($"tensor '{e.Name}' is missing");
                continue;
            }
            string wantDtype = e.Counter ? "I64" : "F32";
            long[] wantShape = e.Dims.Select(d => (long)d).ToArray();
            bool adaptable = e.Name == stemWeight && t.Shape.Length == 4 && t.Shape[1] > 0 &&
                             t.Shape[0] == wantShape[0] && t.Shape[2] == wantShape[2] && t.Shape[3] == wantShape[3];
            if (t.Dtype != wantDtype)
                errors.Add($"tensor '{e.Name}' is {t.Dtype} where {wantDtype} is needed");
            else if (!t.Shape.SequenceEqual(wantShape) && !adaptable)
                errors.Add($"tensor '{e.Name}' has shape {t.ShapeText} where [{string.Join(", ", wantShape)}] is needed");
        }
        foreach (var t in tensors)
            if (!expected.Contains(t.Name) && !IsHead(t.Name))
                errors.Add($"tensor '{t.Name}' is not part of this network");
        if (errors.Count == 0) FiniteWeights.ThrowIfNotFinite(tensors.Where(t => expected.Contains(t.Name)), source);
        if (errors.Count > 0)
        {
            const int shown = 8;
            string more = errors.Count > shown ? $"; and {errors.Count - shown} more" : "";
            throw new InvalidDataException($"{source} does not fit {network.Architecture} ({network.InputChannels} input channels, {network.NumClasses} classes), nothing was loaded: " +
                string.Join("; ", errors.Take(shown)) + more + ".");
        }

        foreach (var e in entries)
        {
            var t = byName[e.Name];
            if (e.Counter) e.SetCounter!(MemoryMarshal.Cast<byte, long>(t.Bytes)[0]);
            else if (e.Name == stemWeight && t.Shape[1] != e.Dims[1]) AdaptChannels(MemoryMarshal.Cast<byte, float>(t.Bytes), (int)t.Shape[1], e.Value!);
            else MemoryMarshal.Cast<byte, float>(t.Bytes).CopyTo(e.Value!.Data);
        }
    }

    /// <summary>[O, Cf, k, k] to [O, Cn, k, k]: the sum over channels for Cn = 1, else channels repeated cyclically times Cf / Cn.</summary>
    private static void AdaptChannels(ReadOnlySpan<float> from, int fileChannels, Tensor to)
    {
        int o = to.N, cn = to.C, plane = to.H * to.W;
        var dst = to.Data;
        Array.Clear(dst);
        for (int oc = 0; oc < o; oc++)
        {
            if (cn == 1)
            {
                for (int c = 0; c < fileChannels; c++)
                    for (int i = 0; i < plane; i++) dst[oc * plane + i] += from[(oc * fileChannels + c) * plane + i];
            }
            else
            {
                float scale = (float)fileChannels / cn;
                for (int c = 0; c < cn; c++)
                    for (int i = 0; i < plane; i++)
                        dst[(oc * cn + c) * plane + i] = from[(oc * fileChannels + c % fileChannels) * plane + i] * scale;
            }
        }
    }
}
