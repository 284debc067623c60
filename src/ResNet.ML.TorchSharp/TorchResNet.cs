using ResNet.ML.Layers;
using ResNet.ML.Models;
using TorchSharp;
using static TorchSharp.torch;
using TorchTensor = TorchSharp.torch.Tensor;

namespace ResNet.ML.TorchSharp;

/// <summary>
/// A TorchSharp module tree for any network <see cref="ModelFactory"/> builds (every preset, CIFAR option A/B, plain
/// twins, <c>seed-resnet</c>, <c>simplecnn</c>, custom <see cref="ResNetSpec"/>s), with torchvision's module names, so
/// <c>state_dict()</c> has exactly the names, shapes and order of <see cref="Network.State"/> and of
/// <see cref="ModelWeights"/> files.
/// </summary>
/// <remarks>
/// The tree is made by walking the managed <see cref="Network"/> the factory builds for the same architecture rather than
/// by reading the spec a second time: the factory is the one description of the network, so the two backends cannot
/// drift apart in names, strides or shortcut placement. The managed network also serves as the host-side copy of the
/// weights (<see cref="CopyFrom"/>, <see cref="CopyTo"/>), through which safetensors, checkpoints and the ONNX exporter
/// work unchanged.
/// </remarks>
public sealed class TorchResNet : nn.Module<TorchTensor, TorchTensor>
{
    private readonly List<(nn.Module<TorchTensor, TorchTensor> Module, bool Flatten)> _steps = [];

    private TorchResNet(Network description) : base(description.Architecture)
    {
        Description = description;
        // Top-level layers named "layer1.0", "layer1.1", ... become children "0", "1" of one Sequential "layer1", as in
        // torchvision (and the seed's SimpleCNN); an undotted name ("conv1", "fc") is a direct child.
        var layers = description.Layers;
        for (int i = 0; i < layers.Count;)
        {
            var layer = layers[i];
            int dot = layer.Name.IndexOf('.');
            if (dot < 0)
            {
                var module = Convert(layer);
                register_module(layer.Name, module);
                _steps.Add((module, layer is Layers.Linear));
                i++;
                continue;
            }
            string group = layer.Name[..dot];
            var children = new List<(string, nn.Module<TorchTensor, TorchTensor>)>();
            for (; i < layers.Count && layers[i].Name.StartsWith(group + ".", StringComparison.Ordinal); i++)
            {
                string child = layers[i].Name[(group.Length + 1)..];
                if (child.Contains('.'))
                    throw new NotSupportedException($"Layer '{layers[i].Name}' is nested deeper than torchvision's naming, which the TorchSharp backend mirrors.");
                if (layers[i] is Layers.Linear) throw new NotSupportedException($"Linear layer '{layers[i].Name}' inside a group: the TorchSharp backend flattens only before a top-level head.");
                children.Add((child, Convert(layers[i])));
            }
            var sequential = nn.Sequential(children.ToArray());
            register_module(group, sequential);
            _steps.Add((sequential, false));
        }
    }

    /// <summary>The managed network this tree mirrors; it holds the host copy of the weights.</summary>
    public Network Description { get; }

    /// <summary>Builds the tree for <paramref name="description"/> (weights as TorchSharp initializes them; see <see cref="CopyFrom"/>).</summary>
    public static TorchResNet Build(Network description)
    {
        ArgumentNullException.ThrowIfNull(description);
        TorchRuntime.EnsureLoaded();
        return new TorchResNet(description);
    }

    /// <summary>Builds <paramref name="architecture"/> (a preset name or spec text, as <see cref="ModelFactory.Build(string, int, int, int, int)"/> takes).</summary>
    public static TorchResNet Build(string architecture, int inputChannels, int numClasses, int inputHeight, int inputWidth) =>
        Build(ModelFactory.Build(architecture, inputChannels, numClasses, inputHeight, inputWidth));

    public override TorchTensor forward(TorchTensor input)
    {
        var x = input;
        // The head flattens [N, C, H, W] first, as torchvision's forward does before fc.
        foreach (var (module, flatten) in _steps) x = module.call(flatten ? x.flatten(1) : x);
        return x;
    }

    /// <summary>Copies every state entry (parameters, running statistics, counters) of <paramref name="network"/> into this tree.</summary>
    public void CopyFrom(Network network)
    {
        var state = StateByName();
        using var _ = no_grad();
        foreach (var e in network.State)
        {
            var t = Lookup(state, e.Name, network);
            if (e.Counter)
            {
                t.fill_(e.GetCounter!());
                continue;
            }
            CheckSize(t, e);
            using var host = torch.tensor(e.Value!.Data, t.shape);
            t.copy_(host);
        }
    }

