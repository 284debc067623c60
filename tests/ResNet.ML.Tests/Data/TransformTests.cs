using ResNet.ML.Data;
using ResNet.ML.Tensors;

namespace ResNet.ML.Tests.Data;

[TestClass]
public class TransformTests
{
    private static InMemoryImageDataset Distinct(int c, int h, int w)
    {
        // every pixel value distinct and non-zero, so a crop window can be identified
        var f = new float[c * h * w];
        for (int i = 0; i < f.Length; i++) f[i] = i + 1;
        return ImageDataset.FromFloats(f, [0], c, h, w, ["x"]);
    }

    [TestMethod]
    public void Pad_crop_flip_output_is_a_shifted_window_of_the_image_and_covers_every_offset()
    {
        const int c = 2, h = 5, w = 6, pad = 2;
        var ds = Distinct(c, h, w);
        var src = new float[c * h * w];
        ds.ReadPixels(0, src);
        var transform = new SampleTransform(ds, new Augmentation { Padding = pad, HorizontalFlip = true }, Normalization.None);
        var rng = new Rng(9);
        var outp = new float[src.Length];
        var seen = new HashSet<(int, int, bool)>();
        for (int trial = 0; trial < 400; trial++)
        {
            transform.Apply(0, outp, rng);
            var match = new List<(int, int, bool)>();
            for (int dy = -pad; dy <= pad; dy++)
                for (int dx = -pad; dx <= pad; dx++)
                    foreach (bool flip in new[] { false, true })
                    {
                        bool ok = true;
                        for (int ch = 0; ch < c && ok; ch++)
                            for (int y = 0; y < h && ok; y++)
                                for (int x = 0; x < w && ok; x++)
                                {
                                    int cx = flip ? w - 1 - x : x;
                                    int sy = y + dy, sx = cx + dx;
                                    float expected = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[(ch * h + sy) * w + sx] : 0;
                                    ok = outp[(ch * h + y) * w + x] == expected;
                                }
                        if (ok) match.Add((dy, dx, flip));
                    }
            Assert.AreEqual(1, match.Count, $"trial {trial}: the output must be exactly one padded window");
            seen.Add(match[0]);
        }
        Assert.AreEqual(5 * 5 * 2, seen.Count, "every offset and both flips occur");
    }

    [TestMethod]
    public void Byte_storage_converts_every_value_exactly()
    {
        var bytes = Enumerable.Range(0, 3 * 11 * 13).Select(i => (byte)(i * 37 % 256)).ToArray();   // longer than any vector, odd tail
        var ds = ImageDataset.FromBytes(bytes, [0], 3, 11, 13, ["x"]);
        var px = new float[bytes.Length];
        ds.ReadPixels(0, px);
        for (int i = 0; i < bytes.Length; i++) Assert.AreEqual((float)bytes[i], px[i], $"value {i}");
        var back = InMemoryImageDataset.Materialize(ImageDataset.FromFloats(px, [0], 3, 11, 13, ["x"]));
        Assert.IsTrue(back.StoresBytes);
        ds.ReadPixels(0, px);
        var again = new float[px.Length];
        back.ReadPixels(0, again);
        CollectionAssert.AreEqual(px, again);
    }

    [TestMethod]
    public void Without_augmentation_the_transform_only_normalizes()
    {
        var ds = Distinct(3, 2, 2);
        var norm = new Normalization(0.5f, [1, 2, 3], [2, 4, 8]);
        var outp = new float[12];
        new SampleTransform(ds, null, norm).Apply(0, outp, null);
        for (int i = 0; i < 12; i++) Assert.AreEqual(((i + 1) * 0.5f - (1 + i / 4)) / (2 << (i / 4)), outp[i], 1e-6f);
    }

