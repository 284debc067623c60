using ResNet.ML.Layers;
using ResNet.ML.Models;

namespace ResNet.ML.Tests.Models;

[TestClass]
public class ModelFactoryTests
{
    [TestMethod]
    [DataRow("resnet18", 11_689_512L)]
    [DataRow("resnet34", 21_797_672L)]
    [DataRow("resnet50", 25_557_032L)]
    [DataRow("resnet101", 44_549_160L)]
    [DataRow("resnet152", 60_192_808L)]
    public void ImageNetParameterCountsEqualTorchvision(string name, long expected)
    {
        var net = ModelFactory.Build(name, 3, 1000, 224, 224);
        Assert.AreEqual(expected, net.ParameterCount);
        Assert.AreEqual(name, net.Architecture);
    }

    [TestMethod]
    public void ParameterCountsEqualPyTorchFixture()
    {
        // the ImageNet nets themselves are asserted above; their plain twins, the CIFAR nets and the baselines here
        var counts = ModelFixtures.ParamCounts().Where(c => c.Classes != 1000 || c.Name.StartsWith("plain-", StringComparison.Ordinal)).ToList();
        Assert.IsTrue(counts.Count >= 20, "the fixture lists the CIFAR nets, their twins and the baselines");
        foreach (var c in counts)
        {
            var net = ModelFactory.Build(c.Name, c.Input[0], c.Classes, c.Input[1], c.Input[2]);
            Assert.AreEqual(c.Params, net.ParameterCount, $"{c.Name} with {c.Classes} classes, input [{string.Join(", ", c.Input)}]");
        }
        Assert.AreEqual(269_722L, counts.Single(c => c.Name == "resnet20").Params, "the paper's 0.27M");
    }

    [TestMethod]
    [DataRow("tv_resnet18_w4.safetensors", "resnet18 widths=4,8,16,32 stem-width=4", 3, 10)]
    [DataRow("tv_bottleneck_w4.safetensors", "resnet50 blocks=1,1,1,1 widths=4,8,16,32 stem-width=8", 1, 5)]
    [DataRow("cifar_resnet20.safetensors", "resnet20", 3, 10)]
    public void StateDictHasTorchvisionNamesShapesAndOrder(string file, string architecture, int channels, int classes)
    {
        var (tensors, metadata) = ModelFixtures.Read(file);
        Assert.AreEqual(architecture, metadata["architecture"]);
        var net = ModelFactory.Build(architecture, channels, classes, 32, 32);
        var ours = net.State.Select(e => $"{e.Name} [{string.Join(", ", e.Dims)}]").ToList();
        var theirs = tensors.Select(t => $"{t.Name} {t.ShapeText}").ToList();
        CollectionAssert.AreEqual(theirs, ours);
    }

    [TestMethod]
    public void ImageNetLayoutIsTorchvisionV15()
    {
        var net = ModelFactory.Build("resnet50", 3, 1000, 224, 224);
        CollectionAssert.AreEqual(new[] { "conv1", "bn1", "relu", "maxpool" }, net.Layers.Take(4).Select(l => l.Name).ToArray());
        Assert.AreEqual("fc", net.Layers[^1].Name);
        Assert.AreEqual("avgpool", net.Layers[^2].Name);
        var block = (BottleneckBlock)net.Layers.Single(l => l.Name == "layer2.0");
        Assert.AreEqual(1, block.Branch[0].Conv.Stride, "1x1 reduce keeps the resolution");
        Assert.AreEqual(2, block.Branch[1].Conv.Stride, "v1.5: the 3x3 carries the stride");
        var proj = (ProjectionShortcut)block.Shortcut!;
        Assert.AreEqual("layer2.0.downsample", proj.Name);
        Assert.AreEqual((1, 2), (proj.Conv.KernelSize, proj.Conv.Stride));
        Assert.IsNull(((BottleneckBlock)net.Layers.Single(l => l.Name == "layer2.1")).Shortcut, "identity where shapes agree");
        Assert.IsNotNull(((BottleneckBlock)net.Layers.Single(l => l.Name == "layer1.0")).Shortcut, "64 -> 256 needs a projection");
        Assert.AreEqual(16, net.Layers.Count(l => l is BottleneckBlock));
    }

