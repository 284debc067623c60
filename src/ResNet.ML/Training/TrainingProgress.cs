namespace ResNet.ML.Training;

/// <summary>What a progress report is about.</summary>
public enum TrainingPhase
{
    /// <summary>A training step finished.</summary>
    Step,
    /// <summary>An epoch finished and was validated; <see cref="TrainingProgress.Epoch"/> carries the full metrics.</summary>
    EpochEnd,
    /// <summary>A checkpoint was written to <see cref="TrainingProgress.CheckpointPath"/>.</summary>
    Checkpoint,
    /// <summary>Early stopping ended the run.</summary>
    EarlyStopped,
}

/// <summary>One report from <c>ImageClassifierTrainer.Fit</c>, sent as it happens (steps, epoch ends, checkpoints).</summary>
public sealed record TrainingProgress
{
    public TrainingPhase Phase { get; init; }
    /// <summary>Epoch being trained, 1-based.</summary>
    public int EpochNumber { get; init; }
    public int TotalEpochs { get; init; }
    /// <summary>Step within the epoch, 1-based.</summary>
    public int Step { get; init; }
    public int StepsPerEpoch { get; init; }
    /// <summary>Loss of the last step.</summary>
    public double Loss { get; init; }
    public double LearningRate { get; init; }
    /// <summary>Training throughput over the epoch so far.</summary>
    public double ImagesPerSecond { get; init; }
    /// <summary>Training accuracy over the epoch so far.</summary>
    public double TrainAccuracy { get; init; }
    /// <summary>The last validation accuracy (null before the first validation or without validation data).</summary>
    public double? ValidationAccuracy { get; init; }
    /// <summary>On <see cref="TrainingPhase.EpochEnd"/>: the epoch's summary.</summary>
    public EpochMetrics? Epoch { get; init; }
    public string? CheckpointPath { get; init; }
}

/// <summary>The summary of one epoch, kept in the run history and in checkpoints.</summary>
public sealed record EpochMetrics(
    int Epoch, double TrainLoss, double TrainAccuracy, double? ValidationLoss, double? ValidationAccuracy,
    double? ValidationTop5, double LearningRate, double Seconds, double ImagesPerSecond);
