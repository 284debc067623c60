using ResNet.ML.Cli;
using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Onnx;
using ResNet.ML.Training;
using ResNet.ML.Tests.Data;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Reliability;

/// <summary>Issue 15, case 1: a diverged run stops with one message and never leaves NaN weights behind as a success.</summary>
[TestClass]
public sealed class DivergenceTests
{
    private static bool AllFinite(TrainingCheckpoint c) => Weights(TrainedModel.FromCheckpoint(c).Network).All(float.IsFinite);

    [TestMethod]
    public void HugeLearningRate_StopsAtTheStep_AndKeepsTheLastGoodCheckpoint()
    {
        string folder = TempFolder();
        var options = TinyOptions(folder);
        options.LearningRate = 1e6f;
        options.Schedule = ScheduleKind.Constant;
        options.CheckpointIntervalSteps = 1;
        var steps = new List<int>();
        var checkpoints = new List<long>();
        var e = Assert.ThrowsExactly<TrainingDivergedException>(() => new ImageClassifierTrainer(options).Fit(Bars(), progress: new Callback(p =>
        {
            if (p.Phase == TrainingPhase.Step) steps.Add(p.Step);
        })));
        StringAssert.Contains(e.Message, "learning rate");
        StringAssert.Contains(e.Message, $"step {e.GlobalStep} of the run");
        Assert.AreEqual(steps.Count + 1, e.GlobalStep, "the exception names another step than the one that broke");
        // Good steps were checkpointed before the run broke: the last of them stays, whole and finite.
        Assert.IsNotEmpty(steps, "the run broke at its first step, so this test no longer sees a good checkpoint kept");
        string path = Path.Combine(folder, TrainingCheckpoint.FileName);
        Assert.AreEqual(path, e.CheckpointPath);
        var kept = TrainingCheckpoint.Load(path);
        Assert.AreEqual(steps.Count, kept.GlobalStep);
        Assert.IsTrue(AllFinite(kept));
    }

    private static TrainedModel NaNModel(string tensor = "layer1.0.conv1.weight")
    {
        var model = TrainedModel.CreateInitialized(TinyArchitecture, 1, ["a", "b", "c"], 8, 8, seed: 1);
        model.Network.State.Single(s => s.Name == tensor).Value!.Data[3] = float.NaN;
        return model;
    }

    [TestMethod]
    public void Writers_RefuseNonFiniteWeights_AndLeaveNoFile()
    {
        string folder = TempFolder();
        var model = NaNModel();
        var w = Assert.ThrowsExactly<NonFiniteException>(() => model.SaveWeights(Path.Combine(folder, "m.safetensors")));
        StringAssert.Contains(w.Message, "layer1.0.conv1.weight");
        var o = Assert.ThrowsExactly<NonFiniteException>(() => model.ExportOnnx(Path.Combine(folder, "m.onnx")));
        StringAssert.Contains(o.Message, "layer1.0.conv1.weight");
        var checkpoint = Checkpoint(model);
        Assert.ThrowsExactly<NonFiniteException>(() => checkpoint.Save(Path.Combine(folder, "c.safetensors")));
        Assert.IsEmpty(Directory.GetFileSystemEntries(folder), "a refused write left a file");
    }

    [TestMethod]
    public void Loaders_RefuseNonFiniteWeights_NamingFileAndTensor()
    {
        string folder = TempFolder();
        var good = TrainedModel.CreateInitialized(TinyArchitecture, 1, ["a", "b", "c"], 8, 8, seed: 1);
        // A weights file with a NaN, written around the writer's check.
        var bad = NaNModel("bn1.running_var");
        string weights = Path.Combine(folder, "nan.safetensors");
        using (var f = File.Create(weights))
            Safetensors.Write(f, StateDict.ToTensors(bad.Network), bad.Metadata());
        var e = Assert.ThrowsExactly<InvalidDataException>(() => TrainedModel.LoadWeights(weights));
        StringAssert.Contains(e.Message, weights);
        StringAssert.Contains(e.Message, "bn1.running_var");
        Assert.ThrowsExactly<InvalidDataException>(() => ModelWeights.Load(good.Network, weights));
        Assert.ThrowsExactly<InvalidDataException>(() => ModelWeights.LoadNetwork(weights));

        string checkpointPath = Path.Combine(folder, "checkpoint.safetensors");
        using (var f = File.Create(checkpointPath)) Checkpoint(bad).Write(f, checkFinite: false);
        var c = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Load(checkpointPath));
        StringAssert.Contains(c.Message, checkpointPath);
        StringAssert.Contains(c.Message, "bn1.running_var");

