using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Tensors;

namespace ResNet.ML.Tests.Onnx;

/// <summary>
/// Networks for the ONNX tests, built by the models' factory (torchvision's names: conv1, bn1, layer1.0.conv1,
/// layer2.0.downsample.0, fc) at narrow widths where the tests only need the structure, plus seeded weights.
/// </summary>
public static class OnnxTestNetworks
{
    public enum Shortcut { A, B, Plain }

    private static string ShortcutText(Shortcut s) => s switch { Shortcut.A => "shortcut=A", Shortcut.B => "shortcut=B", _ => "plain=true" };

    /// <summary>The paper's CIFAR ResNet-(6n+2) through the models' factory, at stage widths width, 2·width, 4·width.</summary>
    public static Network Cifar(int n, int width, int classes, Shortcut shortcut, int inputChannels = 3, int size = 32) =>
        ModelFactory.Build($"resnet{6 * n + 2} widths={width},{2 * width},{4 * width} stem-width={width} {ShortcutText(shortcut)}", inputChannels, classes, size, size);

    /// <summary>torchvision's ImageNet ResNet-{depth} through the models' factory, at stage widths baseWidth·(1, 2, 4, 8).</summary>
    public static Network ImageNet(int depth, int classes, Shortcut shortcut, int baseWidth = 64, int inputChannels = 3, int size = 64) =>
        ModelFactory.Build($"resnet{depth} widths={baseWidth},{2 * baseWidth},{4 * baseWidth},{8 * baseWidth} stem-width={baseWidth} {ShortcutText(shortcut)}", inputChannels, classes, size, size);

    /// <summary>The seed experiment's SimpleCNN: two 5x5 conv-BN-ReLU-maxpool layers (16, 32 channels), linear head on the flattened map.</summary>
    public static Network SimpleCnn(int inputChannels, int size, int classes) => ModelFactory.BuildSimpleCnn(inputChannels, classes, size, size);

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

    /// <summary>Loads a safetensors state dict (torchvision names) with the models' loader; every entry must be present.</summary>
    public static void LoadState(Network network, string safetensorsPath) => ModelWeights.Load(network, safetensorsPath);

    private static void Gaussian(float[] a, Rng rng, double std)
    {
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextGaussian() * std);
    }

    private static void Uniform(float[] a, Rng rng, double lo, double hi)
    {
        for (int i = 0; i < a.Length; i++) a[i] = (float)(lo + (hi - lo) * rng.NextDouble());
    }
}
