using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Tensors;

namespace ResNet.ML.Tests.Models;

[TestClass]
public class ModelWeightsTests
{
    private const string Resnet18W4 = "resnet18 widths=4,8,16,32 stem-width=4";
    private const string Resnet18W4Canonical = "block=basic blocks=2,2,2,2 widths=4,8,16,32 stem=imagenet stem-width=4 shortcut=B";

    private static Network Fresh(int classes = 10) => ModelFactory.Build(Resnet18W4, 3, classes, 40, 48);

    private static Network LoadedFromTorchvision()
    {
        var net = Fresh();
        ModelWeights.Load(net, ModelFixtures.PathOf("tv_resnet18_w4.safetensors"));
        return net;
    }

    private static void Randomize(Network net, ulong seed)
    {
        var rng = new Rng(seed);
        foreach (var e in net.State)
        {
            if (e.Counter) e.SetCounter!((long)rng.NextInt(1000));
            else for (int i = 0; i < e.Value!.Length; i++) e.Value.Data[i] = rng.NextFloat() + 0.5f;
        }
    }

    private static Dictionary<string, float[]> Floats(Network net) =>
        net.State.Where(e => !e.Counter).ToDictionary(e => e.Name, e => (float[])e.Value!.Data.Clone());

    [TestMethod]
    public void TorchvisionCheckpointLoadsEveryTensor()
    {
        var (tensors, _) = ModelFixtures.Read("tv_resnet18_w4.safetensors");
        var net = LoadedFromTorchvision();
        var state = net.State.ToDictionary(e => e.Name);
        Assert.AreEqual(tensors.Count, state.Count);
        foreach (var t in tensors)
        {
            var e = state[t.Name];
            if (t.Dtype == "I64") Assert.AreEqual(t.ToInt64()[0], e.GetCounter!(), t.Name);
            else CollectionAssert.AreEqual(t.ToFloats(), e.Value!.Data, t.Name);
        }
        Assert.AreEqual(3L, net.AllLayers.OfType<BatchNorm2d>().Select(b => b.NumBatchesTracked).Distinct().Single(), "three train-mode forwards");
        Assert.IsTrue(net.AllLayers.OfType<BatchNorm2d>().All(b => b.RunningMean.Data.Any(v => v != 0)), "non-trivial running means");
    }

    [TestMethod]
    public void SavedCheckpointIsTorchvisionLayoutAndLoadsBackIdentically()
    {
        var net = Fresh();
        Randomize(net, 7);
        var stream = new MemoryStream();
        ModelWeights.Save(net, stream, new Dictionary<string, string> { ["note"] = "test" });

        stream.Position = 0;
        var (tensors, metadata) = Safetensors.Read(stream);
        Assert.AreEqual(Resnet18W4Canonical, metadata[ModelWeights.ArchitectureKey]);
        Assert.AreEqual("10", metadata[ModelWeights.NumClassesKey]);
        Assert.AreEqual("pt", metadata[ModelWeights.FormatKey]);
        Assert.AreEqual("test", metadata["note"]);
        var reference = ModelFixtures.Read("tv_resnet18_w4.safetensors").Tensors;
        CollectionAssert.AreEqual(reference.Select(t => $"{t.Name} {t.Dtype} {t.ShapeText}").ToArray(),
                                  tensors.Select(t => $"{t.Name} {t.Dtype} {t.ShapeText}").ToArray());
        Assert.AreEqual("[]", tensors.Single(t => t.Name == "bn1.num_batches_tracked").ShapeText);

        stream.Position = 0;
        var copy = Fresh();
        ModelWeights.Load(copy, stream);
        var expected = Floats(net);
        foreach (var (name, values) in Floats(copy)) CollectionAssert.AreEqual(expected[name], values, name);
        CollectionAssert.AreEqual(net.AllLayers.OfType<BatchNorm2d>().Select(b => b.NumBatchesTracked).ToArray(),
                                  copy.AllLayers.OfType<BatchNorm2d>().Select(b => b.NumBatchesTracked).ToArray());
    }

    [TestMethod]
    public void TorchvisionCheckpointSavesBackToTheSameTensors()
    {
        var net = LoadedFromTorchvision();
        var stream = new MemoryStream();
        ModelWeights.Save(net, stream);
        stream.Position = 0;
        var written = Safetensors.Read(stream).Tensors;
        var original = ModelFixtures.Read("tv_resnet18_w4.safetensors").Tensors;
        Assert.AreEqual(original.Count, written.Count);
        for (int i = 0; i < original.Count; i++)
        {
            Assert.AreEqual(original[i].Name, written[i].Name);
            CollectionAssert.AreEqual(original[i].Bytes, written[i].Bytes, original[i].Name);
        }
    }

