using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>Mean over H and W: [N, C, H, W] to [N, C, 1, 1] (PyTorch's <c>AdaptiveAvgPool2d(1)</c>, ONNX GlobalAveragePool).</summary>
public sealed class GlobalAvgPool2d(string name) : Layer(name)
{
    public override (int C, int H, int W) OutputShape(int c, int h, int w) => (c, 1, 1);

    /// <summary>What the pooling keeps from its forward to its backward: its input's shape.</summary>
    internal sealed class Run : LayerWorkspace
    {
        public Tensor? Input, Output, GradInput;
        internal override IEnumerable<Tensor?> Tensors => [Output, GradInput];
    }

    internal override LayerWorkspace CreateWorkspace() => new Run();

    public override Tensor Forward(Tensor input, bool training)
    {
        var ws = Workspace<Run>();
        var output = Tensor.Reuse(ref ws.Output, input.N, input.C, 1, 1);
        ws.Input = input;
        int plane = input.H * input.W;
        for (int i = 0; i < output.Length; i++)
            output.Data[i] = System.Numerics.Tensors.TensorPrimitives.Sum(input.Data.AsSpan(i * plane, plane)) / plane;
        return output;
    }

    public override Tensor Backward(Tensor gradOutput)
    {
        var ws = Workspace<Run>();
        var x = ws.Input ?? throw new InvalidOperationException($"GlobalAvgPool2d '{Name}': Backward was called before Forward.");
        if (!gradOutput.HasShape(x.N, x.C, 1, 1))
            throw new ShapeException($"GlobalAvgPool2d '{Name}': the output gradient {gradOutput.Shape} does not match the output [{x.N}, {x.C}, 1, 1].");
        var dx = Tensor.Reuse(ref ws.GradInput, x.N, x.C, x.H, x.W);
        int plane = x.H * x.W;
        for (int i = 0; i < gradOutput.Length; i++) dx.Data.AsSpan(i * plane, plane).Fill(gradOutput.Data[i] / plane);
        return dx;
    }
}
