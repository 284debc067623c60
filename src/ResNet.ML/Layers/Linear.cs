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

    /// <summary>What the layer keeps from its forward to its backward: its input.</summary>
    internal sealed class Run : LayerWorkspace
    {
        public Tensor? Input, Output, GradInput;
        internal override IEnumerable<Tensor?> Tensors => [Output, GradInput];
    }

    internal override LayerWorkspace CreateWorkspace() => new Run();

    public override Tensor Forward(Tensor input, bool training)
    {
        OutputShape(input.C, input.H, input.W);
        var ws = Workspace<Run>();
        var y = Tensor.Reuse(ref ws.Output, input.N, OutFeatures, 1, 1);
        ws.Input = input;
        // Y[N×out] = X[N×in] · Wᵀ (+ b)
        Gemm.Multiply(false, true, input.N, OutFeatures, InFeatures, input.Data, InFeatures, Weight.Value.Data, InFeatures, y.Data, OutFeatures, accumulate: false);
        if (Bias is not null)
            for (int n = 0; n < input.N; n++)
            {
                var row = y.Data.AsSpan(n * OutFeatures, OutFeatures);
                System.Numerics.Tensors.TensorPrimitives.Add(row, Bias.Value.Data, row);
            }
        return y;
    }

    public override Tensor Backward(Tensor gradOutput)
    {
        var ws = Workspace<Run>();
        var x = ws.Input ?? throw new InvalidOperationException($"Linear '{Name}': Backward was called before Forward.");
        if (!gradOutput.HasShape(x.N, OutFeatures, 1, 1))
            throw new ShapeException($"Linear '{Name}': the output gradient {gradOutput.Shape} does not match the output [{x.N}, {OutFeatures}, 1, 1].");
        var dx = Tensor.Reuse(ref ws.GradInput, x.N, x.C, x.H, x.W);
        // dW += dYᵀ · X, db += Σₙ dY, dX = dY · W
        Gemm.Multiply(true, false, OutFeatures, InFeatures, x.N, gradOutput.Data, OutFeatures, x.Data, InFeatures, Weight.Grad.Data, InFeatures, accumulate: true);
        if (Bias is not null)
            for (int n = 0; n < x.N; n++)
            {
                var row = gradOutput.Data.AsSpan(n * OutFeatures, OutFeatures);
                System.Numerics.Tensors.TensorPrimitives.Add(Bias.Grad.Data, row, Bias.Grad.Data);
            }
        Gemm.Multiply(false, false, x.N, InFeatures, OutFeatures, gradOutput.Data, OutFeatures, Weight.Value.Data, InFeatures, dx.Data, InFeatures, accumulate: false);
        return dx;
    }
}
