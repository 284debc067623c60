using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Tensors;
using ResNet.ML.Training;

namespace ResNet.ML.Tests.Models;

/// <summary>
/// torchvision checkpoints (tools/fixtures/make_model_fixtures.py: random weights, BN running statistics from
/// train-mode forwards) give torchvision's eval-mode logits here, and our checkpoints give our logits back.
/// </summary>
[TestClass]
public class TorchvisionParityTests
{
    private static (Tensor Input, float[] Logits, int Classes) ReadIo(string name)
    {
        var tensors = ModelFixtures.Read($"{name}.io.safetensors").Tensors.ToDictionary(t => t.Name);
        var x = tensors["input"];
        var input = new Tensor(x.ToFloats(), (int)x.Shape[0], (int)x.Shape[1], (int)x.Shape[2], (int)x.Shape[3]);
        var logits = tensors["logits"];
        return (input, logits.ToFloats(), (int)logits.Shape[1]);
    }

    /// <summary>max |ours - theirs| over max |theirs| (logits are compared as a whole: a single small logit is no scale).</summary>
    private static double RelativeError(ReadOnlySpan<float> ours, ReadOnlySpan<float> theirs)
    {
        double maxDiff = 0, scale = 0;
        for (int i = 0; i < theirs.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)ours[i] - theirs[i]));
            scale = Math.Max(scale, Math.Abs((double)theirs[i]));
        }
        return maxDiff / scale;
    }

    [TestMethod]
    [DataRow("tv_resnet18_w4", "resnet18 widths=4,8,16,32 stem-width=4")]
    [DataRow("tv_bottleneck_w4", "resnet50 blocks=1,1,1,1 widths=4,8,16,32 stem-width=8")]
    [DataRow("cifar_resnet20", "resnet20")]
    public void TorchvisionCheckpointGivesTorchvisionLogits(string name, string architecture)
    {
        var (input, expected, classes) = ReadIo(name);
        var net = ModelFactory.Build(architecture, input.C, classes, input.H, input.W);
        ModelWeights.Load(net, ModelFixtures.PathOf($"{name}.safetensors"));
        var logits = net.Forward(input, training: false);
        Assert.IsTrue(logits.HasShape(input.N, classes, 1, 1), logits.Shape);
        double err = RelativeError(logits.Data, expected);
        Assert.IsTrue(err < 1e-4, $"{name}: relative error {err:E2}");
        Assert.IsTrue(expected.Max() - expected.Min() > 0.1, "the fixture's logits are not trivially flat");
    }

    [TestMethod]
    public void WrongCheckpointDoesNotMatch()
    {
        // The parity test can fail: resnet20's logits come out different when its BN statistics are the initial ones.
        var (input, expected, classes) = ReadIo("cifar_resnet20");
        var net = ModelFactory.Build("resnet20", input.C, classes, input.H, input.W);
        ModelWeights.Load(net, ModelFixtures.PathOf("cifar_resnet20.safetensors"));
        foreach (var bn in net.AllLayers.OfType<BatchNorm2d>()) { bn.RunningMean.Clear(); bn.RunningVar.Span.Fill(1f); }
        Assert.IsTrue(RelativeError(net.Forward(input, training: false).Data, expected) > 1e-2);
    }

    [TestMethod]
    [DataRow("resnet20", 3, 32, 32)]
    [DataRow("resnet18 widths=8,16,32,64 stem-width=8", 3, 40, 36)]
    [DataRow("resnet50 blocks=1,2,1,1 widths=4,8,16,32 stem-width=8", 1, 33, 33)]
    [DataRow("seed-resnet", 1, 28, 28)]
    [DataRow("simplecnn", 3, 28, 36)]
    public void CheckpointWeWriteGivesTheSameLogitsBack(string architecture, int channels, int height, int width)
    {
        var net = ModelFactory.Build(architecture, channels, 6, height, width);
        var rng = new Rng(42);
        Initializer.Initialize(net, rng);
        var x = new Tensor(4, channels, height, width);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)rng.NextGaussian();
        for (int step = 0; step < 2; step++) net.Forward(x, training: true);   // running statistics and counters move
        float[] before = (float[])net.Forward(x, training: false).Data.Clone();

        var stream = new MemoryStream();
        ModelWeights.Save(net, stream);
        stream.Position = 0;
        var copy = ModelFactory.Build(ModelWeights.ReadMetadata(stream)[ModelWeights.ArchitectureKey], channels, 6, height, width);
        stream.Position = 0;
        ModelWeights.Load(copy, stream);
        CollectionAssert.AreEqual(before, copy.Forward(x, training: false).Data, "bit-identical logits");
        Assert.AreEqual(2L, copy.AllLayers.OfType<BatchNorm2d>().First().NumBatchesTracked);
    }

    [TestMethod]
    public void AdaptedGrayscaleStemSeesWhatTheRgbNetSeesInAGrayImage()
    {
        const string arch = "resnet18 widths=4,8,16,32 stem-width=4", file = "tv_resnet18_w4.safetensors";
        var rgbNet = ModelFactory.Build(arch, 3, 10, 40, 48);
        ModelWeights.Load(rgbNet, ModelFixtures.PathOf(file));
        var grayNet = ModelFactory.Build(arch, 1, 10, 40, 48);
        ModelWeights.LoadBackbone(grayNet, ModelFixtures.PathOf(file), adaptInputChannels: true);
        var rgbHead = (Linear)rgbNet.Layers[^1];
        var grayHead = (Linear)grayNet.Layers[^1];
        rgbHead.Weight.Value.Data.CopyTo(grayHead.Weight.Value.Data, 0);
        rgbHead.Bias!.Value.Data.CopyTo(grayHead.Bias!.Value.Data, 0);

        var rng = new Rng(3);
        var gray = new Tensor(2, 1, 40, 48);
        for (int i = 0; i < gray.Length; i++) gray.Data[i] = (float)rng.NextGaussian();
        var rgb = new Tensor(2, 3, 40, 48);
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 3; c++) Array.Copy(gray.Data, n * gray.PlaneSize, rgb.Data, (n * 3 + c) * rgb.PlaneSize, gray.PlaneSize);
        float[] expected = (float[])rgbNet.Forward(rgb, training: false).Data.Clone();
        double err = RelativeError(grayNet.Forward(gray, training: false).Data, expected);
        Assert.IsTrue(err < 1e-5, $"relative error {err:E2}");
    }
}
