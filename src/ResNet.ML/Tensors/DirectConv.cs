using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResNet.ML.Tensors;

/// <summary>
/// Convolution without im2col ("indirect" GEMM). The image is copied once into a zero-padded buffer whose columns are
/// split by phase (x mod stride), so that for any stride the input pixels under kernel tap (c, ky, kx) for 8 or 16
/// consecutive output pixels of a row are contiguous: the micro-kernel loads them straight from the buffer at
/// tap offset + pixel base, and the 9x column matrix never exists. Output tiles are 8 channels × 32 pixels.
/// Other output sizes (Fashion-MNIST's 28x28, 14x14 and 7x7, ImageNet's 28x28 and 14x14) use, for stride 1, the same
/// padded copy with pieces over "virtual" pixels at the padded pitch (<see cref="PrepareVirtual"/>), else a "shifted"
/// copy per kernel column and row phase (<see cref="PrepareShifted"/>); the last 16-pixel piece may then be partial.
/// Needs AVX-512; callers fall back to im2col otherwise.
/// </summary>
internal static unsafe partial class DirectConv
{
    /// <summary>
    /// The shifted layout streams the whole weight matrix per output tile, which only pays while it stays in cache: for
    /// more taps than this (e.g. 3x3 over 256 channels), im2col + the blocked GEMM is faster.
    /// </summary>
    private const int MaxShiftedTaps = 128 * 9;

    /// <summary>Whether the direct kernels serve a convolution whose padded copy is <paramref name="copy"/> (see <see cref="ChooseCopy"/>).</summary>
    public static bool Supports(int cin, int kernel, ConvCopy copy) =>
        Vector512.IsHardwareAccelerated && (copy == ConvCopy.PhaseSplit || cin * kernel * kernel <= MaxShiftedTaps);

    /// <summary>
    /// Which padded copy of the image the direct kernels take for this geometry: the phase-split copy where its pieces
    /// tile, else the virtual-pitch copy (stride 1), else the shifted copies. <paramref name="forceShifted"/> is the
    /// benchmarks' A/B knob (<see cref="EngineTuning.ForceShiftedConvolution"/>).
    /// </summary>
    public static ConvCopy ChooseCopy(int kernel, int stride, int outH, int outW, bool forceShifted = false) =>
        forceShifted ? ConvCopy.Shifted
        : PhaseSplit(kernel, stride, outH, outW) ? ConvCopy.PhaseSplit
        : Virtual(kernel, stride, outH, outW) ? ConvCopy.Virtual
        : ConvCopy.Shifted;

    /// <summary>
    /// Whether the single phase-split copy serves: every 16-pixel piece is one row run or two 8-wide ones. For stride 1
    /// the two-run form (a shuffle per load) is used only where the virtual-pitch copy would cost more than an eighth
    /// more pieces: 8x8 outputs, where it measured 3–6 % faster than the shifted copies (bench --layouts).
    /// </summary>
    private static bool PhaseSplit(int kernel, int stride, int oh, int ow) =>
        ow % 8 == 0 && oh * ow % 16 == 0 && (stride > 1 || ow % 16 == 0 || !Virtual(kernel, stride, oh, ow));

    /// <summary>
    /// Whether the virtual-pitch copy (stride 1) serves: it keeps a tap row's kernel columns in shared cache lines, which
    /// measured 10–30 % faster than the shifted copies (bench --layouts), unless its dropped columns cost more than an
    /// eighth more pieces (8x8 outputs: 5 pieces instead of 4; those take the phase-split copy).
    /// </summary>
    private static bool Virtual(int kernel, int stride, int oh, int ow)
    {
        if (stride != 1) return false;
        int pitch = ow + kernel - 1, virtualPieces = ((oh - 1) * pitch + ow + 15) / 16, pieces = (oh * ow + 15) / 16;
        return virtualPieces * 8 <= pieces * 9;
    }

    [ThreadStatic] private static int[]? t_offsets;
    [ThreadStatic] private static int[]? t_bases;

