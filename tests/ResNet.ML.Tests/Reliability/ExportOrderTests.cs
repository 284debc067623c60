using System.Security.Cryptography;
using System.Text.Json;
using ResNet.ML.Cli;
using ResNet.ML.Onnx;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Reliability.CliHarness;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Reliability;

/// <summary>Issue 15, case 6: a full disk or a kill while the results are written loses nothing and mixes no runs.</summary>
[TestClass]
public sealed class ExportOrderTests
{
    [TestMethod]
    public void Trainer_CallsBeforeFinalCheckpoint_BeforeWritingIt_AndStillCheckpointsWhenItFails()
    {
        string folder = TempFolder();
        var options = TinyOptions(folder);
        options.Epochs = 2;
        string path = Path.Combine(folder, TrainingCheckpoint.FileName);
        int epochOnDiskDuringCallback = -1;
        var trainer = new ImageClassifierTrainer(options) { BeforeFinalCheckpoint = _ => epochOnDiskDuringCallback = TrainingCheckpoint.Load(path).Epoch };
        trainer.Fit(Bars(perClass: 8));
        Assert.AreEqual(1, epochOnDiskDuringCallback, "the final checkpoint was written before the deliverables");
        Assert.AreEqual(2, TrainingCheckpoint.Load(path).Epoch);

        string other = TempFolder();
        var failing = new ImageClassifierTrainer(TinyOptions(other)) { BeforeFinalCheckpoint = _ => throw new IOException("disk full") };
        Assert.AreEqual("disk full", Assert.ThrowsExactly<IOException>(() => failing.Fit(Bars(perClass: 8))).Message);
        Assert.AreEqual(3, TrainingCheckpoint.Load(Path.Combine(other, TrainingCheckpoint.FileName)).Epoch, "the finished run was not kept resumable");
    }

    [TestMethod]
    public void AFailedModelWrite_NamesTheFile_KeepsTheEarlierOnes_AndLeavesNoManifestOrTemporaries()
    {
        string data = IdxFolder(), output = TempFolder();
        // A folder where model.safetensors should go makes its rename fail, as a full disk makes its write fail.
        Directory.CreateDirectory(Path.Combine(output, "model.safetensors", "in-the-way"));
        var r = Run(TrainArgs(data, output, "--epochs", "1"));
        Assert.AreEqual(ResNetCli.ExitError, r.Code);
        StringAssert.Contains(r.Err, $"Cannot write '{Path.Combine(output, "model.safetensors")}'");
        using (var predictor = OnnxPredictor.Load(Path.Combine(output, "model.onnx"))) Assert.AreEqual(3, predictor.NumClasses);
        Assert.IsFalse(File.Exists(Path.Combine(output, OutputFolderManifest)), "a failed run left a manifest vouching for its files");
        Assert.IsEmpty(Directory.GetFiles(output, "*.tmp", SearchOption.AllDirectories));
        Assert.AreEqual(1, TrainingCheckpoint.Load(Path.Combine(output, "checkpoints", TrainingCheckpoint.FileName)).Epoch);
    }

    private const string OutputFolderManifest = "manifest.json";

    [TestMethod]
    public void AFailedFinalCheckpoint_KeepsTheWrittenModel_AndTheManifestProvesTheFiles()
    {
        string data = IdxFolder(), output = TempFolder();
        Directory.CreateDirectory(Path.Combine(output, "checkpoints", TrainingCheckpoint.FileName, "in-the-way"));
        var r = Run(TrainArgs(data, output, "--epochs", "1"));
        Assert.AreEqual(0, r.Code, r.Err);
        StringAssert.Contains(r.Err, "warning: the model files are complete");
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, OutputFolderManifest))).RootElement;
        Assert.AreEqual(32, manifest.GetProperty("run_id").GetString()!.Length);
        var files = manifest.GetProperty("files").EnumerateArray().ToList();
        CollectionAssert.AreEquivalent(new[] { "model.onnx", "model.safetensors", "metrics.json", "training-curves.svg" }, files.Select(f => f.GetProperty("name").GetString()).ToArray());
        foreach (var f in files)
        {
            byte[] bytes = File.ReadAllBytes(Path.Combine(output, f.GetProperty("name").GetString()!));
            Assert.AreEqual(bytes.Length, f.GetProperty("bytes").GetInt64());
            Assert.AreEqual(Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant(), f.GetProperty("sha256").GetString());
        }
    }

    [TestMethod]
    public void StaleTemporariesOfKilledWrites_AreRemovedByTheNextRun_OtherFilesStay()
    {
        string data = IdxFolder(), output = TempFolder();
        Directory.CreateDirectory(Path.Combine(output, "checkpoints"));
        string staleCheckpoint = Path.Combine(output, "checkpoints", $".checkpoint.safetensors.{Guid.NewGuid():N}.tmp");
        string staleModel = Path.Combine(output, $".model.onnx.{Guid.NewGuid():N}.tmp");
        string userFile = Path.Combine(output, ".notes.tmp");
        foreach (var f in new[] { staleCheckpoint, staleModel, userFile }) File.WriteAllBytes(f, new byte[1000]);
        var r = Run(TrainArgs(data, output, "--epochs", "1"));
        Assert.AreEqual(0, r.Code, r.Err);
        Assert.IsFalse(File.Exists(staleCheckpoint));
        Assert.IsFalse(File.Exists(staleModel));
        Assert.IsTrue(File.Exists(userFile), "a file not named like our temporaries was deleted");
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, OutputFolderManifest))).RootElement;
        Assert.AreEqual(5, manifest.GetProperty("files").GetArrayLength(), "the four deliverables and the checkpoint");
    }
}