    [TestMethod]
    public void CifarShortcutsAreOptionAUnlessAskedForB()
    {
        var a = ModelFactory.Build("resnet20", 3, 10, 32, 32);
        var b = ModelFactory.Build("resnet20-b", 3, 10, 32, 32);
        var seed = ModelFactory.Build("seed-resnet", 3, 10, 32, 32);
        Assert.AreEqual(9, a.Layers.Count(l => l is BasicBlock));
        Assert.IsFalse(a.Layers.Any(l => l is MaxPool2d));
        CollectionAssert.AreEqual(new[] { "layer2.0.shortcut", "layer3.0.shortcut" },
            a.AllLayers.OfType<ZeroPadShortcut>().Select(s => s.Name).ToArray());
        CollectionAssert.AreEqual(new[] { (1, 2), (1, 2) },
            b.AllLayers.OfType<ProjectionShortcut>().Select(s => (s.Conv.KernelSize, s.Conv.Stride)).ToArray());
        CollectionAssert.AreEqual(new[] { (3, 2, 1), (3, 2, 1) },
            seed.AllLayers.OfType<ProjectionShortcut>().Select(s => (s.Conv.KernelSize, s.Conv.Stride, s.Conv.Padding)).ToArray());
        Assert.AreEqual(6, seed.Layers.Count(l => l is BasicBlock));
        Assert.AreEqual(32 / 4, ShapeAfter(a, "layer3.2", 32, 32).H);
    }

    [TestMethod]
    [DataRow("resnet18")]
    [DataRow("resnet50")]
    [DataRow("resnet56")]
    [DataRow("resnet20-b")]
    [DataRow("seed-resnet")]
    public void PlainTwinHasTheSameLayersWithoutShortcuts(string name)
    {
        var res = ModelFactory.Build(name, 3, 10, 64, 64);
        var plain = ModelFactory.Build("plain-" + name, 3, 10, 64, 64);
        Assert.AreEqual("plain-" + name, plain.Architecture);
        var blocks = plain.Layers.OfType<ResidualBlock>().ToList();
        Assert.IsTrue(blocks.Count > 0 && blocks.All(b => b.Plain && b.Shortcut is null));
        static IEnumerable<string> Weighted(Network n) =>
            n.AllLayers.Where(l => l is Conv2d or BatchNorm2d or Linear && !l.Name.Contains(".downsample.")).Select(l => l.Name);
        CollectionAssert.AreEqual(Weighted(res).ToArray(), Weighted(plain).ToArray());
        long shortcutParams = res.AllLayers.OfType<ProjectionShortcut>().Sum(s => s.Parameters.Sum(p => (long)p.Value.Length));
        Assert.AreEqual(res.ParameterCount - shortcutParams, plain.ParameterCount);
    }

    [TestMethod]
    public void AnyInputChannelsAndClassesAndSize()
    {
        var net = ModelFactory.Build("resnet34", 1, 7, 40, 56);
        Assert.AreEqual((1, 7), (net.InputChannels, net.NumClasses));
        CollectionAssert.AreEqual(new[] { 64, 1, 7, 7 }, net.State.First().Dims);
        CollectionAssert.AreEqual(new[] { 7, 512 }, net.State.Single(e => e.Name == "fc.weight").Dims);
        net.ValidateInput(1, 40, 56);
        Assert.ThrowsExactly<ShapeException>(() => net.ValidateInput(3, 40, 56));

        var cnn = ModelFactory.Build("SimpleCNN", 1, 10, 28, 28);
        Assert.AreEqual("simplecnn", cnn.Architecture);
        CollectionAssert.AreEqual(new[] { 10, 32 * 7 * 7 }, cnn.State.Single(e => e.Name == "fc.weight").Dims);
        CollectionAssert.AreEqual(
            new[] { "layer1.0.weight", "layer1.0.bias", "layer1.1.weight", "layer1.1.bias", "layer1.1.running_mean", "layer1.1.running_var", "layer1.1.num_batches_tracked" },
            cnn.State.Take(7).Select(e => e.Name).ToArray());
        var wide = ModelFactory.Build("simplecnn", 3, 10, 30, 45);
        CollectionAssert.AreEqual(new[] { 10, 32 * 7 * 11 }, wide.State.Single(e => e.Name == "fc.weight").Dims);
    }

