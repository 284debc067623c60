using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

public sealed class ReLU(string name) : Layer(name)
{
    private Tensor? _output, _gradOutput, _gradInput;
    private Action<int, int, int>? _forwardPart, _backwardPart;
    private Tensor? _input, _maskFrom;

    public override (int C, int H, int W) OutputShape(int c, int h, int w) => (c, h, w);

    public override Tensor Forward(Tensor input, bool training)
    {
        (_input, _fusedOutput) = (input, null);
        var output = Tensor.Reuse(ref _output, input.N, input.C, input.H, input.W);
        Engine.ParallelFor(input.Length, _forwardPart ??= (_, b, e) =>
            Kernels.Relu(_input!.Data.AsSpan(b, e - b), _output!.Data.AsSpan(b, e - b)));
        return output;
    }

    /// <summary>
    /// Records <paramref name="output"/> as this layer's output when the network ran it fused into the batch norm
    /// before it, so that a later <see cref="Backward"/> of this layer alone still masks correctly.
    /// </summary>
    internal Tensor AdoptFusedOutput(Tensor output)
    {
        (_input, _fusedOutput) = (null, output);
        return output;
    }

    private Tensor? _fusedOutput;   // the batch norm's output when fused; this layer's own buffer stays its own

    public override Tensor Backward(Tensor gradOutput)
    {
        var y = _fusedOutput ?? _output ?? throw new InvalidOperationException($"ReLU '{Name}': Backward was called before Forward.");
        if (!gradOutput.SameShape(y))
            throw new ShapeException($"ReLU '{Name}': the output gradient {gradOutput.Shape} does not match the output {y.Shape}.");
        (_gradOutput, _maskFrom) = (gradOutput, y);
        var gradInput = Tensor.Reuse(ref _gradInput, y.N, y.C, y.H, y.W);
        Engine.ParallelFor(y.Length, _backwardPart ??= (_, b, e) =>
            Kernels.ReluBackward(_gradOutput!.Data.AsSpan(b, e - b), _maskFrom!.Data.AsSpan(b, e - b), _gradInput!.Data.AsSpan(b, e - b)));
        return gradInput;
    }
}
