using System.Runtime.InteropServices;
using ResNet.ML.Layers;

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

    /// <summary>
    /// Writes the state dict of <paramref name="network"/> to <paramref name="output"/>. The metadata gets
    /// <c>format=pt</c>, <c>architecture</c>, <c>input_channels</c> and <c>num_classes</c> unless
    /// <paramref name="metadata"/> sets them.
    /// </summary>
    public static void Save(Network network, Stream output, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(output);
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
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Save(network, stream, metadata);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>
    /// Loads every tensor of the network's state dict from <paramref name="input"/>. Fails with
    /// <see cref="InvalidDataException"/> naming the tensor when one is missing, extra, of the wrong shape or dtype;
    /// then nothing is loaded. Returns the file's metadata.
    /// </summary>
    /// <param name="network">The network to fill (built for the file's architecture, channels and classes).</param>
    /// <param name="input">A safetensors stream.</param>
    /// <param name="source">Names the stream in messages (a file path, say).</param>
    public static IReadOnlyDictionary<string, string> Load(Network network, Stream input, string source = "the stream") =>
        LoadCore(network, input, source, skipHead: false);

    /// <summary>Loads from a file (see <see cref="Load(Network, Stream, string)"/>).</summary>
    public static IReadOnlyDictionary<string, string> Load(Network network, string path)
    {
        using var stream = OpenRead(path);
        return LoadCore(network, stream, path, skipHead: false);
    }

    /// <summary>
    /// Transfer learning: loads everything but the head (the network's last layer, <c>fc</c>), whose tensors in the file
    /// are ignored whatever their shape, so a checkpoint trained for 1000 classes (e.g. torchvision's ImageNet weights
    /// converted to safetensors) fills a network built for another class count. The network's own head keeps its values
    /// (initialize it as for a new model). All other tensors must match exactly, as for <see cref="Load(Network, Stream, string)"/>.
    /// </summary>
    public static IReadOnlyDictionary<string, string> LoadBackbone(Network network, Stream input, string source = "the stream") =>
        LoadCore(network, input, source, skipHead: true);

    /// <summary>Loads a backbone from a file (see <see cref="LoadBackbone(Network, Stream, string)"/>).</summary>
    public static IReadOnlyDictionary<string, string> LoadBackbone(Network network, string path)
    {
        using var stream = OpenRead(path);
        return LoadCore(network, stream, path, skipHead: true);
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

    private static IReadOnlyDictionary<string, string> LoadCore(Network network, Stream input, string source, bool skipHead)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(input);
        var (tensors, metadata) = Safetensors.Read(input, source);
        string headPrefix = network.Layers[^1].Name + ".";
        bool IsHead(string name) => skipHead && name.StartsWith(headPrefix, StringComparison.Ordinal);

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
            if (t.Dtype != wantDtype)
                errors.Add($"tensor '{e.Name}' is {t.Dtype} where {wantDtype} is needed");
            else if (!t.Shape.SequenceEqual(wantShape))
                errors.Add($"tensor '{e.Name}' has shape {t.ShapeText} where [{string.Join(", ", wantShape)}] is needed");
        }
        foreach (var t in tensors)
            if (!expected.Contains(t.Name) && !IsHead(t.Name))
                errors.Add($"tensor '{t.Name}' is not part of this network");
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
            else MemoryMarshal.Cast<byte, float>(t.Bytes).CopyTo(e.Value!.Data);
        }
        return metadata;
    }
}
