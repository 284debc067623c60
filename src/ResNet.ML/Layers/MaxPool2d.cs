using System.Runtime.Intrinsics;
using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>Max pooling as PyTorch's <c>nn.MaxPool2d(kernel, stride, padding)</c> (padding counts as minus infinity).</summary>
public sealed class MaxPool2d : Layer
{
    public MaxPool2d(string name, int kernelSize, int stride, int padding = 0) : base(name)
    {
        if (kernelSize <= 0 || stride <= 0 || padding < 0 || padding * 2 > kernelSize)
            throw new ArgumentException($"MaxPool2d '{name}': kernel {kernelSize}, stride {stride}, padding {padding} is not a valid pooling.");
        (KernelSize, Stride, Padding) = (kernelSize, stride, padding);
    }

    public int KernelSize { get; }
    public int Stride { get; }
    public int Padding { get; }

    public override (int C, int H, int W) OutputShape(int c, int h, int w)
    {
        int oh = (h + 2 * Padding - KernelSize) / Stride + 1, ow = (w + 2 * Padding - KernelSize) / Stride + 1;
        if (h + 2 * Padding < KernelSize || w + 2 * Padding < KernelSize)
            throw new ShapeException($"MaxPool2d '{Name}' ({KernelSize}x{KernelSize}, stride {Stride}) cannot pool an input of [{c}, {h}, {w}]: the image is too small for this architecture.");
        return (c, oh, ow);
    }

    /// <summary>What a pooling keeps from its forward to its backward: where each maximum came from.</summary>
    internal sealed class Run : LayerWorkspace
    {
        public Tensor? Input, Output, GradOutput, GradInput;
        public int[] Argmax = [];
        internal override IEnumerable<Tensor?> Tensors => [Output, GradInput];
    }

    internal override LayerWorkspace CreateWorkspace() => new Run();

    private Action<int, int, int>? _forwardPart, _backwardPart;

    public override Tensor Forward(Tensor input, bool training)
    {
        var (c, oh, ow) = OutputShape(input.C, input.H, input.W);
        var ws = Workspace<Run>();
        var output = Tensor.Reuse(ref ws.Output, input.N, c, oh, ow);
        if (ws.Argmax.Length != output.Length) ws.Argmax = new int[output.Length];
        ws.Input = input;
        Engine.ParallelFor(input.N * input.C, _forwardPart ??= ForwardPart);
        return output;
    }