        // An ONNX model whose initializer holds an infinity.
        var proto = OnnxExporter.BuildModel(good.Network, good.OnnxOptions());
        var init = proto.Graph.Initializer.First(t => t.DataType == 1 && t.RawData.Length >= 8);
        var raw = init.RawData.ToByteArray();
        BitConverter.GetBytes(float.PositiveInfinity).CopyTo(raw, 4);
        init.RawData = Google.Protobuf.ByteString.CopyFrom(raw);
        string onnx = Path.Combine(folder, "inf.onnx");
        File.WriteAllBytes(onnx, Google.Protobuf.MessageExtensions.ToByteArray(proto));
        var x = Assert.ThrowsExactly<InvalidDataException>(() => OnnxPredictor.Load(onnx));
        StringAssert.Contains(x.Message, onnx);
        StringAssert.Contains(x.Message, init.Name);
    }

    [TestMethod]
    public void Cli_DivergedTraining_ExitsNonZero_WritesNoModel_AndCommandsRefuseNaNModels()
    {
        string data = TempFolder();
        var labels = Enumerable.Range(0, 48).Select(i => (byte)(i % 3)).ToArray();
        File.WriteAllBytes(Path.Combine(data, "train-images-idx3-ubyte"), DataFixtures.IdxImages(48, 8, 8, (n, p) => (byte)(p / 16 == labels[n] ? 220 : 30 + n % 9)));
        File.WriteAllBytes(Path.Combine(data, "train-labels-idx1-ubyte"), DataFixtures.IdxLabels(labels));
        string output = TempFolder();
        var err = new StringWriter();
        int code = ResNetCli.Run(["train", "--data", data, "--arch", TinyArchitecture, "--epochs", "2", "--batch-size", "8", "--threads", "2",
            "--lr", "1e6", "--schedule", "Constant", "--checkpoint-every", "1", "--output", output], new StringWriter(), err);
        Assert.AreEqual(ResNetCli.ExitError, code, err.ToString());
        StringAssert.Contains(err.ToString(), "diverged at step");
        StringAssert.Contains(err.ToString(), "learning rate");
        Assert.AreEqual(1, err.ToString().Trim().Split('\n').Length, err.ToString());
        Assert.IsFalse(File.Exists(Path.Combine(output, "model.onnx")));
        Assert.IsFalse(File.Exists(Path.Combine(output, "model.safetensors")));
        string checkpoint = Path.Combine(output, "checkpoints", TrainingCheckpoint.FileName);
        if (File.Exists(checkpoint)) Assert.IsTrue(AllFinite(TrainingCheckpoint.Load(checkpoint)));

        var bad = NaNModel();
        string weights = Path.Combine(TempFolder(), "model.safetensors");
        using (var f = File.Create(weights)) Safetensors.Write(f, StateDict.ToTensors(bad.Network), bad.Metadata());
        foreach (var args in new[]
        {
            new[] { "export", "--model", weights, "--output", Path.Combine(TempFolder(), "m.onnx") },
            ["evaluate", "--model", weights, "--data", data, "--split", "Train"],
        })
        {
            var e = new StringWriter();
            Assert.AreEqual(ResNetCli.ExitError, ResNetCli.Run(args, new StringWriter(), e), args[0]);
            StringAssert.Contains(e.ToString(), "layer1.0.conv1.weight", args[0]);
            StringAssert.Contains(e.ToString(), weights, args[0]);
        }

        // The ONNX export of a diverged model (written around the exporter's check) is refused by predict and evaluate.
        var good = TrainedModel.CreateInitialized(TinyArchitecture, 1, ["0", "1", "2"], 8, 8, seed: 1);
        var proto = OnnxExporter.BuildModel(good.Network, good.OnnxOptions());
        var init = proto.Graph.Initializer.First(t => t.DataType == 1 && t.RawData.Length >= 4);
        var raw = init.RawData.ToByteArray();
        BitConverter.GetBytes(float.NaN).CopyTo(raw, 0);
        init.RawData = Google.Protobuf.ByteString.CopyFrom(raw);
        string onnx = Path.Combine(TempFolder(), "model.onnx");
        File.WriteAllBytes(onnx, Google.Protobuf.MessageExtensions.ToByteArray(proto));
        foreach (var args in new[] { new[] { "predict", "--model", onnx, data }, ["evaluate", "--model", onnx, "--data", data, "--split", "Train"] })
        {
            var e = new StringWriter();
            Assert.AreEqual(ResNetCli.ExitError, ResNetCli.Run(args, new StringWriter(), e), args[0]);
            StringAssert.Contains(e.ToString(), init.Name, args[0]);
            StringAssert.Contains(e.ToString(), onnx, args[0]);
        }
    }

    private static TrainingCheckpoint Checkpoint(TrainedModel model) => new()
    {
        Model = model.Description,
        State = new CheckpointState
        {
            Fingerprint = "{}", Epoch = 0, StepInEpoch = 1, GlobalStep = 1, OptimizerKind = "sgd",
            OptimizerSteps = 1, EpochLossSum = 1, EpochCorrect = 0, EpochSeen = 8, EpochSeconds = 1, History = [],
        },
        ModelTensors = StateDict.ToTensors(model.Network),
    };
}
