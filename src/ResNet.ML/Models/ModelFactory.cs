using ResNet.ML.Layers;

namespace ResNet.ML.Models;

/// <summary>
/// Builds a <see cref="Network"/> from a preset name, a spec text, or a <see cref="ResNetSpec"/>, with torchvision's
/// layer names so its state dict is torchvision's: <c>conv1</c>, <c>bn1</c>, <c>relu</c>, <c>maxpool</c> (ImageNet stem
/// only), <c>layer{stage}.{block}</c> with <c>.conv1</c>, <c>.bn1</c>, ..., <c>.downsample.0</c>/<c>.downsample.1</c> for
/// projection shortcuts (<c>.shortcut</c> for the parameter-free option A), <c>avgpool</c>, <c>fc</c>.
/// The baseline <c>simplecnn</c> keeps the names of the seed experiment's PyTorch <c>SimpleCNN</c> (its
/// <c>nn.Sequential</c> indices), so that model's state dict loads as is: <c>layer1.0</c> conv 5x5 (16, padding 2, with
/// bias), <c>layer1.1</c> BN, <c>layer1.2</c> ReLU, <c>layer1.3</c> max pool 2x2/2, the same with 32 channels as
/// <c>layer2.*</c>, then <c>fc</c> on the flattened [32, H/4, W/4] features (so its head depends on the input size).
/// Weights are as the layers create them (convolutions and the head zero, BN weight 1): initialize them
/// (<see cref="Training.Initializer.Initialize"/>, torchvision's scheme) or load a checkpoint
/// (<see cref="ModelWeights"/>) before use.
/// </summary>
public static class ModelFactory
{
    /// <summary>The seed experiment's non-residual baseline.</summary>
    public const string SimpleCnn = "simplecnn";

    /// <summary>Every name <see cref="Build(string, int, int, int, int)"/> knows (plain twins aside: <c>plain-</c> + any ResNet name).</summary>
    public static IReadOnlyList<string> KnownNames { get; } = [.. ResNetPresets.Names, SimpleCnn];

