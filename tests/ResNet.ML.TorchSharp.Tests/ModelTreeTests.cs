using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.TorchSharp;
using TorchSharp;

namespace ResNet.ML.TorchSharp.Tests;

[TestClass]
public sealed class ModelTreeTests
{
    [TestMethod]
    public void LibtorchLoadsOnThisMachine()
    {
        // On Debian 12 this passes only because the build marked GLIBCXX_3.4.32 weak in the output copy.
        Assert.IsTrue(TorchRuntime.IsAvailable, TorchRuntime.FailureReason);
    }

    [TestMethod]
    [DataRow("resnet18", 3, 64)]
    [DataRow("resnet50", 3, 64)]
    [DataRow("resnet20", 3, 32)]
    [DataRow("resnet20-b", 3, 32)]
    [DataRow("plain-resnet20", 1, 28)]
    [DataRow("plain-resnet18", 3, 64)]
    [DataRow("seed-resnet", 3, 32)]
    [DataRow("simplecnn", 1, 28)]
    [DataRow("block=bottleneck blocks=1,2 widths=8,16 stem=cifar stem-width=8 shortcut=B", 3, 16)]
    [DataRow("block=basic blocks=1,1,1,1,1 widths=4,8,8,16,16 stem=cifar stem-width=4 shortcut=A", 2, 32)]
    public void StateDictHasTheManagedNetworksNamesAndShapes(string architecture, int channels, int size)
    {
        var network = ModelFactory.Build(architecture, channels, 10, size, size);
        using var model = TorchResNet.Build(network);
        var managed = network.State.ToList();
        var torchState = model.state_dict();
        // TorchSharp lists all parameters before all buffers (PyTorch interleaves them per module), so the state dicts
        // are compared as sets and the parameters, which optimizers walk, in order.
        Assert.AreEqual(string.Join(" ", managed.Select(e => e.Name).Order(StringComparer.Ordinal)),
            string.Join(" ", torchState.Keys.Order(StringComparer.Ordinal)), architecture);
        Assert.AreEqual(string.Join(" ", network.Parameters.Select(p => p.Name)),
            string.Join(" ", model.named_parameters().Select(p => p.name)), architecture);
        foreach (var e in managed)
        {
            var t = torchState[e.Name];
            if (e.Counter) Assert.AreEqual(torch.ScalarType.Int64, t.dtype, e.Name);
            else CollectionAssert.AreEqual(e.Dims.Select(d => (long)d).ToArray(), t.shape, e.Name);
        }
        Assert.AreEqual(network.ParameterCount, model.parameters().Sum(p => p.numel()), architecture);
    }

    [TestMethod]
    public void WeightsRoundTripThroughTheTreeExactly()
    {
        var source = ModelFactory.Build("resnet8", 3, 10, 16, 16);
        Training.Initializer.Initialize(source, new Tensors.Rng(7));
        foreach (var bn in source.AllLayers.OfType<Layers.BatchNorm2d>())
        {
            for (int c = 0; c < bn.Channels; c++) { bn.RunningMean.Data[c] = 0.01f * c; bn.RunningVar.Data[c] = 1 + 0.02f * c; }
            bn.NumBatchesTracked = 42;
        }
        using var model = TorchResNet.Build(source);
        model.CopyFrom(source);
        var target = ModelFactory.Build("resnet8", 3, 10, 16, 16);
        model.CopyTo(target);
        foreach (var (a, b) in source.State.Zip(target.State))
        {
            if (a.Counter) Assert.AreEqual(a.GetCounter!(), b.GetCounter!(), a.Name);
            else CollectionAssert.AreEqual(a.Value!.Data, b.Value!.Data, a.Name);
        }
    }
}
