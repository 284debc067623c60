using ResNet.ML.Cli;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Reliability.CliHarness;

namespace ResNet.ML.Tests.Reliability;

/// <summary>Issue 15, case 3: a run never destroys another run's checkpoint.</summary>
[TestClass]
public sealed class OutputFolderTests
{
    [TestMethod]
    public void AFolderHoldingACheckpoint_IsRefused_UnlessResumeOrOverwrite()
    {
        string data = IdxFolder(), output = Training.TrainingTestData.TempFolder();
        Assert.AreEqual(0, Run(TrainArgs(data, output)).Code);
        string checkpoint = Path.Combine(output, "checkpoints", TrainingCheckpoint.FileName);
        byte[] before = File.ReadAllBytes(checkpoint);

        var again = Run(TrainArgs(data, output, "--epochs", "1"));
        Assert.AreEqual(ResNetCli.ExitError, again.Code);
        StringAssert.Contains(again.Err, output);
        StringAssert.Contains(again.Err, "--resume " + checkpoint);
        StringAssert.Contains(again.Err, "--overwrite");
        CollectionAssert.AreEqual(before, File.ReadAllBytes(checkpoint), "the refused run touched the checkpoint");

        // --overwrite with a mistake elsewhere is refused before anything of the earlier run is deleted.
        var typo = Run(TrainArgs(data, output, "--epochs", "1", "--overwrite", "--random-erasing", "5"));
        Assert.AreEqual(ResNetCli.ExitError, typo.Code);
        CollectionAssert.AreEqual(before, File.ReadAllBytes(checkpoint), "a refused --overwrite deleted the earlier run");
        Assert.IsTrue(File.Exists(Path.Combine(output, "manifest.json")) && File.Exists(Path.Combine(output, "model.onnx")));

        var replaced = Run(TrainArgs(data, output, "--epochs", "1", "--overwrite"));
        Assert.AreEqual(0, replaced.Code, replaced.Err);
        Assert.AreEqual(1, TrainingCheckpoint.Load(checkpoint).History.Count);
    }

    [TestMethod]
    public void Overwrite_OnAFolderWithoutARun_JustTrains()
    {
        var r = Run(TrainArgs(IdxFolder(), Training.TrainingTestData.TempFolder(), "--epochs", "1", "--overwrite"));
        Assert.AreEqual(0, r.Code, r.Err);
    }

    [TestMethod]
    public void ASecondRunOnTheSameFolder_IsRefusedByTheLock_WhileTheFirstRuns()
    {
        string data = IdxFolder(), output = Training.TrainingTestData.TempFolder();
        (int Code, string Out, string Err)? second = null;
        // The second run starts while the first is inside its first epoch (from its progress output).
        var stdout = new TriggerWriter("epoch 1/2 step", () => second = Run(TrainArgs(data, output, "--overwrite")));
        var stderr = new StringWriter();
        int first = ResNetCli.Run(TrainArgs(data, output), stdout, stderr);
        Assert.AreEqual(0, first, stderr.ToString());
        Assert.IsNotNull(second, "the second run never started");
        Assert.AreEqual(ResNetCli.ExitError, second.Value.Code);
        StringAssert.Contains(second.Value.Err, "Another 'resnet train'");
        StringAssert.Contains(second.Value.Err, output);
        Assert.AreEqual(2, TrainingCheckpoint.Load(Path.Combine(output, "checkpoints", TrainingCheckpoint.FileName)).History.Count);

        // The lock ends with the run that held it.
        var third = Run(TrainArgs(data, output, "--epochs", "1", "--overwrite"));
        Assert.AreEqual(0, third.Code, third.Err);
    }

    /// <summary>A writer that runs an action the first time a line containing a marker is written.</summary>
    internal sealed class TriggerWriter(string marker, Action action) : StringWriter
    {
        private bool _fired;

        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (!_fired && value is not null && value.Contains(marker, StringComparison.Ordinal)) { _fired = true; action(); }
        }
    }
}
