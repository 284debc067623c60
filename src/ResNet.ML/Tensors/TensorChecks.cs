using System.Numerics;
using ResNet.ML.Layers;

namespace ResNet.ML.Tensors;

internal static class TensorChecks
{
    /// <summary>Throws <see cref="NonFiniteException"/> naming <paramref name="what"/> when a value is NaN or infinite.</summary>
    public static void ThrowIfNotFinite(Tensor t, string what)
    {
        int i = IndexOfNonFinite(t.Data);
        if (i >= 0)
        {
            int sample = t.SampleSize == 0 ? 0 : i / t.SampleSize;
            throw new NonFiniteException($"{what} {t.Shape} holds {t.Data[i]} at element {i} (sample {sample}).");
        }
    }

    /// <summary>
    /// The index of the first NaN or infinity in <paramref name="values"/>, or -1. Vectorized because the trainer scans
    /// every weight after every step: x - x is 0 for each finite x and NaN for NaN and both infinities.
    /// </summary>
    public static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<float>.Count)
        {
            var zero = Vector<float>.Zero;
            var vectors = System.Runtime.InteropServices.MemoryMarshal.Cast<float, Vector<float>>(values);
            for (int v = 0; v < vectors.Length; v++)
            {
                var x = vectors[v];
                if (!Vector.EqualsAll(x - x, zero)) { i = v * Vector<float>.Count; break; }
                i = (v + 1) * Vector<float>.Count;
            }
        }
        for (; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return -1;
    }
}
