using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ResNet.ML.Tensors;

/// <summary>
/// Stride-1 convolution without im2col ("indirect" GEMM): the image is copied once into a zero-padded buffer, and the
/// micro-kernel reads each 16-pixel input vector straight from it at the offset of kernel tap (c, ky, kx), so the 9x
/// column matrix never exists. Output tiles are 8 channels × 32 pixels (two 16-pixel row pieces). Needs AVX-512 and
/// an output width that is a multiple of 16 (the CIFAR ResNets' 32x32 and 16x16 stages); callers fall back to im2col.
/// </summary>
internal static unsafe class DirectConv
{
    public static bool Supports(int stride, int outW) => Vector512.IsHardwareAccelerated && stride == 1 && outW % 16 == 0;

    [ThreadStatic] private static int[]? t_offsets;

    /// <summary>
    /// output[m, oh, ow] = Σ weights · image for one image [cin, h, w]; weights packed by <see cref="Gemm.PackWholeA"/>
    /// (m rows, cin·k·k columns).
    /// </summary>
    public static void Convolve(float* image, int cin, int h, int w, float* packedWeight, int m, int kernel, int padding, int oh, int ow, float* output)
    {
        int hp = h + 2 * padding, wp = w + 2 * padding, planeP = hp * wp;
        int k = cin * kernel * kernel, pixels = oh * ow;
        // Rows past the image are read (never used) by the last tiles' wide loads, hence the slack.
        float[] padded = Engine.Scratch(7, cin * planeP + 64);
        var offsets = t_offsets is { } o && o.Length >= k ? o : t_offsets = new int[Math.Max(k, 64)];
        for (int c = 0; c < cin; c++)
            for (int ky = 0; ky < kernel; ky++)
                for (int kx = 0; kx < kernel; kx++)
                    offsets[(c * kernel + ky) * kernel + kx] = c * planeP + ky * wp + kx;
        fixed (float* pp = padded)
        fixed (int* offs = offsets)
        {
            Pad(image, cin, h, w, padding, pp);
            int groups = pixels / 16;   // 16-pixel row pieces, in output order
            float* dummy = stackalloc float[8 * 16];
            for (int g = 0; g < groups; g += 2)
            {
                int p0 = g * 16, oy0 = p0 / ow, ox0 = p0 - oy0 * ow;
                float* s0 = pp + oy0 * wp + ox0;
                float* s1; int p1;
                if (g + 1 < groups)
                {
                    p1 = p0 + 16;
                    int oy1 = p1 / ow, ox1 = p1 - oy1 * ow;
                    s1 = pp + oy1 * wp + ox1;
                }
                else { s1 = s0; p1 = -1; }
                for (int ir = 0; ir < m; ir += Gemm.Mr)
                {
                    float* a = packedWeight + (long)(ir / Gemm.Mr) * k * Gemm.Mr;
                    float* c0 = output + (long)ir * pixels + p0;
                    float* c1 = p1 >= 0 ? output + (long)ir * pixels + p1 : dummy;
                    int ldc1 = p1 >= 0 ? pixels : 16;
                    Kernel(k, a, s0, s1, offs, c0, c1, pixels, ldc1, Math.Min(Gemm.Mr, m - ir));
                }
            }
        }
    }