    [TestMethod]
    public void TooSmallInputOrBadSizesFailClearly()
    {
        var e = Assert.ThrowsExactly<ShapeException>(() => ModelFactory.Build("simplecnn", 3, 10, 3, 32));
        StringAssert.Contains(e.Message, "simplecnn");
        StringAssert.Contains(e.Message, "layer2.3");
        Assert.AreEqual("inputChannels", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelFactory.Build("resnet20", 0, 10, 32, 32)).ParamName);
        Assert.AreEqual("numClasses", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelFactory.Build("resnet20", 3, 0, 32, 32)).ParamName);
        Assert.AreEqual("inputWidth", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ModelFactory.Build("resnet20", 3, 10, 32, -1)).ParamName);
        // the smallest inputs the strides allow still work, as in PyTorch
        ModelFactory.Build("resnet18", 3, 10, 1, 1);
        ModelFactory.Build("simplecnn", 3, 10, 4, 4);
    }

    [TestMethod]
    public void UnknownNameListsTheKnownOnes()
    {
        foreach (string bad in new[] { "resnet19", "resnet18-b", "vgg16", "" })
        {
            var e = Assert.ThrowsExactly<ArgumentException>(() => ModelFactory.Build(bad, 3, 10, 32, 32));
            StringAssert.Contains(e.Message, $"'{bad}'");
            foreach (string known in new[] { "resnet18", "resnet152", "resnet20", "resnet1202", "resnet56-b", "seed-resnet", "simplecnn" })
                StringAssert.Contains(e.Message, known);
        }
        Assert.AreEqual(3, ModelFactory.Build("resnet8", 3, 10, 32, 32).Layers.OfType<BasicBlock>().Count(), "any CIFAR depth 6n+2");
    }

    [TestMethod]
    public void ArchitectureTextRebuildsTheSameNetwork()
    {
        foreach (string arch in new[] { "resnet18 widths=8,16,32,64 stem-width=8", "block=bottleneck blocks=2,1 widths=8,16 shortcut=B", "resnet56 shortcut=B plain" })
        {
            var net = ModelFactory.Build(arch, 2, 4, 32, 32);
            var again = ModelFactory.Build(net.Architecture, 2, 4, 32, 32);
            Assert.AreEqual(net.Architecture, again.Architecture);
            CollectionAssert.AreEqual(net.State.Select(s => $"{s.Name}{string.Join(',', s.Dims)}").ToArray(),
                                      again.State.Select(s => $"{s.Name}{string.Join(',', s.Dims)}").ToArray());
        }
        var custom = ModelFactory.Build("block=bottleneck blocks=2,1 widths=8,16 shortcut=B", 2, 4, 32, 32);
        Assert.AreEqual("block=bottleneck blocks=2,1 widths=8,16 stem=cifar stem-width=8 shortcut=B", custom.Architecture);
        Assert.AreEqual(64, ((Linear)custom.Layers[^1]).InFeatures);
        var json = ModelFactory.Build("""{"block":"basic","blocks":[1,1],"widths":[4,8],"stem":"imagenet"}""", 3, 2, 32, 32);
        Assert.AreEqual("block=basic blocks=1,1 widths=4,8 stem=imagenet stem-width=4 shortcut=B", json.Architecture);
        Assert.IsTrue(json.Layers.Any(l => l is MaxPool2d));
    }

    private static (int C, int H, int W) ShapeAfter(Network net, string layerName, int h, int w)
    {
        var s = (C: net.InputChannels, H: h, W: w);
        foreach (var l in net.Layers)
        {
            s = l.OutputShape(s.C, s.H, s.W);
            if (l.Name == layerName) return s;
        }
        throw new KeyNotFoundException(layerName);
    }
}
