using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>One entry of a plan's kernel sequence: a layer, or a batch norm that runs fused with the ReLU after it.</summary>
public sealed record PlanStep(Layer Layer, ReLU? FusedRelu = null)
{
    public override string ToString() => FusedRelu is null ? Layer.Name : $"{Layer.Name}+{FusedRelu.Name}";
}

/// <summary>
/// A <see cref="Network"/> compiled for one input shape [C, H, W]: how the managed engine runs the description. Made
/// once (<see cref="Network.Compile"/>), it fixes the kernel sequence (which batch norms run fused with their ReLU;
/// inside residual blocks every BN–ReLU and BN–add–ReLU is fused), each convolution's kernels
/// (<see cref="Convolutions"/>) and the engine's <see cref="Tuning"/>; every step then only runs it. Any batch size
/// runs on the same plan.
/// </summary>
/// <remarks>
/// The plan owns the run state of every layer (its activation arena): one <see cref="LayerWorkspace"/> per layer with
/// the activations, gradients and batch statistics a backward reads, each convolution's kernel choice, and one set of
/// per-part reduction buffers for all its convolutions. It binds them to the layers before it runs, so the layers stay
/// the network's description and two plans of one network keep their activations apart: a backward may follow another
/// plan's forward. <see cref="Reference.ReferencePass"/> is the plain float64 path the plan is tested against.
/// </remarks>
public sealed class TrainingPlan
{
    private readonly PlanStep[] _steps;
    private readonly (Conv2d Conv, ConvAlgorithms Algorithms)[] _convolutions;
    private readonly (Layer Layer, LayerWorkspace Workspace)[] _workspaces;
    private readonly PartialSums _partialSums = new();

    internal TrainingPlan(Network network, int channels, int height, int width, EngineTuning tuning)
    {
        ArgumentNullException.ThrowIfNull(tuning);
        tuning.Validate();
        network.ValidateInput(channels, height, width);
        (Network, Channels, Height, Width, Tuning) = (network, channels, height, width, tuning);
        var steps = new List<PlanStep>();
        for (int i = 0; i < network.Layers.Count; i++)
        {
            // A batch norm followed by a ReLU (the stem) runs as one pass, as inside the blocks: the ReLU's input is
            // neither written nor read back.
            if (network.Layers[i] is BatchNorm2d bn && i + 1 < network.Layers.Count && network.Layers[i + 1] is ReLU relu)
            {
                steps.Add(new PlanStep(bn, relu));
                i++;
            }
            else steps.Add(new PlanStep(network.Layers[i]));
        }
        _steps = [.. steps];
        var workspaces = new List<(Layer, LayerWorkspace)>();
        foreach (var layer in network.AllLayers)
        {
            var workspace = layer.CreateWorkspace();
            if (workspace is Conv2d.Run conv) conv.Sums = _partialSums;   // one reduction runs at a time
            if (workspace is BatchNorm2d.Run bn) bn.Tuning = tuning;
            if (workspace is not null) workspaces.Add((layer, workspace));
        }
        _workspaces = [.. workspaces];
        Activate();
        var convolutions = new List<(Conv2d, ConvAlgorithms)>();
        var shape = (C: channels, H: height, W: width);
        foreach (var layer in network.Layers) shape = Configure(layer, shape, convolutions);
        _convolutions = [.. convolutions];
    }

