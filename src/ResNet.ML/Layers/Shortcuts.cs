using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>
/// The paper's option A: an identity shortcut that, where a stage halves the size and widens the channels, takes every
/// <c>stride</c>-th pixel (x[:, :, ::s, ::s]) and pads the new channels with zeros, (out-in)/2 before and the rest
/// after. It has no parameters.
/// </summary>
public sealed class ZeroPadShortcut : Layer
{
    public ZeroPadShortcut(string name, int inChannels, int outChannels, int stride) : base(name)
    {
        if (outChannels < inChannels || stride <= 0)
            throw new ArgumentException($"ZeroPadShortcut '{name}' can only widen ({inChannels} -> {outChannels}) with a positive stride ({stride}).");
        (InChannels, OutChannels, Stride) = (inChannels, outChannels, stride);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int Stride { get; }
    public int PadBefore => (OutChannels - InChannels) / 2;
    public int PadAfter => OutChannels - InChannels - PadBefore;

    public override (int C, int H, int W) OutputShape(int c, int h, int w) =>
        c == InChannels ? (OutChannels, (h + Stride - 1) / Stride, (w + Stride - 1) / Stride)
        : throw new ShapeException($"ZeroPadShortcut '{Name}' takes {InChannels} channels, but its input [{c}, {h}, {w}] has {c}.");

    /// <summary>What the shortcut keeps from its forward to its backward, and its backward's arguments.</summary>
    internal sealed class Run : LayerWorkspace
    {
        public Tensor? Input, Output, GradInput, GradOutput, Mask, Into;
        internal override IEnumerable<Tensor?> Tensors => [Output, GradInput];
    }

    internal override LayerWorkspace CreateWorkspace() => new Run();

    private Action<int, int, int>? _forwardPart, _backwardPart;

    // Both directions are pure copies per image (no sums), so splitting the batch over threads cannot change results.
    private void ForwardPart(int part, int begin, int end)
    {
        var ws = Workspace<Run>();
        var input = ws.Input!;
        var y = ws.Output!;
        int oh = y.H, ow = y.W, inPlane = input.H * input.W, outPlane = oh * ow;
        for (int n = begin; n < end; n++)
        {
            var yn = y.Data.AsSpan(n * y.SampleSize, y.SampleSize);
            yn[..(PadBefore * outPlane)].Clear();
            yn[((PadBefore + InChannels) * outPlane)..].Clear();
            for (int ch = 0; ch < InChannels; ch++)
            {
                var src = input.Data.AsSpan((n * InChannels + ch) * inPlane, inPlane);
                var dst = yn.Slice((PadBefore + ch) * outPlane, outPlane);
                if (Stride == 1) { src.CopyTo(dst); continue; }
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++)
                        dst[oy * ow + ox] = src[oy * Stride * input.W + ox * Stride];
            }
        }
    }

