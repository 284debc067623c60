using System.Text.Json;
using System.Text.RegularExpressions;

namespace ResNet.ML.Distribution.Tests;

/// <summary>samples/MLNetImageClassification, copied out of the repository and restored from the local feed as a user's app.</summary>
[TestClass]
public sealed class SampleAppTests
{
    [TestMethod]
    [Timeout(15 * 60 * 1000, CooperativeCancellation = true)]
    public void Sample_app_restores_ResNet_ML_MLNet_from_the_feed_trains_evaluates_saves_loads_and_predicts()
    {
        string app = Path.Combine(LocalFeed.ConfiguredFolder, "MLNetImageClassification");
        Directory.CreateDirectory(app);
        foreach (string file in new[] { "MLNetImageClassification.csproj", "Program.cs" })
            File.Copy(Path.Combine(LocalFeed.RepoRoot, "samples", "MLNetImageClassification", file), Path.Combine(app, file));
        string images = ImageFiles.Write(Path.Combine(LocalFeed.Work, "sample-images"), perClass: 48, seed: 11);

        string output = LocalFeed.Run("dotnet", ["run", "-c", "Release", "--", images, "4"], app, TimeSpan.FromMinutes(12));

        // ResNet.ML came from the feed, as packages, into this test's own packages folder.
        using var assets = JsonDocument.Parse(File.ReadAllText(Path.Combine(app, "obj", "project.assets.json")));
        var libraries = assets.RootElement.GetProperty("libraries");
        foreach (string id in new[] { "ResNet.ML.MLNet", "ResNet.ML" })
        {
            var library = libraries.GetProperty($"{id}/{LocalFeed.Version}");
            Assert.AreEqual("package", library.GetProperty("type").GetString(), $"{id} is restored as a package");
            Assert.IsTrue(Directory.Exists(Path.Combine(LocalFeed.Packages, id.ToLowerInvariant(), LocalFeed.Version)), $"{id} was extracted from the feed into the test's packages folder");
        }
        Assert.IsTrue(libraries.TryGetProperty("Microsoft.ML.OnnxRuntime/1.31.1", out _), "ResNet.ML.MLNet brings ONNX Runtime's native CPU build");

        StringAssert.Contains(output, "108 training and 36 test images in 3 classes");
        var accuracy = Regex.Match(output, @"test: micro-accuracy ([0-9.]+) ?%");
        Assert.IsTrue(accuracy.Success, output);
        Assert.IsGreaterThanOrEqualTo(90.0, double.Parse(accuracy.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), output);
        var prediction = Regex.Match(output, @": predicted (\w+) \([0-9.]+ ?%\), labelled (\w+)");
        Assert.IsTrue(prediction.Success, output);
        Assert.AreEqual(prediction.Groups[2].Value, prediction.Groups[1].Value, output);
    }
}
