namespace ResNet.ML.Data;

/// <summary>
/// A batch of labelled images as the trainer consumes them: <see cref="Count"/> images of [C, H, W] float pixels in
/// planar CHW order one after another, in the source's units (0-255 for the built-in sources; the model's
/// <see cref="Normalization"/> maps them to network inputs), and one class index per image.
/// A source may reuse the arrays once the enumeration moves to the next batch: copy what you must keep longer.
/// The one batch type: <see cref="BatchLoader"/> yields it too, with <see cref="Indices"/>, <see cref="Epoch"/> and <see cref="Index"/> set.
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

    /// <summary>The dataset index of each image (for error analysis); null when the source does not say.</summary>
    public int[]? Indices { get; internal init; }

    /// <summary>The epoch this batch belongs to (set by <see cref="BatchLoader"/>).</summary>
    public int Epoch { get; internal set; }

    /// <summary>Position of this batch in its epoch, from 0 (set by <see cref="BatchLoader"/>).</summary>
    public int Index { get; internal set; }
}
