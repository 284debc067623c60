using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.ML.Data;

namespace ResNet.ML.MLNet.Tests;

/// <summary>
/// A learnable synthetic image set: class "red", "green" or "blue" names the bright channel, the other two are dark,
/// and every pixel carries noise (the ranges tools/fixtures/make_mlnet_fixtures.py draws the PIL fixtures with).
/// </summary>
internal static class ColorImages
{
    public static readonly string[] Classes = ["red", "green", "blue"];

    public sealed class PixelRow
    {
        public string Label = "";

        [VectorType(3, 12, 12)]
        public float[] Pixels = [];
    }

    public sealed class BytesRow
    {
        public string Label = "";
        public byte[] Image = [];
    }

    /// <summary>An image as planar CHW floats, 0-255.</summary>
    public static float[] Chw(Random rng, int cls, int height, int width)
    {
        int bright = rng.Next(150, 231);
        int[] dark = [rng.Next(20, 91), rng.Next(20, 91), rng.Next(20, 91)];
        var pixels = new float[3 * height * width];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < height * width; i++)
                pixels[c * height * width + i] = Math.Clamp((c == cls ? bright : dark[c]) + rng.Next(-25, 26), 0, 255);
        return pixels;
    }

    public static List<PixelRow> PixelRows(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(i => new PixelRow { Label = Classes[i % 3], Pixels = Chw(rng, i % 3, 12, 12) }).ToList();
    }

    public static List<BytesRow> PngRows(int count, int seed, int height, int width)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count)
            .Select(i => new BytesRow { Label = Classes[i % 3], Image = Png(Chw(rng, i % 3, height, width), height, width) })
            .ToList();
    }

    /// <summary>The PIL-written PNG and JPEG fixtures, labelled by their file names.</summary>
    public static List<BytesRow> FixtureRows(string extension) =>
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Fixtures"), "*" + extension)
            .OrderBy(f => f, StringComparer.Ordinal)
            .Select(f => new BytesRow { Label = Path.GetFileName(f).Split('_')[0], Image = File.ReadAllBytes(f) })
            .ToList();

    /// <summary>A minimal 8-bit RGB PNG encoder (one IDAT, no filtering), enough to feed the decoder encoded bytes.</summary>
    public static byte[] Png(float[] chw, int height, int width)
    {
        var raw = new byte[height * (1 + 3 * width)];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                    raw[y * (1 + 3 * width) + 1 + 3 * x + c] = (byte)chw[c * height * width + y * width + x];
        using var zlib = new MemoryStream();
        using (var z = new ZLibStream(zlib, CompressionLevel.Optimal, leaveOpen: true)) z.Write(raw);
        var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 2;
        Chunk(png, "IHDR", ihdr);
        Chunk(png, "IDAT", zlib.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> buf = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(buf, data.Length);
        s.Write(buf);
        var typed = new byte[4 + data.Length];
        for (int i = 0; i < 4; i++) typed[i] = (byte)type[i];
        data.CopyTo(typed, 4);
        s.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(buf, Crc32(typed));
        s.Write(buf);
    }

    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