    [TestMethod]
    public void Resampler_is_identity_at_the_same_size_keeps_constants_and_interpolates_linear_ramps()
    {
        var r = new Resampler();
        var src = Enumerable.Range(0, 20).Select(i => (float)(i * i % 7)).ToArray();   // 1x4x5
        var same = new float[20];
        r.Resample(src, 1, 4, 5, 0, 0, 5, 4, same, 4, 5);
        CollectionAssert.AreEqual(src, same);

        var constant = Enumerable.Repeat(3.5f, 64).ToArray();
        var small = new float[9];
        r.Resample(constant, 1, 8, 8, 0.5, 1, 7, 6, small, 3, 3);
        foreach (float v in small) Assert.AreEqual(3.5f, v, 1e-5f);

        // a horizontal ramp v = x enlarged 2x: half-pixel bilinear gives v(x') = (x' + 0.5) / 2 - 0.5 inside the image
        var ramp = new float[4 * 4];
        for (int y = 0; y < 4; y++) for (int x = 0; x < 4; x++) ramp[y * 4 + x] = x;
        var big = new float[8 * 8];
        r.Resample(ramp, 1, 4, 4, 0, 0, 4, 4, big, 8, 8);
        for (int x = 1; x < 7; x++) Assert.AreEqual((x + 0.5f) / 2 - 0.5f, big[3 * 8 + x], 1e-5f, $"x={x}");

        // shrinking 2x averages: a checkerboard of 0/2 becomes a flat 1 away from the borders
        var checker = new float[8 * 8];
        for (int i = 0; i < 64; i++) checker[i] = (i / 8 + i % 8) % 2 * 2;
        var half = new float[16];
        r.Resample(checker, 1, 8, 8, 0, 0, 8, 8, half, 4, 4);
        Assert.AreEqual(1f, half[1 * 4 + 1], 1e-5f);
        Assert.AreEqual(1f, half[2 * 4 + 2], 1e-5f);
    }

    [TestMethod]
    public void Random_resized_crop_boxes_respect_the_scale_and_ratio_ranges()
    {
        var p = new RandomResizedCrop(0.25, 0.5, 0.5, 2.0);
        var rng = new Rng(3);
        for (int i = 0; i < 300; i++)
        {
            var (x, y, cw, ch) = SampleTransform.DrawResizedCropBox(p, 64, 80, rng);
            Assert.IsTrue(x >= 0 && y >= 0 && x + cw <= 80 && y + ch <= 64, "inside the image");
            double area = (double)cw * ch / (64 * 80);
            Assert.IsTrue(area > 0.2 && area < 0.56, $"area fraction {area}");
            double ratio = (double)cw / ch;
            Assert.IsTrue(ratio > 0.45 && ratio < 2.2, $"ratio {ratio}");
        }
        // a full-area, ratio-1 crop of a square image is the identity
        var ds = Distinct(1, 6, 6);
        var outp = new float[36];
        new SampleTransform(ds, new Augmentation { RandomResizedCrop = new RandomResizedCrop(1, 1, 1, 1) }, Normalization.None).Apply(0, outp, new Rng(1));
        CollectionAssert.AreEqual(Enumerable.Range(1, 36).Select(v => (float)v).ToArray(), outp);
    }

