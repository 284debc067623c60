using ResNet.ML.Cli;
using ResNet.ML.Data;
using ResNet.ML.Tests.Data;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Reliability.CliHarness;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Reliability;

/// <summary>Issue 15, case 9: the smaller silent or late failures.</summary>
[TestClass]
public sealed class EarlyRefusalTests
{
    [TestMethod]
    public void OptionValues_AreCheckedBeforeTheDataIsLoaded()
    {
        // The data path does not exist: an error about it would mean the data was looked at first.
        string missing = Path.Combine(TempFolder(), "no-such-data");
        var r = Run("train", "--data", missing, "--batch-size", "0", "--output", TempFolder());
        Assert.AreEqual(ResNetCli.ExitError, r.Code);
        StringAssert.Contains(r.Err, "BatchSize");
        foreach (var (size, words) in new[] { ("3", "--image-size 3 is too small"), ("100000", "--image-size 100000 is too large") })
        {
            var s = Run("train", "--data", missing, "--image-size", size, "--output", TempFolder());
            Assert.AreEqual(ResNetCli.ExitError, s.Code);
            StringAssert.Contains(s.Err, words);
        }
    }

    [TestMethod]
    public void ImageSizeAndChannels_WithIdxData_AreUsedOrRefused_NotIgnored()
    {
        string data = IdxFolder();
        // --image-size resamples IDX images (as it resizes folder images): the model takes the size asked for.
        string output = TempFolder();
        var resized = Run(TrainArgs(data, output, "--image-size", "16", "--epochs", "1"));
        Assert.AreEqual(0, resized.Code, resized.Err);
        var info = Run("info", Path.Combine(output, "model.onnx"));
        StringAssert.Contains(info.Out, "input [batch, 1, 16, 16]");
        // --channels cannot turn grayscale IDX data into colour: refused, not ignored.
        var r = Run(TrainArgs(data, TempFolder(), "--channels", "3"));
        Assert.AreEqual(ResNetCli.ExitError, r.Code);
        StringAssert.Contains(r.Err, "--channels 3 does not apply to");
        // The data's own values are harmless.
        Assert.AreEqual(0, Run(TrainArgs(data, TempFolder(), "--image-size", "8", "--channels", "1", "--epochs", "1")).Code);
    }

    [TestMethod]
    public void Threads_AboveTheCores_AndAResumeWithOtherThreads_Warn()
    {
        string data = IdxFolder(), output = TempFolder();
        int cores = Environment.ProcessorCount;
        string[] Args(int threads, params string[] more) =>
            ["train", "--data", data, "--arch", TinyArchitecture, "--epochs", "1", "--batch-size", "8", "--threads", threads.ToString(), "--output", output, .. more];
        var many = Run(Args(cores + 1));
        Assert.AreEqual(0, many.Code, many.Err);
        StringAssert.Contains(many.Err, $"warning: --threads {cores + 1} is more than the {cores} cores");

        string checkpoint = Path.Combine(output, "checkpoints", TrainingCheckpoint.FileName);
        Assert.AreEqual(cores + 1, TrainingCheckpoint.Load(checkpoint).Threads);
        var other = Run(Args(1, "--resume", checkpoint));
        Assert.AreEqual(0, other.Code, other.Err);
        StringAssert.Contains(other.Err, $"the checkpoint was made with {cores + 1} threads, this run uses 1");
        var same = Run(Args(cores + 1, "--resume", checkpoint));
        Assert.IsFalse(same.Err.Contains("the checkpoint was made with", StringComparison.Ordinal), same.Err);
    }
}
