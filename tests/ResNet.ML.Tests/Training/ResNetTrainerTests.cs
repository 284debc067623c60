using ResNet.ML.Data;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Training;

[TestClass]
public sealed class ResNetTrainerTests
{
    [TestMethod]
    public void Fit_LearnsSeparableBars_AndReportsEveryStepInOrder()
    {
        var data = Bars(classes: 3, perClass: 24);
        var options = TinyOptions();
        options.Epochs = 4;
        var reports = new List<TrainingProgress>();
        var model = new ImageClassifierTrainer(options).Fit(data, progress: new Callback(reports.Add));

        Assert.HasCount(4, model.History);
        Assert.IsGreaterThanOrEqualTo(0.9, model.History[^1].ValidationAccuracy!.Value, $"validation accuracy {model.History[^1].ValidationAccuracy}");
        Assert.IsLessThan(model.History[0].TrainLoss, model.History[^1].TrainLoss);
        var steps = reports.Where(r => r.Phase == TrainingPhase.Step).ToList();
        int stepsPerEpoch = (54 + 7) / 8;   // 72 images, 25% (18) held out for validation
        Assert.HasCount(4 * stepsPerEpoch, steps);
        Assert.IsTrue(steps.Select(r => (r.EpochNumber, r.Step)).SequenceEqual(
            Enumerable.Range(1, 4).SelectMany(e => Enumerable.Range(1, stepsPerEpoch).Select(s => (e, s)))), "steps out of order");
        Assert.HasCount(4, reports.Where(r => r.Phase == TrainingPhase.EpochEnd));
        Assert.IsTrue(steps.All(r => r.LearningRate > 0 && r.ImagesPerSecond > 0 && double.IsFinite(r.Loss)));

        var eval = model.Evaluate(new ImageDatasetSource(data));
        Assert.AreEqual(72, eval.Count);
        Assert.AreEqual(eval.Top1Accuracy, (double)Enumerable.Range(0, 3).Sum(c => eval.ConfusionMatrix[c, c]) / 72, 1e-12);
        Assert.AreEqual(1.0, eval.Top5Accuracy);   // 3 classes: always in the top 5
    }

    [TestMethod]
    [DataRow(OptimizerKind.SgdMomentum, ScheduleKind.Cosine)]
    [DataRow(OptimizerKind.AdamW, ScheduleKind.OneCycle)]
    public void Resume_AfterCancellationMidEpoch_GivesBitIdenticalWeights(OptimizerKind optimizer, ScheduleKind schedule)
    {
        var data = Bars(classes: 3, perClass: 16);
        string uninterruptedFolder = TempFolder(), resumedFolder = TempFolder();
        ResNetTrainerOptions Options(string folder)
        {
            var o = TinyOptions(folder);
            o.Optimizer = optimizer;
            o.Schedule = schedule;
            o.LearningRate = optimizer == OptimizerKind.SgdMomentum ? 0.05f : 0.01f;
            o.Augmentation = Augmentation.CifarPaper with { Padding = 1 };
            return o;
        }

        var reference = new ImageClassifierTrainer(Options(uninterruptedFolder)).Fit(data);

        using var cancel = new CancellationTokenSource();
        var trainer = new ImageClassifierTrainer(Options(resumedFolder));
        var progress = new Callback(p => { if (p.Phase == TrainingPhase.Step && p.EpochNumber == 2 && p.Step == 3) cancel.Cancel(); });
        var canceled = Assert.ThrowsExactly<TrainingCanceledException>(() => trainer.Fit(data, progress: progress, cancellationToken: cancel.Token));
        Assert.IsNotNull(canceled.CheckpointPath);
        var checkpoint = TrainingCheckpoint.Load(canceled.CheckpointPath);
        Assert.AreEqual(1, checkpoint.Epoch);
        Assert.AreEqual(3, checkpoint.StepInEpoch);

        var resumed = trainer.Resume(checkpoint, data);
        CollectionAssert.AreEqual(Weights(reference.Network), Weights(resumed.Network), "resumed weights differ from the uninterrupted run's");
        Assert.HasCount(3, resumed.History);
        Assert.AreEqual(reference.History[^1].ValidationAccuracy, resumed.History[^1].ValidationAccuracy);
        Assert.AreEqual(reference.History[1].TrainLoss, resumed.History[1].TrainLoss, 1e-12, "the interrupted epoch's running sums were not restored");
    }

