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

    public override Tensor Forward(Tensor input, bool training) => throw new NotImplementedException();
    public override Tensor Backward(Tensor gradOutput) => throw new NotImplementedException();
}
