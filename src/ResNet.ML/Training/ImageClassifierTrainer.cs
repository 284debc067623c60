using System.Diagnostics;
using System.Text.Json;
using ResNet.ML.Data;
using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Tensors;

namespace ResNet.ML.Training;

/// <summary>
/// Trains a ResNet classifier from labelled image batches: <c>new ImageClassifierTrainer(options).Fit(train, validation)</c>
/// returns a <see cref="TrainedModel"/>. Reports progress as it goes, checkpoints to <see cref="ResNetTrainerOptions.CheckpointFolder"/>,
/// stops cleanly on cancellation (after the current step, leaving a checkpoint), and <see cref="Resume(TrainingCheckpoint, IImageBatchSource, IImageBatchSource?, IProgress{TrainingProgress}?, CancellationToken)"/>
/// continues a run to the same weights an uninterrupted run reaches.
/// </summary>
public sealed class ImageClassifierTrainer
{
    private readonly ResNetTrainerOptions _options;

    public ImageClassifierTrainer(ResNetTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options.Clone();
        if (_options.Pretrained is { } pretrained) _options.Architecture = PretrainedBackbone.ArchitectureOf(pretrained);
    }

    public ResNetTrainerOptions Options => _options.Clone();

    /// <summary>
    /// Trains on <paramref name="train"/>; validates on <paramref name="validation"/>, or when it is null on a stratified
    /// <see cref="ResNetTrainerOptions.ValidationFraction"/> of <paramref name="train"/>.
    /// </summary>
    /// <exception cref="TrainingCanceledException">When <paramref name="cancellationToken"/> fires; names the checkpoint left behind.</exception>
    public TrainedModel Fit(IImageBatchSource train, IImageBatchSource? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Run(train, validation, checkpoint: null, progress, cancellationToken);

    /// <summary>
    /// Trains on an <see cref="ImageDataset"/> (IDX, CIFAR, folders, arrays), read ahead on worker threads and augmented
    /// with <see cref="ResNetTrainerOptions.Augmentation"/>; without <paramref name="validation"/> a stratified
    /// <see cref="ResNetTrainerOptions.ValidationFraction"/> of <paramref name="train"/> is held out.
    /// </summary>
    public TrainedModel Fit(ImageDataset train, ImageDataset? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var (t, v) = Sources(train, validation);
        return Run(t, v, checkpoint: null, progress, cancellationToken);
    }

    /// <summary>Continues a run on an <see cref="ImageDataset"/> (see <see cref="Fit(ImageDataset, ImageDataset?, IProgress{TrainingProgress}?, CancellationToken)"/>).</summary>
    public TrainedModel Resume(TrainingCheckpoint checkpoint, ImageDataset train, ImageDataset? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var (t, v) = Sources(train, validation);
        return Run(t, v, checkpoint, progress, cancellationToken);
    }

    private (IImageBatchSource Train, IImageBatchSource? Validation) Sources(ImageDataset train, ImageDataset? validation)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count == 0) throw new ArgumentException($"{train.Source}: the training data holds no images.");
        // Without validation data, PrepareData carves the validation split: the one place it is made.
        return (new ImageDatasetSource(train, _options.Augmentation), validation is null ? null : new ImageDatasetSource(validation));
    }

    /// <summary>Continues the run saved in <paramref name="checkpoint"/>, with the same options and data it was made with.</summary>
    public TrainedModel Resume(TrainingCheckpoint checkpoint, IImageBatchSource train, IImageBatchSource? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Run(train, validation, checkpoint ?? throw new ArgumentNullException(nameof(checkpoint)), progress, cancellationToken);

    /// <summary>Continues the run saved in the checkpoint file at <paramref name="checkpointPath"/>.</summary>
    public TrainedModel Resume(string checkpointPath, IImageBatchSource train, IImageBatchSource? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Resume(TrainingCheckpoint.Load(checkpointPath), train, validation, progress, cancellationToken);

    private TrainedModel Run(IImageBatchSource train, IImageBatchSource? validation, TrainingCheckpoint? checkpoint,
        IProgress<TrainingProgress>? progress, CancellationToken ct)
    {
        var o = _options;
        // The engine's thread count is this thread's, for this run only: another training in the process keeps its own.
        using var threads = Tensors.Engine.UseThreads(o.Threads > 0 ? o.Threads : Environment.ProcessorCount);
        (train, validation) = PrepareData(train, validation);
        if (o.Channels is int wanted && o.Normalization is { } given && given.Mean.Length != 1 && given.Mean.Length != wanted)
            throw new ArgumentException($"Option Normalization has {given.Mean.Length} channel statistics for {wanted}-channel images.");
        int channels = train.Channels, height = train.Height, width = train.Width, classes = train.ClassNames.Count;
        if (o.Pretrained is not null) PretrainedBackbone.CheckInputSize(o.Pretrained, height, width);
        // A resumed run has its weights in the checkpoint; only a fresh one reads the package's files.
        var pretrained = o.Pretrained is null || checkpoint is not null ? null : PretrainedBackbone.Load(o.Pretrained);
        // Hashing the data costs one pass over it, paid only when a checkpoint is written or read.
        bool hashData = o.CheckpointFolder is not null || checkpoint is not null;
        string fingerprint = Fingerprint(o, train, validation, hashData);

        var built = TrainingSetup.Network(o.Architecture, channels, classes, height, width);
        TrainingSetup.Initialize(built, o.Seed);
        // The engine behind the seam (managed or TorchSharp); the network stays the host copy of the state.
        using var runner = TrainingRunners.Create(built, o);
        var network = runner.Network;
        var run = new RunState();
        Normalization normalization;
        if (checkpoint is null)
        {
            if (o.InitialWeights is not null) LoadInitialWeights(network, o.InitialWeights);
            pretrained?.LoadInto(network);
            if (o.InitialWeights is not null || pretrained is not null) runner.PushState();
            normalization = o.Normalization ?? pretrained?.Normalization(channels) ?? ComputeNormalization(train, o.PixelScale);
            normalization.CheckChannels(channels);
        }
        else
        {
            var s = checkpoint.State;
            if (s.Fingerprint != fingerprint) throw new InvalidDataException(DescribeMismatch(s.Fingerprint, fingerprint));
            // Everything is checked before anything is copied, so a refused checkpoint leaves nothing half-loaded.
            try { runner.ImportOptimizerState(new OptimizerState(s.OptimizerKind, s.OptimizerSteps, checkpoint.OptimizerState)); }
            catch (ArgumentException e) { throw new InvalidDataException($"The checkpoint's optimizer state does not fit: {e.Message}", e); }
            StateDict.Load(network, checkpoint.ModelTensors, "The checkpoint");
            runner.PushState();
            normalization = checkpoint.Model.Normalization;
            run = RunState.From(s);
            if (checkpoint.BestModelTensors.Count > 0) run.BestWeights = [.. checkpoint.BestModelTensors];
        }

        // Batches come in source units and are normalized below: erasing must fill with what that maps to 0.
        if (train is ImageDatasetSource { Augmentation.RandomErasing: not null } erasing) erasing.NormalizedLater(normalization);

        var stopwatch = new Stopwatch();
        int stepsPerEpoch = (train.Count + o.BatchSize - 1) / o.BatchSize;
        long totalSteps = (long)stepsPerEpoch * o.Epochs;
        var schedule = TrainingSetup.Schedule(o, totalSteps);
        // Once the backbone trains, the whole network follows the schedule scaled by the fine-tuning factor.
        double Rate(long globalStep, int epoch) => schedule.At(globalStep) * (epoch >= o.FreezeBackboneEpochs ? o.FineTuneFactor : 1.0);
        var input = new Tensor(0, channels, height, width);
        int sample = channels * height * width;
        bool stopped = false;
        TrainingCheckpoint? finalCheckpoint = null;

        for (; run.Epoch < o.Epochs && !stopped; run.Epoch++)
        {
            SetBackboneFrozen(network, frozen: run.Epoch < o.FreezeBackboneEpochs);
            int step = run.StepInEpoch;
            stopwatch.Restart();
            // The reader is not given the token: cancellation is honored between steps, where a checkpoint can be written.
            foreach (var batch in train.ReadEpoch(run.Epoch, run.StepInEpoch, o.BatchSize, training: true, o.Seed))
            {
                step++;
                CheckBatch(batch, train, run.Epoch, step);
                int n = batch.Count;
                if (input.N != n) input = new Tensor(n, channels, height, width);
                // One pass from the source's reused buffer into the network's input, normalized on the way.
                normalization.Apply(batch.Pixels.AsSpan(0, n * sample), input);

                double lr = Rate(run.GlobalStep, run.Epoch);
                double loss;
                int correct;
                try { (loss, correct) = runner.TrainStep(input, batch.Labels, (float)lr, run.GlobalStep); }
                catch (NonFiniteException) { throw Diverged(run, step, lr, "the loss became NaN or infinite"); }
                // A loss can stay finite while an update overflows a weight or a BN statistic; scanning the weights costs
                // well under 1 % of a step and stops the run at the step that broke, before anything is written. A runner
                // with its own copy of the state (TorchSharp) is checked when that copy is pulled for a checkpoint, and
                // the writers refuse non-finite tensors whatever trained them.
                if (runner is ManagedTrainingRunner && FiniteWeights.FirstNonFinite(network) is var (tensor, index, value))
                    throw Diverged(run, step, lr, $"the update left {value} in tensor '{tensor}' (element {index})");

                run.EpochLossSum += loss * n;
                run.EpochCorrect += correct;
                run.EpochSeen += n;
                run.StepInEpoch = step;
                run.GlobalStep++;
                double seconds = run.EpochSeconds + stopwatch.Elapsed.TotalSeconds;
                progress?.Report(new TrainingProgress
                {
                    Phase = TrainingPhase.Step, EpochNumber = run.Epoch + 1, TotalEpochs = o.Epochs, Step = step, StepsPerEpoch = stepsPerEpoch,
                    Loss = loss, LearningRate = lr, ImagesPerSecond = run.EpochSeen / Math.Max(seconds, 1e-9),
                    TrainAccuracy = (double)run.EpochCorrect / run.EpochSeen, ValidationAccuracy = run.History.LastOrDefault()?.ValidationAccuracy,
                });

                if (ct.IsCancellationRequested)
                {
                    run.EpochSeconds = seconds;
                    string? path = SaveCheckpoint(runner, run, fingerprint, normalization, train, progress);
                    throw new TrainingCanceledException(path, run.Epoch, step, ct);
                }
                if (o.CheckpointIntervalSteps > 0 && run.GlobalStep % o.CheckpointIntervalSteps == 0 && step < stepsPerEpoch)
                {
                    run.EpochSeconds = seconds;
                    stopwatch.Restart();
                    SaveCheckpoint(runner, run, fingerprint, normalization, train, progress);
                }
            }
            if (step != stepsPerEpoch)
                throw new ArgumentException($"The training data yielded {step} batches in epoch {run.Epoch + 1}, not the {stepsPerEpoch} its {train.Count} images make; a source must give the same images every epoch.");

            double epochSeconds = run.EpochSeconds + stopwatch.Elapsed.TotalSeconds;
            runner.PullState();
            EvaluationResult? val = validation is null ? null : Evaluate(runner.Infer, normalization, validation, Math.Max(o.BatchSize, 64));
            var metrics = new EpochMetrics(run.Epoch + 1, run.EpochLossSum / run.EpochSeen, (double)run.EpochCorrect / run.EpochSeen,
                val?.Loss, val?.Top1Accuracy, val?.Top5Accuracy, Rate(Math.Max(run.GlobalStep - 1, 0), run.Epoch),
                epochSeconds, run.EpochSeen / Math.Max(epochSeconds, 1e-9));
            run.History.Add(metrics);
            stopped = UpdateEarlyStopping(run, metrics, network);
            progress?.Report(new TrainingProgress
            {
                Phase = TrainingPhase.EpochEnd, EpochNumber = run.Epoch + 1, TotalEpochs = o.Epochs, Step = step, StepsPerEpoch = stepsPerEpoch,
                Loss = metrics.TrainLoss, LearningRate = metrics.LearningRate, ImagesPerSecond = metrics.ImagesPerSecond,
                TrainAccuracy = metrics.TrainAccuracy, ValidationAccuracy = metrics.ValidationAccuracy, Epoch = metrics,
            });

            // The checkpoint of a finished epoch points at the start of the next one.
            bool last = stopped || run.Epoch + 1 >= o.Epochs;
            run.StartNextEpoch();
            run.Epoch++;
            var pending = BuildCheckpoint(runner, run, fingerprint, normalization, train);
            run.Epoch--;
            string? saved = null;
            if (last && BeforeFinalCheckpoint is not null) finalCheckpoint = pending;
            else saved = SaveCheckpoint(pending, progress);
            if (stopped && o.EarlyStopping!.RestoreBestWeights && run.BestWeights is { } best)
            {
                StateDict.Load(network, best, "The best epoch's weights");
                runner.PushState();
            }
            if (stopped)
                progress?.Report(new TrainingProgress { Phase = TrainingPhase.EarlyStopped, EpochNumber = run.Epoch + 1, TotalEpochs = o.Epochs, ValidationAccuracy = metrics.ValidationAccuracy, Epoch = metrics });
            if (ct.IsCancellationRequested && run.Epoch + 1 < o.Epochs && !stopped)
                throw new TrainingCanceledException(saved, run.Epoch, step, ct);
        }

        runner.PullState();
        SetBackboneFrozen(network, frozen: false);
        var model = new TrainedModel(network, train.ClassNames.ToList(), normalization, height, width, run.History);
        if (BeforeFinalCheckpoint is { } deliver)
        {
            try { deliver(model); }
            catch
            {
                // The deliverables failed (a full disk, say): still try to keep the finished run resumable.
                try { SaveCheckpoint(finalCheckpoint, progress); } catch (IOException) { }
                throw;
            }
            SaveCheckpoint(finalCheckpoint, progress);
        }
        return model;
    }

    /// <summary>
    /// Called with the finished model before the run's final checkpoint is written, to write what the run is for (an
    /// exported model, say) first: the final checkpoint needs room for a second copy of the old one, and when the disk
    /// is too full for it the model must already be safe. When the callback throws, the checkpoint is still attempted
    /// and the callback's exception propagates; an exception from the checkpoint after a successful callback
    /// propagates too (the callback's files are complete by then).
    /// </summary>
    public Action<TrainedModel>? BeforeFinalCheckpoint { get; set; }

    private TrainingDivergedException Diverged(RunState run, int step, double lr, string what)
    {
        string? kept = _options.CheckpointFolder is { } folder && File.Exists(Path.Combine(folder, TrainingCheckpoint.FileName))
            ? Path.Combine(folder, TrainingCheckpoint.FileName) : null;
        return new TrainingDivergedException(kept, run.Epoch, step, run.GlobalStep + 1, lr, what);
    }

    /// <summary>Scores <paramref name="data"/> with the network in inference mode.</summary>
    internal static EvaluationResult Evaluate(Network network, Normalization normalization, IImageBatchSource data, int batchSize,
        IReadOnlyList<string>? classNames = null, CancellationToken ct = default) =>
        Evaluate(input => network.Forward(input, training: false), normalization, data, batchSize, classNames, ct);

    /// <summary>Scores <paramref name="data"/> with <paramref name="infer"/> (inference-mode logits of a normalized batch).</summary>
    internal static EvaluationResult Evaluate(Func<Tensor, Tensor> infer, Normalization normalization, IImageBatchSource data, int batchSize,
        IReadOnlyList<string>? classNames = null, CancellationToken ct = default)
    {
        var names = classNames ?? data.ClassNames;
        var accumulator = new EvaluationAccumulator(names);
        Tensor input = new(0, data.Channels, data.Height, data.Width);
        int sample = data.Channels * data.Height * data.Width;
        foreach (var batch in data.ReadEpoch(0, 0, batchSize, training: false, seed: 0, ct))
        {
            for (int i = 0; i < batch.Count; i++)
            {
                if ((uint)batch.Labels[i] >= (uint)names.Count)
                    throw new ArgumentException($"Label {batch.Labels[i]} is outside the model's {names.Count} classes (0..{names.Count - 1}).");
            }
            if (input.N != batch.Count) input = new Tensor(batch.Count, data.Channels, data.Height, data.Width);
            batch.Pixels.AsSpan(0, batch.Count * sample).CopyTo(input.Data);
            normalization.Apply(input);
            var logits = infer(input);
            accumulator.Add(logits.Data, batch.Labels);
        }
        return accumulator.Result();
    }

    /// <summary>Per-channel mean and standard deviation of the scaled training pixels (one in-order pass).</summary>
    internal static Normalization ComputeNormalization(IImageBatchSource source, float scale)
    {
        if (source is ImageDatasetSource ds) return Normalization.Compute(ds.Dataset, scale);
        var moments = new Normalization.PixelMoments(source.Channels, scale);
        int sample = source.Channels * source.Height * source.Width, index = 0;
        foreach (var batch in source.ReadEpoch(0, 0, 256, training: false, seed: 0))
        {
            CheckBatch(batch, source, 0, ++index);
            for (int n = 0; n < batch.Count; n++) moments.Add(batch.Pixels.AsSpan(n * sample, sample));
        }
        if (moments.Images == 0) throw new ArgumentException("The training data holds no images.");
        return moments.Result();
    }

    private (IImageBatchSource Train, IImageBatchSource? Validation) PrepareData(IImageBatchSource train, IImageBatchSource? validation)
    {
        var o = _options;
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count == 0) throw new ArgumentException("The training data holds no images.");
        if (train.ClassNames.Count < 2)
            throw new ArgumentException(train.ClassNames.Count == 0 ? "The training data has no classes." :
                $"The training data has only one class ('{train.ClassNames[0]}'); a classifier needs at least two.");
        if (o.Channels is int c && c != train.Channels)
            throw new ArgumentException($"Option Channels is {c}, but the training images have {train.Channels} channels.");
        if (o.ImageSize is int s && (s != train.Height || s != train.Width))
            throw new ArgumentException($"Option ImageSize is {s}, but the training images are {train.Height}x{train.Width}; resize them when loading.");
        if (train is ImageDatasetSource { Dataset: var dataset })
        {
            var present = dataset.CountPerClass().Select((count, c) => (count, c)).Where(x => x.count > 0).ToList();
            if (present.Count < 2)
                throw new ArgumentException($"{dataset.Source}: the training images are all of one class ('{train.ClassNames[present[0].c]}'); a classifier needs at least two.");
        }
        if (validation is not null)
        {
            if (validation.Channels != train.Channels || validation.Height != train.Height || validation.Width != train.Width)
                throw new ArgumentException($"The validation images are [{validation.Channels}, {validation.Height}, {validation.Width}], the training images [{train.Channels}, {train.Height}, {train.Width}].");
            if (!validation.ClassNames.SequenceEqual(train.ClassNames))
                throw new ArgumentException("The validation data's class names differ from the training data's.");
            return (train, validation.Count == 0 ? null : validation);
        }
        if (o.ValidationFraction == 0) return (train, null);
        var all = train is ImageDatasetSource ds ? ds.Dataset : Materialize(train);
        var (t, v) = all.StratifiedSplit(o.ValidationFraction, (ulong)(uint)o.Seed);
        var augmentation = (train as ImageDatasetSource)?.Augmentation;
        return (new ImageDatasetSource(t, augmentation), v.Count == 0 ? null : new ImageDatasetSource(v));
    }

    /// <summary>Reads a stream source into memory once, so it can be split.</summary>
    private static ImageDataset Materialize(IImageBatchSource source)
    {
        int sample = source.Channels * source.Height * source.Width;
        var pixels = new float[(long)source.Count * sample];
        var labels = new int[source.Count];
        int n = 0;
        foreach (var b in source.ReadEpoch(0, 0, 256, training: false, seed: 0))
        {
            if (n + b.Count > labels.Length) throw new ArgumentException($"The training data yielded more than the {source.Count} images it declares.");
            b.Pixels.AsSpan(0, b.Count * sample).CopyTo(pixels.AsSpan(n * sample));
            b.Labels.AsSpan(0, b.Count).CopyTo(labels.AsSpan(n));
            n += b.Count;
        }
        if (n != labels.Length) throw new ArgumentException($"The training data yielded {n} images, not the {source.Count} it declares.");
        return ImageDataset.FromFloats(pixels, labels, source.Channels, source.Height, source.Width, source.ClassNames, "the training batches");
    }

    private static void CheckBatch(ImageBatch batch, IImageBatchSource source, int epoch, int step)
    {
        if (batch.Channels != source.Channels || batch.Height != source.Height || batch.Width != source.Width)
            throw new ArgumentException($"Batch {step} of epoch {epoch + 1} holds [{batch.Channels}, {batch.Height}, {batch.Width}] images, but the data declares [{source.Channels}, {source.Height}, {source.Width}]; images of mixed sizes need resizing when loading.");
        int k = source.ClassNames.Count;
        for (int i = 0; i < batch.Count; i++)
        {
            if ((uint)batch.Labels[i] >= (uint)k)
                throw new ArgumentException($"Label {batch.Labels[i]} (batch {step} of epoch {epoch + 1}, image {i}) is outside the {k} classes (0..{k - 1}).");
        }
    }

    private bool UpdateEarlyStopping(RunState run, EpochMetrics m, Network network)
    {
        var es = _options.EarlyStopping;
        if (es is null || m.ValidationAccuracy is null) return false;
        double value = es.Metric == EarlyStoppingMetric.ValidationAccuracy ? m.ValidationAccuracy.Value : -m.ValidationLoss!.Value;
        if (run.BestMetric is null || value > run.BestMetric.Value + es.MinDelta)
        {
            run.BestMetric = value;
            run.EpochsWithoutImprovement = 0;
            if (es.RestoreBestWeights) run.BestWeights = StateDict.ToTensors(network);
            return false;
        }
        return ++run.EpochsWithoutImprovement >= es.Patience;
    }

    /// <summary>
    /// The head is the last layer (<c>fc</c>); freezing the backbone leaves only it trainable, and its batch norms
    /// normalize with their pretrained running statistics (eval mode) instead of drifting towards the new data's.
    /// </summary>
    private static void SetBackboneFrozen(Network network, bool frozen)
    {
        var headParameters = network.Layers[^1].Parameters.ToHashSet();
        foreach (var p in network.Parameters) p.Trainable = !frozen || headParameters.Contains(p);
        foreach (var bn in network.AllLayers.OfType<BatchNorm2d>()) bn.UseRunningStatistics = frozen;
    }

    /// <summary>Loads everything but the head (the last layer), which stays freshly initialized for the new class count.</summary>
    private static void LoadInitialWeights(Network network, string path) => ModelWeights.LoadBackbone(network, path);

    private TrainingCheckpoint? BuildCheckpoint(ITrainingRunner runner, RunState run, string fingerprint, Normalization normalization, IImageBatchSource train)
    {
        if (_options.CheckpointFolder is null) return null;
        runner.PullState();
        var state = runner.ExportOptimizerState();
        return new TrainingCheckpoint
        {
            Model = new ModelDescription(runner.Network.Architecture, train.Channels, train.Height, train.Width, train.ClassNames, normalization),
            State = run.ToState(fingerprint, state.Kind, state.Step) with { Threads = _options.Threads > 0 ? _options.Threads : Environment.ProcessorCount },
            ModelTensors = StateDict.ToTensors(runner.Network),
            OptimizerState = state.Buffers,
            BestModelTensors = run.BestWeights ?? [],
        };
    }

    private string? SaveCheckpoint(ITrainingRunner runner, RunState run, string fingerprint, Normalization normalization,
        IImageBatchSource train, IProgress<TrainingProgress>? progress) =>
        SaveCheckpoint(BuildCheckpoint(runner, run, fingerprint, normalization, train), progress);

    private string? SaveCheckpoint(TrainingCheckpoint? checkpoint, IProgress<TrainingProgress>? progress)
    {
        if (checkpoint is null || _options.CheckpointFolder is null) return null;
        string path = Path.Combine(_options.CheckpointFolder, TrainingCheckpoint.FileName);
        checkpoint.Save(path);
        progress?.Report(new TrainingProgress { Phase = TrainingPhase.Checkpoint, EpochNumber = checkpoint.Epoch + 1, TotalEpochs = _options.Epochs, Step = checkpoint.StepInEpoch, CheckpointPath = path });
        return path;
    }

    /// <summary>What must be equal for a checkpoint to continue this run: options that shape the trajectory, and the data's shape.</summary>
    private static string Fingerprint(ResNetTrainerOptions o, IImageBatchSource train, IImageBatchSource? validation, bool hashData)
    {
        var entries = new SortedDictionary<string, string>
        {
            ["TrainingData"] = hashData ? "content " + ContentHash(train) : "not hashed",
            ["ValidationData"] = validation is null ? "none" : hashData ? "content " + ContentHash(validation) : "not hashed",
            ["Architecture"] = o.Architecture,
            ["Input"] = $"{train.Channels}x{train.Height}x{train.Width}",
            ["Classes"] = string.Join("|", train.ClassNames),
            ["TrainingImages"] = train.Count.ToString(),
            ["ValidationImages"] = (validation?.Count ?? 0).ToString(),
            ["Epochs"] = o.Epochs.ToString(),
            ["BatchSize"] = o.BatchSize.ToString(),
            ["Optimizer"] = $"{o.Optimizer} lr={o.ResolvedLearningRate:R} momentum={o.Momentum:R} nesterov={o.Nesterov} wd={o.ResolvedWeightDecay:R}",
            ["Schedule"] = $"{o.Schedule} milestones={string.Join(",", o.StepMilestones)} warmup={o.WarmupFraction:R}",
            ["LabelSmoothing"] = o.LabelSmoothing.ToString("R"),
            ["Augmentation"] = (train as ImageDatasetSource)?.Augmentation?.ToString() ?? "none",
            ["Normalization"] = o.Normalization?.ToString() ?? $"computed, scale {o.PixelScale:R}",
            ["Seed"] = o.Seed.ToString(),
            ["InitialWeights"] = o.InitialWeights is null ? "none" : Path.GetFileName(o.InitialWeights) + $" frozen={o.FreezeBackboneEpochs}",
        };
        // Only runs that have them carry these entries, so checkpoints written before they existed still resume.
        if (o.Pretrained is not null) entries["Pretrained"] = $"{o.Pretrained} frozen={o.FreezeBackboneEpochs}";
        if (o.FineTuneFactor != 1.0) entries["FineTuneLearningRateFactor"] = o.FineTuneFactor.ToString("R");
        return JsonSerializer.Serialize(entries);
    }

    /// <summary>The content hash of a source: its dataset's, or one in-order pass over a stream source's batches.</summary>
    private static string ContentHash(IImageBatchSource source)
    {
        if (source is ImageDatasetSource ds) return ds.Dataset.ContentHash;
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        int sample = source.Channels * source.Height * source.Width;
        foreach (var b in source.ReadEpoch(0, 0, 256, training: false, seed: 0))
        {
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.Labels.AsSpan(0, b.Count)));
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.Pixels.AsSpan(0, b.Count * sample)));
        }
        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    private static string DescribeMismatch(string saved, string current)
    {
        var a = JsonSerializer.Deserialize<Dictionary<string, string>>(saved) ?? [];
        var b = JsonSerializer.Deserialize<Dictionary<string, string>>(current) ?? [];
        var diff = b.Keys.Union(a.Keys).Where(k => a.GetValueOrDefault(k) != b.GetValueOrDefault(k))
            .Select(k => k is "TrainingData" or "ValidationData" && a.ContainsKey(k) && b.ContainsKey(k)
                ? $"{k} differs: the {(k == "TrainingData" ? "training" : "validation")} images or labels are not the ones the run was made with (same count, other content; hash {Short(a[k])} was saved, {Short(b[k])} is given)"
                : $"{k} was {a.GetValueOrDefault(k, "unset")}, now {b.GetValueOrDefault(k, "unset")}").ToList();
        return $"The checkpoint belongs to a different run and cannot be resumed with these options and data: {string.Join("; ", diff)}.";
    }

    private static string Short(string hash) => hash.Length > 20 ? hash[..20] + "…" : hash;

    private sealed class RunState
    {
        public int Epoch;
        public int StepInEpoch;
        public long GlobalStep;
        public double EpochLossSum;
        public long EpochCorrect;
        public long EpochSeen;
        public double EpochSeconds;
        public double? BestMetric;
        public int EpochsWithoutImprovement;
        public List<EpochMetrics> History = [];
        public List<SafetensorsTensor>? BestWeights;

        public void StartNextEpoch()
        {
            StepInEpoch = 0;
            EpochLossSum = 0; EpochCorrect = 0; EpochSeen = 0; EpochSeconds = 0;
        }

        public static RunState From(CheckpointState s) => new()
        {
            Epoch = s.Epoch, StepInEpoch = s.StepInEpoch, GlobalStep = s.GlobalStep,
            EpochLossSum = s.EpochLossSum, EpochCorrect = s.EpochCorrect, EpochSeen = s.EpochSeen, EpochSeconds = s.EpochSeconds,
            BestMetric = s.BestMetric, EpochsWithoutImprovement = s.EpochsWithoutImprovement, History = [.. s.History],
        };

        public CheckpointState ToState(string fingerprint, string optimizerKind, long optimizerSteps) => new()
        {
            Fingerprint = fingerprint, Epoch = Epoch, StepInEpoch = StepInEpoch, GlobalStep = GlobalStep,
            OptimizerKind = optimizerKind, OptimizerSteps = optimizerSteps, EpochLossSum = EpochLossSum, EpochCorrect = EpochCorrect,
            EpochSeen = EpochSeen, EpochSeconds = EpochSeconds, BestMetric = BestMetric, EpochsWithoutImprovement = EpochsWithoutImprovement,
            History = [.. History],
        };
    }
}