    [TestMethod]
    public void Resume_RefusesCorruptTruncatedAndMismatchedCheckpoints()
    {
        var data = Bars(classes: 3, perClass: 8);
        string folder = TempFolder();
        var options = TinyOptions(folder);
        options.Epochs = 1;
        new ImageClassifierTrainer(options).Fit(data);
        string path = Path.Combine(folder, TrainingCheckpoint.FileName);
        byte[] good = File.ReadAllBytes(path);

        var flipped = (byte[])good.Clone();
        flipped[^10] ^= 0x40;
        var corrupt = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Read(new MemoryStream(flipped)));
        StringAssert.Contains(corrupt.Message, "corrupt");

        var truncated = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Read(new MemoryStream(good[..(good.Length - 100)])));
        StringAssert.Contains(truncated.Message, "truncated");

        var other = TinyOptions(folder);
        other.Epochs = 1;
        other.BatchSize = 4;
        var mismatch = Assert.ThrowsExactly<InvalidDataException>(() => new ImageClassifierTrainer(other).Resume(path, new ImageDatasetSource(data)));
        StringAssert.Contains(mismatch.Message, "BatchSize was 8, now 4");
        CollectionAssert.AreEqual(good, File.ReadAllBytes(path), "a refused resume rewrote the checkpoint");

        var weightsPath = Path.Combine(folder, "model.safetensors");
        TrainedModel.FromCheckpoint(path).SaveWeights(weightsPath);
        var notCheckpoint = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Load(weightsPath));
        StringAssert.Contains(notCheckpoint.Message, "not a ResNet.ML training checkpoint");
    }

    [TestMethod]
    public void StateDictLoad_ChecksEverythingBeforeCopying()
    {
        var model = TrainedModel.CreateInitialized(TinyArchitecture, 1, ["a", "b"], 8, 8, seed: 1);
        var before = Weights(model.Network);
        var tensors = StateDict.ToTensors(TrainedModel.CreateInitialized(TinyArchitecture, 1, ["a", "b"], 8, 8, seed: 2).Network);
        var missingLast = tensors.Where(t => t.Name != "fc.bias").ToList();
        var e = Assert.ThrowsExactly<InvalidDataException>(() => StateDict.Load(model.Network, missingLast, "test weights"));
        StringAssert.Contains(e.Message, "fc.bias");
        CollectionAssert.AreEqual(before, Weights(model.Network), "a refused load changed weights");
    }

    [TestMethod]
    public void SaveAndLoadWeights_RoundTripsPredictionsClassesAndNormalization()
    {
        var data = Bars(classes: 3, perClass: 8);
        var options = TinyOptions();
        options.Epochs = 1;
        var model = new ImageClassifierTrainer(options).Fit(data);
        var stream = new MemoryStream();
        model.SaveWeights(stream);
        stream.Position = 0;
        var loaded = TrainedModel.LoadWeights(stream);

        CollectionAssert.AreEqual(model.ClassNames.ToArray(), loaded.ClassNames.ToArray());
        Assert.AreEqual(model.Normalization, loaded.Normalization);
        var image = new float[64];
        data.ReadPixels(5, image);
        CollectionAssert.AreEqual(model.PredictProbabilities(image), loaded.PredictProbabilities(image));
    }

    [TestMethod]
    public void EarlyStopping_StopsWhenValidationStopsImproving()
    {
        var options = TinyOptions();
        options.Epochs = 6;
        options.LearningRate = 1e-6f;   // nothing changes: no epoch improves on the first by 0.5
        options.EarlyStopping = new EarlyStoppingOptions(EarlyStoppingMetric.ValidationAccuracy, Patience: 2, MinDelta: 0.5);
        var reports = new List<TrainingProgress>();
        var model = new ImageClassifierTrainer(options).Fit(Bars(perClass: 8), progress: new Callback(reports.Add));
        Assert.HasCount(3, model.History);
        Assert.AreEqual(1, reports.Count(r => r.Phase == TrainingPhase.EarlyStopped));
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void EarlyStopping_EndsWithTheBestEpochsWeightsUnlessToldOtherwise(bool restore)
    {
        // Validation labels are the training rule shifted by one class, so learning makes validation accuracy fall:
        // the best epoch comes first, and the run stops after it.
        var train = Bars(perClass: 8);
        var shifted = Bars(perClass: 6, seed: 5);
        var pixels = new float[shifted.Count * shifted.SampleSize];
        for (int i = 0; i < shifted.Count; i++) shifted.ReadPixels(i, pixels.AsSpan(i * shifted.SampleSize, shifted.SampleSize));
        var labels = Enumerable.Range(0, shifted.Count).Select(i => (shifted.GetLabel(i) + 1) % 3).ToArray();
        var validation = ImageDataset.FromFloats(pixels, labels, 1, 8, 8, [.. shifted.ClassNames]);

        var options = TinyOptions();
        options.Epochs = 8;
        options.EarlyStopping = new EarlyStoppingOptions(EarlyStoppingMetric.ValidationAccuracy, Patience: 2, RestoreBestWeights: restore);
        var model = new ImageClassifierTrainer(options).Fit(train, validation);

        Assert.IsLessThan(8, model.History.Count, "early stopping did not stop the run");
        double best = model.History.Max(m => m.ValidationAccuracy!.Value), last = model.History[^1].ValidationAccuracy!.Value;
        Assert.IsLessThan(best, last, "the last epoch must be worse than the best for this test to bite");
        double final = model.Evaluate(validation, batchSize: 64).Top1Accuracy;
        Assert.AreEqual(restore ? best : last, final, restore ? "the best epoch's weights were not restored" : "the last epoch's weights were replaced");
    }

    [TestMethod]
    public void FreezeBackbone_TrainsOnlyTheHeadFromInitialWeights()
    {
        string folder = TempFolder();
        string pretrained = Path.Combine(folder, "pretrained.safetensors");
        // "Pretrained" on 3 classes; fine-tuned on 2: the head is replaced, the backbone loaded and frozen.
        TrainedModel.CreateInitialized(TinyArchitecture, 1, ["x", "y", "z"], 8, 8, seed: 3).SaveWeights(pretrained);
        var source = TrainedModel.LoadWeights(pretrained);

        var options = TinyOptions();
        options.Epochs = 1;
        options.InitialWeights = pretrained;
        options.FreezeBackboneEpochs = 1;
        var model = new ImageClassifierTrainer(options).Fit(Bars(classes: 2, perClass: 8));

        var loadedConv = source.Network.Parameters.First(p => p.Name == "layer2.0.conv1.weight").Value.Data;
        var trainedConv = model.Network.Parameters.First(p => p.Name == "layer2.0.conv1.weight").Value.Data;
        CollectionAssert.AreEqual(loadedConv, trainedConv, "a frozen backbone weight changed");
        Assert.AreEqual(2, model.Network.Parameters.First(p => p.Name == "fc.weight").Value.N);
        Assert.IsTrue(model.Network.Parameters.All(p => p.Trainable), "parameters stay frozen after training");
    }

    [TestMethod]
    public void BadInput_GetsClearMessages()
    {
        var options = TinyOptions();
        options.Epochs = 1;
        var trainer = new ImageClassifierTrainer(options);

        var single = ImageDataset.FromFloats(new float[4 * 64], [0, 0, 0, 0], 1, 8, 8, ["only"]);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(single)).Message, "at least two");

        var empty = ImageDataset.FromFloats([], [], 1, 8, 8, ["a", "b"]);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(empty)).Message, "no images");

        var outOfRange = new StreamSource(labels: [0, 1, 5, 1], size: 8);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(outOfRange, outOfRange)).Message, "Label 5");

        var mixed = new StreamSource(labels: [0, 1, 0, 1], size: 8, batchSize: 6);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(mixed, mixed)).Message, "mixed sizes");

        var bad = TinyOptions();
        bad.BatchSize = 0;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new ImageClassifierTrainer(bad)).Message, "BatchSize");
    }

    /// <summary>A stream source that declares 8x8 images; with <c>batchSize</c> it yields one batch of 6x6 images instead.</summary>
    private sealed class StreamSource(int[] labels, int size, int? batchSize = null) : IImageBatchSource
    {
        public IReadOnlyList<string> ClassNames { get; } = ["a", "b"];
        public int Channels => 1;
        public int Height => size;
        public int Width => size;
        public int Count => labels.Length;

        public IEnumerable<ImageBatch> ReadEpoch(int epoch, int startBatch, int batch, bool training, int seed, CancellationToken cancellationToken = default)
        {
            int s = batchSize is null ? size : 6;
            yield return new ImageBatch(new float[labels.Length * s * s], labels, 1, s, s);
        }
    }
}
