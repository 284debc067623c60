using ResNet.ML.Onnx;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Reliability;

/// <summary>Issue 15, case 7: two users of the engine in one process do not disturb each other.</summary>
[TestClass]
public sealed class ConcurrencyTests
{
    private static ResNetTrainerOptions Options(int seed)
    {
        var o = TinyOptions();
        o.Seed = seed;
        o.Epochs = 3;
        o.Threads = 2;
        return o;
    }

    [TestMethod]
    public void TwoTrainingsAtOnce_EachGetTheWeightsTheyGetAlone()
    {
        var data = Bars(perClass: 16);
        var alone = new[] { 1, 2 }.Select(seed => Weights(new ImageClassifierTrainer(Options(seed)).Fit(data).Network)).ToArray();

        // While one training holds the engine's worker pool, the other runs its parallel regions inline on its own
        // thread: both must still compute exactly what they compute alone.
        using var start = new Barrier(2);
        var together = new[] { 1, 2 }.Select(seed => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            return Weights(new ImageClassifierTrainer(Options(seed)).Fit(data).Network);
        }, TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(together);
        for (int i = 0; i < 2; i++)
            CollectionAssert.AreEqual(alone[i], together[i].Result, $"training {i + 1} differs when run beside the other");
    }

    [TestMethod]
    public void OnePredictor_ScoresTheSameFromSeveralThreads()
    {
        var model = TrainedModel.CreateInitialized(TinyArchitecture, 1, ["a", "b", "c"], 8, 8, seed: 3);
        using var predictor = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(model.Network, model.OnnxOptions()));
        var images = Enumerable.Range(0, 32).Select(i => Enumerable.Range(0, 64).Select(p => (float)((p * (i + 3)) % 256)).ToArray()).ToArray();
        var expected = images.Select(im => predictor.Score(im).Logits).ToArray();
        var actual = new float[images.Length][];
        Parallel.For(0, images.Length * 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, j =>
        {
            var logits = predictor.Score(images[j % images.Length]).Logits;
            if (j >= images.Length * 7) actual[j % images.Length] = logits;
            CollectionAssert.AreEqual(expected[j % images.Length], logits, $"image {j % images.Length}");
        });
        Assert.IsTrue(actual.All(a => a is not null));
    }
}