/// <summary>
/// Training stopped because a loss, gradient or weight became NaN or infinite (it diverged). Nothing of the diverged
/// state was written; <see cref="CheckpointPath"/> is the last good checkpoint, when there is one.
/// </summary>
public sealed class TrainingDivergedException(string? checkpointPath, int epoch, int step, long globalStep, double learningRate, string what)
    : Exception(
        $"Training diverged at step {step} of epoch {epoch + 1} (step {globalStep} of the run): {what}. " +
        $"The learning rate ({learningRate.ToString("G3", System.Globalization.CultureInfo.InvariantCulture)} at that step) is most likely too high; start again with a lower one. " +
        (checkpointPath is null ? "No model or checkpoint was written." : $"No model was written; the last good checkpoint '{checkpointPath}' was kept."))
{
    public string? CheckpointPath { get; } = checkpointPath;
    /// <summary>The 1-based step of the run at which a value first became non-finite.</summary>
    public long GlobalStep { get; } = globalStep;
    public double LearningRate { get; } = learningRate;
}

/// <summary>Training was canceled; <see cref="CheckpointPath"/> (when a checkpoint folder was set) resumes it.</summary>
public sealed class TrainingCanceledException(string? checkpointPath, int epoch, int step, CancellationToken token)
    : OperationCanceledException(
        checkpointPath is null
            ? $"Training was canceled after step {step} of epoch {epoch + 1}; no checkpoint folder was set, so it cannot be resumed."
            : $"Training was canceled after step {step} of epoch {epoch + 1}; resume from '{checkpointPath}'.", token)
{
    public string? CheckpointPath { get; } = checkpointPath;
}
