using ResNet.ML.Data;

namespace ResNet.ML.Training;

/// <summary>Which optimizer updates the weights.</summary>
public enum OptimizerKind
{
    /// <summary>SGD with momentum (optionally Nesterov), the paper's optimizer.</summary>
    SgdMomentum,
    /// <summary>Adam with L2 weight decay added to the gradient.</summary>
    Adam,
    /// <summary>Adam with decoupled weight decay.</summary>
    AdamW,
}

/// <summary>How the learning rate moves over the run.</summary>
public enum ScheduleKind
{
    /// <summary>The same rate throughout.</summary>
    Constant,
    /// <summary>Divided by 10 at each of <see cref="ResNetTrainerOptions.StepMilestones"/> (the paper's recipe).</summary>
    Step,
    /// <summary>Cosine decay from the rate to zero over the run.</summary>
    Cosine,
    /// <summary>One-cycle (PyTorch's OneCycleLR): cosine up from rate/25 over <see cref="ResNetTrainerOptions.WarmupFraction"/> of the run (0 means 30%), then cosine down to near zero.</summary>
    OneCycle,
}

/// <summary>Which validation number early stopping watches.</summary>
public enum EarlyStoppingMetric
{
    ValidationAccuracy,
    ValidationLoss,
}

/// <summary>
/// Stop when the watched validation metric has not improved by <see cref="MinDelta"/> for <see cref="Patience"/> epochs.
/// With <see cref="RestoreBestWeights"/> (the default), a run that stops early ends with the weights (and BN statistics)
/// of its best epoch rather than its last; they are kept in the checkpoint, so a resumed run restores the same ones.
/// </summary>
public sealed record EarlyStoppingOptions(EarlyStoppingMetric Metric = EarlyStoppingMetric.ValidationAccuracy, int Patience = 3, double MinDelta = 0.0,
    bool RestoreBestWeights = true);

/// <summary>
/// Everything <see cref="ImageClassifierTrainer"/> needs, with defaults that train a CIFAR-style ResNet-20 the way the paper does
/// (SGD momentum 0.9, weight decay 1e-4, learning rate 0.1) but with a cosine schedule, which needs no milestones.
/// One object, settable properties, in the shape ML.NET trainers' options have; the ML.NET adapter's options derive from
/// it, so the two share every training option and its default.
/// </summary>
public class ResNetTrainerOptions
{
    /// <summary>A preset name (<c>resnet20</c>, <c>resnet18</c>, ...; see the models' presets). Default <c>resnet20</c>.</summary>
    public string Architecture { get; set; } = DefaultArchitecture;

    internal const string DefaultArchitecture = "resnet20";

    private static bool SameArchitecture(string a, string b) =>
        Models.ResNetSpec.TryParse(a, out var x, out _) && Models.ResNetSpec.TryParse(b, out var y, out _) && x == y;

    /// <summary>A custom architecture as data; setting it sets <see cref="Architecture"/> to the spec's text form.</summary>
    public Models.ResNetSpec? Spec
    {
        get => Models.ResNetSpec.TryParse(Architecture, out var spec, out _) ? spec : null;
        set => Architecture = value?.ToString() ?? "resnet20";
    }

    /// <summary>Input height and width; null (default) takes the training data's size. Data of another size is refused.</summary>
    public int? ImageSize { get; set; }

    /// <summary>Input channels; null (default) takes the training data's channel count.</summary>
    public int? Channels { get; set; }

    /// <summary>Passes over the training data. Default 10.</summary>
    public int Epochs { get; set; } = 10;

    /// <summary>Images per step. Default 128.</summary>
    public int BatchSize { get; set; } = 128;

    public OptimizerKind Optimizer { get; set; } = OptimizerKind.SgdMomentum;

    /// <summary>
    /// Peak learning rate. Null (default): <see cref="DefaultLearningRate"/> for the <see cref="Optimizer"/>, i.e. 0.1 for
    /// SGD (0.01 with <see cref="Pretrained"/>: a new head on pretrained features diverged at 0.1), 0.001 for Adam and AdamW.
    /// </summary>
    public float? LearningRate { get; set; }

