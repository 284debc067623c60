using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.ML.Data;
using ResNet.ML.MLNet.Scoring;
using ResNet.ML.MLNet.Training;
using ResNet.ML.Onnx;
using ResNet.ML.Training;
using CoreTrainer = ResNet.ML.Training.ResNetTrainer;

namespace ResNet.ML.MLNet;

/// <summary>
/// The <see cref="IEstimator{TTransformer}"/> for training a ResNet image classifier (He et al. 2015) with ResNet.ML
/// inside an ML.NET pipeline. Use it directly (<c>new ResNetTrainer(mlContext, options)</c>) or through
/// <c>mlContext.MulticlassClassification.Trainers.ResNet(...)</c>.
/// </summary>
/// <remarks>
/// <para><b>Input columns.</b> The label column is a key (make it with <c>MapValueToKey</c>); its key values are the class
/// names. The feature column is one of:</para>
/// <list type="bullet">
/// <item>a known-size vector of <see cref="float"/>: planar CHW pixels, as <c>ExtractPixels</c> makes them with its
/// defaults (RGB, not interleaved, offset 0, scale 1, so values 0-255). The [C, H, W] comes from the vector's dimensions
/// (ExtractPixels records them), else from <see cref="Options.ImageHeight"/>/<see cref="Options.ImageWidth"/>, else a square
/// RGB or grayscale image is assumed. Values are scaled by <see cref="Options.PixelScale"/> (1/255) and normalized inside
/// the model, so scoring takes the same raw pixels.</item>
/// <item>a variable-size vector of <see cref="byte"/>: one encoded PNG or JPEG image per row, as <c>LoadRawImageBytes</c>
/// makes it. ResNet.ML's decoder decodes and resizes it (antialiased bilinear, <see cref="Options.Resize"/>) to
/// <see cref="Options.ImageHeight"/> x <see cref="Options.ImageWidth"/>, for training and scoring alike.</item>
/// <item>an <c>MLImage</c> column, where ML.NET's ImageAnalytics is present: ML.NET's own <c>ResizeImages</c> and
/// <c>ExtractPixels</c> bring it to the input size inside the fitted model.</item>
/// </list>
/// <para><b>Output columns</b>, as ML.NET's multiclass trainers make them: <c>Score</c>, a vector of class probabilities
/// (its slot names are the class names) and <c>PredictedLabel</c>, a key of the label's type carrying the label's key
/// values, so <c>MulticlassClassification.Evaluate</c>, <c>MapKeyToValue</c> and <c>PredictionEngine</c> work as usual.</para>
/// <para><b>The fitted model</b> is made of ML.NET's own transforms: <c>ApplyOnnxModel</c> over the ONNX export of the
/// trained network, and CustomMapping/MapValueToKey for the predicted label (and the image decoding). <c>Model.Save</c>
/// and <c>Model.Load</c> round-trip it with no registration: ML.NET loads this assembly by the name the model records.</para>
/// </remarks>
public sealed class ResNetTrainer : IEstimator<ITransformer>
{
    private readonly MLContext _ml;
    private readonly Options _options;

    /// <summary>Options of <see cref="ResNetTrainer"/>: columns, network, training, image input and scoring.</summary>
    public sealed class Options
    {
        // --- columns ---

        /// <summary>The label column: a key type with key values (the class names). Default "Label".</summary>
        public string LabelColumnName = "Label";

        /// <summary>The feature column: CHW pixels, encoded image bytes, or an MLImage (see <see cref="ResNetTrainer"/>). Default "Features".</summary>
        public string FeatureColumnName = "Features";

        // --- network ---

        /// <summary>A ResNet.ML architecture preset: "resnet20", "resnet32", "resnet44", "resnet56", "resnet110" (CIFAR-style), "resnet18", "resnet34", "resnet50", ... (ImageNet-style). Default "resnet20".</summary>
        public string Architecture = "resnet20";

        /// <summary>Input height. For pixel vectors without [C, H, W] dimensions it tells the layout; for encoded images it is the size images are resized to (default 32).</summary>
        public int? ImageHeight;

        /// <summary>Input width; see <see cref="ImageHeight"/>.</summary>
        public int? ImageWidth;

