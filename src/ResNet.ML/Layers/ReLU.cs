using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

public sealed class ReLU(string name) : Layer(name)
{
    private Tensor? _output, _gradOutput, _gradInput;
    private Action<int, int, int>? _forwardPart, _backwardPart;
    private Tensor? _input;

    public override (int C, int H, int W) OutputShape(int c, int h, int w) => (c, h, w);

    public override Tensor Forward(Tensor input, bool training)
    {
        _input = input;
        var output = Tensor.Reuse(ref _output, input.N, input.C, input.H, input.W);
        Engine.ParallelFor(input.Length, _forwardPart ??= (_, b, e) =>
            Kernels.Relu(_input!.Data.AsSpan(b, e - b), _output!.Data.AsSpan(b, e - b)));
        return output;
    }

    public override Tensor Backward(Tensor gradOutput)
    {
        var y = _output ?? throw new InvalidOperationException($"ReLU '{Name}': Backward was called before Forward.");
        if (!gradOutput.SameShape(y))
            throw new ShapeException($"ReLU '{Name}': the output gradient {gradOutput.Shape} does not match the output {y.Shape}.");
        _gradOutput = gradOutput;
        var gradInput = Tensor.Reuse(ref _gradInput, y.N, y.C, y.H, y.W);
        Engine.ParallelFor(y.Length, _backwardPart ??= (_, b, e) =>
            Kernels.ReluBackward(_gradOutput!.Data.AsSpan(b, e - b), _output!.Data.AsSpan(b, e - b), _gradInput!.Data.AsSpan(b, e - b)));
        return gradInput;
    }
}
