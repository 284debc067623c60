using ResNet.ML.Tensors;

namespace ResNet.ML.Layers.Reference;

/// <summary>A float64 activation: shape [N, C, H, W] and its values.</summary>
public sealed record Activation(double[] Data, int N, int C, int H, int W)
{
    public double this[int n, int c, int h, int w] => Data[((n * C + c) * H + h) * W + w];

    public static Activation From(Tensor t) => new(t.Data.Select(v => (double)v).ToArray(), t.N, t.C, t.H, t.W);

    internal Activation Like(int c, int h, int w) => new(new double[N * c * h * w], N, c, h, w);
}

/// <summary>
/// One forward pass of a layer or a whole <see cref="Network"/>, run through <see cref="ReferenceKernels"/> in float64
/// from the network's description (its layers and their parameters), with the backward pass that goes with it. The
/// engine's fused, parallel, preallocated path must agree with this one; nothing here is fused or reused.
/// </summary>
/// <remarks>
/// Parameter values are read from <c>values</c> when given (so a test can perturb one element at a time), else from
/// each parameter's tensor. Batch norm's running statistics are read, never updated.
/// </remarks>
public sealed class ReferencePass
{
    private readonly IReadOnlyDictionary<Parameter, double[]> _values;
    private readonly Stack<Func<double[], double[]>> _tape = new();
    private readonly Dictionary<Parameter, double[]> _gradients = [];
    private bool _backwardDone;

    private ReferencePass(IReadOnlyDictionary<Parameter, double[]>? values) =>
        _values = values ?? new Dictionary<Parameter, double[]>();

    /// <summary>The output of the pass (a network's logits [N, classes, 1, 1]).</summary>
    public Activation Output { get; private set; } = null!;

    /// <summary>Runs <paramref name="network"/> on <paramref name="input"/>.</summary>
    public static ReferencePass Forward(Network network, Activation input, bool training, IReadOnlyDictionary<Parameter, double[]>? values = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        var pass = new ReferencePass(values);
        var x = input;
        foreach (var layer in network.Layers) x = pass.Run(layer, x, training, pass._tape);
        pass.Output = x;
        return pass;
    }

