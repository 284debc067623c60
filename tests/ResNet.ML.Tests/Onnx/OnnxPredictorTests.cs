using Microsoft.ML.OnnxRuntime;
using ResNet.ML.Layers;
using ResNet.ML.Onnx;
using static ResNet.ML.Tests.Onnx.OnnxTestNetworks;
using static ResNet.ML.Tests.Onnx.OnnxTestSupport;

namespace ResNet.ML.Tests.Onnx;

[TestClass]
public class OnnxPredictorTests
{
    private static readonly string[] Animals = ["cat", "dog", "bird", "fish", "frog"];

    private static byte[] SmallModel(out Network net)
    {
        net = Cifar(1, 4, 5, Shortcut.A);
        Randomize(net, 21);
        return OnnxExporter.ExportToBytes(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, ClassNames = Animals });
    }

    private static string TempFolder() => Directory.CreateTempSubdirectory("resnetml-predictor-").FullName;

    [TestMethod]
    public void Top_k_labels_come_from_the_metadata_best_first_and_agree_with_the_graphs_argmax()
    {
        // Images of different brightness and contrast; the fc bias is then centred on them so that a random network
        // does not give every image the same class.
        float[] batch = Enumerable.Range(0, 6).SelectMany(i => RandomInput(3 * 32 * 32, (ulong)(4 + i), scale: 0.5f + i, offset: 3f * (i - 3))).ToArray();
        SmallModel(out var net);
        using (var uncentred = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32 })))
        {
            var scores = uncentred.Score(batch);
            var fc = (Linear)net.Layers[^1];
            for (int c = 0; c < 5; c++) fc.Bias!.Value.Data[c] -= Enumerable.Range(0, 6).Average(i => scores.LogitsOf(i)[c]);
        }
        byte[] model = OnnxExporter.ExportToBytes(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, ClassNames = Animals });
        using var predictor = OnnxPredictor.FromBytes(model);
        CollectionAssert.AreEqual(Animals, predictor.ClassNames.ToArray());
        Assert.AreEqual((3, 32, 32), (predictor.Channels, predictor.Height, predictor.Width));
        var predictions = predictor.PredictBatch(batch, topK: 3);
        Assert.AreEqual(6, predictions.Count);

        // The graph's own ArgMax output, read straight from ONNX Runtime.
        using var session = new InferenceSession(model);
        using var input = OrtValue.CreateTensorValueFromMemory(batch, [6, 3, 32, 32]);
        using var outputs = session.Run(new RunOptions(), ["input"], [input], ["predicted_label"]);
        long[] labels = outputs[0].GetTensorDataAsSpan<long>().ToArray();
        Assert.IsTrue(labels.Distinct().Count() > 1, "the inputs reach more than one class, so the check below discriminates");

        for (int i = 0; i < 6; i++)
        {
            var p = predictions[i];
            Assert.AreEqual(3, p.TopK.Count);
            Assert.AreEqual((int)labels[i], p.Best.Index);
            Assert.AreEqual(Animals[p.Best.Index], p.Best.Label);
            Assert.IsTrue(p.TopK[0].Probability >= p.TopK[1].Probability && p.TopK[1].Probability >= p.TopK[2].Probability);
            Assert.AreEqual(p.Probabilities.Max(), p.Best.Probability);
            Assert.AreEqual(1.0, p.Probabilities.Sum(), 1e-5);
            // Single-image scoring gives the same as the batch.
            var single = predictor.Predict(batch.AsSpan(i * predictor.ImageLength, predictor.ImageLength), topK: 10);
            Assert.AreEqual(5, single.TopK.Count, "top-k is capped at the class count");
            AssertClose(p.Logits, single.Logits, 5, 1e-5, $"image {i} alone vs in the batch");
        }
        var list = predictor.PredictBatch([batch[..predictor.ImageLength], batch[predictor.ImageLength..(2 * predictor.ImageLength)]]);
        Assert.AreEqual(predictions[1].Best, list[1].Best);
    }

    [TestMethod]
    public void One_predictor_shared_by_threads_gives_each_the_sequential_result()
    {
        using var predictor = OnnxPredictor.FromBytes(SmallModel(out _));
        var images = Enumerable.Range(0, 16).Select(i => RandomInput(predictor.ImageLength, (ulong)(100 + i))).ToArray();
        var expected = images.Select(im => predictor.Predict(im).Logits).ToArray();
        var actual = new float[images.Length][];
        Parallel.For(0, images.Length * 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, j =>
        {
            int i = j % images.Length;
            float[] logits = predictor.Predict(images[i]).Logits;
            if (j >= images.Length * 3) actual[i] = logits;
            else CollectionAssert.AreEqual(expected[i], logits);
        });
        for (int i = 0; i < images.Length; i++) CollectionAssert.AreEqual(expected[i], actual[i]);
    }

    [TestMethod]
    public void A_file_that_is_not_an_onnx_model_fails_naming_the_file()
    {
        string folder = TempFolder();
        try
        {
            string path = Path.Combine(folder, "weights.bin");
            File.WriteAllText(path, "definitely not a protobuf model");
            var ex = Assert.ThrowsExactly<InvalidDataException>(() => OnnxPredictor.Load(path));
            StringAssert.Contains(ex.Message, path);
            StringAssert.Contains(ex.Message, "not an ONNX model");

            string missing = Path.Combine(folder, "missing.onnx");
            StringAssert.Contains(Assert.ThrowsExactly<FileNotFoundException>(() => OnnxPredictor.Load(missing)).Message, missing);
        }
        finally { Directory.Delete(folder, true); }
    }

    [TestMethod]
    public void A_model_whose_input_differs_from_the_expected_shape_fails_naming_the_file_and_both_shapes()
    {
        string folder = TempFolder();
        try
        {
            string path = Path.Combine(folder, "cifar.onnx");
            File.WriteAllBytes(path, SmallModel(out _));
            var ex = Assert.ThrowsExactly<InvalidDataException>(() => OnnxPredictor.Load(path, new OnnxPredictorOptions { ExpectedHeight = 64, ExpectedWidth = 64 }));
            StringAssert.Contains(ex.Message, path);
            StringAssert.Contains(ex.Message, "[batch, 3, 32, 32]");
            StringAssert.Contains(ex.Message, "64");
            ex = Assert.ThrowsExactly<InvalidDataException>(() => OnnxPredictor.Load(path, new OnnxPredictorOptions { ExpectedChannels = 1 }));
            StringAssert.Contains(ex.Message, path);
            using var ok = OnnxPredictor.Load(path, new OnnxPredictorOptions { ExpectedChannels = 3, ExpectedHeight = 32, ExpectedWidth = 32 });
            Assert.AreEqual(path, ok.Source.Trim('\''));

            var wrongLength = Assert.ThrowsExactly<ArgumentException>(() => ok.Predict(new float[100]));
            StringAssert.Contains(wrongLength.Message, "[3, 32, 32]");
            var wrongNames = Assert.ThrowsExactly<InvalidDataException>(() => OnnxPredictor.Load(path, new OnnxPredictorOptions { ClassNames = ["a", "b"] }));
            StringAssert.Contains(wrongNames.Message, "5 classes");
        }
        finally { Directory.Delete(folder, true); }
    }

    [TestMethod]
    public void Asking_for_the_gpu_without_a_cuda_provider_falls_back_to_cpu_with_a_warning_or_fails_when_told_to()
    {
        OnnxRuntimeNative.EnsureAvailable();
        if (OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider"))
            Assert.Inconclusive("This ONNX Runtime has the CUDA provider: the fallback cannot be observed here.");
        byte[] model = SmallModel(out _);
        var warnings = new List<string>();
        using (var gpu = OnnxPredictor.FromBytes(model, new OnnxPredictorOptions { UseGpu = true, Warning = warnings.Add, IntraOpThreads = 1 }))
        using (var cpu = OnnxPredictor.FromBytes(model))
        {
            Assert.AreEqual("CPUExecutionProvider", gpu.ExecutionProvider);
            Assert.AreEqual(1, warnings.Count);
            StringAssert.Contains(warnings[0], "CUDAExecutionProvider");
            StringAssert.Contains(warnings[0], "CPU");
            float[] x = RandomInput(gpu.ImageLength, 1);
            CollectionAssert.AreEqual(cpu.Predict(x).Logits, gpu.Predict(x).Logits);
        }
        var ex = Assert.ThrowsExactly<GpuUnavailableException>(() => OnnxPredictor.FromBytes(model, new OnnxPredictorOptions { UseGpu = true, AllowCpuFallback = false }));
        StringAssert.Contains(ex.Message, "CUDAExecutionProvider");
        StringAssert.Contains(ex.Message, nameof(OnnxPredictorOptions.AllowCpuFallback));
    }

    [TestMethod]
    public void Session_options_are_applied_and_do_not_change_the_scores()
    {
        byte[] model = SmallModel(out _);
        float[] x = RandomInput(2 * 3 * 32 * 32, 8);
        using var a = OnnxPredictor.FromBytes(model, new OnnxPredictorOptions { IntraOpThreads = 1, InterOpThreads = 1, OptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL });
        using var b = OnnxPredictor.FromBytes(model, new OnnxPredictorOptions { IntraOpThreads = 2, OptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, ExecutionMode = ExecutionMode.ORT_PARALLEL });
        AssertClose(a.Score(x).Logits, b.Score(x).Logits, 5, 1e-5, "unoptimized vs optimized graph");
        a.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => a.Score(x));
    }
}