        /// <summary>For encoded images: 3 (RGB, default) or 1 (grayscale, ITU-R 601 luma).</summary>
        public int ImageChannels = 3;

        /// <summary>For encoded images: how they are brought to the input size. Default: scale the shorter side, cut the centre.</summary>
        public ResizeMode Resize = ResizeMode.ShorterSideCenterCrop;

        // --- training (ResNet.ML's trainer) ---

        /// <summary>Passes over the training data. Default 10.</summary>
        public int Epochs = 10;

        /// <summary>Images per step. Default 128.</summary>
        public int BatchSize = 128;

        /// <summary>The optimizer. Default SGD with momentum, the paper's.</summary>
        public OptimizerKind Optimizer = OptimizerKind.SgdMomentum;

        /// <summary>Peak learning rate. Default 0.1 (for SGD; Adam wants about 1e-3).</summary>
        public float LearningRate = 0.1f;

        /// <summary>SGD momentum. Default 0.9.</summary>
        public float Momentum = 0.9f;

        /// <summary>Nesterov momentum for SGD. Default false.</summary>
        public bool Nesterov;

        /// <summary>Weight decay on convolution and linear weights. Default 1e-4, the paper's.</summary>
        public float WeightDecay = 1e-4f;

        /// <summary>Learning-rate schedule. Default cosine.</summary>
        public ScheduleKind Schedule = ScheduleKind.Cosine;

        /// <summary>For the step schedule: fractions of the run after which the rate is divided by 10. Default 0.5, 0.75.</summary>
        public double[] StepMilestones = [0.5, 0.75];

        /// <summary>Linear warm-up as a fraction of the run. Default 0.</summary>
        public double WarmupFraction;

        /// <summary>Label smoothing of the cross-entropy target, in [0, 1). Default 0.</summary>
        public float LabelSmoothing;

        /// <summary>Training-time augmentation (e.g. ResNet.ML's <c>Augmentation.CifarPaper</c>). Default none.</summary>
        public Augmentation? Augmentation;

        /// <summary>Fraction of the training data held out for validation when no validation data is given; 0 disables it. Default 0.1.</summary>
        public double ValidationFraction = 0.1;

        /// <summary>Stop early when validation stops improving. Default null (train all epochs).</summary>
        public EarlyStoppingOptions? EarlyStopping;

        /// <summary>Seeds initialization, shuffling, splitting and augmentation. Default 0.</summary>
        public int Seed;

        /// <summary>Worker threads of the engine; 0 uses all cores. Default 0.</summary>
        public int Threads;

        /// <summary>Folder for training checkpoints; null writes none. Default null.</summary>
        public string? CheckpointFolder;

        /// <summary>Also checkpoint every this many steps; 0 checkpoints at epoch ends only. Default 0.</summary>
        public int CheckpointIntervalSteps;

        /// <summary>Pretrained weights (safetensors, torchvision names) to start from; null trains from scratch. Default null.</summary>
        public string? InitialWeights;

        /// <summary>With <see cref="InitialWeights"/> or <see cref="Pretrained"/>: train only the classification head for this many first epochs. Default 0.</summary>
        public int FreezeBackboneEpochs;

        /// <summary>
        /// Pretrained weights by name: <c>dnn-resnet18</c>, from the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18
        /// 0.23.1, which the app references. The architecture and preprocessing are the weights'; the head is new. Default null.
        /// </summary>
        public string? Pretrained;

        /// <summary>Learning-rate multiplier once the backbone trains; null: 0.1 with <see cref="Pretrained"/>, 1 otherwise. Default null.</summary>
        public float? FineTuneLearningRateFactor;

        /// <summary>Multiplier that brings raw pixels to [0, 1] before normalization. Default 1/255 (0-255 pixels).</summary>
        public float PixelScale = 1f / 255f;

        /// <summary>Per-channel normalization of scaled pixels; null computes mean and std from the training data. Default null.</summary>
        public Normalization? Normalization;

        // --- scoring (ML.NET's ApplyOnnxModel) ---

        /// <summary>GPU to score on (ONNX Runtime's CUDA provider); null scores on the CPU. Default null.</summary>
        public int? GpuDeviceId;

        /// <summary>Fall back to the CPU when the GPU cannot be used. Default false, as ApplyOnnxModel's.</summary>
        public bool FallbackToCpu;