    public Network Network { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public EngineTuning Tuning { get; }

    /// <summary>The kernel sequence of the network's top-level layers, in forward order.</summary>
    public IReadOnlyList<PlanStep> Steps => _steps;

    /// <summary>Every convolution (blocks and shortcuts included) with the kernels chosen for it, in forward order.</summary>
    public IReadOnlyList<(Conv2d Conv, ConvAlgorithms Algorithms)> Convolutions => _convolutions;

    /// <summary>Walks a layer's children with their input shapes, choosing each convolution's kernels for its shape.</summary>
    private (int C, int H, int W) Configure(Layer layer, (int C, int H, int W) input, List<(Conv2d, ConvAlgorithms)> convolutions)
    {
        switch (layer)
        {
            case Conv2d conv:
                convolutions.Add((conv, conv.Configure(input.H, input.W, Tuning)));
                break;
            case ResidualBlock block:
            {
                var s = input;
                foreach (var (conv, bn) in block.Branch) s = Configure(bn, Configure(conv, s, convolutions), convolutions);
                if (block.Shortcut is not null) Configure(block.Shortcut, input, convolutions);
                return s;
            }
            case ProjectionShortcut projection:
                return Configure(projection.Bn, Configure(projection.Conv, input, convolutions), convolutions);
        }
        return layer.OutputShape(input.C, input.H, input.W);
    }

    /// <summary>Binds this plan's workspaces (activations, kernel choices, tuning) to the layers when another plan of the same network ran last.</summary>
    private void Activate()
    {
        if (Network.ActivePlan == this) return;
        foreach (var (layer, workspace) in _workspaces) layer.Bind(workspace);
        Network.ActivePlan = this;
    }

    /// <summary>
    /// The bytes of activations, gradients and reduction buffers this plan holds now (they grow with the batch on first
    /// use). Parameters and their gradients belong to the network and are not counted.
    /// </summary>
    public long ArenaBytes
    {
        get
        {
            var tensors = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
            foreach (var (_, workspace) in _workspaces)
                foreach (var t in workspace.Tensors)
                    if (t is not null) tensors.Add(t);
            return 4 * (tensors.Sum(t => (long)t.Length) + _partialSums.Floats);
        }
    }

    /// <summary>Runs the kernel sequence on a batch [N, C, H, W] of the plan's shape; returns the logits [N, classes, 1, 1].</summary>
    public Tensor Forward(Tensor input, bool training)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.C != Channels || input.H != Height || input.W != Width)
            throw new ShapeException($"This plan of {Network.Architecture} was compiled for [{Channels}, {Height}, {Width}] images, not [{input.C}, {input.H}, {input.W}]: compile another (Network.Compile).");
        TensorChecks.ThrowIfNotFinite(input, "the network's input");
        Activate();
        var x = input;
        foreach (var step in _steps)
            x = step.FusedRelu is { } relu
                ? relu.AdoptFusedOutput(((BatchNorm2d)step.Layer).ForwardFused(x, training, residual: null, relu: true))
                : step.Layer.Forward(x, training);
        _ranForward = true;
        return x;
    }

    private bool _ranForward;

    private Tensor BackwardStep(PlanStep step, Tensor g) =>
        step.FusedRelu is not null ? ((BatchNorm2d)step.Layer).BackwardFused(g, overwriteGradOutput: false, keepMasked: false) : step.Layer.Backward(g);

    /// <summary>Back-propagates the gradient of the loss with respect to the logits; returns the gradient with respect to the input.</summary>
    public Tensor Backward(Tensor gradLogits)
    {
        CheckForwardRan();
        var g = gradLogits;
        for (int i = _steps.Length - 1; i >= 0; i--) g = BackwardStep(_steps[i], g);
        return g;
    }

    /// <summary>
    /// Back-propagates into the parameter gradients only: what training needs. The stem convolution's input gradient
    /// (a full convolution back onto the image) is not computed, nor anything before the first step with a trainable
    /// parameter (a frozen backbone).
    /// </summary>
    public void BackwardParameters(Tensor gradLogits)
    {
        CheckForwardRan();
        int first = 0;
        while (first < _steps.Length && !StepParameters(_steps[first]).Any(p => p.Trainable)) first++;
        var g = gradLogits;
        for (int i = _steps.Length - 1; i >= Math.Max(first, 1); i--) g = BackwardStep(_steps[i], g);
        if (first > 0) return;
        if (_steps[0] is { Layer: Conv2d stem, FusedRelu: null }) stem.BackwardParametersOnly(g);
        else BackwardStep(_steps[0], g);
    }

    private static IEnumerable<Parameter> StepParameters(PlanStep step) =>
        step.FusedRelu is null ? step.Layer.Parameters : step.Layer.Parameters.Concat(step.FusedRelu.Parameters);

    private void CheckForwardRan()
    {
        if (!_ranForward)
            throw new InvalidOperationException($"Backward of a {Network.Architecture} plan for [{Channels}, {Height}, {Width}] was called before this plan's Forward.");
        Activate();
    }

    public override string ToString() => $"{Network.Architecture} plan for [{Channels}, {Height}, {Width}]: {string.Join(" → ", _steps)}";
}