    /// <summary>Runs one layer (a block runs its children) on <paramref name="input"/>.</summary>
    public static ReferencePass Forward(Layer layer, Activation input, bool training, IReadOnlyDictionary<Parameter, double[]>? values = null)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var pass = new ReferencePass(values);
        pass.Output = pass.Run(layer, input, training, pass._tape);
        return pass;
    }

    /// <summary>
    /// Back-propagates <paramref name="gradOutput"/> (the gradient of the loss with respect to <see cref="Output"/>);
    /// returns the gradient with respect to the input. Parameter gradients are then in <see cref="Gradient"/>. Once per pass.
    /// </summary>
    public double[] Backward(double[] gradOutput)
    {
        if (_backwardDone) throw new InvalidOperationException("A reference pass is back-propagated once; run Forward again.");
        if (gradOutput.Length != Output.Data.Length)
            throw new ArgumentException($"The output gradient has {gradOutput.Length} values but the output {Output.N}x{Output.C}x{Output.H}x{Output.W} has {Output.Data.Length}.", nameof(gradOutput));
        _backwardDone = true;
        return Unwind(_tape, gradOutput);
    }

    /// <summary>The gradient of the loss with respect to <paramref name="parameter"/> after <see cref="Backward"/> (zeros for a parameter the pass did not use).</summary>
    public double[] Gradient(Parameter parameter) => _gradients.TryGetValue(parameter, out var g) ? g : new double[parameter.Value.Length];

    private double[] Value(Parameter p) => _values.TryGetValue(p, out var v) ? v : ToDouble(p.Value);

    private double[] GradientOf(Parameter p) => _gradients.TryGetValue(p, out var g) ? g : _gradients[p] = new double[p.Value.Length];

    private Activation Run(Layer layer, Activation x, bool training, Stack<Func<double[], double[]>> tape)
    {
        var (c, h, w) = layer.OutputShape(x.C, x.H, x.W);
        switch (layer)
        {
            case Conv2d conv:
            {
                var y = x.Like(c, h, w);
                double[] weight = Value(conv.Weight);
                double[]? bias = conv.Bias is null ? null : Value(conv.Bias);
                ReferenceKernels.Conv2dForward(y.Data, x.Data, weight, bias, x.N, x.C, x.H, x.W, c, conv.KernelSize, conv.Stride, conv.Padding, h, w);
                tape.Push(dy =>
                {
                    var dx = new double[x.Data.Length];
                    ReferenceKernels.Conv2dBackward(dx, GradientOf(conv.Weight), conv.Bias is null ? null : GradientOf(conv.Bias), dy, x.Data, weight,
                        x.N, x.C, x.H, x.W, c, conv.KernelSize, conv.Stride, conv.Padding, h, w);
                    return dx;
                });
                return y;
            }
            case BatchNorm2d bn:
            {
                var y = x.Like(c, h, w);
                bool batchStatistics = training && !bn.UseRunningStatistics;
                double[] gamma = Value(bn.Weight), beta = Value(bn.Bias), mean = new double[c], invStd = new double[c];
                ReferenceKernels.BatchNormForward(y.Data, mean, invStd, x.Data, gamma, beta, ToDouble(bn.RunningMean), ToDouble(bn.RunningVar),
                    x.N, c, h * w, bn.Eps, batchStatistics);
                tape.Push(dy =>
                {
                    var dx = new double[x.Data.Length];
                    ReferenceKernels.BatchNormBackward(dx, GradientOf(bn.Weight), GradientOf(bn.Bias), dy, x.Data, mean, invStd, gamma, x.N, c, h * w, batchStatistics);
                    return dx;
                });
                return y;
            }
            case ReLU:
                return Relu(x, tape);
            case MaxPool2d pool:
            {
                var y = x.Like(c, h, w);
                var argmax = new int[y.Data.Length];
                ReferenceKernels.MaxPoolForward(y.Data, argmax, x.Data, x.N, x.C, x.H, x.W, pool.KernelSize, pool.Stride, pool.Padding, h, w);
                tape.Push(dy => { var dx = new double[x.Data.Length]; ReferenceKernels.MaxPoolBackward(dx, dy, argmax); return dx; });
                return y;
            }
            case GlobalAvgPool2d:
            {
                var y = x.Like(c, 1, 1);
                ReferenceKernels.GlobalAvgPoolForward(y.Data, x.Data, x.N, x.C, x.H * x.W);
                tape.Push(dy => { var dx = new double[x.Data.Length]; ReferenceKernels.GlobalAvgPoolBackward(dx, dy, x.N, x.C, x.H * x.W); return dx; });
                return y;
            }
            case Linear linear:
            {
                var y = x.Like(c, 1, 1);
                int features = x.C * x.H * x.W;
                double[] weight = Value(linear.Weight);
                double[]? bias = linear.Bias is null ? null : Value(linear.Bias);
                ReferenceKernels.LinearForward(y.Data, x.Data, weight, bias, x.N, features, c);
                tape.Push(dy =>
                {
                    var dx = new double[x.Data.Length];
                    ReferenceKernels.LinearBackward(dx, GradientOf(linear.Weight), linear.Bias is null ? null : GradientOf(linear.Bias), dy, x.Data, weight, x.N, features, c);
                    return dx;
                });
                return y;
            }
            case ZeroPadShortcut zp:
            {
                var y = x.Like(c, h, w);
                ReferenceKernels.ZeroPadForward(y.Data, x.Data, x.N, x.C, x.H, x.W, c, zp.PadBefore, zp.Stride, h, w);
                tape.Push(dy => { var dx = new double[x.Data.Length]; ReferenceKernels.ZeroPadBackward(dx, dy, x.N, x.C, x.H, x.W, c, zp.PadBefore, zp.Stride, h, w); return dx; });
                return y;
            }
            case ProjectionShortcut projection:
                return Run(projection.Bn, Run(projection.Conv, x, training, tape), training, tape);
            case ResidualBlock block:
                return Block(block, x, training, tape);
            default:
                throw new NotSupportedException($"The reference has no {layer.GetType().Name} ('{layer.Name}'): add its forward and backward to ReferenceKernels.");
        }
    }

    /// <summary>
    /// y = relu(F(x) + shortcut(x)), F = conv–BN pairs with ReLUs between them; a plain block drops the shortcut. The
    /// branch and the shortcut each record on a tape of their own, because both read x: the block's backward unwinds
    /// both and sums the two input gradients.
    /// </summary>
    private Activation Block(ResidualBlock block, Activation x, bool training, Stack<Func<double[], double[]>> tape)
    {
        var branchTape = new Stack<Func<double[], double[]>>();
        var h = x;
        for (int i = 0; i < block.Branch.Count; i++)
        {
            h = Run(block.Branch[i].Bn, Run(block.Branch[i].Conv, h, training, branchTape), training, branchTape);
            if (i < block.Branch.Count - 1) h = Relu(h, branchTape);
        }
        if (block.Plain) return Relu(h, Append(tape, branchTape));
        var shortcutTape = new Stack<Func<double[], double[]>>();
        var shortcut = block.Shortcut is null ? x : Run(block.Shortcut, x, training, shortcutTape);
        var sum = h with { Data = h.Data.Zip(shortcut.Data, (a, b) => a + b).ToArray() };
        var y = sum.Like(sum.C, sum.H, sum.W);
        ReferenceKernels.ReluForward(y.Data, sum.Data);
        tape.Push(dy =>
        {
            var dSum = new double[dy.Length];
            ReferenceKernels.ReluBackward(dSum, dy, sum.Data);
            double[] dxBranch = Unwind(branchTape, dSum), dxShortcut = Unwind(shortcutTape, dSum);
            return dxBranch.Zip(dxShortcut, (a, b) => a + b).ToArray();
        });
        return y;
    }

    private static Stack<Func<double[], double[]>> Append(Stack<Func<double[], double[]>> tape, Stack<Func<double[], double[]>> inner)
    {
        foreach (var step in inner.Reverse()) tape.Push(step);
        return tape;
    }

    private static double[] Unwind(Stack<Func<double[], double[]>> tape, double[] g)
    {
        while (tape.Count > 0) g = tape.Pop()(g);
        return g;
    }

    private static Activation Relu(Activation x, Stack<Func<double[], double[]>> tape)
    {
        var y = x.Like(x.C, x.H, x.W);
        ReferenceKernels.ReluForward(y.Data, x.Data);
        tape.Push(dy => { var dx = new double[x.Data.Length]; ReferenceKernels.ReluBackward(dx, dy, x.Data); return dx; });
        return y;
    }

    private static double[] ToDouble(Tensor t) => t.Data.Select(v => (double)v).ToArray();
}
