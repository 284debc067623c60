using System.Buffers.Binary;
using System.IO.Compression;

namespace ResNet.ML.Tests.Data;

/// <summary>A minimal PNG writer for tests: gray (1), RGB (3) or RGBA (4) channels, 8 or 16 bits, filter 0, one IDAT, optionally Adam7-interlaced.</summary>
internal static class TestPng
{
    /// <summary>16-bit samples (HWC), written big-endian as PNG wants.</summary>
    public static byte[] Encode16(ushort[] hwc, int width, int height, int channels)
    {
        var bytes = new byte[hwc.Length * 2];
        for (int i = 0; i < hwc.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2 * i), hwc[i]);
        return Encode(bytes, width, height, channels, bitDepth: 16);
    }

    public static byte[] Encode(byte[] hwc, int width, int height, int channels, int bitDepth = 8, bool interlaced = false)
    {
        int rowBytes = width * channels * bitDepth / 8;
        using var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = (byte)bitDepth;
        ihdr[9] = channels switch { 1 => 0, 3 => 2, 4 => 6, _ => throw new ArgumentOutOfRangeException(nameof(channels)) };
        ihdr[12] = (byte)(interlaced ? 1 : 0);
        Chunk(ms, "IHDR", ihdr);
        using var raw = new MemoryStream();
        using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
            if (!interlaced)
                for (int y = 0; y < height; y++)
                {
                    z.WriteByte(0);
                    z.Write(hwc, y * rowBytes, rowBytes);
                }
            else
            {
                int pixelBytes = channels * bitDepth / 8;
                // Adam7: seven sub-images of every (dx, dy)-th pixel from (x0, y0); an empty pass writes nothing.
                foreach (var (x0, y0, dx, dy) in new[] { (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2) })
                    if (x0 < width)
                        for (int y = y0; y < height; y += dy)
                        {
                            z.WriteByte(0);
                            for (int x = x0; x < width; x += dx) z.Write(hwc, y * rowBytes + x * pixelBytes, pixelBytes);
                        }
            }
        Chunk(ms, "IDAT", raw.ToArray());
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        byte[] typeAndData = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
        s.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(len, Crc32(typeAndData));
        s.Write(len);
    }

    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}
