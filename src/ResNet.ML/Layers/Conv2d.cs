using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>2-D convolution, square kernel, weight [out, in, k, k] as PyTorch's <c>nn.Conv2d</c>.</summary>
public sealed class Conv2d : Layer
{
    public Conv2d(string name, int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, bool bias = false)
        : base(name)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernelSize <= 0 || stride <= 0 || padding < 0)
            throw new ArgumentException($"Conv2d '{name}': channels, kernel size and stride must be positive and padding not negative (in {inChannels}, out {outChannels}, k {kernelSize}, stride {stride}, padding {padding}).");
        (InChannels, OutChannels, KernelSize, Stride, Padding) = (inChannels, outChannels, kernelSize, stride, padding);
        Weight = new Parameter($"{name}.weight", new Tensor(outChannels, inChannels, kernelSize, kernelSize));
        if (bias) Bias = new Parameter($"{name}.bias", new Tensor(1, outChannels, 1, 1)) { IsWeight = false };
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int KernelSize { get; }
    public int Stride { get; }
    public int Padding { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    public override IEnumerable<Parameter> Parameters => Bias is null ? [Weight] : [Weight, Bias];

    public override IEnumerable<StateEntry> State =>
        Bias is null ? [new StateEntry(Weight.Name, Weight.Value)]
                     : [new StateEntry(Weight.Name, Weight.Value), new StateEntry(Bias.Name, Bias.Value, [OutChannels])];

    public override (int C, int H, int W) OutputShape(int c, int h, int w)
    {
        if (c != InChannels)
            throw new ShapeException($"Conv2d '{Name}' takes {InChannels} channels, but its input [{c}, {h}, {w}] has {c}.");
        int oh = (h + 2 * Padding - KernelSize) / Stride + 1, ow = (w + 2 * Padding - KernelSize) / Stride + 1;
        if (h + 2 * Padding < KernelSize || w + 2 * Padding < KernelSize || oh <= 0 || ow <= 0)
            throw new ShapeException($"Conv2d '{Name}' ({KernelSize}x{KernelSize}, stride {Stride}, padding {Padding}) cannot slide over an input of [{c}, {h}, {w}]: the image is too small for this architecture.");
        return (OutChannels, oh, ow);
    }

    private Tensor? _input, _output, _gradOutput, _gradInput;
    private float[]?[] _weightGradParts = [];
    private float[]?[] _biasGradParts = [];
    private Action<int, int, int>? _forwardPart, _backwardPart;

    /// <summary>A 1x1 stride-1 unpadded convolution reads the image itself as its column matrix.</summary>
    private bool Pointwise => KernelSize == 1 && Stride == 1 && Padding == 0;

    public override Tensor Forward(Tensor input, bool training)
    {
        var (oc, oh, ow) = OutputShape(input.C, input.H, input.W);
        var output = Tensor.Reuse(ref _output, input.N, oc, oh, ow);
        _input = input;
        Engine.ParallelFor(input.N, _forwardPart ??= ForwardPart);
        return output;
    }

    private void ForwardPart(int part, int begin, int end)
    {
        var x = _input!;
        var y = _output!;
        int k = InChannels * KernelSize * KernelSize, pixels = y.H * y.W;
        float[]? columns = Pointwise ? null : Engine.Scratch(0, k * pixels);
        var weight = Weight.Value.Data;
        for (int n = begin; n < end; n++)
        {
            ReadOnlySpan<float> b = x.Data.AsSpan(n * x.SampleSize, x.SampleSize);
            if (columns is not null)
            {
                Im2Col.Unfold(b, InChannels, x.H, x.W, KernelSize, Stride, Padding, y.H, y.W, columns);
                b = columns.AsSpan(0, k * pixels);
            }
            var yn = y.Data.AsSpan(n * y.SampleSize, y.SampleSize);
            Gemm.Multiply(false, false, OutChannels, pixels, k, weight, k, b, pixels, yn, pixels, accumulate: false);
            if (Bias is not null)
                for (int o = 0; o < OutChannels; o++)
                    System.Numerics.Tensors.TensorPrimitives.Add(yn.Slice(o * pixels, pixels), Bias.Value.Data[o], yn.Slice(o * pixels, pixels));
        }
    }

    public override Tensor Backward(Tensor gradOutput)
    {
        var x = _input ?? throw new InvalidOperationException($"Conv2d '{Name}': Backward was called before Forward.");
        var y = _output!;
        if (!gradOutput.SameShape(y))
            throw new ShapeException($"Conv2d '{Name}': the output gradient {gradOutput.Shape} does not match the output {y.Shape}.");
        _gradOutput = gradOutput;
        var gradInput = Tensor.Reuse(ref _gradInput, x.N, x.C, x.H, x.W);
        int parts = Engine.Parts(x.N);
        if (_weightGradParts.Length < parts) { _weightGradParts = new float[parts][]; _biasGradParts = new float[parts][]; }
        Engine.ParallelFor(x.N, _backwardPart ??= BackwardPart);
        // Partial sums are added in part order: deterministic for a given thread count.
        var wg = Weight.Grad.Data;
        for (int p = 0; p < parts; p++)
            System.Numerics.Tensors.TensorPrimitives.Add(wg, _weightGradParts[p].AsSpan(0, wg.Length), wg);
        if (Bias is not null)
        {
            var bg = Bias.Grad.Data;
            for (int p = 0; p < parts; p++)
                System.Numerics.Tensors.TensorPrimitives.Add(bg, _biasGradParts[p].AsSpan(0, bg.Length), bg);
        }
        return gradInput;
    }

    private void BackwardPart(int part, int begin, int end)
    {
        var x = _input!;
        var dy = _gradOutput!;
        var dx = _gradInput!;
        int k = InChannels * KernelSize * KernelSize, pixels = dy.H * dy.W;
        float[]? columns = Pointwise ? null : Engine.Scratch(0, k * pixels);
        float[]? gradColumns = Pointwise ? null : Engine.Scratch(1, k * pixels);
        var weightGrad = Engine.Scratch(2, OutChannels * k);
        var biasGrad = Engine.Scratch(3, OutChannels);
        _weightGradParts[part] = weightGrad;
        _biasGradParts[part] = biasGrad;
        var weight = Weight.Value.Data;
        for (int n = begin; n < end; n++)
        {
            ReadOnlySpan<float> xn = x.Data.AsSpan(n * x.SampleSize, x.SampleSize);
            ReadOnlySpan<float> dyn = dy.Data.AsSpan(n * dy.SampleSize, dy.SampleSize);
            var dxn = dx.Data.AsSpan(n * dx.SampleSize, dx.SampleSize);
            ReadOnlySpan<float> b = xn;
            if (columns is not null)
            {
                Im2Col.Unfold(xn, InChannels, x.H, x.W, KernelSize, Stride, Padding, dy.H, dy.W, columns);
                b = columns.AsSpan(0, k * pixels);
            }
            // dW += dY_n · colᵀ
            Gemm.Multiply(false, true, OutChannels, k, pixels, dyn, pixels, b, pixels, weightGrad, k, accumulate: n != begin);
            if (Bias is not null)
                for (int o = 0; o < OutChannels; o++)
                {
                    float s = System.Numerics.Tensors.TensorPrimitives.Sum(dyn.Slice(o * pixels, pixels));
                    biasGrad[o] = n == begin ? s : biasGrad[o] + s;
                }
            // dcol = Wᵀ · dY_n, folded back onto the image
            if (gradColumns is null)
                Gemm.Multiply(true, false, k, pixels, OutChannels, weight, k, dyn, pixels, dxn, pixels, accumulate: false);
            else
            {
                Gemm.Multiply(true, false, k, pixels, OutChannels, weight, k, dyn, pixels, gradColumns, pixels, accumulate: false);
                Im2Col.Fold(gradColumns, InChannels, x.H, x.W, KernelSize, Stride, Padding, dy.H, dy.W, dxn);
            }
        }
    }
}