    /// <summary>The rate training uses: <see cref="LearningRate"/>, else the optimizer's default.</summary>
    public float ResolvedLearningRate => LearningRate ?? DefaultLearningRate(Optimizer, Pretrained is not null);

    /// <summary>The default peak learning rate of <paramref name="optimizer"/>, the one place it is decided.</summary>
    public static float DefaultLearningRate(OptimizerKind optimizer, bool pretrained = false) =>
        optimizer == OptimizerKind.SgdMomentum ? (pretrained ? 0.01f : 0.1f) : 0.001f;

    /// <summary>SGD momentum (Adam's beta1 is fixed at 0.9). Default 0.9.</summary>
    public float Momentum { get; set; } = 0.9f;

    /// <summary>Nesterov momentum for SGD. Default false.</summary>
    public bool Nesterov { get; set; }

    /// <summary>
    /// Weight decay on conv and linear weights (not biases or BN). Null (default): <see cref="DefaultWeightDecay"/> for the
    /// <see cref="Optimizer"/>: 5e-4 for SGD (short runs on small images did better with it than with the paper's 1e-4),
    /// 0.01 for AdamW (decoupled), 0 for Adam.
    /// </summary>
    public float? WeightDecay { get; set; }

    /// <summary>The weight decay training uses: <see cref="WeightDecay"/>, else the optimizer's default.</summary>
    public float ResolvedWeightDecay => WeightDecay ?? DefaultWeightDecay(Optimizer);

    /// <summary>The default weight decay of <paramref name="optimizer"/>, the one place it is decided.</summary>
    public static float DefaultWeightDecay(OptimizerKind optimizer) => optimizer switch
    {
        OptimizerKind.SgdMomentum => 5e-4f,
        OptimizerKind.AdamW => 0.01f,
        _ => 0f,
    };

    public ScheduleKind Schedule { get; set; } = ScheduleKind.Cosine;

    /// <summary>For <see cref="ScheduleKind.Step"/>: fractions of the run after which the rate is divided by 10. Default 0.5, 0.75 (the paper's 32k/48k of 64k).</summary>
    public double[] StepMilestones { get; set; } = [0.5, 0.75];

    /// <summary>Warm-up as a fraction of the run: linear from a tenth of the rate before Constant, Step or Cosine; the rising phase of OneCycle. Default 0.</summary>
    public double WarmupFraction { get; set; }

    /// <summary>Label smoothing of the cross-entropy target, in [0, 1). Default 0.</summary>
    public float LabelSmoothing { get; set; }

    /// <summary>
    /// Training-time augmentation (e.g. <see cref="Data.Augmentation.CifarPaper"/>), applied when the trainer reads an
    /// <see cref="ImageDataset"/>; a custom <see cref="IImageBatchSource"/> augments itself. Null (default): none.
    /// </summary>
    public Augmentation? Augmentation { get; set; }

    /// <summary>
    /// The fraction of the training data held out (stratified, seeded) for validation when no validation data is given.
    /// 0 disables validation. Default 0.1.
    /// </summary>
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>Null (default) trains all <see cref="Epochs"/>.</summary>
    public EarlyStoppingOptions? EarlyStopping { get; set; }

    /// <summary>Seeds initialization, shuffling, splitting and augmentation. Same seed and threads give the same weights. Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>Worker threads for the engine; 0 (default) uses all cores.</summary>
    public int Threads { get; set; }

    /// <summary>
    /// The engine that runs the steps: the managed engine (default) or libtorch through TorchSharp (the app then references
    /// ResNet.ML.TorchSharp and a libtorch package). Both share everything else here: optimizer rules, schedules,
    /// augmentation, label smoothing, early stopping, progress, cancellation and checkpoints.
    /// </summary>
    public TrainingBackend Backend { get; set; } = TrainingBackend.Managed;

