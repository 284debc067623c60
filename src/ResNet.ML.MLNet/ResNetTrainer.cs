using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Runtime;
using ResNet.ML.Data;
using ResNet.ML.MLNet.Scoring;
using ResNet.ML.MLNet.Training;
using ResNet.ML.Onnx;
using ResNet.ML.Training;
using CoreTrainer = ResNet.ML.Training.ImageClassifierTrainer;

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
/// RGB or grayscale image is assumed. Values are scaled by <see cref="ResNetTrainerOptions.PixelScale"/> (1/255) and normalized inside
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

    /// <summary>
    /// Options of <see cref="ResNetTrainer"/>: every training option of ResNet.ML's core trainer (inherited, with the same
    /// defaults and checks: <see cref="ResNetTrainerOptions"/>), plus the columns, the image input, the validation set
    /// and the scoring device.
    /// </summary>
    public sealed class Options : ResNetTrainerOptions
    {
        /// <summary>The label column: a key type with key values (the class names). Default "Label".</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>The feature column: CHW pixels, encoded image bytes, or an MLImage (see <see cref="ResNetTrainer"/>). Default "Features".</summary>
        public string FeatureColumnName { get; set; } = "Features";

        /// <summary>
        /// Input height. For pixel vectors without [C, H, W] dimensions it tells the layout; for encoded images and MLImage
        /// columns it is the size images are resized to. Null (default): <see cref="ResNetTrainerOptions.ImageSize"/>, else 32.
        /// </summary>
        public int? ImageHeight { get; set; }

        /// <summary>Input width; see <see cref="ImageHeight"/>. Null (default): the height.</summary>
        public int? ImageWidth { get; set; }

        /// <summary>For encoded images: how they are brought to the input size. Default: scale the shorter side, cut the centre.</summary>
        public ResizeMode Resize { get; set; } = ResizeMode.ShorterSideCenterCrop;

        /// <summary>
        /// Data to validate on after every epoch, with the same columns as the training data (as ML.NET's own image
        /// trainers take it). Null (default): a stratified <see cref="ResNetTrainerOptions.ValidationFraction"/> of the
        /// training data is held out instead.
        /// </summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>
        /// GPU the fitted model scores on (ONNX Runtime's CUDA provider). Null (default): <c>MLContext.GpuDeviceId</c> if
        /// set; else, unless <see cref="ResNetTrainerOptions.Device"/> is <c>Cpu</c>, GPU 0 with a CPU fallback when the app
        /// loads the CUDA ONNX Runtime (Microsoft.ML.OnnxRuntime.Gpu); else the CPU.
        /// </summary>
        public int? GpuDeviceId { get; set; }

        /// <summary>With <see cref="GpuDeviceId"/> set: fall back to the CPU when the GPU cannot be used. Default false, as ApplyOnnxModel's.</summary>
        public bool FallbackToCpu { get; set; }

        /// <summary>
        /// Test-time flips in the fitted model's ONNX graph: each image is scored as the mean of its logits and its
        /// left-right mirror image's (twice the scoring cost). Suits images whose classes do not change under a mirror
        /// (clothes, most product photos); not text or digits. Default false.
        /// </summary>
        public bool TestTimeFlip { get; set; }

        /// <summary>
        /// Test-time shifts in the fitted model's ONNX graph: each image is also scored shifted one pixel up-left and
        /// down-right, its logits weighted 1/2, 1/4, 1/4 (with <see cref="TestTimeFlip"/>, six views). Default false.
        /// </summary>
        public bool TestTimeTranslate { get; set; }

        /// <summary>
        /// Options set to the named recipe (<see cref="TrainingRecipes"/>: <c>quick</c>, <c>fast</c>), its test-time flips
        /// included; set the columns and anything else afterwards.
        /// </summary>
        public static Options FromRecipe(string name)
        {
            var recipe = TrainingRecipes.Get(name);
            var options = recipe.ApplyTo(new Options());
            options.TestTimeFlip = recipe.TestTimeFlip;
            options.TestTimeTranslate = recipe.TestTimeTranslate;
            return options;
        }

        /// <summary>
        /// Also receives ResNet.ML's own progress reports (every step, every epoch end), beside the epoch lines the trainer
        /// writes to ML.NET's log (<c>MLContext.Log</c>). Default null.
        /// </summary>
        public IProgress<TrainingProgress>? Progress { get; set; }

        /// <summary>
        /// Stops training after the current step. The host's own cancellation (MLContext's CancelExecution, which ML.NET
        /// 5.0.1 keeps for its own hosts such as AutoML) does the same. Default none.
        /// </summary>
        public CancellationToken CancellationToken { get; set; }

        /// <summary>Checks every option, naming the one at fault.</summary>
        public override void Validate()
        {
            base.Validate();
            if (string.IsNullOrWhiteSpace(LabelColumnName)) throw new ArgumentException("Option LabelColumnName must name a column.", nameof(LabelColumnName));
            if (string.IsNullOrWhiteSpace(FeatureColumnName)) throw new ArgumentException("Option FeatureColumnName must name a column.", nameof(FeatureColumnName));
            if (Channels is not (null or 1 or 3)) throw new ArgumentException($"Option Channels must be 1 or 3, not {Channels}.", nameof(Channels));
            if (ImageHeight is <= 0 || ImageWidth is <= 0)
                throw new ArgumentException($"Options ImageHeight and ImageWidth must be positive, not {ImageHeight}x{ImageWidth}.", nameof(ImageHeight));
        }

        internal int Height => ImageHeight ?? ImageSize ?? 32;
        internal int Width => ImageWidth ?? ImageHeight ?? ImageSize ?? 32;

        internal ResNetTrainerOptions TrainingOptions()
        {
            // The core trainer checks the data against ImageSize and Channels; here they describe what images are
            // brought to, which the adapter has done by the time the core sees them.
            var core = (Options)Clone();
            core.ImageSize = null;
            core.Channels = null;
            return core;
        }
    }

    /// <summary>A trainer with <paramref name="options"/> (null: the defaults).</summary>
    public ResNetTrainer(MLContext mlContext, Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        _ml = mlContext;
        _options = options ?? new Options();
        _options.Validate();
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

    /// <summary>
    /// Trains on <paramref name="input"/>, validating on <see cref="Options.ValidationSet"/> (or a held-out
    /// <see cref="ResNetTrainerOptions.ValidationFraction"/> of the input), and returns the fitted model.
    /// </summary>
    public ITransformer Fit(IDataView input) => Fit(input, _options.ValidationSet, _options.CancellationToken);

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
            _ => new ImageShape(kind == FeatureKind.Image ? 3 : o.Channels ?? 3, o.Height, o.Width),
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

        var model = TrainReportingToHost(train, validation, cancellationToken);

        // The model's own export options (input size, classes, normalization inside the graph), with the column names
        // the ML.NET scoring graph reads.
        var network = OnnxExporter.BuildModel(model.Network, model.OnnxOptions(testTimeFlip: o.TestTimeFlip, testTimeTranslate: o.TestTimeTranslate) with
        {
            InputName = ScoringPipeline.NetworkInputName(kind, o.FeatureColumnName),
            LogitsName = ScoringGraph.LogitsOutput,
            ProbabilitiesName = ScoringPipeline.ScoreColumn,
            PredictedLabelName = ScoringGraph.IndexOutput,
        });
        ScoringGraph.AddLabelOutputs(network, keyValues);
        if (kind == FeatureKind.EncodedImage) ScoringGraph.AddFlatPixelsFront(network, shape);

        var (gpu, fallback) = ScoringDevice.Resolve(o.GpuDeviceId, o.FallbackToCpu, _ml.GpuDeviceId, _ml.FallbackToCpu, o.Device,
            OrtEnv.Instance().GetAvailableProviders());
        // ApplyOnnxModel takes MLContext.GpuDeviceId whenever it is given no GPU, and with the CPU ONNX Runtime that ends
        // in an EntryPointNotFoundException its own fallback does not catch. When the context's GPU is to be dropped
        // (Resolve allowed the fallback), the scoring transforms are built in a context without it.
        var scoring = gpu is null && _ml.GpuDeviceId is not null ? new MLContext(seed: o.Seed) : _ml;
        return ScoringPipeline.Fit(scoring, trainData, o.FeatureColumnName, kind, shape, (int)o.Resize, keyValues, network, gpu, fallback);
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

    /// <summary>
    /// Runs the core trainer the way ML.NET's own trainers run: epoch lines go to the host's channel (MLContext.Log), and
    /// MLContext.CancelExecution() stops training after the current step, as the cancellation token does.
    /// </summary>
    private TrainedModel TrainReportingToHost(ImageDataset train, ImageDataset? validation, CancellationToken cancellationToken)
    {
        var o = _options;
        var host = ((IHostEnvironment)_ml).Register(nameof(ResNetTrainer));
        using var channel = host.Start("Training");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        channel.Info(MessageSensitivity.None, $"Training {o.Architecture} on {train.Count} images [{train.Channels}, {train.Height}, {train.Width}] of {train.ClassCount} classes" +
            (validation is null ? "" : $", validating on {validation.Count}") + $": {o.Epochs} epochs, batch {o.BatchSize}, {o.Optimizer}, learning rate {o.ResolvedLearningRate}.");
        var progress = new HostProgress(report =>
        {
            if (report.Phase == TrainingPhase.EpochEnd && report.Epoch is { } e)
                channel.Info(MessageSensitivity.None, FormattableString.Invariant(
                    $"Epoch {e.Epoch}/{report.TotalEpochs}: train loss {e.TrainLoss:F4}, train accuracy {e.TrainAccuracy:P2}") +
                    (e.ValidationAccuracy is double va ? FormattableString.Invariant($", validation loss {e.ValidationLoss:F4}, validation accuracy {va:P2}") : "") +
                    FormattableString.Invariant($", {e.ImagesPerSecond:F0} images/s."));
            o.Progress?.Report(report);
            // Asked after every report, so cancellation during a step (from any thread, the progress callback included)
            // stops the run after that step.
            if (HostCancellation.IsCanceled(host)) stop.Cancel();
        });
        var model = new CoreTrainer(o.TrainingOptions()).Fit(train, validation, progress, stop.Token);
        channel.Info(MessageSensitivity.None, $"Trained {model.Architecture} ({model.Network.ParameterCount} parameters).");
        return model;
    }

    /// <summary>Reports on the training thread (Progress&lt;T&gt; would post to the thread pool and lose the order).</summary>
    private sealed class HostProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
