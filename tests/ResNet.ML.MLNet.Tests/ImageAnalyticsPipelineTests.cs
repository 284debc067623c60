using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace ResNet.ML.MLNet.Tests;

/// <summary>
/// The product's own pipeline against real ML.NET and its ImageAnalytics: files on disk → MapValueToKey("Label") →
/// LoadImages → ResizeImages → ExtractPixels → ResNetTrainer, then Transform, Evaluate, Model.Save/Load and
/// PredictionEngine. Also the MLImage column handed straight to the trainer (resized inside the fitted model), the
/// LoadRawImageBytes column, and the catalog entry. The images are PNG and JPEG files of five sizes the test writes.
/// </summary>
[TestClass]
public sealed class ImageAnalyticsPipelineTests
{
    private const int Side = 12;
    private static ImageFolderFiles s_files = null!;
    private static MLContext s_ml = null!;
    private static IDataView s_train = null!;
    private static IDataView s_test = null!;
    private static ITransformer s_pixelModel = null!;

    public sealed class Prediction
    {
        public string PredictedLabel = "";
        public float[] Score = [];
    }

    private static ResNetTrainer.Options Options(string features) => new()
    {
        Architecture = "resnet8",
        FeatureColumnName = features,
        Epochs = 3,
        BatchSize = 20,
        LearningRate = 0.05f,
        ValidationFraction = 0,
        Seed = 5,
    };

