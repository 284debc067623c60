namespace ResNet.ML.Tensors;

/// <summary>
/// Unfolds one image [C, H, W] into the column matrix [C·k·k, OH·OW] a convolution multiplies its weight [O, C·k·k]
/// with, and folds a column-matrix gradient back (summing overlaps). Padding reads as zero.
/// </summary>
internal static class Im2Col
{
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Unfold(ReadOnlySpan<float> image, int channels, int height, int width,
        int kernel, int stride, int padding, int outH, int outW, Span<float> columns)
    {
        int plane = height * width, outPlane = outH * outW;
        for (int c = 0; c < channels; c++)
        {
            var src = image.Slice(c * plane, plane);
            for (int ky = 0; ky < kernel; ky++)
            for (int kx = 0; kx < kernel; kx++)
            {
                var dst = columns.Slice(((c * kernel + ky) * kernel + kx) * outPlane, outPlane);
                // Valid output columns: 0 <= ox*stride - padding + kx < width.
                int oxBegin = Math.Max(0, CeilDiv(padding - kx, stride));
                int oxEnd = Math.Min(outW, CeilDiv(width + padding - kx, stride));
                if (oxEnd < oxBegin) oxEnd = oxBegin;
                for (int oy = 0; oy < outH; oy++)
                {
                    var row = dst.Slice(oy * outW, outW);
                    int iy = oy * stride - padding + ky;
                    if ((uint)iy >= (uint)height) { row.Clear(); continue; }
                    row[..oxBegin].Clear();
                    row[oxEnd..].Clear();
                    var srcRow = src.Slice(iy * width, width);
                    int ix = oxBegin * stride - padding + kx;
                    if (stride == 1)
                        srcRow.Slice(ix, oxEnd - oxBegin).CopyTo(row[oxBegin..oxEnd]);
                    else
                        for (int ox = oxBegin; ox < oxEnd; ox++, ix += stride) row[ox] = srcRow[ix];
                }
            }
        }
    }

    /// <summary>image = fold(columns): the adjoint of <see cref="Unfold"/>; overwrites <paramref name="image"/>.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Fold(ReadOnlySpan<float> columns, int channels, int height, int width,
        int kernel, int stride, int padding, int outH, int outW, Span<float> image)
    {
        image.Slice(0, channels * height * width).Clear();
        int plane = height * width, outPlane = outH * outW;
        for (int c = 0; c < channels; c++)
        {
            var dstImage = image.Slice(c * plane, plane);
            for (int ky = 0; ky < kernel; ky++)
            for (int kx = 0; kx < kernel; kx++)
            {
                var src = columns.Slice(((c * kernel + ky) * kernel + kx) * outPlane, outPlane);
                int oxBegin = Math.Max(0, CeilDiv(padding - kx, stride));
                int oxEnd = Math.Min(outW, CeilDiv(width + padding - kx, stride));
                if (oxEnd <= oxBegin) continue;
                for (int oy = 0; oy < outH; oy++)
                {
                    int iy = oy * stride - padding + ky;
                    if ((uint)iy >= (uint)height) continue;
                    var row = src.Slice(oy * outW, outW);
                    var dstRow = dstImage.Slice(iy * width, width);
                    int ix = oxBegin * stride - padding + kx;
                    if (stride == 1)
                        System.Numerics.Tensors.TensorPrimitives.Add(dstRow.Slice(ix, oxEnd - oxBegin), row[oxBegin..oxEnd], dstRow.Slice(ix, oxEnd - oxBegin));
                    else
                        for (int ox = oxBegin; ox < oxEnd; ox++, ix += stride) dstRow[ix] += row[ox];
                }
            }
        }
    }

    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -((-a) / b);

    /// <summary>
    /// im2col straight into GEMM panel layout: rows [k0, k0+kc) of the column matrix, pixels [j0, j0+nc), in panels of
    /// <paramref name="nr"/> pixels (panel at jr·kc, element (p, j) at p·nr + j), zero beyond the image and past nc.
    /// </summary>
    /// <remarks>
    /// A panel's pixels fall into the same runs along output rows for every row p, so the runs are found once per panel
    /// and the (channel, ky, kx) of row p is stepped, not divided out: with AVX2, where every convolution takes this
    /// path, the three divisions per row and panel cost more than the panel's multiply-adds for 16-channel layers
    /// (bench/BENCHMARKS.md, "AVX2").
    /// </remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static unsafe void PackPanels(float* image, int height, int width, int kernel, int stride, int padding,
        int outH, int outW, int k0, int kc, int j0, int nc, int nr, float* dst)
    {
        int plane = height * width, taps = kernel * kernel;
        // Per run: first panel column, length, output row and column of its first pixel.
        int* runs = stackalloc int[4 * nr];
        for (int jr = 0; jr < nc; jr += nr)
        {
            float* panel = dst + (long)jr * kc;
            int count = Math.Min(nr, nc - jr);
            int runCount = 0;
            for (int j = 0; j < count; runCount++)
            {
                int pixel = j0 + jr + j;
                int oy = pixel / outW, ox = pixel - oy * outW;
                int run = Math.Min(count - j, outW - ox);   // pixels left on this output row
                int* r = runs + 4 * runCount;
                (r[0], r[1], r[2], r[3]) = (j, run, oy, ox);
                j += run;
            }
            int c = k0 / taps, ky = k0 % taps / kernel, kx = k0 % kernel;
            for (int p = 0; p < kc; p++)
            {
                float* src = image + (long)c * plane;
                float* d = panel + p * nr;
                for (int q = 0; q < runCount; q++)
                {
                    int* r = runs + 4 * q;
                    int j = r[0], run = r[1];
                    int iy = r[2] * stride - padding + ky;
                    if ((uint)iy >= (uint)height)
                    {
                        for (int t = 0; t < run; t++) d[j + t] = 0;
                        continue;
                    }
                    float* srcRow = src + (long)iy * width;
                    int ix = r[3] * stride - padding + kx;
                    if (stride == 1 && ix >= 0 && ix + run <= width)
                    {
                        int t = 0;
                        if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated)
                            for (; t + 8 <= run; t += 8) System.Runtime.Intrinsics.Vector256.Store(System.Runtime.Intrinsics.Vector256.Load(srcRow + ix + t), d + j + t);
                        for (; t < run; t++) d[j + t] = srcRow[ix + t];
                    }
                    else
                        for (int t = 0; t < run; t++, ix += stride) d[j + t] = (uint)ix < (uint)width ? srcRow[ix] : 0f;
                }
                for (int j = count; j < nr; j++) d[j] = 0;
                if (++kx == kernel)
                {
                    kx = 0;
                    if (++ky == kernel) { ky = 0; c++; }
                }
            }
        }
    }
}