    private void ForwardPart(int part, int begin, int end)
    {
        var ws = Workspace<Run>();
        var x = ws.Input!;
        var y = ws.Output!;
        var argmax = ws.Argmax;
        int h = x.H, w = x.W, oh = y.H, ow = y.W;
        if (KernelSize == 3 && Stride == 2 && Padding == 1 && ow >= 16 && Vector512.IsHardwareAccelerated)
        {
            for (int plane = begin; plane < end; plane++) Pool3x3Stride2(x.Data.AsSpan(plane * h * w, h * w), h, w, y.Data.AsSpan(plane * oh * ow, oh * ow), argmax.AsSpan(plane * oh * ow, oh * ow), oh, ow);
            return;
        }
        for (int plane = begin; plane < end; plane++)
        {
            var src = x.Data.AsSpan(plane * h * w, h * w);
            int outBase = plane * oh * ow;
            for (int oy = 0; oy < oh; oy++)
            {
                int y0 = Math.Max(oy * Stride - Padding, 0), y1 = Math.Min(oy * Stride - Padding + KernelSize, h);
                for (int ox = 0; ox < ow; ox++)
                {
                    int x0 = Math.Max(ox * Stride - Padding, 0), x1 = Math.Min(ox * Stride - Padding + KernelSize, w);
                    float best = float.NegativeInfinity;
                    int bestAt = y0 * w + x0;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++)
                        {
                            float v = src[iy * w + ix];
                            // NaN wins, as in PyTorch; the first maximum wins ties.
                            if (v > best || float.IsNaN(v)) { best = v; bestAt = iy * w + ix; if (float.IsNaN(v)) goto done; }
                        }
                    done:
                    y.Data[outBase + oy * ow + ox] = best;
                    argmax[outBase + oy * ow + ox] = bestAt;
                }
            }
        }
    }

    /// <summary>
    /// The ResNet stem's 3x3 / 2 / pad 1 pooling of one plane, 16 outputs at a time. Each input row is split into its
    /// columns 2j−1, 2j and 2j+1 (minus infinity outside the row), so a row's three taps for 16 windows are three vector
    /// loads. Taps are scanned in the scalar path's order (rows, then columns) with its rules: strictly greater wins, so
    /// the first maximum wins ties, and the first NaN wins; only without its unpredictable branches.
    /// </summary>
    private static void Pool3x3Stride2(ReadOnlySpan<float> src, int h, int w, Span<float> dst, Span<int> argmax, int oh, int ow)
    {
        int width = ow + 16;
        var columns = Engine.Scratch(ScratchSlot.Columns, 3 * width).AsSpan(0, 3 * width);
        var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) * 2;
        for (int oy = 0; oy < oh; oy++)
        {
            int y0 = Math.Max(2 * oy - 1, 0), y1 = Math.Min(2 * oy + 2, h);
            var best = dst.Slice(oy * ow, ow);
            var at = argmax.Slice(oy * ow, ow);
            best.Fill(float.NegativeInfinity);
            for (int j = 0; j < ow; j++) at[j] = y0 * w + Math.Max(2 * j - 1, 0);   // the window's first valid position
            for (int iy = y0; iy < y1; iy++)
            {
                var row = src.Slice(iy * w, w);
                for (int c = 0; c < ow; c++)
                {
                    int xl = 2 * c - 1, xr = 2 * c + 1;
                    columns[c] = xl >= 0 ? row[xl] : float.NegativeInfinity;
                    columns[width + c] = row[2 * c];
                    columns[2 * width + c] = xr < w ? row[xr] : float.NegativeInfinity;
                }
                for (int j0 = 0; j0 < ow; j0 += 16)
                {
                    int j = Math.Min(j0, ow - 16);   // the last block overlaps the one before instead of running past the row
                    var b = Vector512.Create(best.Slice(j, 16));
                    var bAt = Vector512.Create(at.Slice(j, 16));
                    for (int kx = 0; kx < 3; kx++)
                    {
                        var v = Vector512.Create(columns.Slice(kx * width + j, 16));
                        var index = Vector512.Create(iy * w + 2 * j - 1 + kx) + lane;
                        // v > best, or v is the first NaN
                        var take = Vector512.GreaterThan(v, b)
                                   | (~Vector512.Equals(v, v) & Vector512.Equals(b, b));
                        b = Vector512.ConditionalSelect(take, v, b);
                        bAt = Vector512.ConditionalSelect(take.AsInt32(), index, bAt);
                    }
                    b.CopyTo(best.Slice(j, 16));
                    bAt.CopyTo(at.Slice(j, 16));
                }
            }
        }
    }

    public override Tensor Backward(Tensor gradOutput)
    {
        var ws = Workspace<Run>();
        var x = ws.Input ?? throw new InvalidOperationException($"MaxPool2d '{Name}': Backward was called before Forward.");
        if (!gradOutput.SameShape(ws.Output!))
            throw new ShapeException($"MaxPool2d '{Name}': the output gradient {gradOutput.Shape} does not match the output {ws.Output!.Shape}.");
        ws.GradOutput = gradOutput;
        var dx = Tensor.Reuse(ref ws.GradInput, x.N, x.C, x.H, x.W);
        Engine.ParallelFor(x.N * x.C, _backwardPart ??= BackwardPart);
        ws.GradOutput = null;
        return dx;
    }

    private void BackwardPart(int part, int begin, int end)
    {
        var ws = Workspace<Run>();
        var x = ws.Input!;
        var dy = ws.GradOutput!;
        var dx = ws.GradInput!;
        var argmax = ws.Argmax;
        int inPlane = x.H * x.W, outPlane = dy.H * dy.W;
        for (int plane = begin; plane < end; plane++)
        {
            var d = dx.Data.AsSpan(plane * inPlane, inPlane);
            d.Clear();
            for (int o = plane * outPlane, e = o + outPlane; o < e; o++) d[argmax[o]] += dy.Data[o];
        }
    }
}
