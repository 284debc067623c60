using ResNet.ML.Layers;
using ResNet.ML.Tensors;

namespace ResNet.ML.Training;

/// <summary>
/// Initializes a network as torchvision's ResNet does: convolutions Kaiming-normal with fan-out and ReLU gain
/// (std = √(2 / (out·k·k))), batch norms weight 1 and bias 0, linear layers PyTorch's default (weight and bias uniform
/// in ±1/√fan_in); optionally the last BN of each residual block zero (so each block starts as the identity,
/// torchvision's <c>zero_init_residual</c>). Draws come from the given <see cref="Rng"/> in layer order, so a seed fixes the weights.
/// </summary>
public static class Initializer
{
    public static void Initialize(Network network, Rng rng, bool zeroInitLastBlockBn = false)
    {
        foreach (var layer in network.AllLayers)
        {
            switch (layer)
            {
                case Conv2d conv:
                {
                    double std = Math.Sqrt(2.0 / ((double)conv.OutChannels * conv.KernelSize * conv.KernelSize));
                    var w = conv.Weight.Value.Data;
                    for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextGaussian() * std);
                    conv.Bias?.Value.Clear();
                    break;
                }
                case BatchNorm2d bn:
                    bn.Weight.Value.Span.Fill(1f);
                    bn.Bias.Value.Clear();
                    bn.RunningMean.Clear();
                    bn.RunningVar.Span.Fill(1f);
                    bn.NumBatchesTracked = 0;
                    break;
                case Linear linear:
                {
                    double bound = 1.0 / Math.Sqrt(linear.InFeatures);
                    foreach (var p in linear.Parameters)
                    {
                        var d = p.Value.Data;
                        for (int i = 0; i < d.Length; i++) d[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
                    }
                    break;
                }
            }
        }
        if (zeroInitLastBlockBn)
            foreach (var block in network.AllLayers.OfType<ResidualBlock>())
                block.Branch[^1].Bn.Weight.Value.Clear();
        network.ZeroGrad();
    }
}
