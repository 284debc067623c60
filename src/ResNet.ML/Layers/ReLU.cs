using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

public sealed class ReLU(string name) : Layer(name)
{
    private Action<int, int, int>? _forwardPart, _backwardPart;

    /// <summary>What a ReLU keeps from its forward to its backward: its output, which is also its mask.</summary>
    internal sealed class Run : LayerWorkspace
    {
        public Tensor? Input, Output, GradOutput, GradInput, MaskFrom;
        /// <summary>The batch norm's output when the plan ran this ReLU fused into it; <see cref="Output"/> stays this layer's own.</summary>
        public Tensor? FusedOutput;
        internal override IEnumerable<Tensor?> Tensors => [Output, GradInput];
    }

    internal override LayerWorkspace CreateWorkspace() => new Run();

    public override (int C, int H, int W) OutputShape(int c, int h, int w) => (c, h, w);

    public override Tensor Forward(Tensor input, bool training)
    {
        var ws = Workspace<Run>();
        (ws.Input, ws.FusedOutput) = (input, null);
        var output = Tensor.Reuse(ref ws.Output, input.N, input.C, input.H, input.W);
        Engine.ParallelFor(input.Length, _forwardPart ??= (_, b, e) =>
        {
            var run = Workspace<Run>();
            Kernels.Relu(run.Input!.Data.AsSpan(b, e - b), run.Output!.Data.AsSpan(b, e - b));
        });
        ws.Input = null;   // the backward masks by the output
        return output;
    }

    /// <summary>
    /// Records <paramref name="output"/> as this layer's output when the network ran it fused into the batch norm
    /// before it, so that a later <see cref="Backward"/> of this layer alone still masks correctly.
    /// </summary>
    internal Tensor AdoptFusedOutput(Tensor output)
    {
        var ws = Workspace<Run>();
        (ws.Input, ws.FusedOutput) = (null, output);
        return output;
    }

    public override Tensor Backward(Tensor gradOutput)
    {
        var ws = Workspace<Run>();
        var y = ws.FusedOutput ?? ws.Output ?? throw new InvalidOperationException($"ReLU '{Name}': Backward was called before Forward.");
        if (!gradOutput.SameShape(y))
            throw new ShapeException($"ReLU '{Name}': the output gradient {gradOutput.Shape} does not match the output {y.Shape}.");
        (ws.GradOutput, ws.MaskFrom) = (gradOutput, y);
        var gradInput = Tensor.Reuse(ref ws.GradInput, y.N, y.C, y.H, y.W);
        Engine.ParallelFor(y.Length, _backwardPart ??= (_, b, e) =>
        {
            var run = Workspace<Run>();
            Kernels.ReluBackward(run.GradOutput!.Data.AsSpan(b, e - b), run.MaskFrom!.Data.AsSpan(b, e - b), run.GradInput!.Data.AsSpan(b, e - b));
        });
        (ws.GradOutput, ws.MaskFrom) = (null, null);
        return gradInput;
    }
}
