using ResNet.ML.Data;
using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Onnx;
using ResNet.ML.Tensors;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Training;

/// <summary>Fine-tuning dnn-resnet18 (the test project references its NuGet package) on tiny synthetic data at 32x32.</summary>
[TestClass]
public sealed class PretrainedTrainingTests
{
    /// <summary>RGB 32x32 images: class 0 has a reddish blob, class 1 a bluish one, at seeded places, over noise.</summary>
    private static InMemoryImageDataset Blobs(int perClass, int seed, int channels = 3)
    {
        const int size = 32;
        var rng = new Rng((ulong)seed);
        int n = 2 * perClass, sample = channels * size * size;
        var pixels = new float[n * sample];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            int label = labels[i] = i % 2;
            int cx = 8 + (int)(rng.NextDouble() * 16), cy = 8 + (int)(rng.NextDouble() * 16);
            for (int c = 0; c < channels; c++)
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                    {
                        bool inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < 36;
                        // Grayscale: class 0 bright, class 1 dark; RGB: red against blue.
                        float v = !inside ? 110 : channels == 1 ? (label == 0 ? 230 : 20) : (c == 0) == (label == 0) ? 230 : 30;
                        pixels[i * sample + (c * size + y) * size + x] = Math.Clamp(v + (float)(rng.NextGaussian() * 20), 0f, 255f);
                    }
        }
        return ImageDataset.FromFloats(pixels, labels, channels, size, size, ["red", "blue"], "blobs");
    }

    private static ResNetTrainerOptions Options(int epochs, int frozen) => new()
    {
        Pretrained = PretrainedBackbone.DnnResNet18,
        Epochs = epochs,
        FreezeBackboneEpochs = frozen,
        BatchSize = 8,
        LearningRate = 0.05f,
        Schedule = ScheduleKind.Constant,
        ValidationFraction = 0,
        Seed = 3,
        Threads = 2,
    };

    private static Dictionary<string, float[]> Backbone(Network network) =>
        network.State.Where(e => !e.Name.StartsWith("fc.", StringComparison.Ordinal) && !e.Counter).ToDictionary(e => e.Name, e => e.Value!.Data.ToArray());

    [TestMethod]
    public void FrozenEpochs_TrainTheHeadOnly_WithBatchNormOnItsPretrainedStatistics()
    {
        var data = Blobs(perClass: 12, seed: 1);
        var model = new ImageClassifierTrainer(Options(epochs: 3, frozen: 3)).Fit(data);

        var imported = Backbone(PretrainedBackbone.Load(PretrainedBackbone.DnnResNet18).Build(3, 2, 32, 32));
        var trained = Backbone(model.Network);
        CollectionAssert.AreEquivalent(imported.Keys, trained.Keys);
        // Weights and BN running statistics are the imported ones, bit for bit: nothing moved them while frozen.
        foreach (var (name, values) in imported) CollectionAssert.AreEqual(values, trained[name], $"{name} changed while frozen");
        Assert.IsTrue(model.Network.AllLayers.OfType<BatchNorm2d>().All(b => b.NumBatchesTracked == 0 && !b.UseRunningStatistics));

        Assert.AreEqual(PretrainedBackbone.ArchitectureOf(PretrainedBackbone.DnnResNet18), model.Architecture);
        Assert.AreEqual(PretrainedBackbone.Load(PretrainedBackbone.DnnResNet18).Normalization(3), model.Normalization);
        // ImageNet features tell red blobs from blue ones once the head has learnt them.
        Assert.IsGreaterThanOrEqualTo(0.9, model.Evaluate(Blobs(perClass: 20, seed: 2)).Top1Accuracy);
        Assert.IsLessThan(model.History[0].TrainLoss, model.History[^1].TrainLoss);
    }

    [TestMethod]
    public void AfterTheFrozenEpochs_TheWholeNetworkFineTunesAtTheLowerRate_AndExportsForOnnxRuntime()
    {
        var data = Blobs(perClass: 8, seed: 4);
        var options = Options(epochs: 2, frozen: 1);
        var model = new ImageClassifierTrainer(options).Fit(data);

        Assert.AreEqual(options.ResolvedLearningRate, model.History[0].LearningRate, 1e-7);
        Assert.AreEqual(options.ResolvedLearningRate * 0.1, model.History[1].LearningRate, 1e-7, "fine-tuning runs at a tenth of the rate by default");
        var imported = Backbone(PretrainedBackbone.Load(PretrainedBackbone.DnnResNet18).Build(3, 2, 32, 32));
        var trained = Backbone(model.Network);
        Assert.IsFalse(imported["layer1.0.conv1.weight"].SequenceEqual(trained["layer1.0.conv1.weight"]), "the backbone did not train after unfreezing");
        Assert.IsFalse(imported["bn1.running_mean"].SequenceEqual(trained["bn1.running_mean"]), "BN statistics did not update after unfreezing");

        // The exported graph holds the preprocessing: ONNX Runtime scores raw 0-255 RGB as our engine does.
        OnnxRuntimeNative.EnsureAvailable();
        using var stream = new MemoryStream();
        model.ExportOnnx(stream);
        using var predictor = OnnxPredictor.FromBytes(stream.ToArray());
        var test = Blobs(perClass: 2, seed: 9);
        var raw = new float[test.Count * test.SampleSize];
        for (int i = 0; i < test.Count; i++) test.ReadPixels(i, raw.AsSpan(i * test.SampleSize, test.SampleSize));
        var ours = model.PredictProbabilities(raw);
        var theirs = predictor.Score(raw).Probabilities;
        for (int i = 0; i < ours.Length; i++) Assert.AreEqual(ours[i], theirs[i], 1e-4, $"probability {i}");
    }

    [TestMethod]
    public void GrayscaleImages_FineTuneThroughTheSummedStem_AndBadOptionsAreNamed()
    {
        var model = new ImageClassifierTrainer(Options(epochs: 1, frozen: 1)).Fit(Blobs(perClass: 6, seed: 5, channels: 1));
        Assert.AreEqual(1, model.Channels);
        Assert.HasCount(1, model.Normalization.Mean);
        Assert.IsTrue(double.IsFinite(model.History[0].TrainLoss));

        var small = ImageDataset.FromFloats(new float[4 * 3 * 28 * 28], [0, 1, 0, 1], 3, 28, 28, ["a", "b"]);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new ImageClassifierTrainer(Options(1, 0)).Fit(small)).Message, "at least 32x32");
        var unknown = Options(1, 0);
        unknown.Pretrained = "imagenet-resnet50";
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new ImageClassifierTrainer(unknown)).Message, "dnn-resnet18");
        var both = Options(1, 0);
        both.Architecture = "resnet50";
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new ImageClassifierTrainer(both)).Message, "Architecture");
    }
}
