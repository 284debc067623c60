namespace ResNet.ML.Training;

/// <summary>
/// What turns raw pixels into the network's input, per channel c: <c>(pixel · Scale − Mean[c]) / Std[c]</c>.
/// A trained model carries it, so its ONNX export can take raw 0-255 pixels the way ML.NET's ExtractPixels gives them.
/// </summary>
public sealed record Preprocessing(float Scale, float[] Mean, float[] Std)
{
    public int Channels => Mean.Length;

    /// <summary>Checks the shape against a channel count, naming what is wrong.</summary>
    public void Validate(int channels)
    {
        if (Mean.Length != channels || Std.Length != channels)
            throw new ArgumentException($"The preprocessing has {Mean.Length} means and {Std.Length} standard deviations for {channels}-channel images.");
        if (!(Scale > 0) || Std.Any(s => !(s > 0)) || Mean.Any(m => !float.IsFinite(m)))
            throw new ArgumentException("The preprocessing needs a positive scale, finite means and positive standard deviations.");
    }

    /// <summary>Normalizes <paramref name="count"/> CHW images from <paramref name="raw"/> into <paramref name="destination"/>.</summary>
    public void Apply(ReadOnlySpan<float> raw, Span<float> destination, int count, int planeSize)
    {
        int channels = Channels;
        for (int n = 0; n < count; n++)
        {
            for (int c = 0; c < channels; c++)
            {
                int offset = (n * channels + c) * planeSize;
                float a = Scale / Std[c], b = -Mean[c] / Std[c];
                var src = raw.Slice(offset, planeSize);
                var dst = destination.Slice(offset, planeSize);
                for (int i = 0; i < planeSize; i++) dst[i] = src[i] * a + b;
            }
        }
    }

    /// <summary>Per-channel mean and standard deviation of the scaled pixels of a whole source (one unshuffled pass).</summary>
    public static Preprocessing FromData(IImageBatchSource source, float scale, int batchSize = 256)
    {
        int channels = source.Channels, plane = source.Height * source.Width;
        var sum = new double[channels];
        var sumSq = new double[channels];
        long images = 0;
        foreach (var batch in source.ReadEpoch(0, batchSize, shuffle: false, seed: 0))
        {
            for (int n = 0; n < batch.Count; n++)
            {
                for (int c = 0; c < channels; c++)
                {
                    var span = batch.Pixels.AsSpan((n * channels + c) * plane, plane);
                    double s = 0, s2 = 0;
                    foreach (float p in span) { double v = p * (double)scale; s += v; s2 += v * v; }
                    sum[c] += s; sumSq[c] += s2;
                }
            }
            images += batch.Count;
        }
        if (images == 0) throw new ArgumentException("The training data holds no images.");
        double count = (double)images * plane;
        var mean = new float[channels];
        var std = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double m = sum[c] / count;
            mean[c] = (float)m;
            std[c] = (float)Math.Max(Math.Sqrt(Math.Max(sumSq[c] / count - m * m, 0)), 1e-3);   // a constant channel must not divide by zero
        }
        return new Preprocessing(scale, mean, std);
    }
}
