using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.ML.MLNet.Tests;

/// <summary>Issue 15, case 7 through ML.NET: two pipelines fitted at once in one process score as each fitted alone.</summary>
[TestClass]
public sealed class ConcurrencyTests
{
    private static float[][] FitAndScore(int seed)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(ColorImages.PixelRows(96, seed: 1));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(new ResNetTrainer(ml, new ResNetTrainer.Options
        {
            Architecture = "resnet8 widths=4,8,16 stem-width=4", FeatureColumnName = "Pixels", Epochs = 2, BatchSize = 16,
            LearningRate = 0.05f, ValidationFraction = 0, Seed = seed, Threads = 2,
        }));
        var scored = pipeline.Fit(train).Transform(train);
        return scored.GetColumn<float[]>("Score").ToArray();
    }

    [TestMethod]
    public void TwoPipelinesFittedAtOnce_ScoreAsEachFittedAlone()
    {
        var alone = new[] { 1, 2 }.Select(FitAndScore).ToArray();
        using var start = new Barrier(2);
        var together = new[] { 1, 2 }.Select(seed => Task.Factory.StartNew(() => { start.SignalAndWait(); return FitAndScore(seed); },
            TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(together);
        for (int i = 0; i < 2; i++)
        {
            Assert.HasCount(alone[i].Length, together[i].Result);
            for (int r = 0; r < alone[i].Length; r++)
                CollectionAssert.AreEqual(alone[i][r], together[i].Result[r], $"pipeline {i + 1}, row {r}: scores differ when fitted beside the other");
        }
    }
}
