using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Onnx;
using ResNet.ML.Tensors;
using static ResNet.ML.Tests.Onnx.OnnxTestNetworks;
using static ResNet.ML.Tests.Onnx.OnnxTestSupport;

namespace ResNet.ML.Tests.Onnx;

/// <summary>
/// ONNX Runtime's outputs for our exported model equal the engine's own inference forward within 1e-4 relative, for
/// every architecture family and both shortcut options, with and without BN folding, batch 1 and batch 3, after
/// train-mode forwards have moved the BN running statistics. The paper's sizes run at full width (ResNet-18/50 and
/// the plain ResNet-18 at 64x64, the CIFAR nets at 32x32); the deep ones (34, 101, 152, 110, 1202) keep every layer
/// but run at narrow widths so the suite stays fast.
/// </summary>
[TestClass]
public class OnnxParityTests
{
    [TestMethod]
    [DataRow("resnet18", 64, 3)]
    [DataRow("resnet50", 64, 3)]
    [DataRow("plain-resnet18", 64, 3)]
    [DataRow("resnet20", 32, 10)]
    [DataRow("resnet20-b", 32, 10)]
    [DataRow("plain-resnet20", 32, 10)]
    [DataRow("seed-resnet", 32, 10)]
    [DataRow("simplecnn", 28, 10, 1)]
    [DataRow("resnet34 widths=8,16,32,64 stem-width=8", 64, 2)]
    [DataRow("resnet101 widths=4,8,16,32 stem-width=4", 64, 2)]
    [DataRow("resnet152 widths=4,8,16,32 stem-width=4", 64, 2)]
    [DataRow("resnet50 widths=8,16,32,64 stem-width=8 shortcut=A", 64, 2)]
    [DataRow("plain-resnet50 widths=8,16,32,64 stem-width=8", 64, 2)]
    [DataRow("resnet110 widths=4,8,16 stem-width=4", 32, 10)]
    [DataRow("resnet1202 widths=2,4,8 stem-width=2", 32, 10)]
    public void Onnx_runtime_matches_the_engines_inference_forward(string architecture, int size, int classes, int channels = 3)
    {
        var net = ModelFactory.Build(architecture, channels, classes, size, size);
        Randomize(net, 1234);
        var meanBefore = FirstBn(net).RunningMean.Data.ToArray();
        int image = channels * size * size;
        for (int step = 0; step < 2; step++)
            net.Forward(new Tensor(RandomInput(4 * image, (ulong)(50 + step), scale: 1.3f, offset: 0.2f), 4, channels, size, size), training: true);
        CollectionAssert.AreNotEqual(meanBefore, FirstBn(net).RunningMean.Data, "train-mode forwards moved the BN running statistics");

        float[] x = RandomInput(3 * image, 77);
        float[] engineBatch = net.Forward(new Tensor(x, 3, channels, size, size), training: false).Data.ToArray();
        float[] engineSingle = net.Forward(new Tensor(x[..image], 1, channels, size, size), training: false).Data.ToArray();
        Assert.AreEqual(3 * classes, engineBatch.Length);
        float[] engineProbabilities = OnnxPredictor.Softmax(engineBatch, classes);

        foreach (bool fold in new[] { true, false })
        {
            var options = new OnnxExportOptions { InputHeight = size, InputWidth = size, FoldBatchNorm = fold };
            using var predictor = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, options), source: $"{architecture} (fold {fold})");
            var batch = predictor.Score(x);
            AssertClose(engineBatch, batch.Logits, classes, 1e-4, $"{architecture}, fold {fold}, batch 3: logits");
            AssertClose(engineProbabilities, batch.Probabilities, classes, 1e-4, $"{architecture}, fold {fold}, batch 3: probabilities");
            var single = predictor.Score(x.AsSpan(0, image));
            AssertClose(engineSingle, single.Logits, classes, 1e-4, $"{architecture}, fold {fold}, batch 1: logits");
        }
    }

    private static BatchNorm2d FirstBn(Network net) => net.AllLayers.OfType<BatchNorm2d>().First();
}
