using System.Text.Json.Nodes;
using ResNet.ML.Data;
using ResNet.ML.Models;
using ResNet.ML.Onnx.Proto;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Training;

/// <summary>Issue 16, "Persistence repeated": one model description, written and read the same way by every model file.</summary>
[TestClass]
public sealed class ModelDescriptionTests
{
    private static readonly ModelDescription Sample = new("resnet20", 3, 24, 40, ["cat", "dog", "élan \"quoted\"", "日本"],
        new Normalization(1f / 255, [0.4914f, 0.4822f, 0.4465f], [0.2470f, 0.2435f, 0.2616f]));

    [TestMethod]
    public void Description_RoundTripsThroughMetadata()
    {
        var metadata = Sample.ToMetadata();
        CollectionAssert.AreEquivalent(ModelDescription.Keys.ToArray(), metadata.Keys.ToArray());
        var back = ModelDescription.FromMetadata(metadata, "the sample");
        Assert.AreEqual(Sample, back);
        Assert.AreEqual("resnet20", back.Architecture);
        Assert.AreEqual((3, 24, 40), (back.Channels, back.Height, back.Width));
        CollectionAssert.AreEqual(Sample.ClassNames.ToArray(), back.ClassNames.ToArray());
        CollectionAssert.AreEqual(Sample.Normalization.Std, back.Normalization.Std);

        // Equality is by value, so the comparisons in the tests below can fail.
        Assert.AreNotEqual(Sample, new ModelDescription("resnet20", 3, 24, 40, ["dog", "cat", "élan \"quoted\"", "日本"], Sample.Normalization));
        Assert.AreNotEqual(Sample, new ModelDescription("resnet20", 3, 24, 40, Sample.ClassNames, new Normalization(1f / 255, [0.4914f, 0.4822f, 0.4465f], [0.2470f, 0.2435f, 0.2617f])));
        Assert.AreNotEqual(Sample, new ModelDescription("resnet20", 3, 40, 24, Sample.ClassNames, Sample.Normalization));
    }

