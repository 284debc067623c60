using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using ResNet.ML.MLNet.Scoring;
using ResNet.ML.Training;

namespace ResNet.ML.MLNet.Tests;

/// <summary>The scoring options reach ML.NET's ApplyOnnxModel: a GPU id is tried, and the CPU fallback decides what happens without one.</summary>
[TestClass]
public sealed class ScoringOptionsTests
{
    private static ITransformer Fit(MLContext ml, IDataView data, int? gpu, bool fallback, bool testTimeFlip = false) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(new ResNetTrainer(ml, new ResNetTrainer.Options
            {
                Architecture = "resnet8", FeatureColumnName = "Pixels", Epochs = 1, BatchSize = 10, ValidationFraction = 0,
                GpuDeviceId = gpu, FallbackToCpu = fallback, TestTimeFlip = testTimeFlip, Threads = 1,
            }))
            .Fit(data);

    [TestMethod]
    public void GpuDeviceId_IsPassedToApplyOnnxModel_WithItsCpuFallback()
    {
        var ml = new MLContext(seed: 5);
        var data = ml.Data.LoadFromEnumerable(ColorImages.PixelRows(30, seed: 5));
        bool cuda = OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider");

        var withFallback = Fit(ml, data, gpu: 0, fallback: true);
        var metrics = ml.MulticlassClassification.Evaluate(withFallback.Transform(data));
        Assert.IsGreaterThan(0.0, metrics.MicroAccuracy + 1e-9, "the model scores (on the GPU, or on the CPU after falling back)");

        if (!cuda)
        {
            // Without a CUDA provider, asking for GPU 0 with no fallback is refused, naming the option.
            var ex = Assert.ThrowsExactly<InvalidOperationException>(() => Fit(ml, data, gpu: 0, fallback: false));
            StringAssert.Contains(ex.Message, "GpuDeviceId");
            StringAssert.Contains(ex.Message, "CUDA");
        }
    }

    private static readonly string[] CpuOnly = ["CPUExecutionProvider"];
    private static readonly string[] WithCuda = ["CUDAExecutionProvider", "CPUExecutionProvider"];

