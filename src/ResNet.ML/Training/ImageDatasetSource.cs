using ResNet.ML.Data;

namespace ResNet.ML.Training;

/// <summary>
/// An <see cref="ImageDataset"/> (IDX, CIFAR, folders, arrays) as a batch source, read ahead on worker threads by the
/// data pipeline's <see cref="BatchLoader"/>, which shuffles and augments by (seed, epoch, batch) alone.
/// </summary>
public sealed class ImageDatasetSource : IImageBatchSource
{
    private readonly Dictionary<(int BatchSize, bool Training, int Seed), BatchLoader> _loaders = [];

    /// <param name="dataset">The images.</param>
    /// <param name="augmentation">Applied to training reads only; null for none.</param>
    /// <param name="workers">Read-ahead threads (0: read on the consumer's thread).</param>
    public ImageDatasetSource(ImageDataset dataset, Augmentation? augmentation = null, int workers = 1)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        (Dataset, Augmentation, Workers) = (dataset, augmentation, workers);
    }

    public ImageDataset Dataset { get; }
    public Augmentation? Augmentation { get; }
    public int Workers { get; }
    public IReadOnlyList<string> ClassNames => Dataset.ClassNames;
    public int Channels => Dataset.Channels;
    public int Height => Dataset.Height;
    public int Width => Dataset.Width;
    public int Count => Dataset.Count;

    private float[]? _erasingFill;

    /// <summary>
    /// Tells the source the normalization its consumer applies to the source-unit pixels it yields, so random erasing
    /// fills with the value that normalization maps to 0 (the dataset mean), as <see cref="Data.Augmentation.RandomErasing"/> promises.
    /// </summary>
    internal void NormalizedLater(Normalization normalization)
    {
        var (a, b) = normalization.Affine(Channels);
        _erasingFill = a.Select((m, c) => -b[c] / m).ToArray();
        _loaders.Clear();
    }

    public IEnumerable<ImageBatch> ReadEpoch(int epoch, int startBatch, int batchSize, bool training, int seed, CancellationToken cancellationToken = default)
    {
        if (!_loaders.TryGetValue((batchSize, training, seed), out var loader))
        {
            // Pixels stay in source units: the trainer normalizes with the model's statistics.
            loader = new BatchLoader(Dataset, new BatchLoaderOptions
            {
                BatchSize = batchSize, Shuffle = training, Seed = (ulong)(uint)seed, Augmentation = training ? Augmentation : null,
                Normalization = Normalization.None, Workers = Workers, ErasingFill = _erasingFill,
            });
            _loaders[(batchSize, training, seed)] = loader;
        }
        return loader.ReadEpoch(epoch, startBatch, cancellationToken);
    }
}
