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

    private Tensor? _input, _output, _gradOutput, _gradInput;
    private int[] _argmax = [];
    private Action<int, int, int>? _forwardPart, _backwardPart;

    public override Tensor Forward(Tensor input, bool training)
    {
        var (c, oh, ow) = OutputShape(input.C, input.H, input.W);
        var output = Tensor.Reuse(ref _output, input.N, c, oh, ow);
        if (_argmax.Length != output.Length) _argmax = new int[output.Length];
        _input = input;
        Engine.ParallelFor(input.N * input.C, _forwardPart ??= ForwardPart);
        return output;
    }

    private void ForwardPart(int part, int begin, int end)
    {
        var x = _input!;
        var y = _output!;
        int h = x.H, w = x.W, oh = y.H, ow = y.W;
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
                    _argmax[outBase + oy * ow + ox] = bestAt;
                }
            }
        }
    }

    public override Tensor Backward(Tensor gradOutput)
    {
        var x = _input ?? throw new InvalidOperationException($"MaxPool2d '{Name}': Backward was called before Forward.");
        if (!gradOutput.SameShape(_output!))
            throw new ShapeException($"MaxPool2d '{Name}': the output gradient {gradOutput.Shape} does not match the output {_output!.Shape}.");
        _gradOutput = gradOutput;
        Tensor.Reuse(ref _gradInput, x.N, x.C, x.H, x.W);
        Engine.ParallelFor(x.N * x.C, _backwardPart ??= BackwardPart);
        return _gradInput!;
    }

    private void BackwardPart(int part, int begin, int end)
    {
        var x = _input!;
        var dy = _gradOutput!;
        var dx = _gradInput!;
        int inPlane = x.H * x.W, outPlane = dy.H * dy.W;
        for (int plane = begin; plane < end; plane++)
        {
            var d = dx.Data.AsSpan(plane * inPlane, inPlane);
            d.Clear();
            for (int o = plane * outPlane, e = o + outPlane; o < e; o++) d[_argmax[o]] += dy.Data[o];
        }
    }
}