    [TestMethod]
    public void WeightsCheckpointAndOnnx_OfOneModel_YieldEqualDescriptions()
    {
        var data = Bars(classes: 3, perClass: 8, channels: 3);
        string folder = TempFolder();
        var options = TinyOptions(folder);
        options.Epochs = 1;
        var model = new ImageClassifierTrainer(options).Fit(data);
        var expected = model.Description;
        Assert.AreEqual((model.Architecture, 3, 8, 8), (expected.Architecture, expected.Channels, expected.Height, expected.Width));
        CollectionAssert.AreEqual(new[] { "bar0", "bar1", "bar2" }, expected.ClassNames.ToArray());
        Assert.HasCount(3, expected.Normalization.Mean, "the trained model's normalization should be per channel, so the test compares three values");

        string weights = Path.Combine(folder, "model.safetensors"), onnx = Path.Combine(folder, "model.onnx");
        string checkpoint = Path.Combine(folder, TrainingCheckpoint.FileName);
        model.SaveWeights(weights);
        model.ExportOnnx(onnx);

        using (var stream = File.OpenRead(weights))
            Assert.AreEqual(expected, ModelDescription.FromMetadata(ModelWeights.ReadMetadata(stream), weights), "weights file");
        using (var stream = File.OpenRead(checkpoint))
            Assert.AreEqual(expected, ModelDescription.FromMetadata(Safetensors.Read(stream).Metadata, checkpoint), "checkpoint file");
        var onnxMetadata = ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnx)).MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.AreEqual(expected, ModelDescription.FromMetadata(onnxMetadata, onnx), "ONNX file");

        Assert.AreEqual(expected, TrainedModel.LoadWeights(weights).Description);
        Assert.AreEqual(expected, TrainingCheckpoint.Load(checkpoint).Model);
        Assert.AreEqual(expected, TrainedModel.FromCheckpoint(checkpoint).Description);

        // The checkpoint keeps the description out of its run state: one copy, in the entries a weights file has.
        using (var stream = File.OpenRead(checkpoint))
        {
            var state = JsonNode.Parse(Safetensors.Read(stream).Metadata["state"])!.AsObject();
            foreach (string field in new[] { "Architecture", "Channels", "Height", "Width", "ClassNames", "Normalization" })
                Assert.IsFalse(state.ContainsKey(field), $"the run state still holds {field}");
        }
    }

    [TestMethod]
    public void AMissingOrBadEntry_IsRefused_NamingTheKeyAndTheFile()
    {
        foreach (string key in ModelDescription.Keys)
        {
            var metadata = Sample.ToMetadata().Where(kv => kv.Key != key).ToDictionary();
            var e = Assert.ThrowsExactly<InvalidDataException>(() => ModelDescription.FromMetadata(metadata, "File 'x.safetensors'"));
            StringAssert.Contains(e.Message, $"File 'x.safetensors' has no '{key}' metadata entry");
        }
        foreach (var (key, value) in new[] { ("height", "abc"), ("channels", "0"), ("width", "-3"), ("class_names", "[]"), ("class_names", "not json"), ("normalization", "{\"Scale\":0,\"Mean\":[0],\"Std\":[1]}"), ("normalization", "{\"Scale\":1,\"Mean\":[0,0],\"Std\":[1,1]}") })
        {
            var metadata = new Dictionary<string, string>(Sample.ToMetadata()) { [key] = value };
            var e = Assert.ThrowsExactly<InvalidDataException>(() => ModelDescription.FromMetadata(metadata, "File 'x.safetensors'"), $"{key}={value}");
            StringAssert.Contains(e.Message, $"File 'x.safetensors': metadata entry '{key}'", $"{key}={value}");
        }

        // Through the loaders, the message names the file on disk.
        var model = TrainedModel.CreateInitialized(TinyArchitecture, 1, ["a", "b"], 8, 8, seed: 1);
        string folder = TempFolder();
        string weights = Path.Combine(folder, "no-height.safetensors");
        using (var file = File.Create(weights))
            Safetensors.Write(file, StateDict.ToTensors(model.Network), model.Metadata().Where(kv => kv.Key != ModelDescription.HeightKey).ToDictionary());
        var fromWeights = Assert.ThrowsExactly<InvalidDataException>(() => TrainedModel.LoadWeights(weights));
        StringAssert.Contains(fromWeights.Message, $"'{weights}' has no 'height' metadata entry");
        string unknown = Path.Combine(folder, "unknown-architecture.safetensors");
        using (var file = File.Create(unknown))
            Safetensors.Write(file, StateDict.ToTensors(model.Network), new Dictionary<string, string>(model.Metadata()) { [ModelDescription.ArchitectureKey] = "resnet-nonsense" });
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => TrainedModel.LoadWeights(unknown)).Message, $"'{unknown}': metadata entry 'architecture' ('resnet-nonsense')");

        // A checkpoint without a description entry, its checksum made to match so only the missing entry is at fault.
        var (tensors, checkpointMetadata) = CheckpointOf(folder);
        var withoutClasses = checkpointMetadata.Where(kv => kv.Key != ModelDescription.ClassNamesKey).ToDictionary();
        string checkpoint = WriteCheckpoint(Path.Combine(folder, "no-classes.safetensors"), tensors, withoutClasses);
        var fromCheckpoint = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Load(checkpoint));
        StringAssert.Contains(fromCheckpoint.Message, $"'{checkpoint}' has no 'class_names' metadata entry");

        // The description's entries are under the checkpoint's checksum like the run state.
        string edited = Path.Combine(folder, "edited-classes.safetensors");
        using (var file = File.Create(edited))
            Safetensors.Write(file, tensors, new Dictionary<string, string>(checkpointMetadata) { [ModelDescription.ClassNamesKey] = "[\"bar1\",\"bar0\",\"bar2\"]" });
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Load(edited)).Message, $"'{edited}' is corrupt");
    }

    [TestMethod]
    public void AVersion2Checkpoint_ResumesToTheUninterruptedRunsWeights()
    {
        var data = Bars(classes: 3, perClass: 16);
        var reference = new ImageClassifierTrainer(TinyOptions(TempFolder())).Fit(data);

        string folder = TempFolder();
        var trainer = new ImageClassifierTrainer(TinyOptions(folder));
        using var cancel = new CancellationTokenSource();
        var progress = new Callback(p => { if (p.Phase == TrainingPhase.Step && p.EpochNumber == 2 && p.Step == 3) cancel.Cancel(); });
        string path = Assert.ThrowsExactly<TrainingCanceledException>(() => trainer.Fit(data, progress: progress, cancellationToken: cancel.Token)).CheckpointPath!;
        var current = TrainingCheckpoint.Load(path);

        var (tensors, metadata) = Read(path);
        WriteCheckpoint(path, tensors, AsVersion2(metadata));
        Assert.AreEqual("2", Read(path).Metadata["version"], "the fixture is not a version-2 file");
        Assert.IsFalse(Read(path).Metadata.ContainsKey(ModelDescription.ClassNamesKey), "the fixture has the version-3 entries");

        var old = TrainingCheckpoint.Load(path);
        Assert.AreEqual(current.Model, old.Model);
        Assert.AreEqual((current.Epoch, current.StepInEpoch, current.GlobalStep), (old.Epoch, old.StepInEpoch, old.GlobalStep));
        Assert.AreEqual(current.Model, TrainedModel.FromCheckpoint(path).Description);

        var resumed = trainer.Resume(path, new ImageDatasetSource(data));
        CollectionAssert.AreEqual(Weights(reference.Network), Weights(resumed.Network), "the run resumed from a version-2 checkpoint differs from the uninterrupted one");
        Assert.AreEqual(reference.Description, resumed.Description);
        Assert.AreEqual("3", Read(path).Metadata["version"], "the resumed run's checkpoints should be written in the current format");
    }

    [TestMethod]
    public void AnIncompleteVersion2Checkpoint_AndOtherVersions_AreRefusedNamingFileAndVersion()
    {
        string folder = TempFolder();
        var (tensors, metadata) = CheckpointOf(folder);

        var v2 = AsVersion2(metadata);
        var state = JsonNode.Parse(v2["state"])!.AsObject();
        state.Remove("ClassNames");
        v2["state"] = state.ToJsonString();
        string incomplete = WriteCheckpoint(Path.Combine(folder, "v2-no-classes.safetensors"), tensors, v2);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Load(incomplete));
        StringAssert.Contains(e.Message, $"'{incomplete}' (checkpoint format version 2)");
        StringAssert.Contains(e.Message, "'ClassNames'");

        foreach (string version in new[] { "1", "4" })
        {
            string other = WriteCheckpoint(Path.Combine(folder, $"v{version}.safetensors"), tensors, new Dictionary<string, string>(metadata) { ["version"] = version });
            var refused = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Load(other));
            StringAssert.Contains(refused.Message, $"'{other}' is a checkpoint of format version {version}; this build reads versions 2 and 3");
        }
    }

    /// <summary>The tensors and metadata of a one-epoch run's final checkpoint, written to <paramref name="folder"/>.</summary>
    private static (IReadOnlyList<SafetensorsTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) CheckpointOf(string folder)
    {
        var options = TinyOptions(folder);
        options.Epochs = 1;
        new ImageClassifierTrainer(options).Fit(Bars(classes: 3, perClass: 8));
        return Read(Path.Combine(folder, TrainingCheckpoint.FileName));
    }

    private static (IReadOnlyList<SafetensorsTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Safetensors.Read(stream, path);
    }

    /// <summary>Writes a checkpoint file with the checksum of the given entries, as the writer of that version did.</summary>
    private static string WriteCheckpoint(string path, IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var entries = metadata.Where(kv => kv.Key != TrainingCheckpoint.ChecksumKey).ToDictionary();
        entries[TrainingCheckpoint.ChecksumKey] = TrainingCheckpoint.Checksum(tensors, entries);
        using var file = File.Create(path);
        Safetensors.Write(file, tensors, entries);
        return path;
    }

    /// <summary>
    /// The metadata of a version-2 checkpoint of the same run: no description entries; the model's fields inside the
    /// run state, named and shaped as the version-2 CheckpointState declared them (Normalization as Scale, Mean, Std).
    /// </summary>
    private static Dictionary<string, string> AsVersion2(IReadOnlyDictionary<string, string> metadata)
    {
        var model = ModelDescription.FromMetadata(metadata, "the version-3 checkpoint");
        var state = JsonNode.Parse(metadata["state"])!.AsObject();
        var old = new JsonObject
        {
            ["Fingerprint"] = state["Fingerprint"]!.DeepClone(),
            ["Architecture"] = model.Architecture,
            ["Channels"] = model.Channels,
            ["Height"] = model.Height,
            ["Width"] = model.Width,
            ["ClassNames"] = new JsonArray(model.ClassNames.Select(n => (JsonNode?)JsonValue.Create(n)).ToArray()),
            ["Normalization"] = new JsonObject
            {
                ["Scale"] = model.Normalization.Scale,
                ["Mean"] = new JsonArray(model.Normalization.Mean.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
                ["Std"] = new JsonArray(model.Normalization.Std.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
            },
        };
        foreach (var (key, value) in state)
            if (key != "Fingerprint") old[key] = value?.DeepClone();
        return new Dictionary<string, string>
        {
            ["format"] = metadata["format"],
            ["version"] = "2",
            ["state"] = old.ToJsonString(),
        };
    }
}