    /// <summary>
    /// Builds <paramref name="architecture"/>: a preset name (<see cref="KnownNames"/>, <c>plain-</c> twins, any CIFAR
    /// depth <c>resnet{6n+2}</c>), <c>simplecnn</c>, or a spec in the text or JSON form of <see cref="ResNetSpec.Parse"/>
    /// (e.g. <c>resnet18 widths=32,64,128,256 stem-width=32</c>). The network's <see cref="Network.Architecture"/> is the
    /// preset name in lower case, or the spec's canonical text: passing it back here rebuilds the same network.
    /// </summary>
    /// <param name="architecture">Preset name or spec.</param>
    /// <param name="inputChannels">Channels of the input images (1 for grayscale, 3 for RGB, any positive count).</param>
    /// <param name="numClasses">Logits out of the head.</param>
    /// <param name="inputHeight">Input height; checked against the strides (and sizes the <c>simplecnn</c> head).</param>
    /// <param name="inputWidth">Input width, likewise.</param>
    /// <exception cref="ArgumentException">Unknown name (the message lists the known ones), bad spec, non-positive sizes.</exception>
    /// <exception cref="ShapeException">The input size is too small for the architecture's strides; names the layer.</exception>
    public static Network Build(string architecture, int inputChannels, int numClasses, int inputHeight, int inputWidth)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        string name = architecture.Trim().ToLowerInvariant();
        if (name == SimpleCnn) return BuildSimpleCnn(inputChannels, numClasses, inputHeight, inputWidth);
        if (ResNetPresets.TryGet(name, out var preset)) return Build(preset!, inputChannels, numClasses, inputHeight, inputWidth, name);
        string text = architecture.Trim();
        if (!text.StartsWith('{') && !text.Contains('=')) throw new ArgumentException(ResNetPresets.UnknownNameMessage(architecture));
        ResNetSpec spec;
        try { spec = ResNetSpec.Parse(text); }
        catch (FormatException e) { throw new ArgumentException(e.Message, nameof(architecture), e); }
        return Build(spec, inputChannels, numClasses, inputHeight, inputWidth);
    }

    /// <summary>Builds the ResNet <paramref name="spec"/> describes (see <see cref="Build(string, int, int, int, int)"/>).</summary>
    /// <param name="spec">The architecture.</param>
    /// <param name="inputChannels">Channels of the input images.</param>
    /// <param name="numClasses">Logits out of the head.</param>
    /// <param name="inputHeight">Input height, checked against the strides.</param>
    /// <param name="inputWidth">Input width, likewise.</param>
    /// <param name="name">The network's <see cref="Network.Architecture"/>; the spec's text form when null.</param>
    public static Network Build(ResNetSpec spec, int inputChannels, int numClasses, int inputHeight, int inputWidth, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        CheckSizes(inputChannels, numClasses, inputHeight, inputWidth);
        var layers = new List<Layer>();
        if (spec.Stem == StemKind.ImageNet)
        {
            layers.Add(new Conv2d("conv1", inputChannels, spec.StemWidth, 7, 2, 3));
            layers.Add(new BatchNorm2d("bn1", spec.StemWidth));
            layers.Add(new ReLU("relu"));
            layers.Add(new MaxPool2d("maxpool", 3, 2, 1));
        }
        else
        {
            layers.Add(new Conv2d("conv1", inputChannels, spec.StemWidth, 3, 1, 1));
            layers.Add(new BatchNorm2d("bn1", spec.StemWidth));
            layers.Add(new ReLU("relu"));
        }

        int channels = spec.StemWidth;
        for (int stage = 0; stage < spec.Blocks.Count; stage++)
        {
            int width = spec.Widths[stage], outChannels = width * spec.Expansion;
            for (int b = 0; b < spec.Blocks[stage]; b++)
            {
                string blockName = $"layer{stage + 1}.{b}";
                int stride = b == 0 && stage > 0 ? 2 : 1;
                Layer? shortcut = spec.Plain || (stride == 1 && channels == outChannels) ? null : spec.Shortcut switch
                {
                    ShortcutKind.ZeroPad => new ZeroPadShortcut($"{blockName}.shortcut", channels, outChannels, stride),
                    ShortcutKind.Projection => new ProjectionShortcut($"{blockName}.downsample", channels, outChannels, stride),
                    _ => new ProjectionShortcut($"{blockName}.downsample", channels, outChannels, stride, kernelSize: 3),
                };
                layers.Add(spec.Block == BlockKind.Basic
                    ? new BasicBlock(blockName, channels, width, stride, shortcut, spec.Plain)
                    : new BottleneckBlock(blockName, channels, width, stride, shortcut, spec.Plain));
                channels = outChannels;
            }
        }
        layers.Add(new GlobalAvgPool2d("avgpool"));
        layers.Add(new Linear("fc", channels, numClasses));
        return Checked(new Network(name ?? spec.ToString(), inputChannels, numClasses, layers), inputHeight, inputWidth);
    }

    /// <summary>The seed experiment's SimpleCNN (names in the class summary); needs inputs of at least 4x4.</summary>
    public static Network BuildSimpleCnn(int inputChannels, int numClasses, int inputHeight, int inputWidth)
    {
        CheckSizes(inputChannels, numClasses, inputHeight, inputWidth);
        var features = new List<Layer>();
        int channels = inputChannels;
        foreach (var (stage, width) in new[] { (1, 16), (2, 32) })
        {
            features.Add(new Conv2d($"layer{stage}.0", channels, width, 5, 1, 2, bias: true));
            features.Add(new BatchNorm2d($"layer{stage}.1", width));
            features.Add(new ReLU($"layer{stage}.2"));
            features.Add(new MaxPool2d($"layer{stage}.3", 2, 2));
            channels = width;
        }
        var shape = (C: inputChannels, H: inputHeight, W: inputWidth);
        try
        {
            foreach (var layer in features) shape = layer.OutputShape(shape.C, shape.H, shape.W);
        }
        catch (ShapeException e)
        {
            throw new ShapeException($"{SimpleCnn} cannot take a [{inputChannels}, {inputHeight}, {inputWidth}] input (it needs at least 4x4): {e.Message}");
        }
        features.Add(new Linear("fc", shape.C * shape.H * shape.W, numClasses));
        return Checked(new Network(SimpleCnn, inputChannels, numClasses, features), inputHeight, inputWidth);
    }

    private static void CheckSizes(int inputChannels, int numClasses, int inputHeight, int inputWidth)
    {
        if (inputChannels <= 0) throw new ArgumentOutOfRangeException(nameof(inputChannels), inputChannels, "The input channel count must be positive.");
        if (numClasses <= 0) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "The class count must be positive.");
        if (inputHeight <= 0 || inputWidth <= 0)
            throw new ArgumentOutOfRangeException(inputHeight <= 0 ? nameof(inputHeight) : nameof(inputWidth), $"The input size must be positive, not {inputHeight}x{inputWidth}.");
    }

    private static Network Checked(Network network, int inputHeight, int inputWidth)
    {
        try { network.ValidateInput(network.InputChannels, inputHeight, inputWidth); }
        catch (ShapeException e)
        {
            throw new ShapeException($"{network.Architecture} cannot take a [{network.InputChannels}, {inputHeight}, {inputWidth}] input: {e.Message}");
        }
        return network;
    }
}
