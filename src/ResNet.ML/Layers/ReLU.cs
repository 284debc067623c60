using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

public sealed class ReLU(string name) : Layer(name)
{
    public override (int C, int H, int W) OutputShape(int c, int h, int w) => (c, h, w);
    public override Tensor Forward(Tensor input, bool training) => throw new NotImplementedException();
    public override Tensor Backward(Tensor gradOutput) => throw new NotImplementedException();
}