    private static byte[] Rewrite(Func<List<SafetensorsTensor>, IEnumerable<SafetensorsTensor>> edit)
    {
        var (tensors, metadata) = ModelFixtures.Read("tv_resnet18_w4.safetensors");
        var stream = new MemoryStream();
        Safetensors.Write(stream, edit(tensors.ToList()), metadata);
        return stream.ToArray();
    }

    [TestMethod]
    public void BadCheckpointsNameTheTensorAndLoadNothing()
    {
        var cases = new (string Expected, byte[] File)[]
        {
            ("'layer2.0.bn1.running_var' is missing", Rewrite(ts => ts.Where(t => t.Name != "layer2.0.bn1.running_var"))),
            ("'layer5.0.conv1.weight' is not part of this network", Rewrite(ts => ts.Append(SafetensorsTensor.FromFloats("layer5.0.conv1.weight", new float[4], 1, 1, 2, 2)))),
            ("'layer3.1.conv2.weight' has shape [16, 16, 3, 1] where [16, 16, 3, 3] is needed", Rewrite(ts => ts.Select(t => t.Name == "layer3.1.conv2.weight"
                ? SafetensorsTensor.FromFloats(t.Name, t.ToFloats()[..(16 * 16 * 3)], 16, 16, 3, 1) : t))),
            ("'fc.bias' is F64 where F32 is needed", Rewrite(ts => ts.Select(t => t.Name == "fc.bias" ? new SafetensorsTensor(t.Name, "F64", t.Shape, new byte[80]) : t))),
            ("'bn1.num_batches_tracked' has shape [1] where [] is needed", Rewrite(ts => ts.Select(t => t.Name == "bn1.num_batches_tracked" ? SafetensorsTensor.FromInt64(t.Name, [3], 1) : t))),
        };
        foreach (var (expected, file) in cases)
        {
            var net = Fresh();
            Randomize(net, 11);
            var before = Floats(net);
            var e = Assert.ThrowsExactly<InvalidDataException>(() => ModelWeights.Load(net, new MemoryStream(file), "broken.safetensors"));
            StringAssert.Contains(e.Message, expected);
            StringAssert.Contains(e.Message, "broken.safetensors");
            StringAssert.Contains(e.Message, "nothing was loaded");
            foreach (var (name, values) in Floats(net)) CollectionAssert.AreEqual(before[name], values, $"{name} changed by a failed load");
        }
        var wrongClasses = Assert.ThrowsExactly<InvalidDataException>(() =>
            ModelWeights.Load(Fresh(classes: 3), ModelFixtures.PathOf("tv_resnet18_w4.safetensors")));
        StringAssert.Contains(wrongClasses.Message, "'fc.weight' has shape [10, 32] where [3, 32] is needed");
        Assert.ThrowsExactly<FileNotFoundException>(() => ModelWeights.Load(Fresh(), Path.Combine(Path.GetTempPath(), "no-such-weights.safetensors")));
    }

    [TestMethod]
    public void BackboneLoadsIntoANewHead()
    {
        var net = Fresh(classes: 3);
        Randomize(net, 5);
        var head = net.State.Where(e => e.Name.StartsWith("fc.", StringComparison.Ordinal)).ToDictionary(e => e.Name, e => (float[])e.Value!.Data.Clone());
        ModelWeights.LoadBackbone(net, ModelFixtures.PathOf("tv_resnet18_w4.safetensors"));
        var reference = LoadedFromTorchvision().State.ToDictionary(e => e.Name);
        foreach (var e in net.State.Where(e => !e.Counter))
        {
            if (head.TryGetValue(e.Name, out var kept)) CollectionAssert.AreEqual(kept, e.Value!.Data, $"{e.Name}: the new head keeps its values");
            else CollectionAssert.AreEqual(reference[e.Name].Value!.Data, e.Value!.Data, e.Name);
        }
        CollectionAssert.AreEqual(new[] { 3, 32 }, net.State.Single(e => e.Name == "fc.weight").Dims);

        // the backbone itself must still match: a grayscale network cannot take RGB stem weights
        var gray = ModelFactory.Build(Resnet18W4, 1, 3, 40, 48);
        var e2 = Assert.ThrowsExactly<InvalidDataException>(() => ModelWeights.LoadBackbone(gray, ModelFixtures.PathOf("tv_resnet18_w4.safetensors")));
        StringAssert.Contains(e2.Message, "'conv1.weight' has shape [4, 3, 7, 7]");
    }