    private static void Pad(float* image, int cin, int h, int w, int padding, float* dst)
    {
        int hp = h + 2 * padding, wp = w + 2 * padding;
        new Span<float>(dst, cin * hp * wp + 64).Clear();
        for (int c = 0; c < cin; c++)
            for (int y = 0; y < h; y++)
                Buffer.MemoryCopy(image + ((long)c * h + y) * w, dst + (long)c * hp * wp + (y + padding) * wp + padding, w * 4L, w * 4L);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel(int k, float* a, float* s0, float* s1, int* offs, float* c0, float* c1, int ldc0, int ldc1, int rows)
    {
        Vector512<float> x00 = default, x01 = default, x10 = default, x11 = default, x20 = default, x21 = default, x30 = default, x31 = default;
        Vector512<float> x40 = default, x41 = default, x50 = default, x51 = default, x60 = default, x61 = default, x70 = default, x71 = default;
        for (int p = 0; p < k; p++)
        {
            int off = offs[p];
            var b0 = Vector512.Load(s0 + off);
            var b1 = Vector512.Load(s1 + off);
            x00 = Vector512.FusedMultiplyAdd(Vector512.Create(a[0]), b0, x00); x01 = Vector512.FusedMultiplyAdd(Vector512.Create(a[0]), b1, x01);
            x10 = Vector512.FusedMultiplyAdd(Vector512.Create(a[1]), b0, x10); x11 = Vector512.FusedMultiplyAdd(Vector512.Create(a[1]), b1, x11);
            x20 = Vector512.FusedMultiplyAdd(Vector512.Create(a[2]), b0, x20); x21 = Vector512.FusedMultiplyAdd(Vector512.Create(a[2]), b1, x21);
            x30 = Vector512.FusedMultiplyAdd(Vector512.Create(a[3]), b0, x30); x31 = Vector512.FusedMultiplyAdd(Vector512.Create(a[3]), b1, x31);
            x40 = Vector512.FusedMultiplyAdd(Vector512.Create(a[4]), b0, x40); x41 = Vector512.FusedMultiplyAdd(Vector512.Create(a[4]), b1, x41);
            x50 = Vector512.FusedMultiplyAdd(Vector512.Create(a[5]), b0, x50); x51 = Vector512.FusedMultiplyAdd(Vector512.Create(a[5]), b1, x51);
            x60 = Vector512.FusedMultiplyAdd(Vector512.Create(a[6]), b0, x60); x61 = Vector512.FusedMultiplyAdd(Vector512.Create(a[6]), b1, x61);
            x70 = Vector512.FusedMultiplyAdd(Vector512.Create(a[7]), b0, x70); x71 = Vector512.FusedMultiplyAdd(Vector512.Create(a[7]), b1, x71);
            a += Gemm.Mr;
        }
        if (rows == Gemm.Mr)
        {
            Store(x00, x01, c0, c1); Store(x10, x11, c0 + ldc0, c1 + ldc1); Store(x20, x21, c0 + 2 * ldc0, c1 + 2 * ldc1); Store(x30, x31, c0 + 3 * ldc0, c1 + 3 * ldc1);
            Store(x40, x41, c0 + 4 * ldc0, c1 + 4 * ldc1); Store(x50, x51, c0 + 5 * ldc0, c1 + 5 * ldc1); Store(x60, x61, c0 + 6 * ldc0, c1 + 6 * ldc1); Store(x70, x71, c0 + 7 * ldc0, c1 + 7 * ldc1);
            return;
        }
        Vector512<float>* lo = stackalloc Vector512<float>[8] { x00, x10, x20, x30, x40, x50, x60, x70 };
        Vector512<float>* hi = stackalloc Vector512<float>[8] { x01, x11, x21, x31, x41, x51, x61, x71 };
        for (int r = 0; r < rows; r++) Store(lo[r], hi[r], c0 + r * ldc0, c1 + r * ldc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> v0, Vector512<float> v1, float* c0, float* c1)
    {
        Vector512.Store(v0, c0);
        Vector512.Store(v1, c1);
    }

    /// <summary>Floats of the per-thread vector accumulator <see cref="AccumulateWeightGradient"/> needs.</summary>
    public static int AccumulatorLength(int m, int cin, int kernel) => m * cin * kernel * kernel * 16;

    /// <summary>
    /// acc[o, t, 0..16] += Σ over 16-pixel pieces of dY[o, piece] · x_padded[tap t, piece], for one image; the 16 lanes are
    /// summed by <see cref="ReduceWeightGradient"/> once per batch part, so no horizontal sum runs per image.
    /// </summary>
    public static void AccumulateWeightGradient(float* image, int cin, int h, int w, float* gradOutput, int m, int kernel, int padding, int oh, int ow, float* acc)
    {
        int hp = h + 2 * padding, wp = w + 2 * padding, planeP = hp * wp;
        int k = cin * kernel * kernel, pixels = oh * ow, groups = pixels / 16;
        float[] padded = Engine.Scratch(7, cin * planeP + 64);
        var offsets = t_offsets is { } o && o.Length >= k ? o : t_offsets = new int[Math.Max(k, 64)];
        for (int c = 0; c < cin; c++)
            for (int ky = 0; ky < kernel; ky++)
                for (int kx = 0; kx < kernel; kx++)
                    offsets[(c * kernel + ky) * kernel + kx] = c * planeP + ky * wp + kx;
        int* bases = stackalloc int[groups];
        for (int g = 0; g < groups; g++) { int p = g * 16, oy = p / ow; bases[g] = oy * wp + (p - oy * ow); }
        fixed (float* pp = padded)
        fixed (int* offs = offsets)
        {
            Pad(image, cin, h, w, padding, pp);
            int o0 = 0;
            for (; o0 + 4 <= m; o0 += 4)
            {
                int t0 = 0;
                for (; t0 + 4 <= k; t0 += 4) Tile4x4(gradOutput + (long)o0 * pixels, pixels, pp, offs + t0, bases, groups, acc + ((long)o0 * k + t0) * 16, k * 16);
                for (; t0 < k; t0++)
                    for (int oi = o0; oi < o0 + 4; oi++) Tile1x1(gradOutput + (long)oi * pixels, pp + offs[t0], bases, groups, acc + ((long)oi * k + t0) * 16);
            }
            for (; o0 < m; o0++)
                for (int t0 = 0; t0 < k; t0++) Tile1x1(gradOutput + (long)o0 * pixels, pp + offs[t0], bases, groups, acc + ((long)o0 * k + t0) * 16);
        }
    }

    /// <summary>weightGrad[o, t] = Σ lanes of acc[o, t] (overwrites).</summary>
    public static void ReduceWeightGradient(float* acc, int count, float* weightGrad)
    {
        for (int i = 0; i < count; i++) weightGrad[i] = Vector512.Sum(Vector512.Load(acc + (long)i * 16));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x4(float* dy, int ldy, float* x, int* offs, int* bases, int groups, float* acc, int ldacc)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        float* x0 = x + offs[0], x1 = x + offs[1], x2 = x + offs[2], x3 = x + offs[3];
        for (int g = 0; g < groups; g++)
        {
            int b = bases[g], p = g * 16;
            var v0 = Vector512.Load(x0 + b); var v1 = Vector512.Load(x1 + b); var v2 = Vector512.Load(x2 + b); var v3 = Vector512.Load(x3 + b);
            var d = Vector512.Load(dy + p);
            a00 = Vector512.FusedMultiplyAdd(d, v0, a00); a01 = Vector512.FusedMultiplyAdd(d, v1, a01); a02 = Vector512.FusedMultiplyAdd(d, v2, a02); a03 = Vector512.FusedMultiplyAdd(d, v3, a03);
            d = Vector512.Load(dy + ldy + p);
            a10 = Vector512.FusedMultiplyAdd(d, v0, a10); a11 = Vector512.FusedMultiplyAdd(d, v1, a11); a12 = Vector512.FusedMultiplyAdd(d, v2, a12); a13 = Vector512.FusedMultiplyAdd(d, v3, a13);
            d = Vector512.Load(dy + 2 * ldy + p);
            a20 = Vector512.FusedMultiplyAdd(d, v0, a20); a21 = Vector512.FusedMultiplyAdd(d, v1, a21); a22 = Vector512.FusedMultiplyAdd(d, v2, a22); a23 = Vector512.FusedMultiplyAdd(d, v3, a23);
            d = Vector512.Load(dy + 3 * ldy + p);
            a30 = Vector512.FusedMultiplyAdd(d, v0, a30); a31 = Vector512.FusedMultiplyAdd(d, v1, a31); a32 = Vector512.FusedMultiplyAdd(d, v2, a32); a33 = Vector512.FusedMultiplyAdd(d, v3, a33);
        }
        Add(acc, a00); Add(acc + 16, a01); Add(acc + 32, a02); Add(acc + 48, a03); acc += ldacc;
        Add(acc, a10); Add(acc + 16, a11); Add(acc + 32, a12); Add(acc + 48, a13); acc += ldacc;
        Add(acc, a20); Add(acc + 16, a21); Add(acc + 32, a22); Add(acc + 48, a23); acc += ldacc;
        Add(acc, a30); Add(acc + 16, a31); Add(acc + 32, a32); Add(acc + 48, a33);
    }

    private static void Tile1x1(float* dy, float* x, int* bases, int groups, float* acc)
    {
        var a = Vector512<float>.Zero;
        for (int g = 0; g < groups; g++) a = Vector512.FusedMultiplyAdd(Vector512.Load(dy + g * 16), Vector512.Load(x + bases[g]), a);
        Add(acc, a);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Add(float* acc, Vector512<float> v) => Vector512.Store(Vector512.Load(acc) + v, acc);
}
