using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.ML.MLNet.Tests;

/// <summary>
/// The raw-bytes path: a byte-vector column of encoded images (what LoadRawImageBytes makes), decoded and resized by
/// ResNet.ML's decoder. Trained on PNGs this test writes, scored on PNG and JPEG files PIL wrote (Fixtures/).
/// </summary>
[TestClass]
public sealed class EncodedImageTests
{
    private static MLContext s_ml = null!;
    private static IDataView s_train = null!;
    private static ITransformer s_model = null!;

    public sealed class Prediction
    {
        public string PredictedLabel = "";
        public float[] Score = [];
    }

    [ClassInitialize]
    public static void Train(TestContext _)
    {
        s_ml = new MLContext(seed: 3);
        // 16x16 PNGs, resized to the 12x12 input, through the catalog's options overload.
        s_train = s_ml.Data.LoadFromEnumerable(ColorImages.PngRows(180, seed: 3, height: 16, width: 16));
        var pipeline = s_ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(s_ml.MulticlassClassification.Trainers.ResNet(new ResNetTrainer.Options
            {
                Architecture = "resnet8",
                FeatureColumnName = "Image",
                ImageHeight = 12,
                ImageWidth = 12,
                Epochs = 3,
                BatchSize = 20,
                LearningRate = 0.05f,
                ValidationFraction = 0,
                Seed = 3,
            }));
        s_model = pipeline.Fit(s_train);
    }

    [TestMethod]
    [DataRow(".png")]
    [DataRow(".jpg")]
    public void Evaluate_OnPilWrittenFiles_ReachesNinetyPercent(string extension)
    {
        var rows = ColorImages.FixtureRows(extension);
        Assert.HasCount(12, rows);
        var metrics = s_ml.MulticlassClassification.Evaluate(s_model.Transform(s_ml.Data.LoadFromEnumerable(rows)));
        Assert.IsGreaterThanOrEqualTo(0.9, metrics.MicroAccuracy, $"{extension}: micro accuracy {metrics.MicroAccuracy:F3}");
    }

    [TestMethod]
    public void SaveLoadAndPredictionEngine_DecodeJpegBytesInTheLoadedModel()
    {
        using var stream = new MemoryStream();
        s_ml.Model.Save(s_model, s_train.Schema, stream);
        stream.Position = 0;
        var fresh = new MLContext();
        var loaded = fresh.Model.Load(stream, out _);

        var jpegs = fresh.Data.LoadFromEnumerable(ColorImages.FixtureRows(".jpg"));
        var before = s_ml.Data.CreateEnumerable<Prediction>(
            s_ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(s_model.Transform(jpegs)).Transform(s_model.Transform(jpegs)), false).ToList();
        var loadedText = new TransformerChain<ITransformer>(loaded, fresh.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(loaded.Transform(jpegs)));
        var after = fresh.Data.CreateEnumerable<Prediction>(loadedText.Transform(jpegs), false).ToList();
        for (int i = 0; i < before.Count; i++)
        {
            CollectionAssert.AreEqual(before[i].Score, after[i].Score, $"row {i}");
            Assert.AreEqual(before[i].PredictedLabel, after[i].PredictedLabel);
        }

        var engine = fresh.Model.CreatePredictionEngine<ColorImages.BytesRow, Prediction>(loadedText);
        var blue = ColorImages.FixtureRows(".jpg").First(r => r.Label == "blue");
        Assert.AreEqual("blue", engine.Predict(new ColorImages.BytesRow { Image = blue.Image }).PredictedLabel);
    }

    [TestMethod]
    public void UndecodableBytes_FailNamingTheImage()
    {
        var bad = s_ml.Data.LoadFromEnumerable([new ColorImages.BytesRow { Label = "red", Image = [1, 2, 3, 4] }]);
        var ex = Assert.Throws<Exception>(() => s_ml.Data.CreateEnumerable<Prediction>(
            s_ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(s_model.Transform(bad)).Transform(s_model.Transform(bad)), false).ToList());
        StringAssert.Contains(Flatten(ex), "not a PNG or JPEG");
    }

    private static string Flatten(Exception e) => e.InnerException is null ? e.Message : e.Message + " | " + Flatten(e.InnerException);
}