    /// <summary>The padded, phase-split copy of one image and the address tables of its taps and 16-pixel pieces.</summary>
    private readonly struct Layout
    {
        public readonly int Taps, Pieces, ImageStride;
        public readonly int Tail;          // valid pixels of the last piece (16 when the pixel count tiles exactly)
        public readonly bool Contiguous;   // each piece lies in one output row: one 16-wide load instead of two 8-wide
        public readonly int Pitch;         // > 0: pieces run over "virtual" pixels oy·Pitch + ox, of which ox < ow are real
        public readonly int RowPitch;      // output pixel (oy, ox) of tap t is at offsets[t] + oy·RowPitch + ox
        public Layout(int taps, int pieces, int tail, bool contiguous, int imageStride, int rowPitch, int pitch = 0) =>
            (Taps, Pieces, Tail, Contiguous, ImageStride, RowPitch, Pitch) = (taps, pieces, tail, contiguous, imageStride, rowPitch, pitch);
    }

    /// <summary>
    /// Fills the thread's scratch slot 7 with the padded image (layout [c][phase][row][column/stride]) and the offset
    /// tables: tap t at offsets[t]; piece q's low and high 8 pixels at bases[2q], bases[2q+1].
    /// </summary>
    private static Layout Prepare(ConvCopy copy, float* image, int cin, int h, int w, int kernel, int stride, int padding, int oh, int ow,
        out float[] padded, out int[] offsets, out int[] bases) =>
        Prepare(copy, image, 1, 0, cin, h, w, kernel, stride, padding, oh, ow, out padded, out offsets, out bases);