    /// <summary>
    /// Where the steps run. <see cref="TrainingDevice.Auto"/> (default): CUDA through TorchSharp when the app
    /// carries it with a CUDA libtorch and a device is present, else <see cref="Backend"/> on the CPU.
    /// </summary>
    public TrainingDevice Device { get; set; } = TrainingDevice.Auto;

    /// <summary>Where checkpoints go (a file <c>checkpoint.safetensors</c>, replaced atomically); null (default) writes none.</summary>
    public string? CheckpointFolder { get; set; }

    /// <summary>Also checkpoint every this many steps inside an epoch; 0 (default) checkpoints only at epoch ends and on cancellation.</summary>
    public int CheckpointIntervalSteps { get; set; }

    /// <summary>
    /// Pretrained weights (a safetensors file in torchvision's names, e.g. ImageNet ResNet-18) to start from; the
    /// classification head is left freshly initialized for the new class count. Null (default) starts from scratch.
    /// </summary>
    public string? InitialWeights { get; set; }

    /// <summary>With <see cref="InitialWeights"/> or <see cref="Pretrained"/>: train only the head for this many first epochs, the backbone's batch norms on their running statistics. Default 0.</summary>
    public int FreezeBackboneEpochs { get; set; }

    /// <summary>
    /// Pretrained weights that a NuGet package ships, by name: <c>dnn-resnet18</c> (<see cref="Models.PretrainedBackbone"/>;
    /// the app references <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1). The network is that architecture
    /// (leave <see cref="Architecture"/> at its default), starts from those weights with a new head for the data's
    /// classes, and takes the weights' preprocessing as its <see cref="Normalization"/> unless one is given. Images of at
    /// least 32x32; grayscale images get the sum of the RGB stem filters. With SGD, set <see cref="LearningRate"/> near
    /// 0.01: a new head on the pretrained features (large, unnormalized) diverges at 0.1. Null (default): no pretrained weights.
    /// </summary>
    public string? Pretrained { get; set; }

    /// <summary>
    /// Multiplies the learning rate once the backbone trains (after <see cref="FreezeBackboneEpochs"/>), so fine-tuning
    /// moves the pretrained weights less than the new head moved. Null (default): 0.1 with <see cref="Pretrained"/>,
    /// 1 otherwise.
    /// </summary>
    public float? FineTuneLearningRateFactor { get; set; }

    /// <summary>The factor in force: <see cref="FineTuneLearningRateFactor"/> or its default.</summary>
    internal double FineTuneFactor => FineTuneLearningRateFactor ?? (Pretrained is not null ? 0.1 : 1.0);

    /// <summary>Multiplier that brings source pixels to [0, 1] when the statistics are computed; 1/255 (default) for 0-255 pixels.</summary>
    public float PixelScale { get; set; } = 1f / 255f;

    /// <summary>
    /// How source pixels become network inputs, kept with the model (and inside its ONNX graph). Null (default): scale by
    /// <see cref="PixelScale"/>, then per-channel mean and standard deviation computed from the training data.
    /// </summary>
    public Normalization? Normalization { get; set; }