        // --- run ---

        /// <summary>Receives ResNet.ML's progress reports (every step, every epoch end). Default null.</summary>
        public IProgress<TrainingProgress>? Progress;

        /// <summary>Stops training after the current step (also when the trainer runs inside a pipeline's Fit). Default none.</summary>
        public CancellationToken CancellationToken;
    }

    /// <summary>A trainer with <paramref name="options"/> (null: the defaults).</summary>
    public ResNetTrainer(MLContext mlContext, Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        _ml = mlContext;
        _options = options ?? new Options();
        if (string.IsNullOrWhiteSpace(_options.LabelColumnName)) throw new ArgumentException("Option LabelColumnName must name a column.", nameof(options));
        if (string.IsNullOrWhiteSpace(_options.FeatureColumnName)) throw new ArgumentException("Option FeatureColumnName must name a column.", nameof(options));
        if (_options.ImageChannels is not (1 or 3)) throw new ArgumentException($"Option ImageChannels must be 1 or 3, not {_options.ImageChannels}.", nameof(options));
        if (_options.ImageHeight is <= 0 || _options.ImageWidth is <= 0)
            throw new ArgumentException($"Options ImageHeight and ImageWidth must be positive, not {_options.ImageHeight}x{_options.ImageWidth}.", nameof(options));
        ToCoreOptions(_options).Validate();
    }

    /// <summary>The options this trainer was made with.</summary>
    public Options TrainerOptions => _options;

