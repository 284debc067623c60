using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResNet.ML.Tensors;

/// <summary>
/// Direct convolution for AVX2 machines without AVX-512, where <see cref="DirectConv"/>'s kernels do not run.
/// im2col + GEMM reuses each packed column element only once per output channel, and with 16 channels packing the
/// columns cost as much as the multiply-adds; this kernel reads the image in place instead.
/// </summary>
/// <remarks>
/// The image is copied once, zero-padded, at a row pitch <c>Wp = w + 2·padding</c>. At that pitch output pixel
/// (oy, ox) of tap (c, ky, kx) reads the padded copy at <c>c·plane + ky·Wp + kx + oy·Wp + ox</c>: one contiguous load per
/// 8 consecutive "virtual" pixels, of which those with ox ≥ ow are computed and dropped. With a stride above 1 the copy
/// is split into stride x stride phases, which makes each tap's reads contiguous again (see <c>Prepare</c>). The weights are read as
/// <see cref="Gemm.PackWholeA"/> packs them, 8 output channels' worth of consecutive floats per tap. A register tile is
/// 4 output channels by 24 virtual pixels (12 accumulators; 8 by 8 for the leftover pixels), summed over every tap in
/// registers and stored once: 4 x 24 measured 16–19 % faster training than 8 x 8 alone (bench/BENCHMARKS.md, "AVX2").
/// </remarks>
internal static unsafe class DirectConvAvx2
{
    /// <summary>Whether these kernels serve: AVX2 with FMA, and a stride up to 4 (larger strides split the copy into too many phases).</summary>
    public static bool Supports(int stride) => stride is >= 1 and <= 4 && Vector256.IsHardwareAccelerated && Fma.IsSupported;

    [ThreadStatic] private static int[]? t_offsets;

    /// <summary>output[m, oh, ow] = Σ weights · image for one image [cin, h, w]; weights packed by <see cref="Gemm.PackWholeA"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Convolve(float* image, int cin, int h, int w, float* packedWeight, int m, int kernel, int stride, int padding, int oh, int ow, float* output)
    {
        var padded = Prepare(image, cin, h, w, kernel, stride, padding, oh, ow, out var offsets, out int pitch, out int vectors);
        int taps = cin * kernel * kernel, ldv = vectors * 8;
        float[] virtualOutput = Engine.Scratch(ScratchSlot.VirtualOutput, Gemm.RoundUp(m, Gemm.Mr) * ldv);
        fixed (float* pp = padded, pv = virtualOutput)
        fixed (int* offs = offsets)
        {
            for (int ob = 0; ob < m; ob += Gemm.Mr)
            {
                float* panel = packedWeight + (long)ob * taps;   // panel ob/Mr starts at (ob/Mr)·taps·Mr
                float* v = pv + (long)ob * ldv;
                int q = 0;
                for (; q + 3 <= vectors; q += 3)
                {
                    Tile4x3(pp + q * 8, offs, taps, panel, v + q * 8, ldv);
                    if (ob + 4 < m) Tile4x3(pp + q * 8, offs, taps, panel + 4, v + 4L * ldv + q * 8, ldv);
                }
                for (; q < vectors; q++) Tile(pp + q * 8, offs, taps, panel, v + q * 8, ldv);
            }
            // The real columns of each virtual row, for the real output channels.
            for (int oc = 0; oc < m; oc++)
            {
                float* src = pv + (long)oc * ldv, dst = output + (long)oc * oh * ow;
                for (int oy = 0; oy < oh; oy++) Buffer.MemoryCopy(src + oy * pitch, dst + oy * ow, ow * 4L, ow * 4L);
            }
        }
    }