    [TestMethod]
    public void WithTheCudaOnnxRuntimeLoaded_TheFittedModelAsksForGpu0WithFallback_UnlessToldOtherwise()
    {
        // Nothing set: the CUDA package's provider is taken (GPU 0, CPU fallback); the CPU package's absence of it is not an error.
        Assert.AreEqual((0, true), ScoringDevice.Resolve(null, false, null, false, TrainingDevice.Auto, WithCuda));
        Assert.AreEqual((0, true), ScoringDevice.Resolve(null, false, null, false, TrainingDevice.Cuda, WithCuda));
        Assert.AreEqual(((int?)null, false), ScoringDevice.Resolve(null, false, null, false, TrainingDevice.Auto, CpuOnly));
        // Device = Cpu keeps scoring on the CPU too.
        Assert.AreEqual(((int?)null, false), ScoringDevice.Resolve(null, false, null, false, TrainingDevice.Cpu, WithCuda));
        // ML.NET's context-wide setting comes before the automatic choice, the option before both.
        Assert.AreEqual((1, false), ScoringDevice.Resolve(null, false, 1, false, TrainingDevice.Cpu, WithCuda));
        Assert.AreEqual((2, true), ScoringDevice.Resolve(2, true, 1, false, TrainingDevice.Auto, WithCuda));
        // Asked for without CUDA: dropped with a fallback, refused naming the setting without one.
        Assert.AreEqual(((int?)null, false), ScoringDevice.Resolve(null, false, 1, true, TrainingDevice.Auto, CpuOnly));
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ScoringDevice.Resolve(null, false, 1, false, TrainingDevice.Auto, CpuOnly));
        StringAssert.Contains(ex.Message, "MLContext.GpuDeviceId");
        StringAssert.Contains(ex.Message, "CPUExecutionProvider");
    }

    [TestMethod]
    public void MLContextGpuDeviceId_IsHonoured_ByTheFittedModel()
    {
        if (OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider"))
            Assert.Inconclusive("This test checks the refusal that only an ONNX Runtime without CUDA gives.");
        // The context's GPU reaches the scorer: without CUDA and without the context's fallback, Fit refuses, naming it.
        var ml = new MLContext(seed: 5) { GpuDeviceId = 0, FallbackToCpu = false };
        var data = ml.Data.LoadFromEnumerable(ColorImages.PixelRows(30, seed: 5));
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => Fit(ml, data, gpu: null, fallback: false));
        StringAssert.Contains(ex.Message, "MLContext.GpuDeviceId");
        ml.FallbackToCpu = true;
        var model = Fit(ml, data, gpu: null, fallback: false);
        Assert.IsNotNull(model.Transform(data).Schema.GetColumnOrNull("Score"));
    }

    [TestMethod]
    public void OptionsFromRecipe_CarryTheRecipesTrainingSettings_AndItsTestTimeFlips()
    {
        var fast = ResNetTrainer.Options.FromRecipe("fast");
        Assert.AreEqual((8, 128, 0.2f, true), (fast.Epochs, fast.BatchSize, fast.LearningRate, fast.Nesterov));
        Assert.IsTrue(fast.TestTimeFlip, "the fast recipe scores with flips inside the fitted model's graph");
        var quick = ResNetTrainer.Options.FromRecipe("quick");
        Assert.AreEqual((4, 64), (quick.Epochs, quick.BatchSize));
        Assert.IsFalse(quick.TestTimeFlip);
        Assert.ThrowsExactly<ArgumentException>(() => ResNetTrainer.Options.FromRecipe("slow"));
    }

    private sealed class Scored
    {
        public float[] Score = [];
    }

    [TestMethod]
    public void TestTimeFlip_ScoresEachImageAsTheMeanOfItsAndItsMirrorImagesLogits()
    {
        var rows = ColorImages.PixelRows(30, seed: 8);
        var mirrored = rows.Select(r => new ColorImages.PixelRow { Label = r.Label, Pixels = Mirror(r.Pixels, 3, 12, 12) }).ToList();
        // The same seed and one thread train the same weights twice; only the exported graph differs.
        var plain = Fit(new MLContext(seed: 3), new MLContext().Data.LoadFromEnumerable(rows), gpu: null, fallback: false);
        var tta = Fit(new MLContext(seed: 3), new MLContext().Data.LoadFromEnumerable(rows), gpu: null, fallback: false, testTimeFlip: true);
        var ml = new MLContext();
        float[][] Scores(ITransformer model, List<ColorImages.PixelRow> data) =>
            ml.Data.CreateEnumerable<Scored>(model.Transform(ml.Data.LoadFromEnumerable(data)), reuseRowObject: false).Select(s => s.Score).ToArray();
        var a = Scores(plain, rows);
        var b = Scores(plain, mirrored);
        var t = Scores(tta, rows);
        bool differs = false;
        for (int i = 0; i < rows.Count; i++)
        {
            // softmax((la + lb) / 2) is proportional to sqrt(pa * pb): the mean of the logits, in probabilities.
            var expected = a[i].Zip(b[i], (p, q) => Math.Sqrt((double)p * q)).ToArray();
            double sum = expected.Sum();
            for (int k = 0; k < expected.Length; k++)
                Assert.AreEqual(expected[k] / sum, t[i][k], 1e-4, $"row {i}, class {k}");
            differs |= a[i].Zip(b[i]).Any(p => Math.Abs(p.First - p.Second) > 1e-2);
        }
        Assert.IsTrue(differs, "an image and its mirror image must score differently somewhere, or the test proves nothing");
    }

    private static float[] Mirror(float[] chw, int channels, int height, int width)
    {
        var m = new float[chw.Length];
        for (int row = 0; row < channels * height; row++)
            for (int x = 0; x < width; x++) m[row * width + x] = chw[row * width + width - 1 - x];
        return m;
    }
}
