using ResNet.ML.Data;

namespace ResNet.ML.Training;

/// <summary>
/// A batch of labelled images as the trainer consumes them: <see cref="Count"/> images of [C, H, W] float pixels in
/// planar CHW order one after another, in the source's units (0-255 for the built-in sources; the model's
/// <see cref="Normalization"/> maps them to network inputs), and one class index per image.
/// A source may reuse the arrays once the enumeration moves to the next batch.
/// </summary>
public sealed class ImageBatch
{
    public ImageBatch(float[] pixels, int[] labels, int channels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"A batch's image shape must be positive, not [{channels}, {height}, {width}].");
        if (pixels.Length != (long)labels.Length * channels * height * width)
            throw new ArgumentException($"A batch of {labels.Length} images of [{channels}, {height}, {width}] needs {(long)labels.Length * channels * height * width} pixels, not {pixels.Length}.", nameof(pixels));
        (Pixels, Labels, Channels, Height, Width) = (pixels, labels, channels, height, width);
    }

    public float[] Pixels { get; }
    public int[] Labels { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count => Labels.Length;
    public int SampleSize => Channels * Height * Width;
}

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