    private void BackwardPart(int part, int begin, int end)
    {
        var ws = Workspace<Run>();
        var x = ws.Input!;
        var dx = ws.GradInput!;
        var gradOutput = ws.GradOutput!;
        int inPlane = x.H * x.W, oh = gradOutput.H, ow = gradOutput.W, outPlane = oh * ow;
        if (Stride != 1) dx.Data.AsSpan(begin * x.SampleSize, (end - begin) * x.SampleSize).Clear();
        for (int n = begin; n < end; n++)
            for (int ch = 0; ch < InChannels; ch++)
            {
                var src = gradOutput.Data.AsSpan((n * OutChannels + PadBefore + ch) * outPlane, outPlane);
                var dst = dx.Data.AsSpan((n * InChannels + ch) * inPlane, inPlane);
                if (Stride == 1) { src.CopyTo(dst); continue; }
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++)
                        dst[oy * Stride * x.W + ox * Stride] = src[oy * ow + ox];
            }
    }

    /// <summary>
    /// into += the input gradient for <paramref name="gradOutput"/> masked where <paramref name="mask"/> ≤ 0 (a ReLU's
    /// backward): how a residual block adds this shortcut's gradient to its branch's without the masked gradient or the
    /// mostly-zero input gradient ever being written as tensors.
    /// </summary>
    internal void AccumulateMaskedBackward(Tensor gradOutput, Tensor mask, Tensor into)
    {
        var ws = Workspace<Run>();
        var x = ws.Input ?? throw new InvalidOperationException($"ZeroPadShortcut '{Name}': Backward was called before Forward.");
        if (!gradOutput.SameShape(ws.Output!) || !mask.SameShape(gradOutput) || !into.SameShape(x))
            throw new ShapeException($"ZeroPadShortcut '{Name}': the output gradient {gradOutput.Shape}, mask {mask.Shape} and input gradient {into.Shape} do not match the output {ws.Output!.Shape} and input {x.Shape}.");
        (ws.GradOutput, ws.Mask, ws.Into) = (gradOutput, mask, into);
        Engine.ParallelFor(x.N, _accumulatePart ??= AccumulatePart);
        (ws.GradOutput, ws.Mask, ws.Into) = (null, null, null);
    }

    private Action<int, int, int>? _accumulatePart;

    private void AccumulatePart(int part, int begin, int end)
    {
        var ws = Workspace<Run>();
        var g = ws.GradOutput!.Data;
        var m = ws.Mask!.Data;
        var dx = ws.Into!.Data;
        int inH = ws.Into.H, inW = ws.Into.W, oh = ws.GradOutput.H, ow = ws.GradOutput.W, outPlane = oh * ow, inPlane = inH * inW;
        for (int n = begin; n < end; n++)
            for (int ch = 0; ch < InChannels; ch++)
            {
                int src = (n * OutChannels + PadBefore + ch) * outPlane, dst = (n * InChannels + ch) * inPlane;
                if (Stride == 1)
                {
                    Kernels.AddMasked(g.AsSpan(src, outPlane), m.AsSpan(src, outPlane), dx.AsSpan(dst, inPlane));
                    continue;
                }
                for (int oy = 0; oy < oh; oy++)
                {
                    int i = src + oy * ow, d = dst + oy * Stride * inW, ox = 0;
                    if (Stride == 2) ox = Kernels.AddMaskedSpread2(g.AsSpan(i, ow), m.AsSpan(i, ow), dx.AsSpan(d, Math.Min(2 * ow, inW)));
                    for (; ox < ow; ox++)
                        if (m[i + ox] > 0) dx[d + ox * Stride] += g[i + ox];
                }
            }
    }

    public override Tensor Forward(Tensor input, bool training)
    {
        var (c, oh, ow) = OutputShape(input.C, input.H, input.W);
        var ws = Workspace<Run>();
        var y = Tensor.Reuse(ref ws.Output, input.N, c, oh, ow);
        ws.Input = input;
        Engine.ParallelFor(input.N, _forwardPart ??= ForwardPart);
        return y;
    }

    public override Tensor Backward(Tensor gradOutput)
    {
        var ws = Workspace<Run>();
        var x = ws.Input ?? throw new InvalidOperationException($"ZeroPadShortcut '{Name}': Backward was called before Forward.");
        if (!gradOutput.SameShape(ws.Output!))
            throw new ShapeException($"ZeroPadShortcut '{Name}': the output gradient {gradOutput.Shape} does not match the output {ws.Output!.Shape}.");
        var dx = Tensor.Reuse(ref ws.GradInput, x.N, x.C, x.H, x.W);
        ws.GradOutput = gradOutput;
        Engine.ParallelFor(x.N, _backwardPart ??= BackwardPart);
        ws.GradOutput = null;
        return dx;
    }
}

/// <summary>
/// The paper's option B: a projection shortcut, convolution (1x1 by default, stride s) then batch norm, named as
/// torchvision names <c>downsample</c>: <c>{name}.0</c> is the conv, <c>{name}.1</c> the BN.
/// </summary>
public sealed class ProjectionShortcut : Layer
{
    public ProjectionShortcut(string name, int inChannels, int outChannels, int stride, int kernelSize = 1) : base(name)
    {
        Conv = new Conv2d($"{name}.0", inChannels, outChannels, kernelSize, stride, kernelSize / 2);
        Bn = new BatchNorm2d($"{name}.1", outChannels);
    }

    public Conv2d Conv { get; }
    public BatchNorm2d Bn { get; }

    public override IEnumerable<Layer> Children => [Conv, Bn];
    public override IEnumerable<Parameter> Parameters => Conv.Parameters.Concat(Bn.Parameters);
    public override IEnumerable<StateEntry> State => Conv.State.Concat(Bn.State);

    public override (int C, int H, int W) OutputShape(int c, int h, int w)
    {
        var s = Conv.OutputShape(c, h, w);
        return Bn.OutputShape(s.C, s.H, s.W);
    }

    public override Tensor Forward(Tensor input, bool training) => Bn.Forward(Conv.Forward(input, training), training);
    public override Tensor Backward(Tensor gradOutput) => Conv.Backward(Bn.Backward(gradOutput));
}
