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

    /// <summary>What a block keeps itself (its children keep their own): its input and output, and the shortcut sum's operands.</summary>
    internal sealed class Run : LayerWorkspace
    {
        public Tensor? Input, Output, SumInto, SumFrom;
        internal override IEnumerable<Tensor?> Tensors => [];   // the tensors are its children's
    }

    internal override LayerWorkspace CreateWorkspace() => new Run();

    private Action<int, int, int>? _sumPart;

    // Each BN runs fused with the ReLU after it (and the last one with the shortcut add), so a block keeps only its
    // convolution outputs and BN outputs: no separate ReLU, sum or mask tensors.
    public override Tensor Forward(Tensor input, bool training)
    {
        OutputShape(input.C, input.H, input.W);
        var ws = Workspace<Run>();
        ws.Input = input;
        var h = input;
        for (int i = 0; i < Branch.Count - 1; i++)
        {
            var (conv, bn) = Branch[i];
            h = bn.ForwardFused(conv.Forward(h, training), training, residual: null, relu: true);
        }
        var shortcut = Plain ? null : Shortcut?.Forward(input, training) ?? input;
        var (lastConv, lastBn) = Branch[^1];
        return ws.Output = lastBn.ForwardFused(lastConv.Forward(h, training), training, shortcut, relu: true);
    }

    public override Tensor Backward(Tensor gradOutput)
    {
        var ws = Workspace<Run>();
        var x = ws.Input ?? throw new InvalidOperationException($"Block '{Name}': Backward was called before Forward.");
        var y = ws.Output!;
        if (!gradOutput.SameShape(y))
            throw new ShapeException($"Block '{Name}': the output gradient {gradOutput.Shape} does not match the output {y.Shape}.");
        var (lastConv, lastBn) = Branch[^1];
        // The final ReLU's gradient (masked) flows into both the branch and the shortcut. Only a projection shortcut
        // needs it as a tensor; for the identity and zero-padding shortcuts it is masked on the fly where it is added.
        var projection = Shortcut as ProjectionShortcut;
        bool identity = !Plain && Shortcut is null;
        var g = lastBn.BackwardFused(gradOutput, overwriteGradOutput: false, keepMasked: projection is not null);
        for (int i = Branch.Count - 1; i >= 0; i--)
        {
            var (conv, bn) = Branch[i];
            if (i < Branch.Count - 1) g = bn.BackwardFused(g, overwriteGradOutput: true, keepMasked: false);
            // The first convolution's input gradient is the block's: the identity's share is added as it is made.
            g = i == 0 && identity ? conv.BackwardAddingMasked(g, gradOutput, y) : conv.Backward(g);
        }
        if (Plain || identity) return g;
        // g is the first convolution's own input-gradient buffer, free to take the sum.
        if (Shortcut is ZeroPadShortcut zeroPad)
        {
            zeroPad.AccumulateMaskedBackward(gradOutput, y, g);
            return g;
        }
        (ws.SumInto, ws.SumFrom) = (g, Shortcut!.Backward(lastBn.MaskedGradOutput!));
        Engine.ParallelFor(g.Length, _sumPart ??= (_, b, e) =>
        {
            var run = Workspace<Run>();
            System.Numerics.Tensors.TensorPrimitives.Add(run.SumInto!.Data.AsSpan(b, e - b), run.SumFrom!.Data.AsSpan(b, e - b), run.SumInto!.Data.AsSpan(b, e - b));
        });
        (ws.SumInto, ws.SumFrom) = (null, null);
        return g;
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
