namespace ResNet.ML.Data;

/// <summary>
/// Another dataset's images resampled (bilinear, antialiased when shrinking) to a new size as they are read, e.g.
/// 28x28 Fashion-MNIST brought to 64x64 for a pretrained network that halves the resolution five times. Labels,
/// classes and channels are the parent's; the parent is read, never copied.
/// </summary>
public sealed class ResizedImageDataset : ImageDataset
{
    private readonly ImageDataset _parent;
    // ReadPixels runs on the loader's worker threads: one resampler and source buffer per thread.
    [ThreadStatic] private static Resampler? t_resampler;
    [ThreadStatic] private static float[]? t_source;

    public ResizedImageDataset(ImageDataset parent, int height, int width)
        : base(parent?.Channels ?? 1, height, width, parent?.ClassNames ?? ["?"], parent is null ? "" : $"{parent.Source} resized to {height}x{width}")
    {
        ArgumentNullException.ThrowIfNull(parent);
        _parent = parent;
    }

    public override int Count => _parent.Count;

    public override int GetLabel(int index) => _parent.GetLabel(index);

    public override void ReadPixels(int index, Span<float> destination)
    {
        var source = t_source is { } s && s.Length == _parent.SampleSize ? s : t_source = new float[_parent.SampleSize];
        _parent.ReadPixels(index, source);
        (t_resampler ??= new Resampler()).Resample(source, Channels, _parent.Height, _parent.Width, 0, 0, _parent.Width, _parent.Height,
            destination[..SampleSize], Height, Width);
    }

    /// <summary><paramref name="data"/> itself when it already has the size, else a resized view.</summary>
    public static ImageDataset To(ImageDataset data, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(data);
        return data.Height == height && data.Width == width ? data : new ResizedImageDataset(data, height, width);
    }
}
