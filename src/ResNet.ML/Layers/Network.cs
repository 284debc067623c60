using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>
/// A classifier as a sequence of layers (stem, blocks, pooling, head) that ends in logits [N, classes, 1, 1].
/// Forward runs the layers in order, backward in reverse; residual blocks are layers, so the sequence reads like
/// Table 1 of the paper.
/// </summary>
public sealed class Network
{
    public Network(string architecture, int inputChannels, int numClasses, IReadOnlyList<Layer> layers)
    {
        if (layers.Count == 0) throw new ArgumentException("A network needs at least one layer.", nameof(layers));
        Architecture = architecture;
        InputChannels = inputChannels;
        NumClasses = numClasses;
        Layers = layers;
    }

    /// <summary>The preset name or a description of the spec it was built from, e.g. <c>resnet20</c>.</summary>
    public string Architecture { get; }
    public int InputChannels { get; }
    public int NumClasses { get; }
    public IReadOnlyList<Layer> Layers { get; }

    /// <summary>Checks that an input of [channels, height, width] fits every layer and yields [classes, 1, 1].</summary>
    public void ValidateInput(int channels, int height, int width)
    {
        if (channels != InputChannels)
            throw new ShapeException($"{Architecture} takes {InputChannels}-channel images, but the input has {channels} channels ([{channels}, {height}, {width}]).");
        var shape = (C: channels, H: height, W: width);
        foreach (var layer in Layers) shape = layer.OutputShape(shape.C, shape.H, shape.W);
        if (shape != (NumClasses, 1, 1))
            throw new ShapeException($"{Architecture} ends in [{shape.C}, {shape.H}, {shape.W}] for a [{channels}, {height}, {width}] input, not in [{NumClasses}, 1, 1] logits.");
    }

    /// <summary>
    /// Compiles how the engine runs this network on [<paramref name="channels"/>, <paramref name="height"/>,
    /// <paramref name="width"/>] images: the kernel sequence, each convolution's kernels and the engine's tuning, chosen
    /// once. <see cref="Forward"/> then uses it for inputs of that shape.
    /// </summary>
    public TrainingPlan Compile(int channels, int height, int width, EngineTuning? tuning = null)
    {
        var plan = new TrainingPlan(this, channels, height, width, tuning ?? EngineTuning.Default);
        _plans[(channels, height, width)] = plan;
        _lastCompiled = plan;
        return plan;
    }

    private readonly Dictionary<(int C, int H, int W), TrainingPlan> _plans = [];
    private TrainingPlan? _lastCompiled;

    /// <summary>The plan whose choices are on the layers now (the last one compiled or run).</summary>
    internal TrainingPlan? ActivePlan { get; set; }

    /// <summary>The plan for [C, H, W] inputs: the last one compiled for that shape, else a new one with the last compiled plan's tuning.</summary>
    public TrainingPlan PlanFor(int channels, int height, int width) =>
        _plans.TryGetValue((channels, height, width), out var plan) ? plan : Compile(channels, height, width, _lastCompiled?.Tuning);

    /// <summary>Runs the plan for the input's shape (compiling one the first time a shape is seen).</summary>
    public Tensor Forward(Tensor input, bool training)
    {
        ArgumentNullException.ThrowIfNull(input);
        return PlanFor(input.C, input.H, input.W).Forward(input, training);
    }

    private TrainingPlan LastRun => ActivePlan ?? throw new InvalidOperationException($"{Architecture}: Backward was called before Forward.");

    /// <summary>Back-propagates the gradient of the loss with respect to the logits; returns the gradient with respect to the input.</summary>
    public Tensor Backward(Tensor gradLogits) => LastRun.Backward(gradLogits);

    /// <summary>
    /// Back-propagates into the parameter gradients only: what training needs. The stem convolution's input gradient
    /// (a full convolution back onto the image) is not computed.
    /// </summary>
    public void BackwardParameters(Tensor gradLogits) => LastRun.BackwardParameters(gradLogits);

    public IEnumerable<Parameter> Parameters => Layers.SelectMany(l => l.Parameters);

    /// <summary>The state dict in PyTorch's names and order.</summary>
    public IEnumerable<StateEntry> State => Layers.SelectMany(l => l.State);

    public long ParameterCount => Parameters.Sum(p => (long)p.Value.Length);

    /// <summary>Every layer, depth first (blocks before their children).</summary>
    public IEnumerable<Layer> AllLayers => Layers.SelectMany(Walk);

    private static IEnumerable<Layer> Walk(Layer layer) => layer.Children.SelectMany(Walk).Prepend(layer);

    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.Grad.Clear();
    }
}
