using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>
/// Fully connected layer y = x Wᵀ + b with weight [out, in] as PyTorch's <c>nn.Linear</c>. The input [N, C, H, W] is
/// flattened to [N, C·H·W] (torch.flatten(x, 1)); the output is [N, out, 1, 1].
/// </summary>
public sealed class Linear : Layer
{
    public Linear(string name, int inFeatures, int outFeatures, bool bias = true) : base(name)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentException($"Linear '{name}' needs positive sizes, not {inFeatures} -> {outFeatures}.");
        (InFeatures, OutFeatures) = (inFeatures, outFeatures);
        Weight = new Parameter($"{name}.weight", new Tensor(outFeatures, inFeatures, 1, 1));
        if (bias) Bias = new Parameter($"{name}.bias", new Tensor(1, outFeatures, 1, 1)) { IsWeight = false };
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    public override IEnumerable<Parameter> Parameters => Bias is null ? [Weight] : [Weight, Bias];

    public override IEnumerable<StateEntry> State =>
        Bias is null ? [new StateEntry(Weight.Name, Weight.Value, [OutFeatures, InFeatures])]
                     : [new StateEntry(Weight.Name, Weight.Value, [OutFeatures, InFeatures]), new StateEntry(Bias.Name, Bias.Value, [OutFeatures])];

    public override (int C, int H, int W) OutputShape(int c, int h, int w) =>
        (long)c * h * w == InFeatures ? (OutFeatures, 1, 1)
        : throw new ShapeException($"Linear '{Name}' takes {InFeatures} features, but its input [{c}, {h}, {w}] flattens to {(long)c * h * w}.");

    public override Tensor Forward(Tensor input, bool training) => throw new NotImplementedException();
    public override Tensor Backward(Tensor gradOutput) => throw new NotImplementedException();
}
