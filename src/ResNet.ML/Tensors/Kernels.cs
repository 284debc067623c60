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
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= a.Length - 8; i += 8)
                Vector256.Max(Vector256.Create(a.Slice(i, 8)) + Vector256.Create(b.Slice(i, 8)), Vector256<float>.Zero).CopyTo(y.Slice(i, 8));
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
        else if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale); var t = Vector256.Create(shift);
            for (; i <= x.Length - 8; i += 8)
                Vector256.FusedMultiplyAdd(Vector256.Create(x.Slice(i, 8)), s, t).CopyTo(y.Slice(i, 8));
        }
        for (; i < x.Length; i++) y[i] = MathF.FusedMultiplyAdd(x[i], scale, shift);
    }

    /// <summary>y = max(x·scale + shift, 0).</summary>
    public static void ScaleShiftRelu(ReadOnlySpan<float> x, float scale, float shift, Span<float> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(scale); var t = Vector512.Create(shift);
            for (; i <= x.Length - 16; i += 16)
                Vector512.Max(Vector512.FusedMultiplyAdd(Vector512.Create(x.Slice(i, 16)), s, t), Vector512<float>.Zero).CopyTo(y.Slice(i, 16));
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale); var t = Vector256.Create(shift);
            for (; i <= x.Length - 8; i += 8)
                Vector256.Max(Vector256.FusedMultiplyAdd(Vector256.Create(x.Slice(i, 8)), s, t), Vector256<float>.Zero).CopyTo(y.Slice(i, 8));
        }
        for (; i < x.Length; i++) y[i] = MathF.Max(MathF.FusedMultiplyAdd(x[i], scale, shift), 0f);
    }

    /// <summary>y = x·scale + shift + r, then max(·, 0) when <paramref name="relu"/>.</summary>
    public static void ScaleShiftAddRelu(ReadOnlySpan<float> x, float scale, float shift, ReadOnlySpan<float> r, Span<float> y, bool relu)
    {
        int i = 0;
        float floor = relu ? 0f : float.NegativeInfinity;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(scale); var t = Vector512.Create(shift); var f = Vector512.Create(floor);
            for (; i <= x.Length - 16; i += 16)
                Vector512.Max(Vector512.FusedMultiplyAdd(Vector512.Create(x.Slice(i, 16)), s, t) + Vector512.Create(r.Slice(i, 16)), f).CopyTo(y.Slice(i, 16));
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale); var t = Vector256.Create(shift); var f = Vector256.Create(floor);
            for (; i <= x.Length - 8; i += 8)
                Vector256.Max(Vector256.FusedMultiplyAdd(Vector256.Create(x.Slice(i, 8)), s, t) + Vector256.Create(r.Slice(i, 8)), f).CopyTo(y.Slice(i, 8));
        }
        for (; i < x.Length; i++) y[i] = MathF.Max(MathF.FusedMultiplyAdd(x[i], scale, shift) + r[i], floor);
    }

    /// <summary>
    /// dx = scale·(g − meanDy − (x − mean)·k) with g = dy, or dy·(y &gt; 0) when <paramref name="y"/> is given (a fused
    /// ReLU's mask); <paramref name="dx"/> may be <paramref name="dy"/>.
    /// </summary>
    public static void BatchNormInputGradient(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, ReadOnlySpan<float> x, float scale, float meanDy, float mean, float k, Span<float> dx)
    {
        bool masked = !y.IsEmpty;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vs = Vector512.Create(scale); var vmd = Vector512.Create(meanDy); var vm = Vector512.Create(mean); var vk = Vector512.Create(k);
            for (; i <= dy.Length - 16; i += 16)
            {
                var g = Vector512.Create(dy.Slice(i, 16));
                if (masked) g &= Vector512.GreaterThan(Vector512.Create(y.Slice(i, 16)), Vector512<float>.Zero);
                var xc = Vector512.Create(x.Slice(i, 16)) - vm;
                (vs * (g - vmd - xc * vk)).CopyTo(dx.Slice(i, 16));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(scale); var vmd = Vector256.Create(meanDy); var vm = Vector256.Create(mean); var vk = Vector256.Create(k);
            for (; i <= dy.Length - 8; i += 8)
            {
                var g = Vector256.Create(dy.Slice(i, 8));
                if (masked) g &= Vector256.GreaterThan(Vector256.Create(y.Slice(i, 8)), Vector256<float>.Zero);
                var xc = Vector256.Create(x.Slice(i, 8)) - vm;
                (vs * (g - vmd - xc * vk)).CopyTo(dx.Slice(i, 8));
            }
        }
        for (; i < dy.Length; i++) dx[i] = scale * ((masked && !(y[i] > 0) ? 0f : dy[i]) - meanDy - (x[i] - mean) * k);
    }

    /// <summary>
    /// Σg and Σg·(x − mean) with g = dy, or dy·(y &gt; 0) when <paramref name="y"/> is given (a ReLU's backward), g also
    /// written to <paramref name="masked"/> when that is given: a batch norm's gradient sums in one pass over memory.
    /// </summary>
    public static (double Sum, double Dot) SumAndCenteredDot(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, ReadOnlySpan<float> x, float mean, Span<float> masked)
    {
        bool mask = !y.IsEmpty, store = !masked.IsEmpty;
        float s = 0, dot = 0;
        int i = 0;
        if (Vector512.IsHardwareAccelerated && dy.Length >= 16)
        {
            var accS = Vector512<float>.Zero;
            var accD = Vector512<float>.Zero;
            var m = Vector512.Create(mean);
            for (; i <= dy.Length - 16; i += 16)
            {
                var g = Vector512.Create(dy.Slice(i, 16));
                if (mask) g &= Vector512.GreaterThan(Vector512.Create(y.Slice(i, 16)), Vector512<float>.Zero);
                if (store) g.CopyTo(masked.Slice(i, 16));
                accS += g;
                accD += g * (Vector512.Create(x.Slice(i, 16)) - m);
            }
            s = Vector512.Sum(accS);
            dot = Vector512.Sum(accD);
        }
        else if (Vector256.IsHardwareAccelerated && dy.Length >= 8)
        {
            var accS = Vector256<float>.Zero;
            var accD = Vector256<float>.Zero;
            var m = Vector256.Create(mean);
            for (; i <= dy.Length - 8; i += 8)
            {
                var g = Vector256.Create(dy.Slice(i, 8));
                if (mask) g &= Vector256.GreaterThan(Vector256.Create(y.Slice(i, 8)), Vector256<float>.Zero);
                if (store) g.CopyTo(masked.Slice(i, 8));
                accS += g;
                accD += g * (Vector256.Create(x.Slice(i, 8)) - m);
            }
            s = Vector256.Sum(accS);
            dot = Vector256.Sum(accD);
        }
        for (; i < dy.Length; i++)
        {
            float g = mask && !(y[i] > 0) ? 0f : dy[i];
            if (store) masked[i] = g;
            s += g; dot += g * (x[i] - mean);
        }
        return (s, dot);
    }

    /// <summary>acc += dy where y &gt; 0 (a ReLU's backward added into an existing gradient).</summary>
    public static void AddMasked(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, Span<float> acc)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= dy.Length - 16; i += 16)
            {
                var mask = Vector512.GreaterThan(Vector512.Create(y.Slice(i, 16)), Vector512<float>.Zero);
                (Vector512.Create(acc.Slice(i, 16)) + (Vector512.Create(dy.Slice(i, 16)) & mask)).CopyTo(acc.Slice(i, 16));
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= dy.Length - 8; i += 8)
            {
                var mask = Vector256.GreaterThan(Vector256.Create(y.Slice(i, 8)), Vector256<float>.Zero);
                (Vector256.Create(acc.Slice(i, 8)) + (Vector256.Create(dy.Slice(i, 8)) & mask)).CopyTo(acc.Slice(i, 8));
            }
        for (; i < dy.Length; i++) if (y[i] > 0) acc[i] += dy[i];
    }

    /// <summary>
    /// acc[2j] += dy[j] where y[j] &gt; 0, 16 values at a time (a stride-2 subsampling's backward through a ReLU):
    /// the masked values are interleaved with zeros by a two-source permute, so every store is a whole vector. Returns
    /// how many values were done; the caller finishes the rest.
    /// </summary>
    public static int AddMaskedSpread2(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, Span<float> acc)
    {
        int j = 0;
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return 0;
        var evenLow = Vector512.Create(0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6, 16, 7, 16);
        var evenHigh = Vector512.Create(8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13, 16, 14, 16, 15, 16);
        for (; j + 16 <= dy.Length && 2 * j + 32 <= acc.Length; j += 16)
        {
            var g = Vector512.Create(dy.Slice(j, 16)) & Vector512.GreaterThan(Vector512.Create(y.Slice(j, 16)), Vector512<float>.Zero);
            var lo = System.Runtime.Intrinsics.X86.Avx512F.PermuteVar16x32x2(g, evenLow, Vector512<float>.Zero);
            var hi = System.Runtime.Intrinsics.X86.Avx512F.PermuteVar16x32x2(g, evenHigh, Vector512<float>.Zero);
            (Vector512.Create(acc.Slice(2 * j, 16)) + lo).CopyTo(acc.Slice(2 * j, 16));
            (Vector512.Create(acc.Slice(2 * j + 16, 16)) + hi).CopyTo(acc.Slice(2 * j + 16, 16));
        }
        for (; j + 8 <= dy.Length && 2 * j + 16 <= acc.Length; j += 8)
        {
            var g = Vector512.Create(Vector256.Create(dy.Slice(j, 8)), Vector256<float>.Zero)
                  & Vector512.GreaterThan(Vector512.Create(Vector256.Create(y.Slice(j, 8)), Vector256<float>.Zero), Vector512<float>.Zero);
            var lo = System.Runtime.Intrinsics.X86.Avx512F.PermuteVar16x32x2(g, evenLow, Vector512<float>.Zero);
            (Vector512.Create(acc.Slice(2 * j, 16)) + lo).CopyTo(acc.Slice(2 * j, 16));
        }
        return j;
    }
}
