using System.Globalization;
using ResNet.ML.Cli;
using ResNet.ML.Tests.Data;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Reliability.CliHarness;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Reliability;

/// <summary>Issue 15, case 2: <c>evaluate</c> matches the data's classes to the model's by name, not by position.</summary>
[TestClass]
public sealed class ClassMatchingTests
{
    [TestMethod]
    public void Evaluate_OnASubsetOfTheClasses_ScoresEachAgainstItsNamesake_ForOnnxAndWeights()
    {
        string[] modelClasses = ["bag", "trouser", "tshirt"];
        var model = TrainedModel.CreateInitialized(TinyArchitecture, 1, modelClasses, 8, 8, seed: 4);
        string folder = TempFolder(), onnx = Path.Combine(folder, "model.onnx"), weights = Path.Combine(folder, "model.safetensors");
        model.ExportOnnx(onnx);
        model.SaveWeights(weights);

        // Only trouser and tshirt: the folder numbers them 0 and 1, the model 1 and 2.
        string data = TempFolder();
        int correct = 0, count = 0;
        foreach (var (name, index) in new[] { ("trouser", 1), ("tshirt", 2) })
        {
            Directory.CreateDirectory(Path.Combine(data, name));
            for (int i = 0; i < 5; i++)
            {
                var pixels = Enumerable.Range(0, 64).Select(p => (byte)((p * (7 + i) + index * 40) % 256)).ToArray();
                File.WriteAllBytes(Path.Combine(data, name, $"{i}.png"), TestPng.Encode(pixels, 8, 8, 1));
                var probabilities = model.PredictProbabilities(pixels.Select(b => (float)b).ToArray());
                if (Array.IndexOf(probabilities, probabilities.Max()) == index) correct++;
                count++;
            }
        }
        string expected = $"10 images: top-1 accuracy {((double)correct / count).ToString("P2", CultureInfo.InvariantCulture)}";
        foreach (string file in new[] { onnx, weights })
        {
            var r = Run("evaluate", "--model", file, "--data", data);
            Assert.AreEqual(0, r.Code, r.Err);
            StringAssert.StartsWith(r.Out, expected, file);
            var rows = r.Out.Split('\n').Select(l => l.Trim()).ToList();
            StringAssert.EndsWith(rows.First(l => l.StartsWith("bag ", StringComparison.Ordinal)), " 0", $"{file}: images counted as 'bag'");
            StringAssert.EndsWith(rows.First(l => l.StartsWith("trouser ", StringComparison.Ordinal)), " 5", file);
        }

        // A class the model does not have is refused, naming it and the model's classes.
        Directory.CreateDirectory(Path.Combine(data, "shoe"));
        File.WriteAllBytes(Path.Combine(data, "shoe", "0.png"), TestPng.Encode(new byte[64], 8, 8, 1));
        foreach (string file in new[] { onnx, weights })
        {
            var r = Run("evaluate", "--model", file, "--data", data);
            Assert.AreEqual(ResNetCli.ExitError, r.Code);
            StringAssert.Contains(r.Err, "'shoe'");
            StringAssert.Contains(r.Err, "'bag', 'trouser', 'tshirt'");
        }
    }
}
