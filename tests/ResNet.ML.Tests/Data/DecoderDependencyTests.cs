using ResNet.ML.Data;

namespace ResNet.ML.Tests.Data;

/// <summary>
/// Decoding needs nothing from the operating system's packages: after PNGs and JPEGs are decoded, the process has
/// loaded no system image library (any PNG or JPEG codec library), only SkiaSharp's self-contained native library.
/// A fresh machine with only the .NET SDK decodes the same way.
/// </summary>
[TestClass]
public sealed class DecoderDependencyTests
{
    [TestMethod]
    public void Decoding_loads_no_system_image_library()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("reads /proc/self/maps, which only Linux has");
        foreach (string file in new[] { "photo.jpg", "progressive.jpg", "palette.png", "pattern.png" })
            Assert.IsGreaterThan(0, ImageDecoder.Decode(ImageDecoderTests.FixtureBytes(file), 3, file).Pixels.Length);
        var libraries = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6).Select(f => Path.GetFileName(f[5])).Distinct().ToList();
        Assert.IsTrue(libraries.Any(l => l.StartsWith("libSkiaSharp", StringComparison.Ordinal)), "SkiaSharp decoded the images: " + string.Join(", ", libraries.Where(l => l.EndsWith(".so", StringComparison.Ordinal) || l.Contains(".so.", StringComparison.Ordinal))));
        // SkiaSharp carries its codecs inside libSkiaSharp; any other library named for a PNG or JPEG codec is a system one.
        var codecs = libraries.Where(l => !l.StartsWith("libSkiaSharp", StringComparison.Ordinal)
            && (l.Contains("png", StringComparison.OrdinalIgnoreCase) || l.Contains("jpeg", StringComparison.OrdinalIgnoreCase))).ToList();
        Assert.IsEmpty(codecs, $"the process loaded {string.Join(", ", codecs)}");
    }
}
