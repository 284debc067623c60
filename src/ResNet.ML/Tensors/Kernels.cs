using System.Runtime.Intrinsics;

namespace ResNet.ML.Tensors;

/// <summary>Element-wise kernels shared by the layers (vectorized, single-threaded: callers split the work).</summary>
internal static class Kernels
{
    /// <summary>y = max(x, 0).</summary>
    public static void Relu(ReadOnlySpan<float> x, Span<float> y) => System.Numerics.Tensors.TensorPrimitives.Max(x, 0f, y);

    /// <summary>dx = dy where y &gt; 0, else 0 (PyTorch's threshold_backward on the output).</summary>
    public static void ReluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, Span<float> dx)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= dy.Length - 16; i += 16)
            {
                var mask = Vector512.GreaterThan(Vector512.Create(y.Slice(i, 16)), Vector512<float>.Zero);
                (Vector512.Create(dy.Slice(i, 16)) & mask.AsSingle()).CopyTo(dx.Slice(i, 16));
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= dy.Length - 8; i += 8)
            {
                var mask = Vector256.GreaterThan(Vector256.Create(y.Slice(i, 8)), Vector256<float>.Zero);
                (Vector256.Create(dy.Slice(i, 8)) & mask.AsSingle()).CopyTo(dx.Slice(i, 8));
            }
        for (; i < dy.Length; i++) dx[i] = y[i] > 0 ? dy[i] : 0f;
    }

    /// <summary>y = max(a + b, 0).</summary>
    public static void AddRelu(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= a.Length - 16; i += 16)
                Vector512.Max(Vector512.Create(a.Slice(i, 16)) + Vector512.Create(b.Slice(i, 16)), Vector512<float>.Zero).CopyTo(y.Slice(i, 16));
        for (; i < a.Length; i++) y[i] = MathF.Max(a[i] + b[i], 0f);
    }

    /// <summary>y = x·scale + shift.</summary>
    public static void ScaleShift(ReadOnlySpan<float> x, float scale, float shift, Span<float> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(scale); var t = Vector512.Create(shift);
            for (; i <= x.Length - 16; i += 16)
                Vector512.FusedMultiplyAdd(Vector512.Create(x.Slice(i, 16)), s, t).CopyTo(y.Slice(i, 16));
        }
        for (; i < x.Length; i++) y[i] = MathF.FusedMultiplyAdd(x[i], scale, shift);
    }
}
