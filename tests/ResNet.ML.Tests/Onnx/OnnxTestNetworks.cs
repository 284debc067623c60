using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Tensors;

namespace ResNet.ML.Tests.Onnx;

/// <summary>
/// Networks for the ONNX tests, built from the layer classes with torchvision's names (conv1, bn1, layer1.0.conv1,
/// layer2.0.downsample.0, fc), plus seeded weights and the state-dict loading the fixture tests need.
/// </summary>
public static class OnnxTestNetworks
{
    public enum Shortcut { A, B, Plain }

    /// <summary>The paper's CIFAR ResNet-(6n+2): 3x3 stem, three stages of n basic blocks (width, 2·width, 4·width), GAP, fc.</summary>
    public static Network Cifar(int n, int width, int classes, Shortcut shortcut, int inputChannels = 3)
    {
        var layers = new List<Layer> { new Conv2d("conv1", inputChannels, width, 3, 1, 1), new BatchNorm2d("bn1", width), new ReLU("relu") };
        int cin = width;
        for (int s = 0; s < 3; s++)
        {
            int w = width << s;
            for (int b = 0; b < n; b++)
            {
                int stride = s > 0 && b == 0 ? 2 : 1;
                string name = $"layer{s + 1}.{b}";
                layers.Add(new BasicBlock(name, cin, w, stride, MakeShortcut(name, cin, w, stride, shortcut), shortcut == Shortcut.Plain));
                cin = w;
            }
        }
        layers.Add(new GlobalAvgPool2d("avgpool"));
        layers.Add(new Linear("fc", cin, classes));
        string prefix = shortcut == Shortcut.Plain ? "plain" : "resnet";
        return new Network($"cifar_{prefix}{6 * n + 2}", inputChannels, classes, layers);
    }

    /// <summary>The ImageNet ResNets of Table 1 (torchvision layout): 7x7/2 stem, 3x3/2 max pool, four stages, GAP, fc.</summary>
    public static Network ImageNet(int depth, int classes, Shortcut shortcut, int baseWidth = 64, int inputChannels = 3)
    {
        (bool bottleneck, int[] blocks) = depth switch
        {
            18 => (false, new[] { 2, 2, 2, 2 }),
            34 => (false, new[] { 3, 4, 6, 3 }),
            50 => (true, new[] { 3, 4, 6, 3 }),
            101 => (true, new[] { 3, 4, 23, 3 }),
            152 => (true, new[] { 3, 8, 36, 3 }),
            _ => throw new ArgumentOutOfRangeException(nameof(depth)),
        };
        var layers = new List<Layer>
        {
            new Conv2d("conv1", inputChannels, baseWidth, 7, 2, 3), new BatchNorm2d("bn1", baseWidth), new ReLU("relu"), new MaxPool2d("maxpool", 3, 2, 1),
        };
        int cin = baseWidth;
        for (int s = 0; s < 4; s++)
        {
            int w = baseWidth << s, cout = bottleneck ? w * BottleneckBlock.Expansion : w;
            for (int b = 0; b < blocks[s]; b++)
            {
                int stride = s > 0 && b == 0 ? 2 : 1;
                string name = $"layer{s + 1}.{b}";
                var sc = MakeShortcut(name, cin, cout, stride, shortcut);
                layers.Add(bottleneck
                    ? new BottleneckBlock(name, cin, w, stride, sc, shortcut == Shortcut.Plain)
                    : new BasicBlock(name, cin, w, stride, sc, shortcut == Shortcut.Plain));
                cin = cout;
            }
        }
        layers.Add(new GlobalAvgPool2d("avgpool"));
        layers.Add(new Linear("fc", cin, classes));
        return new Network($"{(shortcut == Shortcut.Plain ? "plain" : "resnet")}{depth}", inputChannels, classes, layers);
    }

    /// <summary>The seed experiment's SimpleCNN: two 5x5 conv-BN-ReLU-maxpool layers (16, 32 channels), linear head on the flattened map.</summary>
    public static Network SimpleCnn(int inputChannels, int size, int classes) => new("simplecnn", inputChannels, classes,
    [
        new Conv2d("conv1", inputChannels, 16, 5, 1, 2), new BatchNorm2d("bn1", 16), new ReLU("relu1"), new MaxPool2d("pool1", 2, 2),
        new Conv2d("conv2", 16, 32, 5, 1, 2), new BatchNorm2d("bn2", 32), new ReLU("relu2"), new MaxPool2d("pool2", 2, 2),
        new Linear("fc", 32 * (size / 4) * (size / 4), classes),
    ]);

