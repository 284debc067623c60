using ResNet.ML.Data;

namespace ResNet.ML.Tests.Data;

[TestClass]
public class ImageDecoderTests
{
    internal static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "data", name);
    internal static byte[] FixtureBytes(string name) => File.ReadAllBytes(Fixture(name));

    private static void AssertClose(byte[] expected, byte[] actual, int tolerance, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, what);
        int worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Assert.IsTrue(worst <= tolerance, $"{what}: largest difference {worst} > {tolerance}");
    }

    private static byte[] ChwToHwcBytes(float[] chw, int c, int h, int w)
    {
        var hwc = new byte[chw.Length];
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < h * w; i++)
                hwc[i * c + ch] = (byte)Math.Clamp(MathF.Round(chw[ch * h * w + i]), 0, 255);
        return hwc;
    }

    [TestMethod]
    [DataRow("photo.jpg", "photo.rgb", 40, 30)]
    [DataRow("progressive.jpg", "progressive.rgb", 40, 30)]
    [DataRow("gray.jpg", "gray.rgb", 24, 18)]
    [DataRow("palette.png", "palette.rgb", 37, 23)]
    public void Decodes_like_pil(string file, string reference, int width, int height)
    {
        var image = ImageDecoder.Decode(FixtureBytes(file), 3, file);
        Assert.AreEqual((height, width, 3), (image.Height, image.Width, image.Channels));
        AssertClose(FixtureBytes(reference), image.Pixels, 1, file);
    }

    [TestMethod]
    public void Grayscale_is_pil_luma()
    {
        var gray = ImageDecoder.Decode(FixtureBytes("photo.jpg"), 1);
        AssertClose(FixtureBytes("photo_gray.gray"), gray.Pixels, 1, "photo.jpg as L");
    }

    [TestMethod]
    public void Png_round_trips_gray_rgb_and_rgba_with_alpha_dropped()
    {
        var rng = new ResNet.ML.Tensors.Rng(4);
        foreach (int channels in new[] { 1, 3, 4 })
        {
            var hwc = new byte[7 * 5 * channels];
            for (int i = 0; i < hwc.Length; i++) hwc[i] = (byte)rng.NextInt(256);
            byte[] png = TestPng.Encode(hwc, 7, 5, channels);
            Assert.AreEqual(ImageFormat.Png, ImageDecoder.DetectFormat(png));
            var rgb = ImageDecoder.Decode(png, 3, $"test.png ({channels} channels)").Pixels;
            for (int i = 0; i < 35; i++)
                for (int c = 0; c < 3; c++)
                    Assert.AreEqual(channels == 1 ? hwc[i] : hwc[i * channels + c], rgb[i * 3 + c], $"{channels}-channel PNG pixel {i} channel {c}");
            // CHW floats at the image's own size are the same values, plane by plane
            float[] chw = ImageDecoder.DecodeToChw(png, 3, 5, 7);
            CollectionAssert.AreEqual(rgb, ChwToHwcBytes(chw, 3, 5, 7));
        }
    }

    [TestMethod]
    public void Sixteen_bit_png_values_are_scaled_to_eight_bits_not_gamma_converted()
    {
        var gray = Enumerable.Range(0, 24).Select(i => (ushort)(i * 10 * 257)).ToArray();   // 8-bit value i*10, stored 16-bit
        var decoded = ImageDecoder.Decode(TestPng.Encode16(gray, 6, 4, 1), 1, "gray16.png").Pixels;
        CollectionAssert.AreEqual(Enumerable.Range(0, 24).Select(i => (byte)(i * 10)).ToArray(), decoded);

        // Every 16-bit value: Skia keeps the high byte, within one level of rounding v/257 (a gamma change would move
        // mid-tones by tens of levels). The libpng simplified-API decoder before SkiaSharp rounded exactly.
        var all = Enumerable.Range(0, 65536).Select(v => (ushort)v).ToArray();
        var eight = ImageDecoder.Decode(TestPng.Encode16(all, 256, 256, 1), 1, "all16.png").Pixels;
        for (int v = 0; v < 65536; v++)
        {
            int rounded = (v * 255 + 32767) / 65535;
            Assert.IsTrue(Math.Abs(eight[v] - rounded) <= 1, $"16-bit {v} decoded to {eight[v]}, rounding gives {rounded}");
        }

        // RGBA 16-bit with partial alpha: the colour comes back unpremultiplied, alpha dropped
        var rgba = new ushort[] { 100 * 257, 200 * 257, 50 * 257, 65535, 100 * 257, 200 * 257, 50 * 257, 32768, 9 * 257, 0, 255 * 257, 257 };
        var rgb = ImageDecoder.Decode(TestPng.Encode16(rgba, 3, 1, 4), 3, "rgba16.png").Pixels;
        AssertClose([100, 200, 50, 100, 200, 50, 9, 0, 255], rgb, 1, "rgba16.png");
    }

    [TestMethod]
    public void Stretch_resize_matches_pil_bilinear()
    {
        float[] chw = ImageDecoder.DecodeToChw(FixtureBytes("pattern.png"), 3, 10, 12, ResizeMode.Stretch, "pattern.png");
        AssertClose(FixtureBytes("pattern_stretch_10x12.rgb"), ChwToHwcBytes(chw, 3, 10, 12), 1, "stretch 37x23 -> 12x10");
    }

    [TestMethod]
    public void Center_crop_resize_matches_torchvision_resize_and_center_crop()
    {
        float[] chw = ImageDecoder.DecodeToChw(FixtureBytes("pattern.png"), 3, 16, 16, ResizeMode.ShorterSideCenterCrop);
        byte[] ours = ChwToHwcBytes(chw, 3, 16, 16);
        byte[] reference = FixtureBytes("pattern_center_16.rgb");
        // torchvision rounds the resized width to 25 pixels and the crop offset to a whole pixel; we crop the exact centre
        // box, so single pixels may differ by a fraction of a source pixel's worth. The mean difference is small.
        double mean = ours.Zip(reference, (a, b) => Math.Abs(a - b)).Average();
        Assert.IsTrue(mean < 8, $"mean difference {mean}");
        // and much closer than a crop shifted by two pixels would be
        float[] shifted = ImageDecoder.DecodeToChw(FixtureBytes("pattern.png"), 3, 16, 16, ResizeMode.Stretch);
        double other = ChwToHwcBytes(shifted, 3, 16, 16).Zip(reference, (a, b) => Math.Abs(a - b)).Average();
        Assert.IsTrue(mean < other / 2, $"centre crop {mean} vs stretch {other}");
    }

    [TestMethod]
    public void Large_jpegs_decode_at_a_reduced_scale_close_to_a_full_decode()
    {
        // 40x30 to 12x10: decoded at 1/2 (20x15) then resampled; compare with resampling PIL's full decode.
        float[] reduced = ImageDecoder.DecodeToChw(FixtureBytes("photo.jpg"), 3, 10, 12, ResizeMode.Stretch);
        byte[] full = FixtureBytes("photo.rgb");
        var fullChw = new float[3 * 30 * 40];
        for (int i = 0; i < 1200; i++) for (int c = 0; c < 3; c++) fullChw[c * 1200 + i] = full[i * 3 + c];
        var expected = new float[3 * 10 * 12];
        new Resampler().Resample(fullChw, 3, 30, 40, 0, 0, 40, 30, expected, 10, 12);
        double mean = reduced.Zip(expected, (a, b) => Math.Abs(a - b)).Average();
        Assert.IsTrue(mean < 4, $"mean difference {mean}");
    }

    [TestMethod]
    public void Broken_images_name_their_source()
    {
        byte[] jpeg = FixtureBytes("photo.jpg");
        var truncated = Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.DecodeToChw(jpeg[..(jpeg.Length / 2)], 3, 8, 8, source: "cut.jpg"));
        StringAssert.StartsWith(truncated.Message, "cut.jpg: JPEG data cannot be decoded");
        Assert.AreEqual("cut.jpg", truncated.ImageSource);

        var header = Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.Decode(jpeg[..20], 3, "stub.jpg"));
        StringAssert.StartsWith(header.Message, "stub.jpg: JPEG header");

        byte[] png = TestPng.Encode(new byte[48], 4, 4, 3);
        png[^20] ^= 0x55;   // inside IDAT: the CRC no longer matches
        var crc = Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.Decode(png, 3, "crc.png"));
        StringAssert.StartsWith(crc.Message, "crc.png: PNG");

        byte[] cutPng = TestPng.Encode(new byte[300], 10, 10, 3)[..40];
        StringAssert.StartsWith(Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.Decode(cutPng, 1, "short.png")).Message, "short.png: PNG");

        var gif = Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.Decode("GIF89a.........."u8.ToArray(), 3, "anim.gif"));
        StringAssert.Contains(gif.Message, "anim.gif: not a PNG or JPEG image");
        StringAssert.Contains(Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.Decode([], 3, "empty.png")).Message, "empty.png: the file is empty");
    }

    [TestMethod]
    public void Jpeg_with_stray_bytes_between_segments_decodes_but_a_truncated_one_does_not()
    {
        byte[] jpeg = FixtureBytes("photo.jpg");
        int sos = -1;
        for (int i = 2; i < jpeg.Length - 1; i++) if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA) { sos = i; break; }
        Assert.IsTrue(sos > 0, "photo.jpg has a start-of-scan marker");
        byte[] padded = [.. jpeg[..sos], 0x00, 0x00, 0x00, .. jpeg[sos..]];   // libjpeg: "3 extraneous bytes before marker 0xda"
        CollectionAssert.AreEqual(ImageDecoder.Decode(jpeg, 3).Pixels, ImageDecoder.Decode(padded, 3, "padded.jpg").Pixels);
        var cut = Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.Decode(jpeg[..^40], 3, "cut.jpg"));
        StringAssert.Contains(cut.Message, "cut.jpg");
    }

    [TestMethod]
    public void Interlaced_png_decodes_like_the_plain_one()
    {
        var rng = new ResNet.ML.Tensors.Rng(11);
        foreach (int channels in new[] { 1, 3, 4 })
        {
            var hwc = new byte[13 * 9 * channels];   // not a multiple of 8 either way, so the last Adam7 passes are ragged
            for (int i = 0; i < hwc.Length; i++) hwc[i] = (byte)rng.NextInt(256);
            var plain = ImageDecoder.Decode(TestPng.Encode(hwc, 13, 9, channels), 3, "plain.png").Pixels;
            var adam7 = ImageDecoder.Decode(TestPng.Encode(hwc, 13, 9, channels, interlaced: true), 3, "adam7.png").Pixels;
            CollectionAssert.AreEqual(plain, adam7, $"{channels}-channel interlaced PNG");
        }
    }

    [TestMethod]
    public void Cmyk_jpegs_are_refused_naming_the_source()
    {
        foreach (string file in new[] { "photo.jpg", "progressive.jpg", "gray.jpg" })
            Assert.IsFalse(ImageDecoder.IsCmykJpeg(FixtureBytes(file)), file);
        // photo.jpg with its frame header saying four components: the number a CMYK or YCCK file carries there
        byte[] jpeg = FixtureBytes("photo.jpg");
        int sof = -1;
        for (int i = 2; i < jpeg.Length - 1; i++) if (jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC2) { sof = i; break; }
        Assert.IsTrue(sof > 0 && jpeg[sof + 9] == 3, "photo.jpg has a three-component frame header");
        byte[] cmyk = [.. jpeg];
        cmyk[sof + 9] = 4;
        byte[] padded = [.. cmyk[..sof], 0x00, 0x00, .. cmyk[sof..]];   // found behind stray bytes too
        foreach (var (bytes, name) in new[] { (cmyk, "cmyk.jpg"), (padded, "padded-cmyk.jpg") })
        {
            var e = Assert.ThrowsExactly<ImageDecodeException>(() => ImageDecoder.DecodeToChw(bytes, 3, 8, 8, source: name));
            StringAssert.StartsWith(e.Message, $"{name}: CMYK JPEGs are not supported");
        }
    }

    [TestMethod]
    public void Decoding_from_many_threads_gives_the_serial_results()
    {
        string[] files = ["photo.jpg", "progressive.jpg", "gray.jpg", "palette.png", "pattern.png"];
        var serial = files.Select(f => ImageDecoder.DecodeToChw(FixtureBytes(f), 3, 12, 12)).ToArray();
        var bytes = files.Select(FixtureBytes).ToArray();
        var parallel = new float[files.Length * 40][];
        Parallel.For(0, parallel.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 },
            i => parallel[i] = ImageDecoder.DecodeToChw(bytes[i % files.Length], 3, 12, 12));
        for (int i = 0; i < parallel.Length; i++) CollectionAssert.AreEqual(serial[i % files.Length], parallel[i], files[i % files.Length]);
    }
}
