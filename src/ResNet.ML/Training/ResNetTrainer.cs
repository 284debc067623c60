using System.Diagnostics;
using System.Text.Json;
using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Tensors;

namespace ResNet.ML.Training;

/// <summary>
/// Trains a ResNet classifier from labelled image batches: <c>new ResNetTrainer(options).Fit(train, validation)</c>
/// returns a <see cref="TrainedModel"/>. Reports progress as it goes, checkpoints to <see cref="ResNetTrainerOptions.CheckpointFolder"/>,
/// stops cleanly on cancellation (after the current step, leaving a checkpoint), and <see cref="Resume(TrainingCheckpoint, IImageBatchSource, IImageBatchSource?, IProgress{TrainingProgress}?, CancellationToken)"/>
/// continues a run to the same weights an uninterrupted run reaches.
/// </summary>
public sealed class ResNetTrainer
{
    private readonly ResNetTrainerOptions _options;

    public ResNetTrainer(ResNetTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options.Clone();
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
        if (o.Threads > 0) EngineBridge.SetThreads(o.Threads);
        (train, validation) = PrepareData(train, validation);
        int channels = train.Channels, height = train.Height, width = train.Width, classes = train.ClassNames.Count;
        string fingerprint = Fingerprint(o, train, validation);

        var network = ModelBridge.Build(o.Architecture, channels, classes, height, width);
        var parameters = network.Parameters.ToList();
        var optimizer = EngineBridge.CreateOptimizer(o, parameters);
        var run = new RunState();
        Preprocessing preprocessing;
        if (checkpoint is null)
        {
            ModelBridge.Initialize(network, o.Seed);
            if (o.InitialWeights is not null) LoadInitialWeights(network, o.InitialWeights);
            preprocessing = o.NormalizationMean is not null
                ? new Preprocessing(o.PixelScale, o.NormalizationMean, o.NormalizationStd!)
                : Preprocessing.FromData(train, o.PixelScale);
            preprocessing.Validate(channels);
            run.AugmentRng = new Rng(((ulong)(uint)o.Seed << 32) ^ 0xA06UL);
        }
        else
        {
            var s = checkpoint.State;
            if (s.Fingerprint != fingerprint) throw new InvalidDataException(DescribeMismatch(s.Fingerprint, fingerprint));
            // Everything is checked before anything is copied, so a refused checkpoint leaves nothing half-loaded.
            StateDict.Load(network, checkpoint.ModelTensors, "The checkpoint");
            optimizer.ImportState(checkpoint.OptimizerState, s.OptimizerSteps);
            preprocessing = s.Preprocessing;
            run = RunState.From(s);
        }

        var stopwatch = new Stopwatch();
        int stepsPerEpoch = (train.Count + o.BatchSize - 1) / o.BatchSize;
        long totalSteps = (long)stepsPerEpoch * o.Epochs;
        var input = new Tensor(0, channels, height, width);
        Tensor? grad = null;
        int sample = channels * height * width;
        bool stopped = false;

        for (; run.Epoch < o.Epochs && !stopped; run.Epoch++)
        {
            SetBackboneFrozen(network, frozen: run.Epoch < o.FreezeBackboneEpochs);
            int step = 0;
            stopwatch.Restart();
            foreach (var batch in train.ReadEpoch(run.Epoch, o.BatchSize, shuffle: true, seed: o.Seed))
            {
                if (step++ < run.StepInEpoch) continue;   // resumed mid-epoch: these were trained on before
                CheckBatch(batch, train, run.Epoch, step);
                int n = batch.Count;
                if (input.N != n) input = new Tensor(n, channels, height, width);
                batch.Pixels.AsSpan(0, n * sample).CopyTo(input.Data);
                Augmenter.Apply(o.Augmentation, input, run.AugmentRng);
                preprocessing.Apply(input.Data, input.Data, n, height * width);

                double lr = EngineBridge.LearningRate(o, run.GlobalStep, totalSteps);
                var logits = network.Forward(input, training: true);
                Tensor.Reuse(ref grad, logits.N, logits.C, logits.H, logits.W);
                double loss = EngineBridge.CrossEntropy(logits, batch.Labels, o.LabelSmoothing, grad!);
                if (!double.IsFinite(loss))
                    throw new NonFiniteException($"The training loss became {loss} at epoch {run.Epoch + 1}, step {step}: training diverged; lower the learning rate (now {lr:G3}).");
                network.ZeroGrad();
                network.Backward(grad!);
                optimizer.Step((float)lr);

                run.EpochLossSum += loss * n;
                run.EpochCorrect += CountCorrect(logits, batch.Labels);
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
                    string? path = SaveCheckpoint(network, optimizer, run, fingerprint, preprocessing, train, progress);
                    throw new TrainingCanceledException(path, run.Epoch, step, ct);
                }
                if (o.CheckpointIntervalSteps > 0 && run.GlobalStep % o.CheckpointIntervalSteps == 0 && step < stepsPerEpoch)
                {
                    run.EpochSeconds = seconds;
                    stopwatch.Restart();
                    SaveCheckpoint(network, optimizer, run, fingerprint, preprocessing, train, progress);
                    run.EpochSeconds = seconds;
                }
            }
            if (step == 0) throw new ArgumentException("The training data yielded no batches.");

            double epochSeconds = run.EpochSeconds + stopwatch.Elapsed.TotalSeconds;
            EvaluationResult? val = validation is null ? null : Evaluate(network, preprocessing, validation, Math.Max(o.BatchSize, 64));
            var metrics = new EpochMetrics(run.Epoch + 1, run.EpochLossSum / run.EpochSeen, (double)run.EpochCorrect / run.EpochSeen,
                val?.Loss, val?.Top1Accuracy, val?.Top5Accuracy, EngineBridge.LearningRate(o, Math.Max(run.GlobalStep - 1, 0), totalSteps),
                epochSeconds, run.EpochSeen / Math.Max(epochSeconds, 1e-9));
            run.History.Add(metrics);
            stopped = UpdateEarlyStopping(run, metrics);
            progress?.Report(new TrainingProgress
            {
                Phase = TrainingPhase.EpochEnd, EpochNumber = run.Epoch + 1, TotalEpochs = o.Epochs, Step = step, StepsPerEpoch = stepsPerEpoch,
                Loss = metrics.TrainLoss, LearningRate = metrics.LearningRate, ImagesPerSecond = metrics.ImagesPerSecond,
                TrainAccuracy = metrics.TrainAccuracy, ValidationAccuracy = metrics.ValidationAccuracy, Epoch = metrics,
            });

            // The checkpoint of a finished epoch points at the start of the next one.
            run.StartNextEpoch();
            run.Epoch++;
            SaveCheckpoint(network, optimizer, run, fingerprint, preprocessing, train, progress);
            run.Epoch--;
            if (stopped)
                progress?.Report(new TrainingProgress { Phase = TrainingPhase.EarlyStopped, EpochNumber = run.Epoch + 1, TotalEpochs = o.Epochs, ValidationAccuracy = metrics.ValidationAccuracy, Epoch = metrics });
            ct.ThrowIfCancellationRequested();
        }

