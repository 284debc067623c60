namespace ResNet.ML.Training;

/// <summary>
/// A batch of labelled images as the trainer consumes them: <see cref="Count"/> images of [C, H, W] float pixels in
/// planar CHW order one after another (raw, not yet normalized: the trained model's preprocessing does that), and one
/// class index per image.
/// </summary>
public sealed class ImageBatch
{
    public ImageBatch(float[] pixels, int[] labels, int channels, int height, int width)
    {
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
/// Labelled images as a stream of batches, re-read once per epoch: the one thing <see cref="ResNetTrainer"/> needs
/// from data. Implementations must be deterministic in (<c>epoch</c>, <c>seed</c>): a resumed run skips the batches
/// already trained on and must see the same ones after them. Nothing here assumes files.
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

    /// <summary>One epoch's batches (the last may be smaller); shuffled when <paramref name="shuffle"/>, by (<paramref name="seed"/>, <paramref name="epoch"/>).</summary>
    IEnumerable<ImageBatch> ReadEpoch(int epoch, int batchSize, bool shuffle, int seed);
}

/// <summary>A source that can hand out any image by index, so it can be split and scanned for statistics.</summary>
public interface IRandomAccessImageSource : IImageBatchSource
{
    /// <summary>The label of image <paramref name="index"/>.</summary>
    int LabelAt(int index);

    /// <summary>Copies image <paramref name="index"/>'s CHW pixels into <paramref name="destination"/> and returns its label.</summary>
    int CopyImage(int index, Span<float> destination);

    /// <summary>The images at <paramref name="indices"/> as a source of their own (a train/validation split).</summary>
    IRandomAccessImageSource Subset(IReadOnlyList<int> indices);
}
