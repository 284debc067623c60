using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>
/// y = relu(F(x) + shortcut(x)), where F is a chain of conv-BN pairs with a ReLU between them (the residual function
/// of the paper), and the shortcut is the identity, <see cref="ZeroPadShortcut"/> (option A) or
/// <see cref="ProjectionShortcut"/> (option B). A plain block (the paper's plain twin) has no shortcut: y = relu(F(x)).
/// </summary>
public abstract class ResidualBlock : Layer
{
    protected ResidualBlock(string name, IReadOnlyList<(Conv2d Conv, BatchNorm2d Bn)> branch, Layer? shortcut, bool plain) : base(name)
    {
        if (plain && shortcut is not null) throw new ArgumentException($"Block '{name}' is plain: it has no shortcut to give.");
        Branch = branch;
        Shortcut = shortcut;
        Plain = plain;
    }

    /// <summary>The residual function F: conv, BN, then ReLU between pairs (not after the last pair).</summary>
    public IReadOnlyList<(Conv2d Conv, BatchNorm2d Bn)> Branch { get; }

    /// <summary>Null for the identity (or for a plain block).</summary>
    public Layer? Shortcut { get; }

    /// <summary>True for a plain block: no shortcut, y = relu(F(x)).</summary>
    public bool Plain { get; }

    public override IEnumerable<Layer> Children =>
        Branch.SelectMany(p => new Layer[] { p.Conv, p.Bn }).Concat(Shortcut is null ? [] : [Shortcut]);

    public override IEnumerable<Parameter> Parameters => Children.SelectMany(c => c.Parameters);

    public override IEnumerable<StateEntry> State => Children.SelectMany(c => c.State);

    public override (int C, int H, int W) OutputShape(int c, int h, int w)
    {
        var s = (C: c, H: h, W: w);
        foreach (var (conv, bn) in Branch) { s = conv.OutputShape(s.C, s.H, s.W); s = bn.OutputShape(s.C, s.H, s.W); }
        if (Plain) return s;
        var r = Shortcut?.OutputShape(c, h, w) ?? (c, h, w);
        if (r != s)
            throw new ShapeException($"Block '{Name}': the residual branch gives [{s.C}, {s.H}, {s.W}] but the shortcut gives [{r.C}, {r.H}, {r.W}] for input [{c}, {h}, {w}]; a projection or zero-padding shortcut is needed where shapes change.");
        return s;
    }

    private Tensor? _input, _output, _gradBranchOut, _gradInput;
    private Tensor?[] _activations = [], _gradActivations = [];
    private Action<int, int, int>? _addReluPart, _reluPart, _reluBackPart, _sumPart;
    private Tensor? _a, _b, _c;

    public override Tensor Forward(Tensor input, bool training)
    {
        OutputShape(input.C, input.H, input.W);
        _input = input;
        if (_activations.Length != Branch.Count - 1) { _activations = new Tensor?[Branch.Count - 1]; _gradActivations = new Tensor?[Branch.Count - 1]; }
        var h = input;
        for (int i = 0; i < Branch.Count; i++)
        {
            var (conv, bn) = Branch[i];
            h = bn.Forward(conv.Forward(h, training), training);
            if (i < Branch.Count - 1)
            {
                var act = Tensor.Reuse(ref _activations[i], h.N, h.C, h.H, h.W);
                RunElementwise(h, null, act, _reluPart ??= (_, b, e) => Kernels.Relu(_a!.Data.AsSpan(b, e - b), _c!.Data.AsSpan(b, e - b)));
                h = act;
            }
        }
        var output = Tensor.Reuse(ref _output, h.N, h.C, h.H, h.W);
        if (Plain)
            RunElementwise(h, null, output, _reluPart ??= (_, b, e) => Kernels.Relu(_a!.Data.AsSpan(b, e - b), _c!.Data.AsSpan(b, e - b)));
        else
        {
            var shortcut = Shortcut?.Forward(input, training) ?? input;
            RunElementwise(h, shortcut, output, _addReluPart ??= (_, b, e) =>
                Kernels.AddRelu(_a!.Data.AsSpan(b, e - b), _b!.Data.AsSpan(b, e - b), _c!.Data.AsSpan(b, e - b)));
        }
        return output;
    }

