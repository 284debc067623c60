using ResNet.ML.Tensors;

namespace ResNet.ML.Data;

/// <summary>
/// Maps source pixel values to network inputs per channel: y = (x × <see cref="Scale"/> − Mean[c]) / Std[c], torchvision's
/// ToTensor (Scale = 1/255) followed by Normalize(mean, std). <see cref="Mean"/> and <see cref="Std"/> hold one value per
/// channel, or one value for all channels. A trained model keeps this record as its preprocessing.
/// </summary>
public sealed record Normalization
{
    public Normalization(float scale, float[] mean, float[] std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (!float.IsFinite(scale) || scale == 0) throw new ArgumentOutOfRangeException(nameof(scale), $"Normalization scale must be finite and non-zero, not {scale}.");
        if (mean.Length == 0 || mean.Length != std.Length)
            throw new ArgumentException($"Normalization needs as many means as standard deviations (one, or one per channel); got {mean.Length} and {std.Length}.");
        foreach (float s in std)
            if (!(s > 0) || !float.IsFinite(s)) throw new ArgumentOutOfRangeException(nameof(std), $"Normalization standard deviations must be positive and finite; got {s}.");
        foreach (float m in mean)
            if (!float.IsFinite(m)) throw new ArgumentOutOfRangeException(nameof(mean), $"Normalization means must be finite; got {m}.");
        (Scale, Mean, Std) = (scale, (float[])mean.Clone(), (float[])std.Clone());
    }

    /// <summary>Multiplies source values first (1/255 maps bytes to [0, 1]).</summary>
    public float Scale { get; }

    /// <summary>Per-channel mean, in scaled units.</summary>
    public float[] Mean { get; }

    /// <summary>Per-channel standard deviation, in scaled units.</summary>
    public float[] Std { get; }

    /// <summary>Bytes to [0, 1] and nothing else: torchvision's ToTensor.</summary>
    public static Normalization UnitRange { get; } = new(1f / 255, [0f], [1f]);

    /// <summary>The ImageNet statistics torchvision's pretrained models expect (RGB).</summary>
    public static Normalization ImageNet { get; } = new(1f / 255, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>Identity: values pass unchanged (for callers whose pixels are already prepared).</summary>
    public static Normalization None { get; } = new(1f, [0f], [1f]);

    /// <summary>
    /// Computes per-channel mean and (population) standard deviation of the scaled pixels of <paramref name="dataset"/> —
    /// pass the training set only. <paramref name="maxImages"/> caps the pass for big or streaming sets (then an evenly
    /// spaced selection is used).
    /// </summary>
    public static Normalization Compute(ImageDataset dataset, float scale = 1f / 255, int maxImages = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (dataset.Count == 0) throw new ArgumentException($"{dataset.Source}: cannot compute normalization statistics of an empty dataset.", nameof(dataset));
        int used = Math.Min(dataset.Count, Math.Max(1, maxImages));
        var moments = new PixelMoments(dataset.Channels, scale);
        var pixels = new float[dataset.SampleSize];
        for (int k = 0; k < used; k++)
        {
            dataset.ReadPixels((int)((long)k * dataset.Count / used), pixels);
            moments.Add(pixels);
        }
        return moments.Result();
    }

    /// <summary>
    /// Running per-channel sums of scaled pixels over whole CHW images, in double; <see cref="Result"/> gives the mean
    /// and the population standard deviation (at least 1e-6).
    /// </summary>
    internal sealed class PixelMoments(int channels, float scale)
    {
        private readonly double[] _sum = new double[channels], _sumSquares = new double[channels];
        private long _values;

        public long Images { get; private set; }

        public void Add(ReadOnlySpan<float> image)
        {
            int plane = image.Length / channels;
            for (int c = 0; c < channels; c++)
            {
                double s = 0, s2 = 0;
                foreach (float v in image.Slice(c * plane, plane)) { double x = v * (double)scale; s += x; s2 += x * x; }
                _sum[c] += s; _sumSquares[c] += s2;
            }
            _values += plane;
            Images++;
        }

        public Normalization Result()
        {
            var mean = new float[channels];
            var std = new float[channels];
            for (int c = 0; c < channels; c++)
            {
                double m = _sum[c] / _values;
                mean[c] = (float)m;
                std[c] = (float)Math.Max(Math.Sqrt(Math.Max(_sumSquares[c] / _values - m * m, 0)), 1e-6);
            }
            return new Normalization(scale, mean, std);
        }
    }

    /// <summary>Throws naming the option when this normalization does not fit <paramref name="channels"/> channels.</summary>
    public void CheckChannels(int channels)
    {
        if (Mean.Length != 1 && Mean.Length != channels)
            throw new ArgumentException($"Normalization has {Mean.Length} channel statistics, but the images have {channels} channels.");
    }

    /// <summary>Per channel, y = x × Multiplier[c] + Offset[c].</summary>
    internal (float[] Multiplier, float[] Offset) Affine(int channels)
    {
        CheckChannels(channels);
        var a = new float[channels];
        var b = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            float m = Mean[Mean.Length == 1 ? 0 : c], s = Std[Std.Length == 1 ? 0 : c];
            a[c] = Scale / s;
            b[c] = -m / s;
        }
        return (a, b);
    }

    /// <summary>Normalizes a [N, C, H, W] tensor of source-unit pixels in place (for inference callers).</summary>
    public void Apply(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        Apply(images.Data.AsSpan(0, images.Length), images);
    }

    /// <summary>Writes <paramref name="source"/> (source-unit pixels of <paramref name="destination"/>'s shape) normalized into <paramref name="destination"/>, in one pass.</summary>
    internal void Apply(ReadOnlySpan<float> source, Tensor destination)
    {
        if (source.Length != destination.Length)
            throw new ArgumentException($"{source.Length} pixels do not fill a [{destination.N}, {destination.C}, {destination.H}, {destination.W}] tensor.", nameof(source));
        var (a, b) = Affine(destination.C);
        int plane = destination.PlaneSize;
        for (int n = 0; n < destination.N; n++)
            for (int c = 0; c < destination.C; c++)
            {
                int at = (n * destination.C + c) * plane;
                SpanMath.Affine(source.Slice(at, plane), a[c], b[c], destination.Data.AsSpan(at, plane));
            }
    }

    public bool Equals(Normalization? other) =>
        other is not null && Scale == other.Scale && Mean.AsSpan().SequenceEqual(other.Mean) && Std.AsSpan().SequenceEqual(other.Std);

    public override int GetHashCode() => HashCode.Combine(Scale, Mean.Length, Mean[0], Std[0]);

    public override string ToString() => $"Normalization(scale {Scale}, mean [{string.Join(", ", Mean)}], std [{string.Join(", ", Std)}])";
}
