using ResNet.ML.Models;
using ResNet.ML.Onnx;
using static ResNet.ML.Tests.Onnx.OnnxTestNetworks;
using static ResNet.ML.Tests.Onnx.OnnxTestSupport;

namespace ResNet.ML.Tests.Onnx;

/// <summary>
/// Our export of PyTorch's weights against PyTorch itself: its eval-mode logits, and its own ONNX export
/// (torch.onnx.export by Debian's torch 1.13, opset 17) scored by ONNX Runtime. Fixtures: tools/fixtures/make_onnx_fixtures.py.
/// </summary>
[TestClass]
public class OnnxPyTorchFixtureTests
{
    [TestMethod]
    [DataRow("cifar_resnet20_w8_optionA", 8, Shortcut.A)]
    [DataRow("cifar_resnet20_w4_optionB", 4, Shortcut.B)]
    public void Our_export_of_PyTorch_weights_gives_PyTorchs_outputs_and_agrees_with_PyTorchs_own_onnx(string name, int width, Shortcut shortcut)
    {
        var net = Cifar(3, width, 10, shortcut);
        LoadState(net, Fixture(name + ".safetensors"));
        float[] input, torchLogits;
        using (var io = File.OpenRead(Fixture(name + ".io.safetensors")))
        {
            var tensors = Safetensors.Read(io, name + ".io.safetensors").Tensors.ToDictionary(t => t.Name);
            input = tensors["input"].ToFloats();
            torchLogits = tensors["logits"].ToFloats();
            CollectionAssert.AreEqual(new long[] { 4, 3, 32, 32 }, tensors["input"].Shape);
        }

        // The engine agrees with PyTorch on these weights too, so all three (PyTorch, engine, ONNX Runtime) see one model.
        float[] engine = net.Forward(new ResNet.ML.Tensors.Tensor(input, 4, 3, 32, 32), training: false).Data.ToArray();
        AssertClose(torchLogits, engine, 10, 1e-4, "engine vs PyTorch");

        using var theirs = OnnxPredictor.Load(Fixture(name + ".torch.onnx"));
        Assert.AreEqual(10, theirs.NumClasses);
        var theirScores = theirs.Score(input);
        AssertClose(torchLogits, theirScores.Logits, 10, 1e-4, "PyTorch's ONNX export vs PyTorch");

        foreach (bool fold in new[] { true, false })
        {
            using var ours = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, FoldBatchNorm = fold }));
            var batch = ours.Score(input);
            AssertClose(torchLogits, batch.Logits, 10, 1e-4, $"our export (fold {fold}) vs PyTorch");
            AssertClose(theirScores.Logits, batch.Logits, 10, 1e-4, $"our export (fold {fold}) vs PyTorch's ONNX export");
            // The softmax in our graph equals the one the predictor computes for PyTorch's logits-only model.
            AssertClose(theirScores.Probabilities, batch.Probabilities, 10, 1e-4, $"probabilities (fold {fold})");
            var single = ours.Score(input.AsSpan(3 * 32 * 32, 3 * 32 * 32));   // image 1 alone: batch 1
            AssertClose(torchLogits.AsSpan(10, 10), single.Logits, 10, 1e-4, $"batch of one (fold {fold})");
        }
        // The fixture discriminates: the four images do not all get the same class.
        Assert.IsTrue(Enumerable.Range(0, 4).Select(i => Array.IndexOf(torchLogits, torchLogits.AsSpan(i * 10, 10).ToArray().Max())).Distinct().Count() > 1
                      || torchLogits.Distinct().Count() > 30);
    }
}