    /// <summary>
    /// 4 output channels (half a weight panel, 8 floats apart per tap) x 24 virtual pixels, summed over all taps: 12
    /// accumulators, 7 loads per 12 multiply-adds. Not inlined, so that the loop's pointers stay in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x3(float* x, int* offsets, int taps, float* w, float* v, int ldv)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        int* end = offsets + taps;
        for (int* o = offsets; o < end; o++, w += 8)
        {
            float* xt = x + *o;
            var x0 = Vector256.Load(xt);
            var x1 = Vector256.Load(xt + 8);
            var x2 = Vector256.Load(xt + 16);
            var b = Vector256.Create(w[0]);
            c00 = Fma.MultiplyAdd(b, x0, c00); c01 = Fma.MultiplyAdd(b, x1, c01); c02 = Fma.MultiplyAdd(b, x2, c02);
            b = Vector256.Create(w[1]);
            c10 = Fma.MultiplyAdd(b, x0, c10); c11 = Fma.MultiplyAdd(b, x1, c11); c12 = Fma.MultiplyAdd(b, x2, c12);
            b = Vector256.Create(w[2]);
            c20 = Fma.MultiplyAdd(b, x0, c20); c21 = Fma.MultiplyAdd(b, x1, c21); c22 = Fma.MultiplyAdd(b, x2, c22);
            b = Vector256.Create(w[3]);
            c30 = Fma.MultiplyAdd(b, x0, c30); c31 = Fma.MultiplyAdd(b, x1, c31); c32 = Fma.MultiplyAdd(b, x2, c32);
        }
        Vector256.Store(c00, v); Vector256.Store(c01, v + 8); Vector256.Store(c02, v + 16); v += ldv;
        Vector256.Store(c10, v); Vector256.Store(c11, v + 8); Vector256.Store(c12, v + 16); v += ldv;
        Vector256.Store(c20, v); Vector256.Store(c21, v + 8); Vector256.Store(c22, v + 16); v += ldv;
        Vector256.Store(c30, v); Vector256.Store(c31, v + 8); Vector256.Store(c32, v + 16);
    }

    /// <summary>8 output channels x 8 virtual pixels, summed over all taps (the vectors left over from <see cref="Tile4x3"/>).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile(float* x, int* offsets, int taps, float* w, float* v, int ldv)
    {
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        for (int t = 0; t < taps; t++, w += 8)
        {
            var xv = Vector256.Load(x + offsets[t]);
            c0 = Fma.MultiplyAdd(Vector256.Create(w[0]), xv, c0);
            c1 = Fma.MultiplyAdd(Vector256.Create(w[1]), xv, c1);
            c2 = Fma.MultiplyAdd(Vector256.Create(w[2]), xv, c2);
            c3 = Fma.MultiplyAdd(Vector256.Create(w[3]), xv, c3);
            c4 = Fma.MultiplyAdd(Vector256.Create(w[4]), xv, c4);
            c5 = Fma.MultiplyAdd(Vector256.Create(w[5]), xv, c5);
            c6 = Fma.MultiplyAdd(Vector256.Create(w[6]), xv, c6);
            c7 = Fma.MultiplyAdd(Vector256.Create(w[7]), xv, c7);
        }
        Vector256.Store(c0, v); Vector256.Store(c1, v + ldv); Vector256.Store(c2, v + 2 * ldv); Vector256.Store(c3, v + 3 * ldv);
        Vector256.Store(c4, v + 4 * ldv); Vector256.Store(c5, v + 5 * ldv); Vector256.Store(c6, v + 6 * ldv); Vector256.Store(c7, v + 7 * ldv);
    }

    /// <summary>
    /// grad[o, t] += Σ over one image's pixels of dY[o, pixel] · x_padded[tap t, pixel] (grad is [m, cin·k·k], as
    /// dY·colᵀ). dY is copied to the virtual pitch with zeros at the dropped columns, so whole vectors multiply; a
    /// register tile is 4 output channels x 3 taps, reduced across lanes once per image.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AccumulateWeightGradient(float* image, int cin, int h, int w, float* gradOutput, int m, int kernel, int stride, int padding, int oh, int ow, float* grad)
    {
        var padded = Prepare(image, cin, h, w, kernel, stride, padding, oh, ow, out var offsets, out int pitch, out int vectors);
        int taps = cin * kernel * kernel, ldv = vectors * 8;
        float[] dyVirtual = Engine.Scratch(ScratchSlot.GradientCopy, m * ldv);
        fixed (float* pp = padded, pd = dyVirtual)
        fixed (int* offs = offsets)
        {
            for (int oc = 0; oc < m; oc++)
            {
                float* d = pd + (long)oc * ldv, src = gradOutput + (long)oc * oh * ow;
                new Span<float>(d, ldv).Clear();
                for (int oy = 0; oy < oh; oy++) Buffer.MemoryCopy(src + oy * ow, d + oy * pitch, ow * 4L, ow * 4L);
            }
            int o0 = 0;
            for (; o0 + 4 <= m; o0 += 4)
            {
                int t0 = 0;
                for (; t0 + 3 <= taps; t0 += 3) Tile4x3Gradient(pp, offs + t0, pd + (long)o0 * ldv, ldv, vectors, grad + (long)o0 * taps + t0, taps);
                for (; t0 < taps; t0++)
                    for (int r = 0; r < 4; r++) grad[(long)(o0 + r) * taps + t0] += Dot(pd + (long)(o0 + r) * ldv, pp + offs[t0], vectors);
            }
            for (; o0 < m; o0++)
                for (int t0 = 0; t0 < taps; t0++) grad[(long)o0 * taps + t0] += Dot(pd + (long)o0 * ldv, pp + offs[t0], vectors);
        }
    }

    /// <summary>
    /// 4 output channels x 3 taps over all of one image's vectors: 12 accumulators, the 3 tap vectors and one dY
    /// vector at a time, 16 registers (3 x 4 would need 17 and spill). Not inlined, so its pointers stay in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x3Gradient(float* x, int* offsets, float* dy, int ldv, int vectors, float* grad, int ldg)
    {
        float* x0 = x + offsets[0], x1 = x + offsets[1], x2 = x + offsets[2];
        float* d0 = dy, d1 = dy + ldv, d2 = dy + 2 * ldv, d3 = dy + 3 * ldv;
        Vector256<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
        for (int q = 0; q < vectors * 8; q += 8)
        {
            var v0 = Vector256.Load(x0 + q); var v1 = Vector256.Load(x1 + q); var v2 = Vector256.Load(x2 + q);
            var g = Vector256.Load(d0 + q);
            a00 = Fma.MultiplyAdd(g, v0, a00); a01 = Fma.MultiplyAdd(g, v1, a01); a02 = Fma.MultiplyAdd(g, v2, a02);
            g = Vector256.Load(d1 + q);
            a10 = Fma.MultiplyAdd(g, v0, a10); a11 = Fma.MultiplyAdd(g, v1, a11); a12 = Fma.MultiplyAdd(g, v2, a12);
            g = Vector256.Load(d2 + q);
            a20 = Fma.MultiplyAdd(g, v0, a20); a21 = Fma.MultiplyAdd(g, v1, a21); a22 = Fma.MultiplyAdd(g, v2, a22);
            g = Vector256.Load(d3 + q);
            a30 = Fma.MultiplyAdd(g, v0, a30); a31 = Fma.MultiplyAdd(g, v1, a31); a32 = Fma.MultiplyAdd(g, v2, a32);
        }
        grad[0] += Vector256.Sum(a00); grad[1] += Vector256.Sum(a01); grad[2] += Vector256.Sum(a02);
        grad += ldg;
        grad[0] += Vector256.Sum(a10); grad[1] += Vector256.Sum(a11); grad[2] += Vector256.Sum(a12);
        grad += ldg;
        grad[0] += Vector256.Sum(a20); grad[1] += Vector256.Sum(a21); grad[2] += Vector256.Sum(a22);
        grad += ldg;
        grad[0] += Vector256.Sum(a30); grad[1] += Vector256.Sum(a31); grad[2] += Vector256.Sum(a32);
    }

    private static float Dot(float* a, float* b, int vectors)
    {
        var acc = Vector256<float>.Zero;
        for (int q = 0; q < vectors * 8; q += 8) acc = Fma.MultiplyAdd(Vector256.Load(a + q), Vector256.Load(b + q), acc);
        return Vector256.Sum(acc);
    }

    /// <summary>
    /// The zero-padded copy of one image (scratch slot 7) and each tap's offset into it, at the row pitch
    /// <paramref name="pitch"/> of the virtual pixels, and how many 8-pixel vectors cover the output's virtual pixels.
    /// Stride 1: the padded image as it is, pitch w + 2·padding. Stride s: split into s x s phases (padded row
    /// r·s + py, column q·s + px at phase (py, px), row r, column q), so that a tap reads each output row as one
    /// contiguous run; the pitch is a phase's width. The last vector may read up to 7 floats past the last plane: 16
    /// floats of zero follow it.
    /// </summary>
    private static float[] Prepare(float* image, int cin, int h, int w, int kernel, int stride, int padding, int oh, int ow,
        out int[] offsets, out int pitch, out int vectors)
    {
        int hp = h + 2 * padding, wp = w + 2 * padding;
        int hq = (hp + stride - 1) / stride, wq = (wp + stride - 1) / stride, phasePlane = hq * wq, channel = stride * stride * phasePlane;
        pitch = wq;
        int taps = cin * kernel * kernel;
        vectors = ((oh - 1) * wq + ow + 7) / 8;
        float[] padded = Engine.Scratch(ScratchSlot.PaddedInput, cin * channel + 16);
        offsets = t_offsets is { } o && o.Length >= taps ? o : t_offsets = new int[Math.Max(taps, 2 * (t_offsets?.Length ?? 0))];
        for (int c = 0, t = 0; c < cin; c++)
            for (int ky = 0; ky < kernel; ky++)
                for (int kx = 0; kx < kernel; kx++)
                    offsets[t++] = c * channel + (ky % stride * stride + kx % stride) * phasePlane + ky / stride * wq + kx / stride;
        fixed (float* pp = padded)
        {
            if (stride == 1) Pad(image, cin, h, w, padding, hp, wp, pp);
            else PadPhases(image, cin, h, w, padding, stride, hq, wq, pp);
            new Span<float>(pp + cin * channel, 16).Clear();
        }
        return padded;
    }

    private static void PadPhases(float* image, int cin, int h, int w, int padding, int stride, int hq, int wq, float* dst)
    {
        for (int c = 0; c < cin; c++)
        {
            float* s = image + (long)c * h * w;
            for (int py = 0; py < stride; py++)
                for (int px = 0; px < stride; px++)
                {
                    float* d = dst + ((long)(c * stride + py) * stride + px) * hq * wq;
                    for (int r = 0; r < hq; r++)
                    {
                        int y = r * stride + py - padding;
                        float* row = d + (long)r * wq;
                        if ((uint)y >= (uint)h) { new Span<float>(row, wq).Clear(); continue; }
                        float* src = s + (long)y * w;
                        for (int q = 0, x = px - padding; q < wq; q++, x += stride) row[q] = (uint)x < (uint)w ? src[x] : 0f;
                    }
                }
        }
    }

    private static void Pad(float* image, int cin, int h, int w, int padding, int hp, int wp, float* dst)
    {
        for (int c = 0; c < cin; c++)
        {
            float* d = dst + (long)c * hp * wp;
            float* s = image + (long)c * h * w;
            new Span<float>(d, padding * wp).Clear();
            for (int y = 0; y < h; y++)
            {
                float* row = d + (long)(y + padding) * wp;
                for (int x = 0; x < padding; x++) { row[x] = 0; row[padding + w + x] = 0; }
                Buffer.MemoryCopy(s + (long)y * w, row + padding, w * 4L, w * 4L);
            }
            new Span<float>(d + (long)(h + padding) * wp, padding * wp).Clear();
        }
    }
}