    [TestMethod]
    public void Random_erasing_zeroes_one_rectangle_in_every_channel_within_the_scale_range()
    {
        const int c = 2, h = 12, w = 10;
        var ds = Distinct(c, h, w);   // no pixel is 0, so erased pixels are exactly the zeros
        var erasing = new RandomErasing(Probability: 1, MinScale: 0.1, MaxScale: 0.3);
        var transform = new SampleTransform(ds, new Augmentation { RandomErasing = erasing }, Normalization.None);
        var outp = new float[c * h * w];
        var sizes = new HashSet<int>();
        for (int seed = 0; seed < 200; seed++)
        {
            transform.Apply(0, outp, new Rng((ulong)seed));
            var zeros = Enumerable.Range(0, h * w).Where(i => outp[i] == 0).ToArray();
            Assert.IsTrue(zeros.Length > 0, $"seed {seed}: probability 1 must erase");
            int x0 = zeros.Min(i => i % w), x1 = zeros.Max(i => i % w), y0 = zeros.Min(i => i / w), y1 = zeros.Max(i => i / w);
            Assert.AreEqual((x1 - x0 + 1) * (y1 - y0 + 1), zeros.Length, $"seed {seed}: erased pixels form a rectangle");
            Assert.IsTrue(zeros.Length >= 0.1 * h * w * 0.5 && zeros.Length <= 0.3 * h * w * 1.6, $"seed {seed}: area {zeros.Length}");
            for (int i = 0; i < h * w; i++)
            {
                Assert.AreEqual(outp[i] == 0, outp[h * w + i] == 0, $"seed {seed}: both channels erased alike at {i}");
                if (outp[i] != 0) Assert.AreEqual(i + 1f, outp[i], "untouched pixels keep their value");
            }
            sizes.Add(zeros.Length);
        }
        Assert.IsTrue(sizes.Count > 5, "the erased area varies");

        var never = new SampleTransform(ds, new Augmentation { RandomErasing = erasing with { Probability = 0 } }, Normalization.None);
        never.Apply(0, outp, new Rng(1));
        CollectionAssert.AreEqual(Enumerable.Range(1, c * h * w).Select(v => (float)v).ToArray(), outp);
        var bad = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new SampleTransform(ds, new Augmentation { RandomErasing = erasing with { Probability = 1.5 } }, Normalization.None));
        StringAssert.Contains(bad.Message, "RandomErasing probability");
    }

    [TestMethod]
    public void Computed_normalization_gives_zero_mean_unit_variance_per_channel()
    {
        var bytes = new byte[4 * 2 * 3 * 3];
        var rng = new Rng(5);
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)(i % 18 < 9 ? rng.NextInt(100) : 100 + rng.NextInt(150));
        var ds = ImageDataset.FromBytes(bytes, [0, 0, 0, 0], 2, 3, 3, ["a"]);
        var norm = Normalization.Compute(ds);
        Assert.IsTrue(norm.Mean[1] > norm.Mean[0]);
        var all = new Tensor(4, 2, 3, 3);
        for (int i = 0; i < 4; i++) ds.ReadPixels(i, all.Data.AsSpan(i * 18, 18));
        norm.Apply(all);
        for (int c = 0; c < 2; c++)
        {
            var values = Enumerable.Range(0, 4).SelectMany(n => all.Data.Skip(n * 18 + c * 9).Take(9)).ToArray();
            double mean = values.Average();
            double variance = values.Select(v => (v - mean) * (v - mean)).Average();
            Assert.AreEqual(0, mean, 1e-4);
            Assert.AreEqual(1, variance, 1e-3);
        }
    }

    [TestMethod]
    public void Stratified_split_is_seeded_disjoint_and_keeps_class_proportions()
    {
        var labels = Enumerable.Range(0, 200).Select(i => i < 150 ? 0 : i < 190 ? 1 : 2).ToArray();
        // each image's single pixel is its index, so the views can be compared by content
        var ds = ImageDataset.FromBytes(Enumerable.Range(0, 200).Select(i => (byte)i).ToArray(), labels, 1, 1, 1, ["a", "b", "c"]);
        var (train, val) = ds.StratifiedSplit(0.2, seed: 11);
        CollectionAssert.AreEqual(new[] { 30, 8, 2 }, val.CountPerClass());
        CollectionAssert.AreEqual(new[] { 120, 32, 8 }, train.CountPerClass());
        static int[] Ids(ImageDataset d) => Enumerable.Range(0, d.Count).Select(i => { var v = new float[1]; d.ReadPixels(i, v); return (int)v[0]; }).ToArray();
        var (_, again) = ds.StratifiedSplit(0.2, 11);
        var (_, other) = ds.StratifiedSplit(0.2, 12);
        CollectionAssert.AreEqual(Ids(val), Ids(again));
        CollectionAssert.AreNotEqual(Ids(val), Ids(other));
        Assert.AreEqual(0, Ids(train).Intersect(Ids(val)).Count());
        Assert.AreEqual(200, Ids(train).Union(Ids(val)).Count());
    }
}
