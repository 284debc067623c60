using ResNet.ML.Tensors;

namespace ResNet.ML.Training;

/// <summary>
/// Images already in memory: one float array of N CHW images and their labels. The plainest
/// <see cref="IImageBatchSource"/>, for callers who hold pixels (and for tests); shuffles with a seeded
/// <see cref="Rng"/> per epoch.
/// </summary>
public sealed class ArrayImageSource : IRandomAccessImageSource
{
    private readonly float[] _pixels;
    private readonly int[] _labels;
    private readonly int[] _indices;   // which of the arrays' images this source shows, in order

    public ArrayImageSource(float[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classNames)
        : this(pixels, labels, channels, height, width, classNames, Enumerable.Range(0, labels.Length).ToArray())
    {
        long sample = (long)channels * height * width;
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"The image shape must be positive, not [{channels}, {height}, {width}].");
        if (pixels.LongLength != labels.LongLength * sample)
            throw new ArgumentException($"{labels.Length} images of [{channels}, {height}, {width}] need {labels.LongLength * sample} pixels, but the array has {pixels.Length}.", nameof(pixels));
        if (classNames.Count == 0) throw new ArgumentException("There must be at least one class name.", nameof(classNames));
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classNames.Count)
                throw new ArgumentException($"Label {labels[i]} of image {i} is outside the {classNames.Count} classes (0..{classNames.Count - 1}).", nameof(labels));
        }
    }

    private ArrayImageSource(float[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classNames, int[] indices)
    {
        (_pixels, _labels, _indices) = (pixels, labels, indices);
        (Channels, Height, Width, ClassNames) = (channels, height, width, classNames);
    }

    public IReadOnlyList<string> ClassNames { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count => _indices.Length;
    private int SampleSize => Channels * Height * Width;

    public int LabelAt(int index) => _labels[_indices[index]];

    public int CopyImage(int index, Span<float> destination)
    {
        int i = _indices[index];
        _pixels.AsSpan(i * SampleSize, SampleSize).CopyTo(destination);
        return _labels[i];
    }

    public IRandomAccessImageSource Subset(IReadOnlyList<int> indices) =>
        new ArrayImageSource(_pixels, _labels, Channels, Height, Width, ClassNames, indices.Select(i => _indices[i]).ToArray());

    public IEnumerable<ImageBatch> ReadEpoch(int epoch, int batchSize, bool shuffle, int seed) =>
        RandomAccessBatches.ReadEpoch(this, epoch, batchSize, shuffle, seed);
}

/// <summary>Batching and seeded shuffling shared by random-access sources.</summary>
public static class RandomAccessBatches
{
    /// <summary>The order of one epoch: identity, or a permutation drawn from (seed, epoch) alone so a resumed run repeats it.</summary>
    public static int[] EpochOrder(int count, int epoch, bool shuffle, int seed)
    {
        var order = Enumerable.Range(0, count).ToArray();
        if (shuffle) new Rng(((ulong)(uint)seed << 32) ^ (ulong)(uint)epoch ^ 0x5EED_0F_0DE5UL).Shuffle(order.AsSpan());
        return order;
    }

    public static IEnumerable<ImageBatch> ReadEpoch(IRandomAccessImageSource source, int epoch, int batchSize, bool shuffle, int seed)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"The batch size must be positive, not {batchSize}.");
        var order = EpochOrder(source.Count, epoch, shuffle, seed);
        int sample = source.Channels * source.Height * source.Width;
        for (int start = 0; start < order.Length; start += batchSize)
        {
            int n = Math.Min(batchSize, order.Length - start);
            var pixels = new float[n * sample];
            var labels = new int[n];
            for (int j = 0; j < n; j++) labels[j] = source.CopyImage(order[start + j], pixels.AsSpan(j * sample, sample));
            yield return new ImageBatch(pixels, labels, source.Channels, source.Height, source.Width);
        }
    }

    /// <summary>
    /// A stratified, seeded split: from each class, round(fraction x its count) images (at least one when the class has
    /// two or more) go to the second part. Returns index lists into <paramref name="source"/>.
    /// </summary>
    public static (int[] Train, int[] Validation) StratifiedSplit(IRandomAccessImageSource source, double fraction, int seed)
    {
        if (fraction <= 0 || fraction >= 1) throw new ArgumentOutOfRangeException(nameof(fraction), $"The validation fraction must be in (0, 1), not {fraction}.");
        var rng = new Rng(((ulong)(uint)seed << 32) ^ 0x5B117UL);
        var byClass = Enumerable.Range(0, source.Count).GroupBy(source.LabelAt).OrderBy(g => g.Key);
        var train = new List<int>();
        var validation = new List<int>();
        foreach (var group in byClass)
        {
            var members = group.ToArray();
            rng.Shuffle(members.AsSpan());
            int held = members.Length < 2 ? 0 : Math.Clamp((int)Math.Round(members.Length * fraction), 1, members.Length - 1);
            validation.AddRange(members[..held]);
            train.AddRange(members[held..]);
        }
        train.Sort();
        validation.Sort();
        return (train.ToArray(), validation.ToArray());
    }
}
