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
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static unsafe void PackPanels(float* image, int height, int width, int kernel, int stride, int padding,
        int outH, int outW, int k0, int kc, int j0, int nc, int nr, float* dst)
    {
        int plane = height * width;
        for (int jr = 0; jr < nc; jr += nr)
        {
            float* panel = dst + (long)jr * kc;
            int count = Math.Min(nr, nc - jr);
            int firstPixel = j0 + jr;
            for (int p = 0; p < kc; p++)
            {
                int row = k0 + p;
                int kx = row % kernel, ky = row / kernel % kernel, c = row / (kernel * kernel);
                float* src = image + (long)c * plane;
                float* d = panel + p * nr;
                int j = 0;
                while (j < count)
                {
                    int pixel = firstPixel + j;
                    int oy = pixel / outW, ox = pixel - oy * outW;
                    int run = Math.Min(count - j, outW - ox);   // pixels left on this output row
                    int iy = oy * stride - padding + ky;
                    if ((uint)iy >= (uint)height)
                    {
                        for (int t = 0; t < run; t++) d[j + t] = 0;
                    }
                    else
                    {
                        float* srcRow = src + (long)iy * width;
                        int ix = ox * stride - padding + kx;
                        if (stride == 1 && ix >= 0 && ix + run <= width)
                            Buffer.MemoryCopy(srcRow + ix, d + j, run * 4L, run * 4L);
                        else
                            for (int t = 0; t < run; t++, ix += stride) d[j + t] = (uint)ix < (uint)width ? srcRow[ix] : 0f;
                    }
                    j += run;
                }
                for (; j < nr; j++) d[j] = 0;
            }
        }
    }
}