    /// <summary>Checks every option, naming the one at fault.</summary>
    public virtual void Validate()
    {
        static void Require(bool ok, string option, string message)
        {
            if (!ok) throw new ArgumentException($"Option {option}: {message}", option);
        }
        Require(!string.IsNullOrWhiteSpace(Architecture), nameof(Architecture), "name a preset such as resnet20 or give a Spec.");
        Require(ImageSize is null or > 0, nameof(ImageSize), $"must be positive, not {ImageSize}.");
        Require(Channels is null or > 0, nameof(Channels), $"must be positive, not {Channels}.");
        Require(Epochs > 0, nameof(Epochs), $"must be at least 1, not {Epochs}.");
        Require(BatchSize > 0, nameof(BatchSize), $"must be at least 1, not {BatchSize}.");
        Require(LearningRate is null || (LearningRate > 0 && float.IsFinite(LearningRate.Value)), nameof(LearningRate), $"must be a positive number, not {LearningRate}.");
        Require(Momentum >= 0 && Momentum < 1, nameof(Momentum), $"must be in [0, 1), not {Momentum}.");
        Require(!Nesterov || Momentum > 0, nameof(Nesterov), "needs a positive Momentum.");
        Require(WeightDecay is null || (WeightDecay >= 0 && float.IsFinite(WeightDecay.Value)), nameof(WeightDecay), $"must not be negative, not {WeightDecay}.");
        Require(StepMilestones.All(m => m > 0 && m < 1), nameof(StepMilestones), "each milestone is a fraction of the run in (0, 1).");
        Require(WarmupFraction >= 0 && WarmupFraction < 1, nameof(WarmupFraction), $"must be in [0, 1), not {WarmupFraction}.");
        Require(LabelSmoothing >= 0 && LabelSmoothing < 1, nameof(LabelSmoothing), $"must be in [0, 1), not {LabelSmoothing}.");
        Require(ValidationFraction >= 0 && ValidationFraction < 1, nameof(ValidationFraction), $"must be in [0, 1), not {ValidationFraction}.");
        Require(EarlyStopping is null || EarlyStopping.Patience >= 1, nameof(EarlyStopping), "patience must be at least 1 epoch.");
        Require(EarlyStopping is null || EarlyStopping.MinDelta >= 0, nameof(EarlyStopping), "min delta must not be negative.");
        Require(Enum.IsDefined(Backend), nameof(Backend), $"is Managed or TorchSharp, not {Backend}.");
        Require(Enum.IsDefined(Device), nameof(Device), $"is Auto, Cpu or Cuda, not {Device}.");
        Require(Device != TrainingDevice.Cuda || Backend == TrainingBackend.TorchSharp, nameof(Device), "Cuda runs through TorchSharp; the managed engine runs on the CPU only (set Backend to TorchSharp).");
        Require(Threads >= 0, nameof(Threads), $"must not be negative (0 means all cores), not {Threads}.");
        Require(CheckpointIntervalSteps >= 0, nameof(CheckpointIntervalSteps), $"must not be negative, not {CheckpointIntervalSteps}.");
        Require(FreezeBackboneEpochs >= 0, nameof(FreezeBackboneEpochs), $"must not be negative, not {FreezeBackboneEpochs}.");
        Require(FreezeBackboneEpochs == 0 || InitialWeights is not null || Pretrained is not null, nameof(FreezeBackboneEpochs), "freezing the backbone needs InitialWeights or Pretrained to start from.");
        Require(Pretrained is null || Models.PretrainedBackbone.IsKnown(Pretrained), nameof(Pretrained), $"'{Pretrained}' is not known; the pretrained weights are: {string.Join(", ", Models.PretrainedBackbone.Names)}.");
        Require(Pretrained is null || InitialWeights is null, nameof(Pretrained), "give either Pretrained or InitialWeights, not both.");
        Require(Pretrained is null || Architecture == DefaultArchitecture || SameArchitecture(Architecture, Models.PretrainedBackbone.ArchitectureOf(Pretrained)), nameof(Architecture),
            $"is '{Architecture}', but Pretrained {Pretrained} is {(Pretrained is null ? "" : Models.PretrainedBackbone.ArchitectureOf(Pretrained))}; leave Architecture unset.");
        Require(FineTuneLearningRateFactor is null or (> 0 and <= 1), nameof(FineTuneLearningRateFactor), $"must be in (0, 1], not {FineTuneLearningRateFactor}.");
        Require(PixelScale > 0 && float.IsFinite(PixelScale), nameof(PixelScale), $"must be positive, not {PixelScale}.");
        Require(Channels is null || Normalization is null || Normalization.Mean.Length == 1 || Normalization.Mean.Length == Channels, nameof(Normalization), $"has {Normalization?.Mean.Length} channel statistics for {Channels}-channel images.");
    }

    public ResNetTrainerOptions Clone()
    {
        var copy = (ResNetTrainerOptions)MemberwiseClone();
        copy.StepMilestones = (double[])StepMilestones.Clone();
        return copy;
    }
}