    /// <summary>Copies this tree's state into <paramref name="network"/> (same architecture), e.g. before saving or exporting it.</summary>
    public void CopyTo(Network network)
    {
        var state = StateByName();
        foreach (var e in network.State)
        {
            var t = Lookup(state, e.Name, network);
            if (e.Counter)
            {
                e.SetCounter!(t.cpu().item<long>());
                continue;
            }
            CheckSize(t, e);
            using var host = t.detach().cpu().contiguous();
            host.data<float>().CopyTo(e.Value!.Data, 0);
        }
    }

    /// <summary>The names of this tree's state dict, in its order (torchvision's).</summary>
    public IReadOnlyList<string> StateNames => state_dict().Keys.ToList();

    private Dictionary<string, TorchTensor> StateByName()
    {
        var dict = new Dictionary<string, TorchTensor>(StringComparer.Ordinal);
        foreach (var (name, p) in named_parameters()) dict[name] = p;
        foreach (var (name, b) in named_buffers()) dict[name] = b;
        return dict;
    }

    private static TorchTensor Lookup(Dictionary<string, TorchTensor> state, string name, Network network) =>
        state.TryGetValue(name, out var t) ? t
            : throw new InvalidOperationException($"The TorchSharp tree has no tensor '{name}' that {network.Architecture} has; the two descriptions disagree.");

    private static void CheckSize(TorchTensor t, StateEntry e)
    {
        if (t.numel() != e.Value!.Length)
            throw new InvalidOperationException($"Tensor '{e.Name}' has {t.numel()} values in TorchSharp ([{string.Join(", ", t.shape)}]) but {e.Value.Length} in the managed network.");
    }

    private static nn.Module<TorchTensor, TorchTensor> Convert(Layer layer) => layer switch
    {
        Layers.Conv2d c => nn.Conv2d(c.InChannels, c.OutChannels, c.KernelSize, stride: c.Stride, padding: c.Padding, bias: c.Bias is not null),
        Layers.BatchNorm2d b => nn.BatchNorm2d(b.Channels, eps: b.Eps, momentum: b.Momentum),
        Layers.ReLU => nn.ReLU(),
        Layers.MaxPool2d m => nn.MaxPool2d(m.KernelSize, stride: m.Stride, padding: m.Padding),
        GlobalAvgPool2d => nn.AdaptiveAvgPool2d(1),
        Layers.Linear l => nn.Linear(l.InFeatures, l.OutFeatures, hasBias: l.Bias is not null),
        ResidualBlock r => new Block(r),
        ZeroPadShortcut z => new ZeroPad(z),
        ProjectionShortcut p => nn.Sequential(("0", Convert(p.Conv)), ("1", Convert(p.Bn))),
        _ => throw new NotSupportedException($"Layer '{layer.Name}' ({layer.GetType().Name}) has no TorchSharp counterpart."),
    };

    /// <summary>y = relu(F(x) + shortcut(x)) (or relu(F(x)) when plain), children named as torchvision's blocks.</summary>
    private sealed class Block : nn.Module<TorchTensor, TorchTensor>
    {
        private readonly List<(nn.Module<TorchTensor, TorchTensor> Conv, nn.Module<TorchTensor, TorchTensor> Bn)> _branch = [];
        private readonly nn.Module<TorchTensor, TorchTensor>? _shortcut;
        private readonly bool _plain;

        public Block(ResidualBlock block) : base(block.Name)
        {
            foreach (var (conv, bn) in block.Branch)
            {
                var c = Convert(conv);
                var b = Convert(bn);
                register_module(Leaf(conv.Name), c);
                register_module(Leaf(bn.Name), b);
                _branch.Add((c, b));
            }
            _plain = block.Plain;
            if (block.Shortcut is { } s)
            {
                _shortcut = Convert(s);
                register_module(Leaf(s.Name), _shortcut);
            }
        }

        private static string Leaf(string name) => name[(name.LastIndexOf('.') + 1)..];

        public override TorchTensor forward(TorchTensor x)
        {
            var h = x;
            for (int i = 0; i < _branch.Count; i++)
            {
                h = _branch[i].Bn.call(_branch[i].Conv.call(h));
                if (i < _branch.Count - 1) h = nn.functional.relu(h);
            }
            if (!_plain) h = h + (_shortcut is null ? x : _shortcut.call(x));
            return nn.functional.relu(h);
        }
    }

    /// <summary>The paper's option A: x[:, :, ::s, ::s] with the new channels zero-padded, (out-in)/2 before, the rest after.</summary>
    private sealed class ZeroPad(ZeroPadShortcut shortcut) : nn.Module<TorchTensor, TorchTensor>(shortcut.Name)
    {
        private readonly long[] _pad = [0, 0, 0, 0, shortcut.PadBefore, shortcut.PadAfter];
        private readonly long _stride = shortcut.Stride;

        public override TorchTensor forward(TorchTensor x)
        {
            var s = _stride == 1 ? x : x[.., .., TensorIndex.Slice(null, null, _stride), TensorIndex.Slice(null, null, _stride)];
            return nn.functional.pad(s, _pad);
        }
    }
}
