using ResNet.ML.Data;

namespace ResNet.ML.Training;

/// <summary>
/// Labelled images as a stream of batches, read once per epoch: all <see cref="ImageClassifierTrainer"/> needs from data, and
/// the shape an ML.NET estimator can wrap. Nothing here assumes files. An implementation must be deterministic in
/// (epoch, seed): a run resumed at batch b of epoch e reads from there and must see what the uninterrupted run saw.
/// </summary>
public interface IImageBatchSource
{
    /// <summary>The class names; a label is an index into this list.</summary>
    IReadOnlyList<string> ClassNames { get; }
    int Channels { get; }
    int Height { get; }
    int Width { get; }
    /// <summary>Images per epoch.</summary>
    int Count { get; }

    /// <summary>
    /// The batches of epoch <paramref name="epoch"/> from batch <paramref name="startBatch"/>; for
    /// <paramref name="training"/> shuffled (and augmented, when the source augments) by (<paramref name="seed"/>, epoch),
    /// otherwise in order. Every batch holds <paramref name="batchSize"/> images but the last.
    /// </summary>
    IEnumerable<ImageBatch> ReadEpoch(int epoch, int startBatch, int batchSize, bool training, int seed, CancellationToken cancellationToken = default);
}
