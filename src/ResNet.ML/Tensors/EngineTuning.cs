namespace ResNet.ML.Tensors;

/// <summary>
/// The managed engine's tuning knobs: options of a <see cref="Layers.TrainingPlan"/>, fixed when it is compiled. The
/// defaults are what the kernel benchmarks measured fastest on AVX-512 (<c>bench/ResNet.ML.Bench --layouts</c>,
/// <c>--groups</c>, <c>--bn</c>; <c>bench/BENCHMARKS.md</c>); results do not depend on them beyond the order of sums.
/// </summary>
public sealed record EngineTuning
{
    /// <summary>The measured defaults.</summary>
    public static EngineTuning Default { get; } = new();

    /// <summary>
    /// Direct convolutions take the shifted copies of the image even where the phase-split or virtual-pitch copy would
    /// serve (default false). For A/B runs of the copy layouts only: the shifted copies measured 10–30 % slower.
    /// </summary>
    public bool ForceShiftedConvolution { get; init; }

    /// <summary>
    /// The direct weight-gradient kernel (fewer than 32 output channels) takes a group of images at once, about this many
    /// output pixels (default 2048), so that each register tile's sums are reduced and added once per group.
    /// </summary>
    public int WeightGradientGroupPixels { get; init; } = 2048;

    /// <summary>...but no more images than keep the group's padded copy within this many bytes (default 256 KiB: L2).</summary>
    public long WeightGradientGroupBytes { get; init; } = 256 * 1024;

    /// <summary>
    /// Batch-norm planes smaller than this many values are visited image by image, larger ones channel by channel
    /// (default 1024: image by image up to 28x28, channel by channel from 32x32).
    /// </summary>
    public int BatchNormImageMajorBelow { get; init; } = 1024;

    internal void Validate()
    {
        if (WeightGradientGroupPixels < 1) throw new ArgumentOutOfRangeException(nameof(WeightGradientGroupPixels), $"EngineTuning.WeightGradientGroupPixels must be positive, not {WeightGradientGroupPixels}.");
        if (WeightGradientGroupBytes < 1) throw new ArgumentOutOfRangeException(nameof(WeightGradientGroupBytes), $"EngineTuning.WeightGradientGroupBytes must be positive, not {WeightGradientGroupBytes}.");
        if (BatchNormImageMajorBelow < 0) throw new ArgumentOutOfRangeException(nameof(BatchNormImageMajorBelow), $"EngineTuning.BatchNormImageMajorBelow must not be negative, not {BatchNormImageMajorBelow}.");
    }
}

/// <summary>Which padded copy of an image the direct convolution kernels read (<see cref="DirectConv.ChooseCopy"/>).</summary>
public enum ConvCopy
{
    /// <summary>One copy per kernel column offset: serves every geometry.</summary>
    Shifted,
    /// <summary>One copy split by stride phase, pieces of 16 output pixels in one or two row runs.</summary>
    PhaseSplit,
    /// <summary>Stride 1: one copy at a padded row pitch, pieces over "virtual" pixels of which the real ones are kept.</summary>
    Virtual,
}
