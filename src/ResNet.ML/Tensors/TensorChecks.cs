using ResNet.ML.Layers;

namespace ResNet.ML.Tensors;

internal static class TensorChecks
{
    /// <summary>Throws <see cref="NonFiniteException"/> naming <paramref name="what"/> when a value is NaN or infinite.</summary>
    public static void ThrowIfNotFinite(Tensor t, string what)
    {
        var data = t.Data;
        for (int i = 0; i < data.Length; i++)
        {
            if (!float.IsFinite(data[i]))
            {
                int sample = t.SampleSize == 0 ? 0 : i / t.SampleSize;
                throw new NonFiniteException($"{what} {t.Shape} holds {data[i]} at element {i} (sample {sample}).");
            }
        }
    }
}
