// Trains a ResNet on a folder of labelled images (one subfolder per class) with ML.NET's own image transforms,
// evaluates it on held-out images, saves and reloads the model, and predicts one file.
//   dotnet run -- <image folder> [epochs]
using Microsoft.ML;
using ResNet.ML.MLNet;

if (args.Length < 1 || !Directory.Exists(args[0]))
{
    Console.Error.WriteLine("usage: MLNetImageClassification <image folder with one subfolder per class> [epochs]");
    return 2;
}
string folder = Path.GetFullPath(args[0]);
int epochs = args.Length > 1 ? int.Parse(args[1]) : 5;

// Every fourth image of each class is held out for testing.
var rows = Directory.GetDirectories(folder).Order()
    .SelectMany(dir => Directory.GetFiles(dir).Order().Select((file, i) => (Row: new ImageRow { Label = Path.GetFileName(dir), ImagePath = Path.GetRelativePath(folder, file) }, Test: i % 4 == 3)))
    .ToList();
var ml = new MLContext(seed: 0);
var train = ml.Data.LoadFromEnumerable(rows.Where(r => !r.Test).Select(r => r.Row));
var test = ml.Data.LoadFromEnumerable(rows.Where(r => r.Test).Select(r => r.Row));
Console.WriteLine($"{rows.Count(r => !r.Test)} training and {rows.Count(r => r.Test)} test images in {Directory.GetDirectories(folder).Length} classes");

var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.LoadImages("Image", folder, "ImagePath"))
    .Append(ml.Transforms.ResizeImages("Image", 32, 32))
    .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
    .Append(new ResNetTrainer(ml, new ResNetTrainer.Options
    {
        Architecture = "resnet20",
        FeatureColumnName = "Pixels",
        Epochs = epochs,
        BatchSize = 32,
        LearningRate = 0.05f,
        ValidationFraction = 0,
    }))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
var model = pipeline.Fit(train);

var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
Console.WriteLine($"test: micro-accuracy {metrics.MicroAccuracy:P1}, macro-accuracy {metrics.MacroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");

string modelPath = Path.Combine(Path.GetTempPath(), $"resnet-sample-{Environment.ProcessId}.zip");
ml.Model.Save(model, train.Schema, modelPath);
var loaded = new MLContext().Model.Load(modelPath, out _);
File.Delete(modelPath);
var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(loaded);
var first = rows.First(r => r.Test).Row;
var prediction = engine.Predict(new ImageRow { ImagePath = first.ImagePath });
Console.WriteLine($"{first.ImagePath}: predicted {prediction.PredictedLabel} ({prediction.Score.Max():P1}), labelled {first.Label}");
return 0;

public sealed class ImageRow
{
    public string Label = "";
    public string ImagePath = "";
}

public sealed class Prediction
{
    public string PredictedLabel = "";
    public float[] Score = [];
}
