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

    public Tensor Forward(Tensor input, bool training)
    {
        ValidateInput(input.C, input.H, input.W);
        TensorChecks.ThrowIfNotFinite(input, "the network's input");
        var x = input;
        if (_fused.Length != Layers.Count) _fused = new bool[Layers.Count];
        for (int i = 0; i < Layers.Count; i++)
        {
            // A batch norm followed by a ReLU (the stem) runs as one pass, as inside the blocks: the ReLU's input is
            // neither written nor read back.
            if (Layers[i] is BatchNorm2d bn && i + 1 < Layers.Count && Layers[i + 1] is ReLU relu)
            {
                x = relu.AdoptFusedOutput(bn.ForwardFused(x, training, residual: null, relu: true));
                _fused[i + 1] = true;
                i++;
                continue;
            }
            x = Layers[i].Forward(x, training);
            if (i + 1 < Layers.Count) _fused[i + 1] = false;
        }
        return x;
    }

    private bool[] _fused = [];   // _fused[i]: layer i is a ReLU that last ran fused into the batch norm before it

    /// <summary>Layer i's backward, or for a ReLU fused into the batch norm before it, the pair's: returns the index reached.</summary>
    private int BackwardStep(int i, ref Tensor g)
    {
        if (i > 0 && i < _fused.Length && _fused[i] && Layers[i - 1] is BatchNorm2d bn)
        {
            g = bn.BackwardFused(g, overwriteGradOutput: false, keepMasked: false);
            return i - 1;
        }
        g = Layers[i].Backward(g);
        return i;
    }

    /// <summary>Back-propagates the gradient of the loss with respect to the logits; returns the gradient with respect to the input.</summary>
    public Tensor Backward(Tensor gradLogits)
    {
        var g = gradLogits;
        for (int i = Layers.Count - 1; i >= 0; i--) i = BackwardStep(i, ref g);
        return g;
    }

    /// <summary>
    /// Back-propagates into the parameter gradients only: what training needs. The stem convolution's input gradient
    /// (a full convolution back onto the image) is not computed.
    /// </summary>
    public void BackwardParameters(Tensor gradLogits)
    {
        var g = gradLogits;
        int i = Layers.Count - 1;
        // Layers before the first one with a trainable parameter (a frozen backbone) need no gradient at all.
        int first = 0;
        while (first < Layers.Count && !Layers[first].Parameters.Any(p => p.Trainable)) first++;
        while (i > 0 && i >= first) i = BackwardStep(i, ref g) - 1;
        if (i < first) return;
        if (Layers[0] is Conv2d stem) stem.BackwardParametersOnly(g);
        else Layers[0].Backward(g);
    }

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