    /// <summary>The seed experiment's small ResNet: blocks [2, 2, 2], 16/32/64 channels, 3x3-conv + BN downsample shortcut.</summary>
    public static Network SeedResNet(int inputChannels, int classes)
    {
        var layers = new List<Layer> { new Conv2d("conv1", inputChannels, 16, 3, 1, 1), new BatchNorm2d("bn1", 16), new ReLU("relu") };
        int cin = 16;
        for (int s = 0; s < 3; s++)
            for (int b = 0; b < 2; b++)
            {
                int w = 16 << s, stride = s > 0 && b == 0 ? 2 : 1;
                string name = $"layer{s + 1}.{b}";
                Layer? sc = stride != 1 || cin != w ? new ProjectionShortcut($"{name}.downsample", cin, w, stride, kernelSize: 3) : null;
                layers.Add(new BasicBlock(name, cin, w, stride, sc));
                cin = w;
            }
        layers.Add(new GlobalAvgPool2d("avgpool"));
        layers.Add(new Linear("fc", cin, classes));
        return new Network("seed_resnet", inputChannels, classes, layers);
    }

    private static Layer? MakeShortcut(string block, int cin, int cout, int stride, Shortcut kind) =>
        kind == Shortcut.Plain || (stride == 1 && cin == cout) ? null
        : kind == Shortcut.A ? new ZeroPadShortcut($"{block}.shortcut", cin, cout, stride)
        : new ProjectionShortcut($"{block}.downsample", cin, cout, stride);

    /// <summary>
    /// Seeded weights (He-normal convs, small fc), BN affine parameters away from 1/0, and BN running statistics
    /// away from 0/1, so an export that drops or misplaces any of them changes the outputs.
    /// </summary>
    public static void Randomize(Network network, ulong seed)
    {
        var rng = new Rng(seed);
        foreach (var layer in network.AllLayers)
        {
            switch (layer)
            {
                case Conv2d conv:
                    Gaussian(conv.Weight.Value.Data, rng, Math.Sqrt(2.0 / (conv.InChannels * conv.KernelSize * conv.KernelSize)));
                    if (conv.Bias is not null) Uniform(conv.Bias.Value.Data, rng, -0.1, 0.1);
                    break;
                case BatchNorm2d bn:
                    Uniform(bn.Weight.Value.Data, rng, 0.5, 1.5);
                    Uniform(bn.Bias.Value.Data, rng, -0.2, 0.2);
                    Uniform(bn.RunningMean.Data, rng, -0.3, 0.3);
                    Uniform(bn.RunningVar.Data, rng, 0.5, 2.0);
                    break;
                case Linear fc:
                    Gaussian(fc.Weight.Value.Data, rng, Math.Sqrt(1.0 / fc.InFeatures));
                    if (fc.Bias is not null) Uniform(fc.Bias.Value.Data, rng, -0.1, 0.1);
                    break;
            }
        }
    }

    public static float[] RandomInput(int length, ulong seed, float scale = 1f, float offset = 0f)
    {
        var rng = new Rng(seed);
        var x = new float[length];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextGaussian() * scale + offset;
        return x;
    }

    /// <summary>Copies a safetensors state dict (torchvision names) into the network; every entry must be present.</summary>
    public static void LoadState(Network network, string safetensorsPath)
    {
        using var stream = File.OpenRead(safetensorsPath);
        var tensors = Safetensors.Read(stream, safetensorsPath).Tensors.ToDictionary(t => t.Name);
        foreach (var entry in network.State)
        {
            if (!tensors.TryGetValue(entry.Name, out var t)) throw new InvalidDataException($"{safetensorsPath} has no tensor '{entry.Name}'.");
            tensors.Remove(entry.Name);
            if (entry.Counter) { entry.SetCounter!(t.ToInt64()[0]); continue; }
            float[] values = t.ToFloats();
            if (values.Length != entry.Value!.Length) throw new InvalidDataException($"'{entry.Name}' has {values.Length} values, the network needs {entry.Value.Length}.");
            values.CopyTo(entry.Value.Data, 0);
        }
        if (tensors.Count > 0)
            throw new InvalidDataException($"{safetensorsPath} has tensors the network does not use: {string.Join(", ", tensors.Keys)}.");
    }

    private static void Gaussian(float[] a, Rng rng, double std)
    {
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextGaussian() * std);
    }

    private static void Uniform(float[] a, Rng rng, double lo, double hi)
    {
        for (int i = 0; i < a.Length; i++) a[i] = (float)(lo + (hi - lo) * rng.NextDouble());
    }
}
