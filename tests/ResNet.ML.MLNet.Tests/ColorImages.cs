using Microsoft.ML.Data;
using ResNet.ML.Tests.Data;

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

    /// <summary>8-bit RGB PNG bytes of a CHW image (0-255 values), through the core tests' PNG writer.</summary>
    public static byte[] Png(float[] chw, int height, int width)
    {
        var hwc = new byte[3 * height * width];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                    hwc[(y * width + x) * 3 + c] = (byte)chw[c * height * width + y * width + x];
        return TestPng.Encode(hwc, width, height, channels: 3);
    }
}
