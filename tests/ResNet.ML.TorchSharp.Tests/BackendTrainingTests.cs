using ResNet.ML.Data;
using ResNet.ML.Layers;
using ResNet.ML.Training;

namespace ResNet.ML.TorchSharp.Tests;

/// <summary>The trainer's loop on the TorchSharp backend: accuracy beside the managed engine, checkpoints, resume, the seam's choices.</summary>
[TestClass]
public sealed class BackendTrainingTests
{
    private const string Tiny = "block=basic blocks=1,1,1 widths=8,16,32 stem=cifar stem-width=8 shortcut=A";

    private sealed class Callback(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    private static string TempFolder()
    {
        string path = Path.Combine(Path.GetTempPath(), "resnet-ml-torchsharp-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>The committed Fashion-MNIST subset (copied beside the tests): real images, 28x28, 10 classes.</summary>
    private static (ImageDataset Train, ImageDataset Validation) Fashion(int train, int validation)
    {
        var all = FashionMnist.LoadIdx(Path.Combine(AppContext.BaseDirectory, "fashion-mnist-subset"));
        return (all.Subset(Enumerable.Range(0, train).ToArray()), all.Subset(Enumerable.Range(train, validation).ToArray()));
    }

    private static ResNetTrainerOptions Options(TrainingBackend backend, string? checkpoints = null) => new()
    {
        Architecture = Tiny, Epochs = 2, BatchSize = 32, LearningRate = 0.05f, Schedule = ScheduleKind.Cosine,
        WeightDecay = 5e-4f, Seed = 3, Threads = 2, Backend = backend, Device = TrainingDevice.Cpu,
        Augmentation = Augmentation.FlipOnly, CheckpointFolder = checkpoints,
    };

    private static float[] Weights(Network network) =>
        network.State.SelectMany(e => e.Counter ? [(float)e.GetCounter!()] : e.Value!.Data).ToArray();

    [TestMethod]
    public void BothBackendsReachTheSameAccuracyOnFashionMnist()
    {
        var (train, validation) = Fashion(1536, 512);
        var managed = new ImageClassifierTrainer(Options(TrainingBackend.Managed)).Fit(train, validation);
        var torch = new ImageClassifierTrainer(Options(TrainingBackend.TorchSharp)).Fit(train, validation);
        double a = managed.History[^1].ValidationAccuracy!.Value, b = torch.History[^1].ValidationAccuracy!.Value;
        Console.WriteLine($"validation accuracy after 2 epochs of 1,536 Fashion-MNIST images: managed {a:P2}, TorchSharp {b:P2}; " +
                          $"train loss {managed.History[^1].TrainLoss:F4} vs {torch.History[^1].TrainLoss:F4}");
        Assert.IsTrue(a > 0.5 && b > 0.5, $"both should learn well past chance (10%): managed {a:P1}, TorchSharp {b:P1}");
        Assert.AreEqual(a, b, 0.03, "the backends' accuracies differ by more than 3 points");
        // Same start, same batches, parity per step: the first epoch's loss agrees closely.
        Assert.AreEqual(managed.History[0].TrainLoss, torch.History[0].TrainLoss, 0.01);
        // The TorchSharp-trained network is the managed one's kind: it scores through the managed engine as trained.
        var rescored = torch.Evaluate(validation, 128);
        Assert.AreEqual(b, rescored.Top1Accuracy, 1e-9, "the weights pulled back from libtorch score differently");
    }

    [TestMethod]
    public void TorchSharpCheckpointResumesToTheUninterruptedRunsWeights()
    {
        var (train, validation) = Fashion(256, 64);
        var reference = new ImageClassifierTrainer(Options(TrainingBackend.TorchSharp, TempFolder())).Fit(train, validation);

        using var cancel = new CancellationTokenSource();
        var trainer = new ImageClassifierTrainer(Options(TrainingBackend.TorchSharp, TempFolder()));
        var progress = new Callback(p => { if (p.Phase == TrainingPhase.Step && p.EpochNumber == 2 && p.Step == 5) cancel.Cancel(); });
        var canceled = Assert.ThrowsExactly<TrainingCanceledException>(() => trainer.Fit(train, validation, progress, cancel.Token));
        var checkpoint = TrainingCheckpoint.Load(canceled.CheckpointPath!);
        Assert.AreEqual(1, checkpoint.Epoch);
        Assert.AreEqual(5, checkpoint.StepInEpoch);
        var resumed = trainer.Resume(checkpoint, train, validation);
        // On the CPU libtorch's kernels are deterministic for a fixed thread count, and the checkpoint holds every bit of
        // state (weights, BN statistics and counters, optimizer buffers and step), so resuming is bit-identical.
        CollectionAssert.AreEqual(Weights(reference.Network), Weights(resumed.Network), "resumed weights differ from the uninterrupted run's");
        Assert.AreEqual(reference.History[^1].ValidationAccuracy, resumed.History[^1].ValidationAccuracy);
    }

    [TestMethod]
    public void ACheckpointOfOneBackendResumesOnTheOther()
    {
        // Same names, same optimizer buffer names: a run started on the managed engine continues on libtorch.
        var (train, validation) = Fashion(256, 64);
        using var cancel = new CancellationTokenSource();
        var progress = new Callback(p => { if (p.Phase == TrainingPhase.Step && p.EpochNumber == 1 && p.Step == 3) cancel.Cancel(); });
        var canceled = Assert.ThrowsExactly<TrainingCanceledException>(() =>
            new ImageClassifierTrainer(Options(TrainingBackend.Managed, TempFolder())).Fit(train, validation, progress, cancel.Token));
        var resumed = new ImageClassifierTrainer(Options(TrainingBackend.TorchSharp, TempFolder())).Resume(canceled.CheckpointPath!, 
            new ImageDatasetSource(train, Augmentation.FlipOnly), new ImageDatasetSource(validation));
        Assert.HasCount(2, resumed.History);
        Assert.IsTrue(resumed.History[1].TrainLoss < resumed.History[0].TrainLoss,
            $"training on from the managed checkpoint should lower the loss: {resumed.History[0].TrainLoss:F4} then {resumed.History[1].TrainLoss:F4}");
    }

    [TestMethod]
    public void AutoPicksTheManagedEngineWithoutCudaAndCudaIsRefusedWithTheReason()
    {
        var auto = TrainingRunners.Resolve(new ResNetTrainerOptions { Backend = TrainingBackend.Managed, Device = TrainingDevice.Auto });
        if (TorchRuntime.CudaAvailable)
        {
            Assert.AreEqual((TrainingBackend.TorchSharp, TrainingDevice.Cuda), (auto.Backend, auto.Device));
            return;
        }
        Assert.AreEqual((TrainingBackend.Managed, TrainingDevice.Cpu), (auto.Backend, auto.Device));
        var cpu = TrainingRunners.Resolve(new ResNetTrainerOptions { Backend = TrainingBackend.TorchSharp, Device = TrainingDevice.Cpu });
        Assert.AreEqual((TrainingBackend.TorchSharp, TrainingDevice.Cpu), (cpu.Backend, cpu.Device));
        var e = Assert.ThrowsExactly<ArgumentException>(() =>
            TrainingRunners.Resolve(new ResNetTrainerOptions { Backend = TrainingBackend.TorchSharp, Device = TrainingDevice.Cuda }));
        StringAssert.Contains(e.Message, "Cuda");
        StringAssert.Contains(e.Message, "libtorch");
        var managedCuda = Assert.ThrowsExactly<ArgumentException>(() => new ResNetTrainerOptions { Device = TrainingDevice.Cuda }.Validate());
        StringAssert.Contains(managedCuda.Message, "TorchSharp");
    }

    [TestMethod]
    public void TrainsOnCuda()
    {
        if (!TorchRuntime.CudaAvailable)
            Assert.Inconclusive("No CUDA here: the tests reference libtorch-cpu-linux-x64 (CUDA libtorch is not served) and the machine has no GPU.");
        var (train, validation) = Fashion(256, 64);
        var o = Options(TrainingBackend.TorchSharp);
        o.Device = TrainingDevice.Cuda;
        var model = new ImageClassifierTrainer(o).Fit(train, validation);
        Assert.IsTrue(model.History[^1].ValidationAccuracy > 0.3);
    }
}
