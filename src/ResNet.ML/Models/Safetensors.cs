using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ResNet.ML.Models;

/// <summary>One tensor of a safetensors file: dtype name as the format spells it (F32, I64, ...), dims, raw little-endian bytes.</summary>
public sealed record SafetensorsTensor(string Name, string Dtype, long[] Shape, byte[] Bytes)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    public static SafetensorsTensor FromFloats(string name, ReadOnlySpan<float> values, params long[] shape)
    {
        if (values.Length != shape.Aggregate(1L, (a, d) => a * d))
            throw new ArgumentException($"Tensor '{name}': {values.Length} values do not fill shape [{string.Join(", ", shape)}].");
        return new(name, "F32", shape, MemoryMarshal.AsBytes(values).ToArray());
    }

    public static SafetensorsTensor FromInt64(string name, ReadOnlySpan<long> values, params long[] shape) =>
        new(name, "I64", shape, MemoryMarshal.AsBytes(values).ToArray());

    /// <summary>The values as float32; throws naming the tensor when its dtype is not F32.</summary>
    public float[] ToFloats()
    {
        if (Dtype != "F32") throw new InvalidDataException($"Tensor '{Name}' is {Dtype}, not F32.");
        return MemoryMarshal.Cast<byte, float>(Bytes).ToArray();
    }

    public long[] ToInt64()
    {
        if (Dtype != "I64") throw new InvalidDataException($"Tensor '{Name}' is {Dtype}, not I64.");
        return MemoryMarshal.Cast<byte, long>(Bytes).ToArray();
    }

    public string ShapeText => $"[{string.Join(", ", Shape)}]";
}

/// <summary>
/// Reads and writes the safetensors format (an 8-byte little-endian header length, a JSON header of
/// name → {dtype, shape, data_offsets} plus optional string <c>__metadata__</c>, then the raw data), the format
/// PyTorch, Hugging Face and torchvision users exchange weights in. Independent of files: streams in and out.
/// </summary>
public static class Safetensors
{
    private static readonly Dictionary<string, int> DtypeSizes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1,
        ["U64"] = 8, ["U32"] = 4, ["U16"] = 2, ["U8"] = 1, ["BOOL"] = 1,
    };

    public static void Write(Stream output, IEnumerable<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var t in list)
        {
            if (!DtypeSizes.TryGetValue(t.Dtype, out int size)) throw new ArgumentException($"Tensor '{t.Name}' has an unknown dtype '{t.Dtype}'.");
            if (t.Bytes.LongLength != t.ElementCount * size)
                throw new ArgumentException($"Tensor '{t.Name}' has {t.Bytes.LongLength} bytes, but {t.Dtype} {t.ShapeText} needs {t.ElementCount * size}.");
            if (header.ContainsKey(t.Name)) throw new ArgumentException($"Tensor '{t.Name}' is given twice.");
            header[t.Name] = new { dtype = t.Dtype, shape = t.Shape, data_offsets = new[] { offset, offset + t.Bytes.LongLength } };
            offset += t.Bytes.LongLength;
        }
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(header);
        int padded = (json.Length + 7) / 8 * 8;   // the data starts 8-byte aligned
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
        output.Write(length);
        output.Write(json);
        for (int i = json.Length; i < padded; i++) output.WriteByte((byte)' ');
        foreach (var t in list) output.Write(t.Bytes);
    }

    /// <summary>Reads a whole safetensors stream; <paramref name="source"/> names it in error messages (a file path, say).</summary>
    public static (IReadOnlyList<SafetensorsTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(Stream input, string source = "the stream")
    {
        Span<byte> lengthBytes = stackalloc byte[8];
        if (!TryReadExactly(input, lengthBytes))
            throw new InvalidDataException($"{source} is not a safetensors file: it is shorter than the 8-byte header length.");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength == 0 || headerLength > 100_000_000)
            throw new InvalidDataException($"{source} is not a safetensors file: its header length {headerLength} is not plausible.");
        var headerBytes = new byte[headerLength];
        if (!TryReadExactly(input, headerBytes))
            throw new InvalidDataException($"{source} is truncated: its header is cut short.");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes); }
        catch (JsonException e) { throw new InvalidDataException($"{source} is not a safetensors file: its header is not JSON ({e.Message})."); }

        var metadata = new Dictionary<string, string>();
        var entries = new List<(string Name, string Dtype, long[] Shape, long Begin, long End)>();
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{source}: the safetensors header is not a JSON object.");
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    foreach (var m in prop.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                    continue;
                }
                try
                {
                    string dtype = prop.Value.GetProperty("dtype").GetString() ?? "";
                    long[] shape = prop.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                    long[] offsets = prop.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                    if (!DtypeSizes.TryGetValue(dtype, out int size)) throw new InvalidDataException($"unknown dtype '{dtype}'");
                    if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0]) throw new InvalidDataException("bad data_offsets");
                    long count = shape.Aggregate(1L, (a, d) => a * d);
                    if (shape.Any(d => d < 0) || (offsets[1] - offsets[0]) != count * size)
                        throw new InvalidDataException($"{offsets[1] - offsets[0]} bytes do not hold {dtype} [{string.Join(", ", shape)}]");
                    entries.Add((prop.Name, dtype, shape, offsets[0], offsets[1]));
                }
                catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or InvalidDataException)
                {
                    throw new InvalidDataException($"{source}: the header entry of tensor '{prop.Name}' is malformed ({e.Message}).");
                }
            }
        }

        long dataLength = entries.Count == 0 ? 0 : entries.Max(e => e.End);
        var data = new byte[dataLength];
        if (!TryReadExactly(input, data))
            throw new InvalidDataException($"{source} is truncated: the header promises {dataLength} bytes of tensor data.");
        var tensors = entries.OrderBy(e => e.Begin)
            .Select(e => new SafetensorsTensor(e.Name, e.Dtype, e.Shape, data.AsSpan((int)e.Begin, (int)(e.End - e.Begin)).ToArray()))
            .ToList();
        return (tensors, metadata);
    }

    private static bool TryReadExactly(Stream s, Span<byte> buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = s.Read(buffer[read..]);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }
}
