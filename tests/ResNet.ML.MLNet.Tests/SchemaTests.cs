using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.ML.MLNet.Tests;

/// <summary>Column checks, in GetOutputSchema (as ML.NET calls it) and in Fit, with ML.NET's schema-mismatch error.</summary>
[TestClass]
public sealed class SchemaTests
{
    private readonly MLContext _ml = new(seed: 0);

    public sealed class StringFeatures
    {
        public string Label = "";
        public string Pixels = "";
    }

    public sealed class VariablePixels
    {
        public string Label = "";
        public float[] Pixels = [];
    }

    private ResNetTrainer Trainer(string features = "Pixels") =>
        new(_ml, new ResNetTrainer.Options { FeatureColumnName = features, Architecture = "resnet8", Epochs = 1 });

    // ML.NET builds SchemaShapes from schemas internally (SchemaShape.Create is not public).
    private static SchemaShape Shape(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.NonPublic, [typeof(DataViewSchema)])!.Invoke(null, [schema])!;

    private IDataView Keyed<T>(IEnumerable<T> rows) where T : class =>
        _ml.Transforms.Conversion.MapValueToKey("Label").Fit(_ml.Data.LoadFromEnumerable(rows)).Transform(_ml.Data.LoadFromEnumerable(rows));

    [TestMethod]
    public void GetOutputSchema_AddsScoreVectorAndPredictedLabelKey()
    {
        var data = Keyed(ColorImages.PixelRows(6, seed: 0));
        var output = Trainer().GetOutputSchema(Shape(data.Schema));
        var score = output.Single(c => c.Name == "Score");
        Assert.AreEqual(SchemaShape.Column.VectorKind.Vector, score.Kind);
        Assert.AreEqual(NumberDataViewType.Single, score.ItemType);
        var predicted = output.Single(c => c.Name == "PredictedLabel");
        Assert.IsTrue(predicted.IsKey);
        Assert.AreEqual(SchemaShape.Column.VectorKind.Scalar, predicted.Kind);
        Assert.IsTrue(predicted.Annotations.Any(a => a.Name == "KeyValues"), "PredictedLabel carries key values");
    }

    [TestMethod]
    public void LabelThatIsNoKey_IsRefusedWithMLNetsSchemaError()
    {
        var raw = _ml.Data.LoadFromEnumerable(ColorImages.PixelRows(6, seed: 0));
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Trainer().GetOutputSchema(Shape(raw.Schema)));
        StringAssert.StartsWith(ex.Message, "Schema mismatch for label column 'Label': expected Key type with key values");
        StringAssert.Contains(ex.Message, "got String");
        var fit = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Trainer().Fit(raw));
        StringAssert.StartsWith(fit.Message, "Schema mismatch for label column 'Label'");

        // ML.NET's own components raise the same exception type with the same wording for a label of the wrong type.
        var own = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.MulticlassClassification.Evaluate(
            _ml.Data.LoadFromEnumerable([new EvaluatedRow { Label = "red", Score = [1, 0, 0], PredictedLabel = 1 }])));
        StringAssert.StartsWith(own.Message, "Schema mismatch for label column 'Label': expected Single or Key, got String");
    }

    public sealed class EvaluatedRow
    {
        public string Label = "";

        [VectorType(3)]
        public float[] Score = [];

        [KeyType(3)]
        public uint PredictedLabel;
    }

    [TestMethod]
    public void FeaturesOfTheWrongType_AreRefusedNamingTheColumnAndTheTypesItCanBe()
    {
        var text = Keyed([new StringFeatures { Label = "red", Pixels = "x" }, new StringFeatures { Label = "blue", Pixels = "y" }]);
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Trainer().GetOutputSchema(Shape(text.Schema)));
        StringAssert.StartsWith(ex.Message, "Schema mismatch for feature column 'Pixels': expected known-size vector of Single (CHW pixels)");
        StringAssert.Contains(ex.Message, "got String");

        var variable = Keyed([new VariablePixels { Label = "red", Pixels = [1, 2] }, new VariablePixels { Label = "blue", Pixels = [3] }]);
        var fit = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Trainer().Fit(variable));
        StringAssert.StartsWith(fit.Message, "Schema mismatch for feature column 'Pixels'");
        StringAssert.Contains(fit.Message, "got VarVector<Single>");
    }

    [TestMethod]
    public void MissingColumn_IsRefusedByName()
    {
        var data = Keyed(ColorImages.PixelRows(6, seed: 0));
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Trainer("Image").GetOutputSchema(Shape(data.Schema)));
        StringAssert.StartsWith(ex.Message, "Could not find feature column 'Image'");
    }

    [TestMethod]
    public void InvalidOptions_AreRefusedNamingTheOption()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new ResNetTrainer(_ml, new ResNetTrainer.Options { Epochs = 0 }));
        StringAssert.Contains(ex.Message, "Epochs");
        var channels = Assert.ThrowsExactly<ArgumentException>(() => new ResNetTrainer(_ml, new ResNetTrainer.Options { Channels = 4 }));
        StringAssert.Contains(channels.Message, "Channels");
    }
}
