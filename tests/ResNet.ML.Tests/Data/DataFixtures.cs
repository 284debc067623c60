using System.Buffers.Binary;
using System.IO.Compression;

namespace ResNet.ML.Tests.Data;

/// <summary>Small data files made in the test: IDX, CIFAR records, temporary folders.</summary>
internal static class DataFixtures
{
    public static byte[] IdxImages(int count, int height, int width, Func<int, int, byte> pixel, int? declaredCount = null)
    {
        var bytes = new byte[16 + count * height * width];
        BinaryPrimitives.WriteInt32BigEndian(bytes, 0x00000803);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), declaredCount ?? count);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), height);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), width);
        for (int n = 0; n < count; n++)
            for (int p = 0; p < height * width; p++)
                bytes[16 + n * height * width + p] = pixel(n, p);
        return bytes;
    }

    public static byte[] IdxLabels(params byte[] labels)
    {
        var bytes = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, 0x00000801);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), labels.Length);
        labels.CopyTo(bytes, 8);
        return bytes;
    }

    public static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    /// <summary>CIFAR records: label byte(s) then 3072 bytes whose value is (image + channel*7 + pixel) % 256.</summary>
    public static byte[] CifarRecords(int[][] labels)
    {
        int labelBytes = labels[0].Length;
        int record = labelBytes + 3072;
        var bytes = new byte[labels.Length * record];
        for (int n = 0; n < labels.Length; n++)
        {
            for (int k = 0; k < labelBytes; k++) bytes[n * record + k] = (byte)labels[n][k];
            for (int p = 0; p < 3072; p++) bytes[n * record + labelBytes + p] = CifarPixel(n, p);
        }
        return bytes;
    }

    public static byte CifarPixel(int image, int p) => (byte)((image * 31 + p * 7) % 256);

    public static string TempDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnetml-data-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
