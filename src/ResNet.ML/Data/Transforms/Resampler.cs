namespace ResNet.ML.Data;

/// <summary>
/// Bilinear resampling of a box of a CHW float image to a new size, separable (rows, then columns). When shrinking, the
/// triangle filter is widened by the shrink factor (as PIL's and torchvision's antialiased bilinear resize do), so a
/// 500-pixel photo brought to 224 averages every source pixel instead of aliasing; when enlarging it is plain half-pixel
/// bilinear interpolation. Holds its coefficient tables and row buffer, so one instance per thread makes no garbage.
/// </summary>
internal sealed class Resampler
{
    private int[] _xStart = [], _xCount = [], _yStart = [], _yCount = [];
    private float[] _xWeights = [], _yWeights = [], _rows = [];
    private int _xTaps, _yTaps;

    /// <summary>
    /// Resamples the box (<paramref name="boxX"/>, <paramref name="boxY"/>, <paramref name="boxWidth"/> ×
    /// <paramref name="boxHeight"/>, in source pixels, may be fractional) of each channel of <paramref name="source"/>
    /// (channels × srcH × srcW) to <paramref name="destination"/> (channels × dstH × dstW).
    /// </summary>
    public void Resample(ReadOnlySpan<float> source, int channels, int srcH, int srcW,
        double boxX, double boxY, double boxWidth, double boxHeight,
        Span<float> destination, int dstH, int dstW)
    {
        _xTaps = Coefficients(srcW, boxX, boxWidth, dstW, ref _xStart, ref _xCount, ref _xWeights);
        _yTaps = Coefficients(srcH, boxY, boxHeight, dstH, ref _yStart, ref _yCount, ref _yWeights);
        // Only the source rows the vertical filter touches need the horizontal pass.
        int rowFirst = _yStart[0], rowLast = _yStart[dstH - 1] + _yCount[dstH - 1];
        int rowsNeeded = rowLast - rowFirst;
        if (_rows.Length < rowsNeeded * dstW) _rows = new float[rowsNeeded * dstW];
        for (int c = 0; c < channels; c++)
        {
            HorizontalPass(source.Slice(c * srcH * srcW, srcH * srcW), srcW, rowFirst, rowsNeeded, dstW);
            var outPlane = destination.Slice(c * dstH * dstW, dstH * dstW);
            for (int y = 0; y < dstH; y++)
            {
                int start = _yStart[y] - rowFirst, count = _yCount[y];
                var w = _yWeights.AsSpan(y * _yTaps, count);
                var outRow = outPlane.Slice(y * dstW, dstW);
                outRow.Clear();
                for (int k = 0; k < count; k++)
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(_rows.AsSpan((start + k) * dstW, dstW), w[k], outRow, outRow);
            }
        }
    }

    // Filters each needed source row of one plane along x into _rows. The hot loop of every resize: pointers, no bounds checks
    // (the coefficient tables guarantee start + count <= srcW).
    private unsafe void HorizontalPass(ReadOnlySpan<float> plane, int srcW, int rowFirst, int rowsNeeded, int dstW)
    {
        int taps = _xTaps;
        fixed (float* src = plane)
        fixed (float* rows = _rows)
        fixed (float* weights = _xWeights)
        fixed (int* starts = _xStart)
        fixed (int* counts = _xCount)
        {
            for (int r = 0; r < rowsNeeded; r++)
            {
                float* row = src + (long)(rowFirst + r) * srcW;
                float* outRow = rows + (long)r * dstW;
                for (int x = 0; x < dstW; x++)
                {
                    float* s = row + starts[x];
                    float* w = weights + (long)x * taps;
                    int count = counts[x];
                    float sum = 0;
                    for (int k = 0; k < count; k++) sum += s[k] * w[k];
                    outRow[x] = sum;
                }
            }
        }
    }

    // Per output pixel: the first source index, how many taps, and normalized triangle-filter weights.
    private static int Coefficients(int srcSize, double boxStart, double boxSize, int dstSize, ref int[] starts, ref int[] counts, ref float[] weights)
    {
        double scale = boxSize / dstSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = filterScale;           // the bilinear (triangle) filter has support 1, widened when shrinking
        int taps = (int)Math.Ceiling(support) * 2 + 1;
        if (starts.Length < dstSize) { starts = new int[dstSize]; counts = new int[dstSize]; }
        if (weights.Length < dstSize * taps) weights = new float[dstSize * taps];
        for (int i = 0; i < dstSize; i++)
        {
            double center = boxStart + (i + 0.5) * scale;
            int lo = Math.Max(0, (int)Math.Floor(center - support + 0.5));
            int hi = Math.Min(srcSize, (int)Math.Floor(center + support + 0.5));
            if (hi <= lo) { lo = Math.Clamp((int)Math.Floor(center), 0, srcSize - 1); hi = lo + 1; }
            if (hi - lo > taps) hi = lo + taps;
            double total = 0;
            var w = weights.AsSpan(i * taps, taps);
            for (int j = lo; j < hi; j++)
            {
                double t = 1 - Math.Abs((j + 0.5 - center) / filterScale);
                double v = t > 0 ? t : 0;
                w[j - lo] = (float)v;
                total += v;
            }
            if (total <= 0)
            {
                // The box lies outside the image: take the nearest source pixel.
                lo = Math.Clamp((int)Math.Floor(center), 0, srcSize - 1); hi = lo + 1; w[0] = 1; total = 1;
            }
            for (int j = 0; j < hi - lo; j++) w[j] = (float)(w[j] / total);
            starts[i] = lo;
            counts[i] = hi - lo;
        }
        return taps;
    }
}