        SetBackboneFrozen(network, frozen: false);
        return new TrainedModel(network, train.ClassNames.ToList(), preprocessing, height, width, run.History);
    }

    /// <summary>Scores <paramref name="data"/> with the network in inference mode.</summary>
    internal static EvaluationResult Evaluate(Network network, Preprocessing preprocessing, IImageBatchSource data, int batchSize, IReadOnlyList<string>? classNames = null)
    {
        var names = classNames ?? data.ClassNames;
        var accumulator = new EvaluationAccumulator(names);
        Tensor input = new(0, data.Channels, data.Height, data.Width);
        int sample = data.Channels * data.Height * data.Width;
        foreach (var batch in data.ReadEpoch(0, batchSize, shuffle: false, seed: 0))
        {
            for (int i = 0; i < batch.Count; i++)
            {
                if ((uint)batch.Labels[i] >= (uint)names.Count)
                    throw new ArgumentException($"Label {batch.Labels[i]} is outside the model's {names.Count} classes (0..{names.Count - 1}).");
            }
            if (input.N != batch.Count) input = new Tensor(batch.Count, data.Channels, data.Height, data.Width);
            preprocessing.Apply(batch.Pixels.AsSpan(0, batch.Count * sample), input.Data, batch.Count, data.Height * data.Width);
            var logits = network.Forward(input, training: false);
            accumulator.Add(logits.Data, batch.Labels);
        }
        return accumulator.Result();
    }

    private (IImageBatchSource Train, IImageBatchSource? Validation) PrepareData(IImageBatchSource train, IImageBatchSource? validation)
    {
        var o = _options;
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count == 0) throw new ArgumentException("The training data holds no images.");
        if (train.ClassNames.Count < 2)
            throw new ArgumentException($"The training data has {train.ClassNames.Count} class{(train.ClassNames.Count == 1 ? "" : "es")}; a classifier needs at least two.");
        if (o.Channels is int c && c != train.Channels)
            throw new ArgumentException($"Option Channels is {c}, but the training images have {train.Channels} channels.");
        if (o.ImageSize is int s && (s != train.Height || s != train.Width))
            throw new ArgumentException($"Option ImageSize is {s}, but the training images are {train.Height}x{train.Width}; resize them when loading.");
        if (validation is not null)
        {
            if (validation.Channels != train.Channels || validation.Height != train.Height || validation.Width != train.Width)
                throw new ArgumentException($"The validation images are [{validation.Channels}, {validation.Height}, {validation.Width}], the training images [{train.Channels}, {train.Height}, {train.Width}].");
            if (!validation.ClassNames.SequenceEqual(train.ClassNames))
                throw new ArgumentException("The validation data's class names differ from the training data's.");
            return (train, validation.Count == 0 ? null : validation);
        }
        if (o.ValidationFraction == 0) return (train, null);
        var all = train as IRandomAccessImageSource ?? Materialize(train);
        var (trainIdx, valIdx) = RandomAccessBatches.StratifiedSplit(all, o.ValidationFraction, o.Seed);
        if (valIdx.Length == 0) return (train, null);
        return (all.Subset(trainIdx), all.Subset(valIdx));
    }

    private static IRandomAccessImageSource Materialize(IImageBatchSource source)
    {
        var pixels = new List<float>();
        var labels = new List<int>();
        foreach (var b in source.ReadEpoch(0, 256, shuffle: false, seed: 0))
        {
            pixels.AddRange(b.Pixels);
            labels.AddRange(b.Labels);
        }
        return new ArrayImageSource(pixels.ToArray(), labels.ToArray(), source.Channels, source.Height, source.Width, source.ClassNames);
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

    private static int CountCorrect(Tensor logits, int[] labels)
    {
        int k = logits.C, correct = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            var row = logits.Data.AsSpan(i * k, k);
            int argmax = 0;
            for (int j = 1; j < k; j++) if (row[j] > row[argmax]) argmax = j;
            if (argmax == labels[i]) correct++;
        }
        return correct;
    }

    private bool UpdateEarlyStopping(RunState run, EpochMetrics m)
    {
        var es = _options.EarlyStopping;
        if (es is null || m.ValidationAccuracy is null) return false;
        double value = es.Metric == EarlyStoppingMetric.ValidationAccuracy ? m.ValidationAccuracy.Value : -m.ValidationLoss!.Value;
        if (run.BestMetric is null || value > run.BestMetric.Value + es.MinDelta)
        {
            run.BestMetric = value;
            run.EpochsWithoutImprovement = 0;
            return false;
        }
        return ++run.EpochsWithoutImprovement >= es.Patience;
    }

    /// <summary>The head is the last Linear layer; freezing the backbone leaves only it trainable.</summary>
    private static void SetBackboneFrozen(Network network, bool frozen)
    {
        var head = network.AllLayers.OfType<Linear>().LastOrDefault();
        var headParameters = head?.Parameters.ToHashSet() ?? [];
        foreach (var p in network.Parameters) p.Trainable = !frozen || headParameters.Contains(p);
    }

    private static void LoadInitialWeights(Network network, string path)
    {
        var head = network.AllLayers.OfType<Linear>().LastOrDefault()?.Name;
        IReadOnlyList<SafetensorsTensor> tensors;
        try
        {
            using var stream = File.OpenRead(path);
            tensors = Safetensors.Read(stream, $"Initial weights '{path}'").Tensors;
        }
        catch (FileNotFoundException) { throw new FileNotFoundException($"Initial weights '{path}' do not exist.", path); }
        // The head is replaced for the new class count: its tensors in the file are ignored.
        StateDict.Load(network, tensors, $"Initial weights '{path}'", skip: name => head is not null && name.StartsWith(head + ".", StringComparison.Ordinal));
    }

    private string? SaveCheckpoint(Network network, ITrainerOptimizer optimizer, RunState run, string fingerprint,
        Preprocessing preprocessing, IImageBatchSource train, IProgress<TrainingProgress>? progress)
    {
        if (_options.CheckpointFolder is null) return null;
        var checkpoint = new TrainingCheckpoint
        {
            State = run.ToState(fingerprint, _options.Architecture, train, preprocessing, optimizer.StepCount),
            ModelTensors = StateDict.ToTensors(network),
            OptimizerState = optimizer.ExportState().ToDictionary(s => s.Name, s => (float[])s.Values.Clone()),
        };
        string path = Path.Combine(_options.CheckpointFolder, TrainingCheckpoint.FileName);
        checkpoint.Save(path);
        progress?.Report(new TrainingProgress { Phase = TrainingPhase.Checkpoint, EpochNumber = run.Epoch + 1, TotalEpochs = _options.Epochs, Step = run.StepInEpoch, CheckpointPath = path });
        return path;
    }

    /// <summary>What must be equal for a checkpoint to continue this run: options that shape the trajectory, and the data's shape.</summary>
    private static string Fingerprint(ResNetTrainerOptions o, IImageBatchSource train, IImageBatchSource? validation) =>
        JsonSerializer.Serialize(new SortedDictionary<string, string>
        {
            ["Architecture"] = o.Architecture,
            ["Input"] = $"{train.Channels}x{train.Height}x{train.Width}",
            ["Classes"] = string.Join("|", train.ClassNames),
            ["TrainingImages"] = train.Count.ToString(),
            ["ValidationImages"] = (validation?.Count ?? 0).ToString(),
            ["Epochs"] = o.Epochs.ToString(),
            ["BatchSize"] = o.BatchSize.ToString(),
            ["Optimizer"] = $"{o.Optimizer} lr={o.LearningRate:R} momentum={o.Momentum:R} nesterov={o.Nesterov} wd={o.WeightDecay:R}",
            ["Schedule"] = $"{o.Schedule} milestones={string.Join(",", o.StepMilestones)} warmup={o.WarmupFraction:R}",
            ["LabelSmoothing"] = o.LabelSmoothing.ToString("R"),
            ["Augmentation"] = o.Augmentation.ToString(),
            ["Seed"] = o.Seed.ToString(),
            ["InitialWeights"] = o.InitialWeights is null ? "none" : Path.GetFileName(o.InitialWeights) + $" frozen={o.FreezeBackboneEpochs}",
        });

    private static string DescribeMismatch(string saved, string current)
    {
        var a = JsonSerializer.Deserialize<Dictionary<string, string>>(saved) ?? [];
        var b = JsonSerializer.Deserialize<Dictionary<string, string>>(current) ?? [];
        var diff = b.Keys.Union(a.Keys).Where(k => a.GetValueOrDefault(k) != b.GetValueOrDefault(k))
            .Select(k => $"{k} was {a.GetValueOrDefault(k, "unset")}, now {b.GetValueOrDefault(k, "unset")}").ToList();
        return $"The checkpoint belongs to a different run and cannot be resumed with these options and data: {string.Join("; ", diff)}.";
    }

    private sealed class RunState
    {
        public int Epoch;
        public int StepInEpoch;
        public long GlobalStep;
        public Rng AugmentRng = new(0);
        public double EpochLossSum;
        public long EpochCorrect;
        public long EpochSeen;
        public double EpochSeconds;
        public double? BestMetric;
        public int EpochsWithoutImprovement;
        public List<EpochMetrics> History = [];

        public void StartNextEpoch()
        {
            StepInEpoch = 0;
            EpochLossSum = 0; EpochCorrect = 0; EpochSeen = 0; EpochSeconds = 0;
        }

        public static RunState From(CheckpointState s) => new()
        {
            Epoch = s.Epoch, StepInEpoch = s.StepInEpoch, GlobalStep = s.GlobalStep, AugmentRng = Rng.FromState(s.AugmentRng),
            EpochLossSum = s.EpochLossSum, EpochCorrect = s.EpochCorrect, EpochSeen = s.EpochSeen, EpochSeconds = s.EpochSeconds,
            BestMetric = s.BestMetric, EpochsWithoutImprovement = s.EpochsWithoutImprovement, History = [.. s.History],
        };

        public CheckpointState ToState(string fingerprint, string architecture, IImageBatchSource train, Preprocessing preprocessing, long optimizerSteps) => new()
        {
            Fingerprint = fingerprint, Architecture = architecture, Channels = train.Channels, Height = train.Height, Width = train.Width,
            ClassNames = [.. train.ClassNames], Preprocessing = preprocessing, Epoch = Epoch, StepInEpoch = StepInEpoch, GlobalStep = GlobalStep,
            OptimizerSteps = optimizerSteps, AugmentRng = AugmentRng.SaveState(), EpochLossSum = EpochLossSum, EpochCorrect = EpochCorrect,
            EpochSeen = EpochSeen, EpochSeconds = EpochSeconds, BestMetric = BestMetric, EpochsWithoutImprovement = EpochsWithoutImprovement,
            History = [.. History],
        };
    }
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
