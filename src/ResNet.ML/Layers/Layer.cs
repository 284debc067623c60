using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>
/// One step of a network with an explicit forward and backward pass over preallocated buffers (the llm.c way):
/// <see cref="Forward"/> keeps what <see cref="Backward"/> needs, <see cref="Backward"/> returns the gradient with
/// respect to the input and accumulates into the gradients of <see cref="Parameters"/>.
/// What a layer keeps from a forward to its backward (its input, output and gradient buffers, batch statistics) is its
/// <see cref="LayerWorkspace"/>, not the layer: a <see cref="TrainingPlan"/> owns one per layer and binds its own before
/// it runs, so the layers are the network's description and each plan holds its own activations. A layer run on its own
/// makes its own workspace. Buffers are reused from step to step; the returned tensors stay valid until the workspace's
/// next use. Blocks (<c>BasicBlock</c>, <c>BottleneckBlock</c>) are layers made of layers.
/// </summary>
public abstract class Layer
{
    protected Layer(string name) => Name = name;

    /// <summary>The layer's path in PyTorch's naming, e.g. <c>layer1.0.conv1</c>; parameter names extend it.</summary>
    public string Name { get; }

    /// <summary>The output shape for an input of shape [C, H, W]; throws <see cref="ShapeException"/> naming the layer when the input does not fit.</summary>
    public abstract (int C, int H, int W) OutputShape(int c, int h, int w);

    public abstract Tensor Forward(Tensor input, bool training);

    public abstract Tensor Backward(Tensor gradOutput);

    /// <summary>Trainable tensors (weights, biases, BN affine), in PyTorch's state-dict order.</summary>
    public virtual IEnumerable<Parameter> Parameters => [];

    /// <summary>Everything in PyTorch's state dict (parameters, then BN running statistics and counters), in its order.</summary>
    public virtual IEnumerable<StateEntry> State => Parameters.Select(p => new StateEntry(p.Name, p.Value));

    /// <summary>The layers this layer is made of (none for a primitive layer).</summary>
    public virtual IEnumerable<Layer> Children => [];

    public override string ToString() => $"{GetType().Name}({Name})";

    private LayerWorkspace? _workspace;

    /// <summary>A new, empty workspace of this layer's kind; null for a layer that keeps nothing (its children do).</summary>
    internal virtual LayerWorkspace? CreateWorkspace() => null;

    /// <summary>The workspace the layer runs with now: the one a plan bound, else (a layer run on its own) its own.</summary>
    private protected T Workspace<T>() where T : LayerWorkspace => (T)(_workspace ??= CreateWorkspace()!);

    /// <summary>Binds a plan's workspace for this layer (made by <see cref="CreateWorkspace"/>); the next calls use it.</summary>
    internal void Bind(LayerWorkspace workspace) => _workspace = workspace;
}

/// <summary>
/// The run state of one layer between its forward and backward: the tensors and per-channel values the backward reads.
/// Each layer kind derives its own; <see cref="TrainingPlan"/> owns one per layer (its activation arena).
/// </summary>
internal abstract class LayerWorkspace
{
    /// <summary>Every tensor the workspace holds now, for the plan's memory account.</summary>
    internal abstract IEnumerable<Tensor?> Tensors { get; }
}

/// <summary>A trainable tensor and its gradient, named as in PyTorch (<c>layer1.0.conv1.weight</c>).</summary>
public sealed class Parameter(string name, Tensor value)
{
    public string Name { get; } = name;
    public Tensor Value { get; } = value;
    public Tensor Grad { get; } = new(value.N, value.C, value.H, value.W);

    /// <summary>False while frozen (e.g. a pretrained backbone during the first epochs): optimizers skip it.</summary>
    public bool Trainable { get; set; } = true;

    /// <summary>Whether weight decay applies (conv and linear weights; not biases or BN parameters when the optimizer excludes them).</summary>
    public bool IsWeight { get; init; } = true;

    public override string ToString() => $"{Name} {Value.Shape}";
}

/// <summary>
/// One entry of a model's state dict: a float tensor, or an int64 scalar (<c>num_batches_tracked</c>) when
/// <see cref="Counter"/> is set. <see cref="Dims"/> are PyTorch's dims (a conv weight [O, I, kH, kW], a BN mean [C], a counter []).
/// </summary>
public sealed record StateEntry(string Name, Tensor? Value, int[] Dims, Func<long>? GetCounter = null, Action<long>? SetCounter = null)
{
    public StateEntry(string name, Tensor value) : this(name, value, [value.N, value.C, value.H, value.W]) { }
    public bool Counter => GetCounter is not null;
}

/// <summary>A tensor whose shape does not fit a layer; the message names the layer and the shapes.</summary>
public sealed class ShapeException(string message) : ArgumentException(message);

/// <summary>A NaN or infinity appeared (in the input, or in the loss when training diverges); the message names where.</summary>
public sealed class NonFiniteException(string message) : ArithmeticException(message);