    /// <summary>
    /// Checks the input columns (throwing ML.NET's schema-mismatch error naming the column and the type it needs) and
    /// adds <c>Score</c> (vector of Single) and <c>PredictedLabel</c> (key of the label's type).
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        InputColumns.Check(inputSchema, _options.LabelColumnName, _options.FeatureColumnName);
        // SchemaShape columns cannot be made outside ML.NET, so ML.NET's own estimators derive them from the label:
        // MapKeyToVector gives a known-size Single vector with the key values as slot names, as Score is; a copy of the
        // label is a key with the label's key values, as PredictedLabel is.
        return _ml.Transforms.Conversion.MapKeyToVector(ScoringPipeline.ScoreColumn, _options.LabelColumnName)
            .Append(_ml.Transforms.CopyColumns(ScoringPipeline.PredictedLabelColumn, _options.LabelColumnName))
            .GetOutputSchema(inputSchema);
    }

    /// <summary>Trains on <paramref name="input"/> (holding out <see cref="Options.ValidationFraction"/> for validation).</summary>
    public ITransformer Fit(IDataView input) => Fit(input, validationData: null, _options.CancellationToken);

    /// <summary>
    /// Trains on <paramref name="trainData"/>, validating each epoch on <paramref name="validationData"/> when given,
    /// and returns the fitted model: ML.NET's ONNX transformer over the trained network plus the output columns.
    /// </summary>
    /// <exception cref="TrainingCanceledException">When <paramref name="cancellationToken"/> fires during training.</exception>
    public ITransformer Fit(IDataView trainData, IDataView? validationData, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        var o = _options;
        var label = InputColumns.Label(trainData.Schema, o.LabelColumnName);
        var (features, kind) = InputColumns.Features(trainData.Schema, o.FeatureColumnName);
        var keyValues = KeyValueTable.Read(label);
        var shape = kind switch
        {
            FeatureKind.Pixels => InputColumns.PixelShape(features, o.ImageHeight, o.ImageWidth),
            _ => new ImageShape(kind == FeatureKind.Image ? 3 : o.ImageChannels, o.ImageHeight ?? 32, o.ImageWidth ?? o.ImageHeight ?? 32),
        };

        var train = ReadImages(trainData, kind, shape, keyValues, "the training data", cancellationToken);
        ImageDataset? validation = null;
        if (validationData is not null)
        {
            var vLabel = InputColumns.Label(validationData.Schema, o.LabelColumnName);
            if (!KeyValueTable.Read(vLabel).Names.SequenceEqual(keyValues.Names))
                throw new ArgumentOutOfRangeException(nameof(validationData),
                    $"The validation data's label column '{o.LabelColumnName}' has other key values than the training data's; map both with the same MapValueToKey.");
            var (vFeatures, vKind) = InputColumns.Features(validationData.Schema, o.FeatureColumnName);
            if (vKind != kind || (kind == FeatureKind.Pixels && InputColumns.PixelShape(vFeatures, o.ImageHeight, o.ImageWidth) != shape))
                throw SchemaErrors.Mismatch(nameof(validationData), InputColumns.FeatureRole, o.FeatureColumnName,
                    SchemaErrors.Describe(features.Type), SchemaErrors.Describe(vFeatures.Type));
            validation = ReadImages(validationData, kind, shape, keyValues, "the validation data", cancellationToken);
        }

        var core = ToCoreOptions(o);
        var model = new CoreTrainer(core).Fit(train, validation, o.Progress, cancellationToken);

        var norm = model.Normalization;
        var network = OnnxExporter.BuildModel(model.Network, new OnnxExportOptions
        {
            InputHeight = shape.Height,
            InputWidth = shape.Width,
            ClassNames = keyValues.Names,
            PixelScale = norm.Scale,
            Mean = PerChannel(norm.Mean, shape.Channels),
            Std = PerChannel(norm.Std, shape.Channels),
            EmbedPreprocessing = true,
            InputName = ScoringPipeline.NetworkInputName(kind, o.FeatureColumnName),
            LogitsName = ScoringGraph.LogitsOutput,
            ProbabilitiesName = ScoringPipeline.ScoreColumn,
            PredictedLabelName = ScoringGraph.IndexOutput,
        });
        ScoringGraph.AddLabelOutputs(network, keyValues);
        if (kind == FeatureKind.EncodedImage) ScoringGraph.AddFlatPixelsFront(network, shape);

        return ScoringPipeline.Fit(_ml, trainData, o.FeatureColumnName, kind, shape, (int)o.Resize, keyValues, network, o.GpuDeviceId, o.FallbackToCpu);
    }

    private ImageDataset ReadImages(IDataView data, FeatureKind kind, ImageShape shape, KeyValueTable keyValues, string what, CancellationToken ct)
    {
        var o = _options;
        string featureColumn = o.FeatureColumnName;
        if (kind == FeatureKind.Image)
        {
            // ML.NET's own image transforms make the pixels, the same ones the fitted model puts in front of the network.
            data = ScoringPipeline.ImageToPixels(_ml, featureColumn, shape).Fit(data).Transform(data);
            (kind, featureColumn) = (FeatureKind.Pixels, Mappings.ScoringColumns.Pixels);
        }
        var label = data.Schema[o.LabelColumnName];
        var features = data.Schema[featureColumn];
        return DataViewImages.Read(data, label, features, kind, shape, o.Resize, keyValues.Names, what, ct);
    }

    private static float[] PerChannel(float[] values, int channels) =>
        values.Length == channels ? values : values.Length == 1 ? Enumerable.Repeat(values[0], channels).ToArray()
        : throw new InvalidOperationException($"The trained model's normalization has {values.Length} channel statistics for {channels}-channel images.");

    private static ResNetTrainerOptions ToCoreOptions(Options o) => new()
    {
        Architecture = o.Architecture,
        Epochs = o.Epochs,
        BatchSize = o.BatchSize,
        Optimizer = o.Optimizer,
        LearningRate = o.LearningRate,
        Momentum = o.Momentum,
        Nesterov = o.Nesterov,
        WeightDecay = o.WeightDecay,
        Schedule = o.Schedule,
        StepMilestones = o.StepMilestones,
        WarmupFraction = o.WarmupFraction,
        LabelSmoothing = o.LabelSmoothing,
        Augmentation = o.Augmentation,
        ValidationFraction = o.ValidationFraction,
        EarlyStopping = o.EarlyStopping,
        Seed = o.Seed,
        Threads = o.Threads,
        CheckpointFolder = o.CheckpointFolder,
        CheckpointIntervalSteps = o.CheckpointIntervalSteps,
        InitialWeights = o.InitialWeights,
        FreezeBackboneEpochs = o.FreezeBackboneEpochs,
        Pretrained = o.Pretrained,
        FineTuneLearningRateFactor = o.FineTuneLearningRateFactor,
        PixelScale = o.PixelScale,
        Normalization = o.Normalization,
    };
}