    [TestMethod]
    public void PathSaveIsAtomicAndOverwrites()
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnetml-weights-" + Guid.NewGuid().ToString("N"));
        try
        {
            string path = Path.Combine(dir, "sub", "model.safetensors");
            var net = Fresh();
            Randomize(net, 1);
            ModelWeights.Save(net, path);
            Randomize(net, 2);
            ModelWeights.Save(net, path);
            Assert.AreEqual(1, Directory.GetFiles(Path.GetDirectoryName(path)!).Length, "no temporary file is left behind");
            var copy = Fresh();
            var metadata = ModelWeights.Load(copy, path);
            Assert.AreEqual(Resnet18W4Canonical, metadata[ModelWeights.ArchitectureKey]);
            var expected = Floats(net);
            foreach (var (name, values) in Floats(copy)) CollectionAssert.AreEqual(expected[name], values, name);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void RgbBackboneAdaptsToOtherInputChannelCounts()
    {
        var rgb = ModelFixtures.Read("tv_resnet18_w4.safetensors").Tensors.Single(t => t.Name == "conv1.weight").ToFloats();   // [4, 3, 7, 7]
        var gray = ModelFactory.Build(Resnet18W4, 1, 3, 40, 48);
        ModelWeights.LoadBackbone(gray, ModelFixtures.PathOf("tv_resnet18_w4.safetensors"), adaptInputChannels: true);
        var five = ModelFactory.Build(Resnet18W4, 5, 3, 40, 48);
        ModelWeights.LoadBackbone(five, ModelFixtures.PathOf("tv_resnet18_w4.safetensors"), adaptInputChannels: true);
        var g = ((Conv2d)gray.Layers[0]).Weight.Value;
        var f = ((Conv2d)five.Layers[0]).Weight.Value;
        Assert.IsTrue(g.HasShape(4, 1, 7, 7) && f.HasShape(4, 5, 7, 7));
        for (int o = 0; o < 4; o++)
            for (int i = 0; i < 49; i++)
            {
                float sum = rgb[(o * 3 + 0) * 49 + i] + rgb[(o * 3 + 1) * 49 + i] + rgb[(o * 3 + 2) * 49 + i];
                Assert.AreEqual(sum, g.Data[o * 49 + i], 1e-6f);
                for (int c = 0; c < 5; c++) Assert.AreEqual(rgb[(o * 3 + c % 3) * 49 + i] * 3f / 5f, f.Data[(o * 5 + c) * 49 + i], 1e-6f);
            }
        // everything else as in the file
        var reference = LoadedFromTorchvision().State.ToDictionary(e => e.Name);
        CollectionAssert.AreEqual(reference["layer4.1.bn2.running_var"].Value!.Data, gray.State.Single(e => e.Name == "layer4.1.bn2.running_var").Value!.Data);
        // the plain loaders stay strict
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() =>
            ModelWeights.LoadBackbone(ModelFactory.Build(Resnet18W4, 1, 3, 40, 48), ModelFixtures.PathOf("tv_resnet18_w4.safetensors"))).Message, "'conv1.weight'");
    }

    [TestMethod]
    public void LoadNetworkRebuildsTheArchitectureFromMetadata()
    {
        var net = ModelFactory.Build("simplecnn", 1, 4, 20, 24);
        Randomize(net, 9);
        var stream = new MemoryStream();
        ModelWeights.Save(net, stream, new Dictionary<string, string> { [ModelWeights.InputHeightKey] = "20", [ModelWeights.InputWidthKey] = "24" });
        stream.Position = 0;
        var (copy, metadata) = ModelWeights.LoadNetwork(stream);
        Assert.AreEqual(("simplecnn", 1, 4), (copy.Architecture, copy.InputChannels, copy.NumClasses));
        Assert.AreEqual("24", metadata[ModelWeights.InputWidthKey]);
        var expected = Floats(net);
        foreach (var (name, values) in Floats(copy)) CollectionAssert.AreEqual(expected[name], values, name);

        var (custom, _) = ModelWeights.LoadNetwork(SaveOf("tv_bottleneck_w4.safetensors", 1, 5));
        Assert.AreEqual("block=bottleneck blocks=1,1,1,1 widths=4,8,16,32 stem=imagenet stem-width=8 shortcut=B", custom.Architecture);

        // torchvision's own files carry no ResNet.ML metadata
        var e = Assert.ThrowsExactly<InvalidDataException>(() => ModelWeights.LoadNetwork(ModelFixtures.PathOf("cifar_resnet20.safetensors")));
        StringAssert.Contains(e.Message, "'input_channels'");
    }

    /// <summary>A torchvision fixture loaded into the network its metadata names, saved again by ResNet.ML.</summary>
    private static MemoryStream SaveOf(string file, int channels, int classes)
    {
        var (tensors, metadata) = ModelFixtures.Read(file);
        var net = ModelFactory.Build(metadata["architecture"], channels, classes, 32, 32);
        ModelWeights.Load(net, ModelFixtures.PathOf(file));
        var stream = new MemoryStream();
        ModelWeights.Save(net, stream);
        stream.Position = 0;
        Assert.AreEqual(tensors.Count, net.State.Count());
        return stream;
    }
}