    [ClassInitialize]
    public static void Train(TestContext _)
    {
        s_files = new ImageFolderFiles(trainCount: 180, testCount: 60, seed: 5);
        s_ml = new MLContext(seed: 5);
        s_train = s_ml.Data.LoadFromEnumerable(s_files.Train);
        s_test = s_ml.Data.LoadFromEnumerable(s_files.Test);
        var pipeline = s_ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(s_ml.Transforms.LoadImages("Image", s_files.Folder, "ImagePath"))
            .Append(s_ml.Transforms.ResizeImages("Image", Side, Side))
            .Append(s_ml.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(new ResNetTrainer(s_ml, Options("Pixels")));
        s_pixelModel = pipeline.Fit(s_train);
    }

    [ClassCleanup]
    public static void Cleanup() => s_files?.Dispose();

    private static List<PixelPipelineTests.ScoredRow> Scores(MLContext ml, ITransformer model, IDataView data) =>
        ml.Data.CreateEnumerable<PixelPipelineTests.ScoredRow>(model.Transform(data), reuseRowObject: false).ToList();

    private static void AssertAccurate(ITransformer model, string what)
    {
        var metrics = s_ml.MulticlassClassification.Evaluate(model.Transform(s_test));
        Assert.IsGreaterThanOrEqualTo(0.9, metrics.MicroAccuracy, $"{what}: micro accuracy {metrics.MicroAccuracy:F3}, log-loss {metrics.LogLoss:F3}");
        Assert.IsLessThan(0.5, metrics.LogLoss, $"{what}: log-loss {metrics.LogLoss:F3}");
    }

    private static void AssertSaveLoadKeepsScores(ITransformer model, string what)
    {
        using var stream = new MemoryStream();
        s_ml.Model.Save(model, s_train.Schema, stream);
        stream.Position = 0;
        var fresh = new MLContext();
        var loaded = fresh.Model.Load(stream, out var inputSchema);
        Assert.IsNotNull(inputSchema.GetColumnOrNull("ImagePath"), what);
        var before = Scores(s_ml, model, s_test);
        var after = Scores(fresh, loaded, s_test);
        Assert.HasCount(before.Count, after);
        for (int i = 0; i < before.Count; i++)
        {
            CollectionAssert.AreEqual(before[i].Score, after[i].Score, $"{what}, row {i}");
            Assert.AreEqual(before[i].PredictedLabel, after[i].PredictedLabel);
        }
    }

    [TestMethod]
    public void LoadImages_ResizeImages_ExtractPixels_ResNetTrainer_TrainsAnAccurateModel()
    {
        AssertAccurate(s_pixelModel, "ExtractPixels pipeline");
        var score = (VectorDataViewType)s_pixelModel.Transform(s_test).Schema["Score"].Type;
        Assert.AreEqual(3, score.Size);
    }

    [TestMethod]
    public void LoadImages_pipeline_SaveAndLoad_GiveIdenticalScores() => AssertSaveLoadKeepsScores(s_pixelModel, "ExtractPixels pipeline");

    [TestMethod]
    public void LoadImages_pipeline_PredictionEngine_NamesTheClassOfAFileOnDisk()
    {
        var model = s_pixelModel.Append(s_ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(s_pixelModel.Transform(s_train)));
        var engine = s_ml.Model.CreatePredictionEngine<ImageFolderFiles.Row, Prediction>(model);
        int right = 0;
        foreach (var row in s_files.Test)
        {
            var prediction = engine.Predict(new ImageFolderFiles.Row { ImagePath = row.ImagePath });
            Assert.HasCount(3, prediction.Score);
            Assert.AreEqual(1.0, prediction.Score.Sum(), 1e-4);
            if (prediction.PredictedLabel == row.Label) right++;
        }
        Assert.IsGreaterThanOrEqualTo(0.9 * s_files.Test.Count, right, $"{right} of {s_files.Test.Count} files predicted right");
    }

    [TestMethod]
    public void MLImage_column_straight_to_the_trainer_is_resized_inside_the_fitted_model()
    {
        var options = Options("Image");
        options.ImageSize = Side;   // MLImage and encoded-bytes columns are brought to this size
        var model = s_ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(s_ml.Transforms.LoadImages("Image", s_files.Folder, "ImagePath"))
            .Append(new ResNetTrainer(s_ml, options))
            .Fit(s_train);
        AssertAccurate(model, "MLImage column");
        AssertSaveLoadKeepsScores(model, "MLImage column");
    }

    [TestMethod]
    public void LoadRawImageBytes_through_the_catalog_trains_and_round_trips()
    {
        var options = Options("Image");
        options.ImageSize = Side;   // MLImage and encoded-bytes columns are brought to this size
        var model = s_ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(s_ml.Transforms.LoadRawImageBytes("Image", s_files.Folder, "ImagePath"))
            .Append(s_ml.MulticlassClassification.Trainers.ResNet(options))
            .Fit(s_train);
        AssertAccurate(model, "LoadRawImageBytes column");
        AssertSaveLoadKeepsScores(model, "LoadRawImageBytes column");
    }

    [TestMethod]
    public void Images_with_another_channel_count_are_refused_naming_the_column()
    {
        var argb = s_ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(s_ml.Transforms.LoadImages("Image", s_files.Folder, "ImagePath"))
            .Append(s_ml.Transforms.ResizeImages("Image", Side, Side))
            .Append(s_ml.Transforms.ExtractPixels("Pixels", "Image", colorsToExtract: ImagePixelExtractingEstimator.ColorBits.All))
            .Fit(s_train).Transform(s_train);
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ResNetTrainer(s_ml, Options("Pixels")).Fit(argb));
        StringAssert.Contains(ex.Message, "'Pixels'");
        StringAssert.Contains(ex.Message, "[4, 12, 12]");
        StringAssert.Contains(ex.Message, "1 (grayscale) or 3 (RGB) channels");
    }

    [TestMethod]
    public void A_missing_image_file_is_named_when_the_pipeline_reads_it()
    {
        var rows = s_files.Train.Take(6).Append(new ImageFolderFiles.Row { Label = "red", ImagePath = "no-such-file.png" }).ToList();
        var data = s_ml.Data.LoadFromEnumerable(rows);
        var pipeline = s_ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(s_ml.Transforms.LoadRawImageBytes("Image", s_files.Folder, "ImagePath"));
        var options = Options("Image");
        options.ImageSize = Side;   // MLImage and encoded-bytes columns are brought to this size
        var ex = Assert.Throws<Exception>(() => pipeline.Append(new ResNetTrainer(s_ml, options)).Fit(data));
        StringAssert.Contains(Flatten(ex), "no-such-file.png");
    }

    private static string Flatten(Exception e) => e.InnerException is null ? e.Message : e.Message + " | " + Flatten(e.InnerException);
}
