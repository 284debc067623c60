namespace ResNet.ML.Distribution.Tests;

/// <summary>The resnet tool, installed from the local feed with `dotnet tool install --tool-path`, as a user installs it.</summary>
[TestClass]
public sealed class ToolTests
{
    [TestMethod]
    [Timeout(10 * 60 * 1000, CooperativeCancellation = true)]
    public void Tool_installs_from_the_feed_shows_help_and_trains_a_tiny_model()
    {
        string tools = Path.Combine(LocalFeed.Work, "tools");
        string install = LocalFeed.Run("dotnet", ["tool", "install", "ResNet.ML.Cli", "--version", LocalFeed.Version, "--tool-path", tools, "--add-source", LocalFeed.Feed],
            LocalFeed.ConfiguredFolder, TimeSpan.FromMinutes(5));
        StringAssert.Contains(install, "resnet");
        string resnet = Path.Combine(tools, OperatingSystem.IsWindows() ? "resnet.exe" : "resnet");
        Assert.IsTrue(File.Exists(resnet), install);

        string help = LocalFeed.Run(resnet, ["--help"], LocalFeed.Work, TimeSpan.FromMinutes(1));
        foreach (string command in new[] { "train", "evaluate", "predict", "export", "info" }) StringAssert.Contains(help, command);

        string images = ImageFiles.Write(Path.Combine(LocalFeed.Work, "tool-images"), perClass: 16, seed: 12);
        string run = Path.Combine(LocalFeed.Work, "tool-run");
        string train = LocalFeed.Run(resnet, ["train", "--data", images, "--image-size", "16", "--channels", "3", "--arch", "resnet8 widths=4,8,16 stem-width=4",
            "--epochs", "1", "--batch-size", "16", "--output", run, "--plain"], LocalFeed.Work, TimeSpan.FromMinutes(5));
        Assert.IsTrue(File.Exists(Path.Combine(run, "model.onnx")), train);
        string info = LocalFeed.Run(resnet, ["info", Path.Combine(run, "model.onnx")], LocalFeed.Work, TimeSpan.FromMinutes(1));
        foreach (string cls in ImageFiles.Classes) StringAssert.Contains(info, cls);
    }
}
