using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.ML.MLNet.Tests;

/// <summary>
/// The canonical pipeline on pixel vectors: LoadFromEnumerable → MapValueToKey → ResNetTrainer, then ML.NET's own
/// Evaluate, Model.Save/Load, MapKeyToValue and PredictionEngine on the fitted model. One model is trained for the class.
/// </summary>
[TestClass]
public sealed class PixelPipelineTests
{
    private static MLContext s_ml = null!;
    private static IDataView s_train = null!;
    private static IDataView s_test = null!;
    private static ITransformer s_model = null!;
    private static readonly List<string> s_progress = [];

    public sealed class Prediction
    {
        public string PredictedLabel = "";
        public float[] Score = [];
    }

    [ClassInitialize]
    public static void Train(TestContext _)
    {
        s_ml = new MLContext(seed: 1);
        s_train = s_ml.Data.LoadFromEnumerable(ColorImages.PixelRows(240, seed: 1));
        s_test = s_ml.Data.LoadFromEnumerable(ColorImages.PixelRows(90, seed: 2));
        var pipeline = s_ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(new ResNetTrainer(s_ml, new ResNetTrainer.Options
            {
                Architecture = "resnet8",
                FeatureColumnName = "Pixels",
                Epochs = 3,
                BatchSize = 24,
                LearningRate = 0.05f,
                ValidationFraction = 0,
                Seed = 1,
                Progress = new SyncProgress<ResNet.ML.Training.TrainingProgress>(p => s_progress.Add($"{p.Phase} {p.EpochNumber}/{p.TotalEpochs}")),
            }));
        s_model = pipeline.Fit(s_train);
    }

    [TestMethod]
    public void Evaluate_ReachesNinetyFivePercentOnHeldOutImages()
    {
        var metrics = s_ml.MulticlassClassification.Evaluate(s_model.Transform(s_test));
        Assert.IsGreaterThanOrEqualTo(0.95, metrics.MicroAccuracy, $"micro accuracy {metrics.MicroAccuracy:F3}, log-loss {metrics.LogLoss:F3}");
        Assert.IsGreaterThanOrEqualTo(0.95, metrics.MacroAccuracy);
    }

    [TestMethod]
    public void Outputs_AreScoreProbabilitiesAndPredictedLabelKeyWithTheLabelsKeyValues()
    {
        var scored = s_model.Transform(s_test);
        var score = scored.Schema["Score"];
        Assert.AreEqual(NumberDataViewType.Single, ((VectorDataViewType)score.Type).ItemType);
        Assert.AreEqual(3, ((VectorDataViewType)score.Type).Size);
        VBuffer<ReadOnlyMemory<char>> slots = default;
        score.GetSlotNames(ref slots);
        CollectionAssert.AreEqual(ColorImages.Classes, slots.DenseValues().Select(s => s.ToString()).ToArray());

        var predicted = scored.Schema["PredictedLabel"];
        var label = scored.Schema["Label"];
        Assert.AreEqual(label.Type, predicted.Type, "PredictedLabel has the label's key type");
        VBuffer<ReadOnlyMemory<char>> labelValues = default, predictedValues = default;
        label.GetKeyValues(ref labelValues);
        predicted.GetKeyValues(ref predictedValues);
        CollectionAssert.AreEqual(labelValues.DenseValues().Select(v => v.ToString()).ToArray(),
            predictedValues.DenseValues().Select(v => v.ToString()).ToArray());

        foreach (var row in s_ml.Data.CreateEnumerable<ScoredRow>(scored, reuseRowObject: false))
        {
            Assert.AreEqual(1.0, row.Score.Sum(), 1e-4, "Score holds probabilities");
            Assert.AreEqual((uint)(Array.IndexOf(row.Score, row.Score.Max()) + 1), row.PredictedLabel, "PredictedLabel is the most probable class");
        }
        Assert.IsTrue(s_progress.Any(p => p.StartsWith("EpochEnd 3/3", StringComparison.Ordinal)), string.Join("; ", s_progress.Take(5)));
    }

    [TestMethod]
    public void SaveAndLoad_InAFreshContext_GiveIdenticalScores()
    {
        using var stream = new MemoryStream();
        s_ml.Model.Save(s_model, s_train.Schema, stream);
        stream.Position = 0;
        var fresh = new MLContext();
        var loaded = fresh.Model.Load(stream, out var inputSchema);
        Assert.IsNotNull(inputSchema.GetColumnOrNull("Pixels"));

        var before = s_ml.Data.CreateEnumerable<ScoredRow>(s_model.Transform(s_test), reuseRowObject: false).ToList();
        var after = fresh.Data.CreateEnumerable<ScoredRow>(loaded.Transform(s_test), reuseRowObject: false).ToList();
        Assert.HasCount(before.Count, after);
        for (int i = 0; i < before.Count; i++)
        {
            CollectionAssert.AreEqual(before[i].Score, after[i].Score, $"row {i}");
            Assert.AreEqual(before[i].PredictedLabel, after[i].PredictedLabel);
        }
    }

    [TestMethod]
    public void PredictionEngine_WithMapKeyToValue_NamesTheClass()
    {
        var toText = s_ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(s_model.Transform(s_train));
        var model = new TransformerChain<ITransformer>(s_model, toText);
        var engine = s_ml.Model.CreatePredictionEngine<ColorImages.PixelRow, Prediction>(model);
        var rng = new Random(7);
        for (int cls = 0; cls < 3; cls++)
        {
            var prediction = engine.Predict(new ColorImages.PixelRow { Pixels = ColorImages.Chw(rng, cls, 12, 12) });
            Assert.AreEqual(ColorImages.Classes[cls], prediction.PredictedLabel);
            Assert.HasCount(3, prediction.Score);
            Assert.AreEqual(cls, Array.IndexOf(prediction.Score, prediction.Score.Max()));
        }
    }

    [TestMethod]
    public void Cancellation_DuringTraining_StopsAfterTheCurrentStep()
    {
        using var cts = new CancellationTokenSource();
        int steps = 0;
        var trainer = new ResNetTrainer(s_ml, new ResNetTrainer.Options
        {
            Architecture = "resnet8", FeatureColumnName = "Pixels", Epochs = 5, BatchSize = 8, ValidationFraction = 0,
            Progress = new SyncProgress<ResNet.ML.Training.TrainingProgress>(p =>
            {
                if (p.Phase != ResNet.ML.Training.TrainingPhase.Step) return;
                steps++;
                if (steps == 2) cts.Cancel();
            }),
            CancellationToken = cts.Token,
        });
        var data = s_ml.Transforms.Conversion.MapValueToKey("Label").Fit(s_train).Transform(s_train);
        Assert.ThrowsExactly<ResNet.ML.Training.TrainingCanceledException>(() => trainer.Fit(data));
        Assert.AreEqual(2, steps, "no step runs after the one during which cancellation was requested");
    }

    public sealed class ScoredRow
    {
        public float[] Score = [];

        [KeyType(3)]
        public uint PredictedLabel;
    }

    /// <summary>Reports on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
