using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>Mean over H and W: [N, C, H, W] to [N, C, 1, 1] (PyTorch's <c>AdaptiveAvgPool2d(1)</c>, ONNX GlobalAveragePool).</summary>
public sealed class GlobalAvgPool2d(string name) : Layer(name)
{
    public override (int C, int H, int W) OutputShape(int c, int h, int w) => (c, 1, 1);
    public override Tensor Forward(Tensor input, bool training) => throw new NotImplementedException();
    public override Tensor Backward(Tensor gradOutput) => throw new NotImplementedException();
}
