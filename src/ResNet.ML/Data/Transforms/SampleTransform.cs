using ResNet.ML.Tensors;

namespace ResNet.ML.Data;

/// <summary>
/// Turns one dataset image into one network input: optional augmentation, then normalization, fused into a single pass
/// over the output. One instance per thread (it owns scratch buffers).
/// </summary>
internal sealed class SampleTransform
{
    private readonly ImageDataset _dataset;
    private readonly Augmentation? _augmentation;
    private readonly float[] _multiplier, _offset;
    private readonly float[]? _erasingFill;
    private readonly float[] _pixels, _cropped;
    private readonly Resampler _resampler = new();

    public SampleTransform(ImageDataset dataset, Augmentation? augmentation, Normalization normalization, float[]? erasingFill = null)
    {
        if (erasingFill is not null && erasingFill.Length != dataset.Channels)
            throw new ArgumentException($"{dataset.Source}: {erasingFill.Length} erasing values for {dataset.Channels} channels.");
        _erasingFill = erasingFill;
        _dataset = dataset;
        _augmentation = augmentation;
        augmentation?.Validate(dataset.Height, dataset.Width);
        (_multiplier, _offset) = normalization.Affine(dataset.Channels);
        _pixels = new float[dataset.SampleSize];
        _cropped = augmentation?.RandomResizedCrop is null ? [] : new float[dataset.SampleSize];
    }

    /// <summary>Writes image <paramref name="index"/> into <paramref name="destination"/>; <paramref name="rng"/> drives augmentation.</summary>
    public void Apply(int index, Span<float> destination, Rng? rng)
    {
        int c = _dataset.Channels, h = _dataset.Height, w = _dataset.Width, plane = h * w;
        _dataset.ReadPixels(index, _pixels);
        ReadOnlySpan<float> image = _pixels;
        var aug = _augmentation;
        if (aug is null || rng is null)
        {
            for (int ch = 0; ch < c; ch++)
                SpanMath.Affine(image.Slice(ch * plane, plane), _multiplier[ch], _offset[ch], destination.Slice(ch * plane, plane));
            return;
        }

        if (aug.RandomResizedCrop is { } rrc)
        {
            var (bx, by, bw, bh) = DrawResizedCropBox(rrc, h, w, rng);
            _resampler.Resample(image, c, h, w, bx, by, bw, bh, _cropped, h, w);
            image = _cropped;
        }

        int pad = aug.Padding;
        int offsetY = pad > 0 ? rng.NextInt(2 * pad + 1) - pad : 0;   // window origin relative to the unpadded image
        int offsetX = pad > 0 ? rng.NextInt(2 * pad + 1) - pad : 0;
        bool flip = aug.HorizontalFlip && rng.NextInt(2) == 1;

        // Columns of the output that fall inside the source image: [x0, x1).
        int x0 = Math.Max(0, -offsetX), x1 = Math.Min(w, w - offsetX);
        for (int ch = 0; ch < c; ch++)
        {
            float a = _multiplier[ch], b = _offset[ch];
            var src = image.Slice(ch * plane, plane);
            var dst = destination.Slice(ch * plane, plane);
            for (int y = 0; y < h; y++)
            {
                var outRow = dst.Slice(y * w, w);
                int sy = y + offsetY;
                if (sy < 0 || sy >= h || x1 <= x0) { outRow.Fill(b); continue; }   // padding is zero before normalization
                var srcRow = src.Slice(sy * w, w);
                if (!flip)
                {
                    outRow[..x0].Fill(b);
                    outRow[x1..].Fill(b);
                    SpanMath.Affine(srcRow.Slice(x0 + offsetX, x1 - x0), a, b, outRow[x0..x1]);
                }
                else
                {
                    // flip after crop: out[x] = crop[w - 1 - x]
                    for (int x = 0; x < w; x++)
                    {
                        int cx = w - 1 - x;
                        outRow[x] = cx >= x0 && cx < x1 ? srcRow[cx + offsetX] * a + b : b;
                    }
                }
            }
        }

        if (aug.RandomErasing is { } erasing && rng.NextDouble() < erasing.Probability
            && DrawErasingBox(erasing, h, w, rng) is var (ex, ey, ew, eh) && ew > 0)
            for (int ch = 0; ch < c; ch++)
                for (int y = ey; y < ey + eh; y++)
                    destination.Slice(ch * plane + y * w + ex, ew).Fill(_erasingFill?[ch] ?? 0f);
    }

    /// <summary>torchvision's RandomErasing.get_params on an h × w image: (x, y, width, height), width 0 when no draw fits.</summary>
    internal static (int X, int Y, int Width, int Height) DrawErasingBox(RandomErasing p, int h, int w, Rng rng)
    {
        if (DrawScaledBox((double)h * w, p.MinScale, p.MaxScale, p.MinRatio, p.MaxRatio, h, w, strict: true, rng) is not (int eh, int ew))
            return (0, 0, 0, 0);
        return (rng.NextInt(w - ew + 1), rng.NextInt(h - eh + 1), ew, eh);
    }

    /// <summary>
    /// The draw torchvision's RandomResizedCrop and RandomErasing share: up to 10 tries of an area uniform in
    /// [minScale, maxScale]·area and a log-uniform ratio, giving sides (√(area·ratio), √(area/ratio)); the first pair
    /// within (limitA, limitB) (strictly below them when <paramref name="strict"/>) is returned, null when none fits.
    /// </summary>
    private static (int A, int B)? DrawScaledBox(double area, double minScale, double maxScale, double minRatio, double maxRatio,
        int limitA, int limitB, bool strict, Rng rng)
    {
        double logMin = Math.Log(minRatio), logMax = Math.Log(maxRatio);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (minScale + (maxScale - minScale) * rng.NextDouble());
            double ratio = Math.Exp(logMin + (logMax - logMin) * rng.NextDouble());
            int a = (int)Math.Round(Math.Sqrt(target * ratio));
            int b = (int)Math.Round(Math.Sqrt(target / ratio));
            if (a > 0 && b > 0 && (strict ? a < limitA && b < limitB : a <= limitA && b <= limitB)) return (a, b);
        }
        return null;
    }

    /// <summary>torchvision's RandomResizedCrop.get_params, on an h × w image; returns (x, y, width, height).</summary>
    internal static (int X, int Y, int Width, int Height) DrawResizedCropBox(RandomResizedCrop p, int h, int w, Rng rng)
    {
        if (DrawScaledBox((double)h * w, p.MinScale, p.MaxScale, p.MinRatio, p.MaxRatio, w, h, strict: false, rng) is (int cw, int ch))
        {
            int y = rng.NextInt(h - ch + 1), x = rng.NextInt(w - cw + 1);
            return (x, y, cw, ch);
        }
        // Fallback: the largest central crop whose ratio is within range.
        double inRatio = (double)w / h;
        int fw, fh;
        if (inRatio < p.MinRatio) { fw = w; fh = (int)Math.Round(fw / p.MinRatio); }
        else if (inRatio > p.MaxRatio) { fh = h; fw = (int)Math.Round(fh * p.MaxRatio); }
        else { fw = w; fh = h; }
        fw = Math.Clamp(fw, 1, w); fh = Math.Clamp(fh, 1, h);
        return ((w - fw) / 2, (h - fh) / 2, fw, fh);
    }
}
