namespace ResNet.ML.Layers;

/// <summary>
/// The per-part partial sums of a parallel reduction: each part of a convolution's backward adds its images' weight and
/// bias gradients into its own array, and the thread that started the region adds the arrays up in part order
/// (deterministic for a given thread count). Only one convolution reduces at a time, so a <see cref="TrainingPlan"/>
/// gives all its convolutions one set, sized for the largest. Grow-only; contents undefined between reductions.
/// </summary>
internal sealed class PartialSums
{
    public float[][] Weights { get; private set; } = [];
    public float[][] Biases { get; private set; } = [];

    /// <summary>Makes sure there are <paramref name="parts"/> arrays of at least the given lengths.</summary>
    public void Reserve(int parts, int weights, int biases)
    {
        Weights = Grow(Weights, parts, weights);
        Biases = Grow(Biases, parts, biases);
    }

    private static float[][] Grow(float[][] arrays, int parts, int length)
    {
        if (arrays.Length < parts) Array.Resize(ref arrays, parts);
        for (int p = 0; p < parts; p++)
            if (arrays[p] is null || arrays[p].Length < length) arrays[p] = GC.AllocateUninitializedArray<float>(length, pinned: true);
        return arrays;
    }

    /// <summary>The floats held, for the plan's memory account.</summary>
    public long Floats => Weights.Sum(a => (long)(a?.Length ?? 0)) + Biases.Sum(a => (long)(a?.Length ?? 0));
}