    /// <summary>As above for <paramref name="images"/> images <paramref name="imageStride"/> floats apart, padded
    /// copies <see cref="Layout.ImageStride"/> apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Layout Prepare(ConvCopy copy, float* first, int images, long imageStride, int cin, int h, int w, int kernel, int stride, int padding, int oh, int ow,
        out float[] padded, out int[] offsets, out int[] bases)
    {
        if (copy == ConvCopy.Virtual)
            return PrepareVirtual(first, images, imageStride, cin, h, w, kernel, padding, oh, ow, out padded, out offsets, out bases);
        if (copy == ConvCopy.Shifted)
            return PrepareShifted(first, images, imageStride, cin, h, w, kernel, stride, padding, oh, ow, out padded, out offsets, out bases);
        int hp = h + 2 * padding, wp = w + 2 * padding, wq = (wp + stride - 1) / stride;
        int phasePlane = hp * wq, plane = stride * phasePlane;
        int taps = cin * kernel * kernel, pixels = oh * ow, pieces = pixels / 16;
        padded = Buffers(images * cin * plane, taps, pieces, out offsets, out bases);
        for (int c = 0; c < cin; c++)
            for (int ky = 0; ky < kernel; ky++)
                for (int kx = 0; kx < kernel; kx++)
                    offsets[(c * kernel + ky) * kernel + kx] = c * plane + kx % stride * phasePlane + ky * wq + kx / stride;
        for (int half = 0; half < 2 * pieces; half++)
        {
            int p = half * 8, oy = p / ow, ox = p - oy * ow;
            bases[half] = oy * stride * wq + ox;
        }
        for (int i = 0; i < images; i++)
        {
        var dst = padded.AsSpan(i * cin * plane, cin * plane);
        float* image = first + i * imageStride;
        for (int c = 0; c < cin; c++)
            for (int y = 0; y < h; y++)
            {
                float* src = image + ((long)c * h + y) * w;
                int row = (y + padding) * wq;
                if (stride == 1)
                    new ReadOnlySpan<float>(src, w).CopyTo(dst.Slice(c * plane + row + padding, w));
                else
                    for (int phase = 0; phase < stride; phase++)
                    {
                        // padded column xp = xq·stride + phase holds image column xp − padding
                        var d = dst.Slice(c * plane + phase * phasePlane + row, wq);
                        int x = phase - padding, xq = 0;
                        for (; x < 0; x += stride) xq++;
                        if (stride == 2 && x < w)
                            fixed (float* pd = d) CopyEvery2(src + x, pd + xq, (w - x + 1) / 2);
                        else
                            for (; x < w; x += stride, xq++) d[xq] = src[x];
                    }
            }
        }
        return new Layout(taps, pieces, 16, ow % 16 == 0, cin * plane, stride * wq);
    }

    /// <summary>
    /// dst[j] = src[2j] for j &lt; count: a stride-2 copy's column split, 16 values per two-source permute. Reads no
    /// further than src[2·(count − 1)].
    /// </summary>
    private static void CopyEvery2(float* src, float* dst, int count)
    {
        int j = 0;
        if (Avx512F.IsSupported)
        {
            var evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            for (; j + 16 < count; j += 16)
                Vector512.Store(Avx512F.PermuteVar16x32x2(Vector512.Load(src + 2 * j), evens, Vector512.Load(src + 2 * j + 16)), dst + j);
        }
        for (; j < count; j++) dst[j] = src[2 * j];
    }

    /// <summary>The thread's zeroed padded-image buffer (slot 7, with slack for the last piece's over-read) and its tables.</summary>
    private static float[] Buffers(int floats, int taps, int pieces, out int[] offsets, out int[] bases)
    {
        var padded = Engine.Scratch(ScratchSlot.PaddedInput, floats + 64);
        padded.AsSpan(0, floats + 64).Clear();
        // (slack: the outer-product weight gradient pads the tap list to whole tap blocks)
        offsets = t_offsets is { } o && o.Length >= taps + OuterTaps ? o : t_offsets = new int[Math.Max(taps + OuterTaps, 64)];
        bases = t_bases is { } b && b.Length >= 2 * pieces ? b : t_bases = new int[Math.Max(2 * pieces, 64)];
        return padded;
    }

    /// <summary>
    /// Stride 1, rows that do not tile into 16-pixel pieces (28, 14, 7 wide): the single zero-padded copy
    /// ([c][row][column], pitch w + 2·padding), with pieces running over "virtual" output pixels v = oy·pitch + ox. The
    /// pitch − ow virtual pixels at the end of each row are computed and dropped, but every tap's pieces are plain
    /// contiguous loads, and the kernel columns of a tap row share cache lines (the shifted copies do not).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Layout PrepareVirtual(float* first, int images, long imageStride, int cin, int h, int w, int kernel, int padding, int oh, int ow,
        out float[] padded, out int[] offsets, out int[] bases)
    {
        int hp = h + 2 * padding, wp = w + 2 * padding, plane = hp * wp;
        int taps = cin * kernel * kernel, virtualPixels = (oh - 1) * wp + ow, pieces = (virtualPixels + 15) / 16;
        padded = Buffers(images * cin * plane, taps, pieces, out offsets, out bases);
        for (int c = 0; c < cin; c++)
            for (int ky = 0; ky < kernel; ky++)
                for (int kx = 0; kx < kernel; kx++)
                    offsets[(c * kernel + ky) * kernel + kx] = c * plane + ky * wp + kx;
        for (int half = 0; half < 2 * pieces; half++) bases[half] = half * 8;
        for (int i = 0; i < images; i++)
        {
            float* image = first + i * imageStride;
            var dst = padded.AsSpan(i * cin * plane, cin * plane);
            for (int c = 0; c < cin; c++)
                for (int y = 0; y < h; y++)
                    new ReadOnlySpan<float>(image + ((long)c * h + y) * w, w).CopyTo(dst.Slice(c * plane + (y + padding) * wp + padding, w));
        }
        return new Layout(taps, pieces, virtualPixels - (pieces - 1) * 16, contiguous: true, cin * plane, wp, pitch: wp);
    }

    /// <summary>
    /// For sizes the phase-split copy cannot tile: one copy of the padded image per kernel column kx and row phase
    /// (padded row mod stride), holding only the ow columns that kernel column reads ([c][kx][phase][row][ow]). Output
    /// pixel p of tap (c, ky, kx) is then at copy(c, kx, ky mod stride) + (ky / stride)·ow + p, contiguous across output
    /// rows, so every 16-pixel piece is one load whatever the width (k copies instead of im2col's k²). The last piece
    /// may be partial; its extra lanes read finite values past the window, which callers discard or multiply by zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Layout PrepareShifted(float* first, int images, long imageStride, int cin, int h, int w, int kernel, int stride, int padding, int oh, int ow,
        out float[] padded, out int[] offsets, out int[] bases)
    {
        int rows = oh + (kernel - 1) / stride, window = rows * ow, plane = kernel * stride * window;
        int taps = cin * kernel * kernel, pixels = oh * ow, pieces = (pixels + 15) / 16;
        padded = Buffers(images * cin * plane, taps, pieces, out offsets, out bases);
        for (int c = 0; c < cin; c++)
            for (int ky = 0; ky < kernel; ky++)
                for (int kx = 0; kx < kernel; kx++)
                    offsets[(c * kernel + ky) * kernel + kx] = c * plane + (kx * stride + ky % stride) * window + ky / stride * ow;
        for (int half = 0; half < 2 * pieces; half++) bases[half] = half * 8;
        for (int i = 0; i < images; i++)
        {
            float* image = first + i * imageStride;
            var dst = padded.AsSpan(i * cin * plane, cin * plane);
            for (int c = 0; c < cin; c++)
                for (int kx = 0; kx < kernel; kx++)
                {
                    // output column j reads image column j·stride + kx − padding
                    int j0 = 0, j1 = ow;
                    while (j0 < ow && j0 * stride + kx - padding < 0) j0++;
                    while (j1 > j0 && (j1 - 1) * stride + kx - padding >= w) j1--;
                    if (j1 <= j0) continue;
                    for (int phase = 0; phase < stride; phase++)
                        for (int r = 0; r < rows; r++)
                        {
                            int y = r * stride + phase - padding;
                            if (y < 0 || y >= h) continue;
                            float* src = image + ((long)c * h + y) * w + kx - padding;
                            var d = dst.Slice(c * plane + (kx * stride + phase) * window + r * ow, ow);
                            if (stride == 1)
                                new ReadOnlySpan<float>(src + j0, j1 - j0).CopyTo(d.Slice(j0, j1 - j0));
                            else if (stride == 2)
                                fixed (float* pd = d) CopyEvery2(src + 2 * j0, pd + j0, j1 - j0);
                            else
                                for (int j = j0; j < j1; j++) d[j] = src[j * stride];
                        }
                }
        }
        return new Layout(taps, pieces, pixels - (pieces - 1) * 16, contiguous: true, cin * plane, ow);
    }

    /// <summary>
    /// output[m, oh, ow] = Σ weights · image for one image [cin, h, w]; weights packed by <see cref="Gemm.PackWholeA"/>
    /// (m rows, cin·k·k columns).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Convolve(ConvCopy copy, float* image, int cin, int h, int w, float* packedWeight, int m, int kernel, int stride, int padding, int oh, int ow, float* output)
    {
        var layout = Prepare(copy, image, cin, h, w, kernel, stride, padding, oh, ow, out var padded, out var offsets, out var bases);
        if (layout.Pitch > 0)
        {
            // Whole pieces into a virtual [m][pieces·16] output, then the real columns of each row copied out.
            int ldv = layout.Pieces * 16;
            float[] virtualOutput = Engine.Scratch(ScratchSlot.VirtualOutput, m * ldv);
            fixed (float* pv = virtualOutput)
            {
                ConvolvePieces(layout, padded, offsets, bases, packedWeight, m, pv, ldv, partial: false);
                for (int o = 0; o < m; o++)
                    for (int y = 0; y < oh; y++)
                        new ReadOnlySpan<float>(pv + (long)o * ldv + y * layout.Pitch, ow).CopyTo(new Span<float>(output + ((long)o * oh + y) * ow, ow));
            }
            return;
        }
        ConvolvePieces(layout, padded, offsets, bases, packedWeight, m, output, oh * ow, partial: layout.Tail < 16);
    }

    /// <summary>Runs the micro-kernel over every pair of pieces and every 8 output channels; rows of output are ldc apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvolvePieces(in Layout layout, float[] padded, int[] offsets, int[] bases, float* packedWeight, int m, float* output, int pixels, bool partial)
    {
        int k = layout.Taps, last = layout.Pieces - 1;
        // Unpaired and partial pieces are written to 16-wide spare rows; partial ones are then copied out.
        float* spare0 = stackalloc float[Gemm.Mr * 16];
        float* spare1 = stackalloc float[Gemm.Mr * 16];
        fixed (float* pp = padded)
        fixed (int* offs = offsets, bs = bases)
            for (int q = 0; q < layout.Pieces; q += 2)
            {
                bool pair = q + 1 < layout.Pieces;
                bool partial0 = partial && q == last, partial1 = partial && pair && q + 1 == last;
                int lo0 = bs[2 * q], hi0 = bs[2 * q + 1];
                int lo1 = pair ? bs[2 * q + 2] : lo0, hi1 = pair ? bs[2 * q + 3] : hi0;
                for (int ir = 0; ir < m; ir += Gemm.Mr)
                {
                    float* a = packedWeight + (long)(ir / Gemm.Mr) * k * Gemm.Mr;
                    float* c0 = output + (long)ir * pixels + q * 16;
                    int rows = Math.Min(Gemm.Mr, m - ir);
                    Kernel(k, a, pp, offs, lo0, hi0, lo1, hi1, layout.Contiguous,
                        partial0 ? spare0 : c0, pair && !partial1 ? c0 + 16 : spare1, partial0 ? 16 : pixels, pair && !partial1 ? pixels : 16, rows);
                    if (partial0 || partial1)
                    {
                        float* spare = partial0 ? spare0 : spare1, dst = partial0 ? c0 : c0 + 16;
                        for (int r = 0; r < rows; r++)
                            new ReadOnlySpan<float>(spare + r * 16, layout.Tail).CopyTo(new Span<float>(dst + (long)r * pixels, layout.Tail));
                    }
                }
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel(int k, float* a, float* x, int* offs, int lo0, int hi0, int lo1, int hi1, bool contiguous,
        float* c0, float* c1, int ldc0, int ldc1, int rows)
    {
        Vector512<float> x00 = default, x01 = default, x10 = default, x11 = default, x20 = default, x21 = default, x30 = default, x31 = default;
        Vector512<float> x40 = default, x41 = default, x50 = default, x51 = default, x60 = default, x61 = default, x70 = default, x71 = default;
        float* s0 = x + lo0, s1 = x + lo1;
        float* t0 = x + hi0, t1 = x + hi1;
        for (int p = 0; p < k; p++)
        {
            int off = offs[p];
            Vector512<float> b0, b1;
            if (contiguous)
            {
                b0 = Vector512.Load(s0 + off);
                b1 = Vector512.Load(s1 + off);
            }
            else
            {
                b0 = Vector512.Create(Vector256.Load(s0 + off), Vector256.Load(t0 + off));
                b1 = Vector512.Create(Vector256.Load(s1 + off), Vector256.Load(t1 + off));
            }
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

    /// <summary>
    /// How many images <see cref="AccumulateWeightGradient"/> should take at once: about groupPixels
    /// output pixels (each register tile's sum over them is reduced and added once), but no more than keeps the group's
    /// padded copy within about groupBytes, so that the tiles stream it from L1/L2 rather than L3.
    /// </summary>
    public static int WeightGradientGroup(ConvCopy copy, int cin, int h, int w, int kernel, int stride, int padding, int outH, int outW,
        long groupBytes, int groupPixels)
    {
        int pixels = outH * outW;
        long paddedFloats;
        if (copy != ConvCopy.Shifted)
        {
            int hp = h + 2 * padding, wq = (w + 2 * padding + stride - 1) / stride;
            paddedFloats = (long)cin * stride * hp * wq;
        }
        else paddedFloats = (long)cin * kernel * stride * (outH + (kernel - 1) / stride) * outW;
        long byBytes = groupBytes / (4 * paddedFloats);
        return (int)Math.Max(1, Math.Min(groupPixels / pixels, byBytes));
    }

    /// <summary>
    /// grad[o, t] += Σ over <paramref name="images"/> images and their 16-pixel pieces of dY[o, piece] ·
    /// x_padded[tap t, piece] (grad is [m, cin·k·k]). Each register tile keeps 16 per-lane partial sums over all the
    /// images and reduces them in registers (<see cref="Sum16"/>) before one add to grad.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AccumulateWeightGradient(ConvCopy copy, float* image, int images, long imageStride, int cin, int h, int w,
        float* gradOutput, long gradStride, int m, int kernel, int stride, int padding, int oh, int ow, float* grad)
    {
        var layout = Prepare(copy, image, images, imageStride, cin, h, w, kernel, stride, padding, oh, ow, out var padded, out var offsets, out var bases);
        int k = layout.Taps, pixels = oh * ow, pieces = layout.Pieces;
        // dY is copied to a 64-byte-aligned scratch buffer: the tiles load it 16 floats at a time, and loads split across
        // cache lines (a tensor's rows start anywhere) measured 8–11 % slower (bench --ab, 16->16 32x32). Where the pixels
        // do not tile into whole pieces, each plane is also zero-padded to whole pieces (a partial last piece's extra
        // lanes then add 0) and, for virtual pixels, its rows spread to the padded pitch with zeros at the dropped columns.
        bool spread = layout.Pitch > 0 || layout.Tail < 16;
        int pitch = spread ? pieces * 16 : pixels, rowPitch = layout.Pitch > 0 ? layout.Pitch : ow;
        float[] gradCopy = Engine.Scratch(ScratchSlot.GradientCopy, images * m * pitch + 16);
        var g = new Group(images, layout.ImageStride, (long)m * pitch, pieces, layout.Contiguous);
        fixed (float* pp = padded, pcopy = gradCopy)
        fixed (int* offs = offsets, bs = bases)
        {
            float* dyCopy = (float*)(((nint)pcopy + 63) & ~(nint)63);
            for (int i = 0; i < images; i++)
                if (!spread)
                    new ReadOnlySpan<float>(gradOutput + i * gradStride, m * pixels).CopyTo(new Span<float>(dyCopy + (long)i * m * pixels, m * pixels));
                else
                    for (int o = 0; o < m; o++)
                    {
                        var d = new Span<float>(dyCopy + (long)(i * m + o) * pitch, pitch);
                        d.Clear();
                        float* src = gradOutput + i * gradStride + (long)o * pixels;
                        for (int y = 0; y < oh; y++) new ReadOnlySpan<float>(src + y * ow, ow).CopyTo(d.Slice(y * rowPitch, ow));
                    }
            gradOutput = dyCopy;
            pixels = pitch;
            int o0 = 0, whole = k & ~3;
            // The last 1–3 taps (e.g. 27 for a 3-channel stem) run as one more 4x4 tile over taps padded with offset 0,
            // into a scratch tile whose valid columns are added: single-tap tiles would be one dependent FMA chain each.
            for (int t = k; t < whole + 4; t++) offs[t] = 0;
            float* rest = stackalloc float[16];
            for (; o0 + 4 <= m; o0 += 4)
            {
                for (int t0 = 0; t0 < whole; t0 += 4) Tile4x4(gradOutput + (long)o0 * pixels, pixels, pp, offs + t0, bs, g, grad + (long)o0 * k + t0, k);
                if (whole == k) continue;
                new Span<float>(rest, 16).Clear();
                Tile4x4(gradOutput + (long)o0 * pixels, pixels, pp, offs + whole, bs, g, rest, 4);
                for (int r = 0; r < 4; r++)
                    for (int t = whole; t < k; t++) grad[(long)(o0 + r) * k + t] += rest[r * 4 + t - whole];
            }
            for (; o0 < m; o0++)
                for (int t0 = 0; t0 < k; t0++) Tile1x1(gradOutput + (long)o0 * pixels, pp + offs[t0], bs, g, grad + (long)o0 * k + t0);
        }
    }

    private readonly record struct Group(int Images, int PaddedStride, long GradStride, int Pieces, bool Contiguous);

    /// <summary>
    /// r[j] = Σ lanes of v_j for 16 vectors: pairs are interleaved and added within 128-bit lanes, then across them,
    /// 45 shuffles and adds in all instead of 16 separate horizontal sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Sum16(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3,
        Vector512<float> v4, Vector512<float> v5, Vector512<float> v6, Vector512<float> v7, Vector512<float> v8, Vector512<float> v9,
        Vector512<float> v10, Vector512<float> v11, Vector512<float> v12, Vector512<float> v13, Vector512<float> v14, Vector512<float> v15)
    {
        // per 128-bit lane: (a0+a2, b0+b2, a1+a3, b1+b3)
        static Vector512<float> Pair(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a, b) + Avx512F.UnpackHigh(a, b);
        // per 128-bit lane: (Σa, Σb, Σc, Σd) of that lane
        static Vector512<float> Quad(Vector512<float> ab, Vector512<float> cd) =>
            Avx512F.UnpackLow(ab.AsDouble(), cd.AsDouble()).AsSingle() + Avx512F.UnpackHigh(ab.AsDouble(), cd.AsDouble()).AsSingle();
        // (s.L0+s.L1, s.L2+s.L3, t.L0+t.L1, t.L2+t.L3) over 128-bit lanes L
        static Vector512<float> Lanes(Vector512<float> s, Vector512<float> t) => Avx512F.Shuffle4x128(s, t, 0x88) + Avx512F.Shuffle4x128(s, t, 0xDD);
        var q0 = Quad(Pair(v0, v1), Pair(v2, v3));
        var q1 = Quad(Pair(v4, v5), Pair(v6, v7));
        var q2 = Quad(Pair(v8, v9), Pair(v10, v11));
        var q3 = Quad(Pair(v12, v13), Pair(v14, v15));
        return Lanes(Lanes(q0, q1), Lanes(q2, q3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* grad, Vector128<float> v) => Vector128.Store(Vector128.Load(grad) + v, grad);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> LoadPiece(float* x, int* bs, int q, bool contiguous) =>
        contiguous ? Vector512.Load(x + bs[2 * q]) : Vector512.Create(Vector256.Load(x + bs[2 * q]), Vector256.Load(x + bs[2 * q + 1]));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x4(float* dy, int ldy, float* x, int* offs, int* bs, Group g, float* grad, int ldgrad)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        int o0 = offs[0], o1 = offs[1], o2 = offs[2], o3 = offs[3];
        bool contiguous = g.Contiguous;
        for (int i = 0; i < g.Images; i++)
        {
            float* xi = x + (long)i * g.PaddedStride;
            float* x0 = xi + o0, x1 = xi + o1, x2 = xi + o2, x3 = xi + o3;
            float* dyi = dy + i * g.GradStride;
            for (int q = 0; q < g.Pieces; q++)
            {
                int p = q * 16;
                var v0 = LoadPiece(x0, bs, q, contiguous); var v1 = LoadPiece(x1, bs, q, contiguous);
                var v2 = LoadPiece(x2, bs, q, contiguous); var v3 = LoadPiece(x3, bs, q, contiguous);
                var d = Vector512.Load(dyi + p);
                a00 = Vector512.FusedMultiplyAdd(d, v0, a00); a01 = Vector512.FusedMultiplyAdd(d, v1, a01); a02 = Vector512.FusedMultiplyAdd(d, v2, a02); a03 = Vector512.FusedMultiplyAdd(d, v3, a03);
                d = Vector512.Load(dyi + ldy + p);
                a10 = Vector512.FusedMultiplyAdd(d, v0, a10); a11 = Vector512.FusedMultiplyAdd(d, v1, a11); a12 = Vector512.FusedMultiplyAdd(d, v2, a12); a13 = Vector512.FusedMultiplyAdd(d, v3, a13);
                d = Vector512.Load(dyi + 2 * ldy + p);
                a20 = Vector512.FusedMultiplyAdd(d, v0, a20); a21 = Vector512.FusedMultiplyAdd(d, v1, a21); a22 = Vector512.FusedMultiplyAdd(d, v2, a22); a23 = Vector512.FusedMultiplyAdd(d, v3, a23);
                d = Vector512.Load(dyi + 3 * ldy + p);
                a30 = Vector512.FusedMultiplyAdd(d, v0, a30); a31 = Vector512.FusedMultiplyAdd(d, v1, a31); a32 = Vector512.FusedMultiplyAdd(d, v2, a32); a33 = Vector512.FusedMultiplyAdd(d, v3, a33);
            }
        }
        var sums = Sum16(a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33);
        AddRow(grad, sums.GetLower().GetLower());
        AddRow(grad + ldgrad, sums.GetLower().GetUpper());
        AddRow(grad + 2 * ldgrad, sums.GetUpper().GetLower());
        AddRow(grad + 3 * ldgrad, sums.GetUpper().GetUpper());
    }

    private static void Tile1x1(float* dy, float* x, int* bs, Group g, float* grad)
    {
        var a = Vector512<float>.Zero;
        for (int i = 0; i < g.Images; i++)
        {
            float* xi = x + (long)i * g.PaddedStride, dyi = dy + i * g.GradStride;
            for (int q = 0; q < g.Pieces; q++)
                a = Vector512.FusedMultiplyAdd(Vector512.Load(dyi + q * 16), Vector512.Create(Vector256.Load(xi + bs[2 * q]), Vector256.Load(xi + bs[2 * q + 1])), a);
        }
        *grad += Vector512.Sum(a);
    }

    /// <summary>The tap list is padded to a multiple of this (every tile shape's tap count divides it).</summary>
    internal const int OuterTaps = 12;

    /// <summary>Floats of the transposed gradient <see cref="AccumulateWeightGradientOuter"/> accumulates into.</summary>
    public static int OuterGradientLength(int m, int taps) => Gemm.RoundUp(taps, OuterTaps) * Gemm.RoundUp(m, 16);

    /// <summary>
    /// gradT[t, o] += Σ over the pixels of one image of x_padded[tap t, pixel] · dY[o, pixel], gradT being [taps (padded
    /// to whole tap blocks), m rounded up to 16]. The outer-product form: dY is transposed so that 16 output channels of
    /// a pixel are one vector, and each tap's input value is a broadcast; the accumulators are gradT itself (no lane
    /// reduction), loaded and stored once per tile per image, while the image's padded copy and dYᵀ stay in L1/L2.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AccumulateWeightGradientOuter(ConvCopy copy, float* image, int cin, int h, int w, float* gradOutput, int m,
        int kernel, int stride, int padding, int oh, int ow, float* gradT)
    {
        var layout = Prepare(copy, image, cin, h, w, kernel, stride, padding, oh, ow, out var padded, out var offsets, out _);
        int k = layout.Taps, pixels = oh * ow, mPad = Gemm.RoundUp(m, 16);
        for (int t = k; t < Gemm.RoundUp(k, OuterTaps); t++) offsets[t] = 0;   // padded taps: rows of gradT nobody reads
        float[] transposed = Engine.Scratch(ScratchSlot.GradientCopy, pixels * mPad);
        fixed (float* pt = transposed, pp = padded)
        fixed (int* offs = offsets)
        {
            Transpose(gradOutput, m, pixels, pt, mPad);
            for (int o0 = 0; o0 < mPad; o0 += 64)
            {
                int vectors = Math.Min(4, (mPad - o0) / 16);
                if (vectors == 3) vectors = 2;   // 48 channels: a 32 block, then a 16 one
                int taps = vectors == 4 ? 6 : 12;
                for (int t0 = 0; t0 < k; t0 += taps)
                {
                    float* g = gradT + (long)t0 * mPad + o0;
                    if (vectors == 4) Outer4x6(pp, layout.RowPitch, oh, ow, offs + t0, pt + o0, mPad, g);
                    else if (vectors == 2) Outer2x12(pp, layout.RowPitch, oh, ow, offs + t0, pt + o0, mPad, g);
                    else Outer1x12(pp, layout.RowPitch, oh, ow, offs + t0, pt + o0, mPad, g);
                }
                if (vectors < 4) o0 -= 64 - 16 * vectors;
            }
        }
    }

    /// <summary>dst[p, o] = src[o, p] for o &lt; m, zero for m ≤ o &lt; ld.</summary>
    private static void Transpose(float* src, int m, int pixels, float* dst, int ld)
    {
        for (int p = 0; p < pixels; p++)
        {
            float* d = dst + (long)p * ld;
            for (int o = 0; o < m; o++) d[o] = src[(long)o * pixels + p];
            for (int o = m; o < ld; o++) d[o] = 0;
        }
    }
}
