using Microsoft.ML;
using ResNet.ML.Training;

namespace ResNet.ML.MLNet.Tests;

/// <summary>The trainer behaves as ML.NET's own trainers do toward their host: its log, its cancellation, a validation set option.</summary>
[TestClass]
public sealed class HostConventionsTests
{
    private static ResNetTrainer.Options Tiny() => new()
    {
        Architecture = "resnet8 widths=4,8,16 stem-width=4", FeatureColumnName = "Pixels", Epochs = 2, BatchSize = 16, ValidationFraction = 0, Seed = 2,
    };

    private static IDataView Keyed(MLContext ml, int count, int seed)
    {
        var rows = ml.Data.LoadFromEnumerable(ColorImages.PixelRows(count, seed));
        return ml.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
    }

    [TestMethod]
    public void Epoch_lines_go_to_MLContext_Log()
    {
        var ml = new MLContext(seed: 2);
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("ResNetTrainer", StringComparison.Ordinal)) lock (messages) messages.Add(e.Message); };
        new ResNetTrainer(ml, Tiny()).Fit(Keyed(ml, 48, 1));
        string log = string.Join("\n", messages);
        StringAssert.Contains(log, "Training resnet8 widths=4,8,16 stem-width=4 on 48 images [3, 12, 12] of 3 classes");
        StringAssert.Contains(log, "Epoch 1/2: train loss");
        StringAssert.Contains(log, "Epoch 2/2: train loss");
    }

    // MLContext.CancelExecution is ML.NET's host cancellation (AutoML and ML.NET's own hosts call it); ML.NET 5.0.1
    // implements it non-publicly, so the test calls it the way those hosts reach it.
    private static void CancelExecution(MLContext ml) =>
        typeof(MLContext).GetMethod("CancelExecution", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)!.Invoke(ml, null);

    [TestMethod]
    public void MLContext_CancelExecution_stops_training_after_the_current_step()
    {
        var ml = new MLContext(seed: 2);
        int steps = 0;
        var options = Tiny();
        options.Epochs = 5;
        options.Progress = new PixelPipelineTests.SyncProgress<TrainingProgress>(p =>
        {
            if (p.Phase != TrainingPhase.Step) return;
            if (++steps == 2) CancelExecution(ml);
        });
        var data = Keyed(ml, 48, 1);
        Assert.Throws<OperationCanceledException>(() => new ResNetTrainer(ml, options).Fit(data));
        Assert.AreEqual(2, steps, "the step during which the host was canceled is the last");
    }

    [TestMethod]
    public void ValidationSet_option_is_validated_on_after_every_epoch()
    {
        var ml = new MLContext(seed: 2);
        var epochs = new List<EpochMetrics>();
        var options = Tiny();
        options.ValidationSet = Keyed(ml, 30, 9);
        options.Progress = new PixelPipelineTests.SyncProgress<TrainingProgress>(p => { if (p.Phase == TrainingPhase.EpochEnd) epochs.Add(p.Epoch!); });
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("ResNetTrainer", StringComparison.Ordinal)) lock (messages) messages.Add(e.Message); };
        new ResNetTrainer(ml, options).Fit(Keyed(ml, 48, 1));
        Assert.HasCount(2, epochs);
        Assert.IsTrue(epochs.All(e => e.ValidationAccuracy is not null && e.ValidationLoss is not null), "every epoch was validated");
        StringAssert.Contains(string.Join("\n", messages), "on 48 images [3, 12, 12] of 3 classes, validating on 30");
    }
}