    public override Tensor Backward(Tensor gradOutput)
    {
        var x = _input ?? throw new InvalidOperationException($"Block '{Name}': Backward was called before Forward.");
        var y = _output!;
        if (!gradOutput.SameShape(y))
            throw new ShapeException($"Block '{Name}': the output gradient {gradOutput.Shape} does not match the output {y.Shape}.");
        // The final ReLU's gradient flows into both the branch and the shortcut.
        var g = Tensor.Reuse(ref _gradBranchOut, y.N, y.C, y.H, y.W);
        RunElementwise(gradOutput, y, g, _reluBackPart ??= ReluBackwardPart);
        for (int i = Branch.Count - 1; i >= 0; i--)
        {
            var (conv, bn) = Branch[i];
            var gi = conv.Backward(bn.Backward(g));
            if (i > 0)
            {
                var act = _activations[i - 1]!;
                g = Tensor.Reuse(ref _gradActivations[i - 1], act.N, act.C, act.H, act.W);
                RunElementwise(gi, act, g, _reluBackPart ??= ReluBackwardPart);
            }
            else g = gi;
        }
        if (Plain) return g;
        var gradShortcut = Shortcut?.Backward(_gradBranchOut!) ?? _gradBranchOut!;
        var dx = Tensor.Reuse(ref _gradInput, x.N, x.C, x.H, x.W);
        RunElementwise(g, gradShortcut, dx, _sumPart ??= (_, b, e) =>
            System.Numerics.Tensors.TensorPrimitives.Add(_a!.Data.AsSpan(b, e - b), _b!.Data.AsSpan(b, e - b), _c!.Data.AsSpan(b, e - b)));
        return dx;
    }

    private void ReluBackwardPart(int part, int begin, int end) =>
        Kernels.ReluBackward(_a!.Data.AsSpan(begin, end - begin), _b!.Data.AsSpan(begin, end - begin), _c!.Data.AsSpan(begin, end - begin));

    private void RunElementwise(Tensor a, Tensor? b, Tensor c, Action<int, int, int> body)
    {
        (_a, _b, _c) = (a, b, c);
        Engine.ParallelFor(c.Length, body);
        (_a, _b, _c) = (null, null, null);
    }
}

/// <summary>Two 3x3 convolutions (ResNet-18/34 and the CIFAR ResNets); the first carries the stride.</summary>
public sealed class BasicBlock(string name, int inChannels, int outChannels, int stride, Layer? shortcut, bool plain = false)
    : ResidualBlock(name,
    [
        (new Conv2d($"{name}.conv1", inChannels, outChannels, 3, stride, 1), new BatchNorm2d($"{name}.bn1", outChannels)),
        (new Conv2d($"{name}.conv2", outChannels, outChannels, 3, 1, 1), new BatchNorm2d($"{name}.bn2", outChannels)),
    ], shortcut, plain)
{
    public const int Expansion = 1;
}

/// <summary>
/// 1x1 reduce, 3x3, 1x1 expand (ResNet-50/101/152), with the stride on the 3x3 as torchvision's "v1.5" does;
/// <paramref name="width"/> is the inner width, the output has width x 4 channels.
/// </summary>
public sealed class BottleneckBlock(string name, int inChannels, int width, int stride, Layer? shortcut, bool plain = false)
    : ResidualBlock(name,
    [
        (new Conv2d($"{name}.conv1", inChannels, width, 1), new BatchNorm2d($"{name}.bn1", width)),
        (new Conv2d($"{name}.conv2", width, width, 3, stride, 1), new BatchNorm2d($"{name}.bn2", width)),
        (new Conv2d($"{name}.conv3", width, width * Expansion, 1), new BatchNorm2d($"{name}.bn3", width * Expansion)),
    ], shortcut, plain)
{
    public const int Expansion = 4;
}
