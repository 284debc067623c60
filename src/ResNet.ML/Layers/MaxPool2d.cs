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

    public override Tensor Forward(Tensor input, bool training) => throw new NotImplementedException();
    public override Tensor Backward(Tensor gradOutput) => throw new NotImplementedException();
}
