namespace ResNet.ML.Data;

/// <summary>
/// Random training-time transforms, applied per image in this order: random resized crop, pad + random crop, horizontal
/// flip, normalization, random erasing. The output keeps the dataset's image size. Every random choice comes from a <see cref="Tensors.Rng"/> derived from
/// the loader's seed, epoch and batch, so runs are reproducible. Evaluation uses no augmentation (null).
/// </summary>
public sealed record Augmentation
{
    /// <summary>Zero-pad each side by this many pixels, then crop a random window of the image size (0 = off).</summary>
    public int Padding { get; init; }

    /// <summary>Mirror left-right with probability 1/2.</summary>
    public bool HorizontalFlip { get; init; }

    /// <summary>
    /// Crop a random area and aspect ratio, resized (bilinear) back to the image size; null = off. On folders, decode at
    /// the training size (e.g. 224): the crop is taken from the decoded image.
    /// </summary>
    public RandomResizedCrop? RandomResizedCrop { get; init; }

    /// <summary>
    /// Random erasing (Zhong et al. 2017; torchvision's <c>RandomErasing</c> with value 0): after normalization, a random
    /// rectangle is set to 0, the dataset mean; null = off. Strong on small grayscale sets such as Fashion-MNIST.
    /// </summary>
    public RandomErasing? RandomErasing { get; init; }

    /// <summary>The ResNet paper's CIFAR recipe (Sec. 4.2): pad 4, random 32x32 crop, random horizontal flip.</summary>
    public static Augmentation CifarPaper { get; } = new() { Padding = 4, HorizontalFlip = true };

    /// <summary>ImageNet-style: random resized crop (area 8–100 %, ratio 3/4–4/3) and random horizontal flip.</summary>
    public static Augmentation ImageNet { get; } = new() { RandomResizedCrop = new RandomResizedCrop(), HorizontalFlip = true };

    /// <summary>Random horizontal flip only.</summary>
    public static Augmentation FlipOnly { get; } = new() { HorizontalFlip = true };

    internal void Validate(int height, int width)
    {
        if (Padding < 0 || Padding > Math.Max(height, width))
            throw new ArgumentOutOfRangeException(nameof(Padding), $"Augmentation padding must be in [0, {Math.Max(height, width)}], not {Padding}.");
        RandomResizedCrop?.Validate();
        RandomErasing?.Validate();
    }
}

/// <summary>
/// torchvision's RandomErasing parameters: with probability <paramref name="Probability"/>, erase a rectangle covering
/// a uniform fraction in [MinScale, MaxScale] of the image, aspect ratio log-uniform in [MinRatio, MaxRatio]; after 10
/// draws that do not fit, the image is left as it is.
/// </summary>
public sealed record RandomErasing(double Probability = 0.5, double MinScale = 0.02, double MaxScale = 0.33, double MinRatio = 0.3, double MaxRatio = 3.3)
{
    internal void Validate()
    {
        if (!(Probability >= 0 && Probability <= 1))
            throw new ArgumentOutOfRangeException(nameof(Probability), $"RandomErasing probability must be in [0, 1], not {Probability}.");
        if (!(MinScale > 0 && MinScale <= MaxScale && MaxScale <= 1))
            throw new ArgumentOutOfRangeException(nameof(MinScale), $"RandomErasing scale range must satisfy 0 < min <= max <= 1; got [{MinScale}, {MaxScale}].");
        if (!(MinRatio > 0 && MinRatio <= MaxRatio && double.IsFinite(MaxRatio)))
            throw new ArgumentOutOfRangeException(nameof(MinRatio), $"RandomErasing ratio range must satisfy 0 < min <= max; got [{MinRatio}, {MaxRatio}].");
    }
}

/// <summary>
/// torchvision's RandomResizedCrop parameters: the crop covers a uniform fraction in [MinScale, MaxScale] of the image
/// area, with an aspect ratio log-uniform in [MinRatio, MaxRatio]; after 10 failed draws it falls back to a central crop.
/// </summary>
public sealed record RandomResizedCrop(double MinScale = 0.08, double MaxScale = 1.0, double MinRatio = 3.0 / 4, double MaxRatio = 4.0 / 3)
{
    internal void Validate()
    {
        if (!(MinScale > 0 && MinScale <= MaxScale && MaxScale <= 1))
            throw new ArgumentOutOfRangeException(nameof(MinScale), $"RandomResizedCrop scale range must satisfy 0 < min <= max <= 1; got [{MinScale}, {MaxScale}].");
        if (!(MinRatio > 0 && MinRatio <= MaxRatio && double.IsFinite(MaxRatio)))
            throw new ArgumentOutOfRangeException(nameof(MinRatio), $"RandomResizedCrop ratio range must satisfy 0 < min <= max; got [{MinRatio}, {MaxRatio}].");
    }
}
