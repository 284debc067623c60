using System.Diagnostics;
using System.Globalization;
using ResNet.ML.Training;
using Spectre.Console;

namespace ResNet.ML.Cli;

/// <summary>
/// Shows training progress: a live progress bar with loss, accuracy and throughput on a terminal, plain lines (a few
/// per epoch, one per epoch end) when output is redirected. Reports arrive on the training thread, in order.
/// </summary>
internal abstract class TrainingReporter : IDisposable
{
    public static TrainingReporter Create(CliOutput cli) => cli.Console is not null ? new LiveReporter(cli) : new PlainReporter(cli);

    public abstract TrainedModel Run(Func<IProgress<TrainingProgress>, TrainedModel> train);

    public virtual void Dispose() { }

    internal static string Percent(double v) => (v * 100).ToString("F2", CultureInfo.InvariantCulture) + "%";

    protected static string EpochLine(EpochMetrics m, int total) =>
        FormattableString.Invariant($"epoch {m.Epoch}/{total}: train loss {m.TrainLoss:F4}, train acc {m.TrainAccuracy:P2}") +
        (m.ValidationAccuracy is double v ? FormattableString.Invariant($", val loss {m.ValidationLoss:F4}, val acc {v:P2}") : "") +
        FormattableString.Invariant($", lr {m.LearningRate:G3}, {m.ImagesPerSecond:F0} img/s, {m.Seconds:F1} s");

    public static void PrintHistory(CliOutput cli, IReadOnlyList<EpochMetrics> history)
    {
        if (history.Count == 0) return;
        cli.Table(["epoch", "loss", "acc", "val loss", "val acc", "val top-5", "lr", "img/s", "s"],
            history.Select(m => new[]
            {
                m.Epoch.ToString(CultureInfo.InvariantCulture), m.TrainLoss.ToString("F4", CultureInfo.InvariantCulture),
                Percent(m.TrainAccuracy),
                m.ValidationLoss?.ToString("F4", CultureInfo.InvariantCulture) ?? "-", m.ValidationAccuracy is double va ? Percent(va) : "-",
                m.ValidationTop5 is double v5 ? Percent(v5) : "-", m.LearningRate.ToString("G3", CultureInfo.InvariantCulture),
                m.ImagesPerSecond.ToString("F0", CultureInfo.InvariantCulture), m.Seconds.ToString("F1", CultureInfo.InvariantCulture),
            }));
    }

    /// <summary>Synchronous <see cref="IProgress{T}"/>: <see cref="Progress{T}"/> would post reports to the thread pool, out of order.</summary>
    protected sealed class Callback(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    private sealed class PlainReporter(CliOutput cli) : TrainingReporter
    {
        private readonly Stopwatch _sinceLine = Stopwatch.StartNew();

        public override TrainedModel Run(Func<IProgress<TrainingProgress>, TrainedModel> train) => train(new Callback(Report));

        private void Report(TrainingProgress p)
        {
            switch (p.Phase)
            {
                case TrainingPhase.Step when _sinceLine.Elapsed.TotalSeconds >= 10 || p.Step == p.StepsPerEpoch:
                    _sinceLine.Restart();
                    cli.Line(string.Create(CultureInfo.InvariantCulture,
                        $"epoch {p.EpochNumber}/{p.TotalEpochs} step {p.Step}/{p.StepsPerEpoch}: loss {p.Loss:F4}, train acc {p.TrainAccuracy:P2}, lr {p.LearningRate:G3}, {p.ImagesPerSecond:F0} img/s"));
                    break;
                case TrainingPhase.EpochEnd:
                    cli.Line(EpochLine(p.Epoch!, p.TotalEpochs));
                    break;
                case TrainingPhase.EarlyStopped:
                    cli.Line($"early stopping after epoch {p.EpochNumber}: validation accuracy stopped improving");
                    break;
                case TrainingPhase.Checkpoint when cli.Verbose:
                    cli.Line($"checkpoint: {p.CheckpointPath}");
                    break;
            }
        }
    }

    private sealed class LiveReporter(CliOutput cli) : TrainingReporter
    {
        public override TrainedModel Run(Func<IProgress<TrainingProgress>, TrainedModel> train)
        {
            TrainedModel? model = null;
            cli.Console!.Progress()
                .AutoClear(false)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 20 }, new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    ProgressTask? task = null;
                    model = train(new Callback(p =>
                    {
                        switch (p.Phase)
                        {
                            case TrainingPhase.Step:
                                if (task is null || task.Description.StartsWith($"epoch {p.EpochNumber}/", StringComparison.Ordinal) is false)
                                {
                                    task?.StopTask();
                                    task = ctx.AddTask($"epoch {p.EpochNumber}/{p.TotalEpochs}", maxValue: p.StepsPerEpoch);
                                    task.Value = p.Step - 1;
                                }
                                task.Value = p.Step;
                                task.Description = FormattableString.Invariant($"epoch {p.EpochNumber}/{p.TotalEpochs} loss {p.Loss:F3} acc {p.TrainAccuracy * 100:F1}% {p.ImagesPerSecond:F0} img/s");
                                break;
                            case TrainingPhase.EpochEnd:
                                if (task is not null)
                                {
                                    var m = p.Epoch!;
                                    task.Description = FormattableString.Invariant($"epoch {m.Epoch}/{p.TotalEpochs} loss {m.TrainLoss:F3} acc {m.TrainAccuracy * 100:F1}%") +
                                        (m.ValidationAccuracy is double va ? FormattableString.Invariant($" val {va * 100:F2}%") : "");
                                    task.StopTask();
                                }
                                break;
                            case TrainingPhase.EarlyStopped:
                                cli.Console!.MarkupLine($"[yellow]early stopping after epoch {p.EpochNumber}[/]");
                                break;
                        }
                    }));
                });
            return model!;
        }
    }
}
