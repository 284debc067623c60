using ResNet.ML.Data;
using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Onnx;
using ResNet.ML.Tensors;

namespace ResNet.ML.Training;

/// <summary>
/// A trained classifier: the network, its class names and the normalization its input needs (its preprocessing). Evaluates labelled data,
/// predicts, saves its weights as safetensors (torchvision's names, plus metadata that lets it be rebuilt) and exports ONNX.
/// </summary>
public sealed class TrainedModel
{
    /// <summary>The metadata key that marks a safetensors file as a ResNet.ML model (the standard <c>format=pt</c> stays, for PyTorch tools).</summary>
    internal const string ModelMarkerKey = "resnet.ml";

    public TrainedModel(Network network, IReadOnlyList<string> classNames, Normalization normalization, int height, int width,
        IReadOnlyList<EpochMetrics>? history = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(normalization);
        if (classNames.Count != network.NumClasses)
            throw new ArgumentException($"{network.Architecture} has {network.NumClasses} outputs but {classNames.Count} class names were given.");
        normalization.CheckChannels(network.InputChannels);
        network.ValidateInput(network.InputChannels, height, width);
        Network = network;
        Description = new ModelDescription(network.Architecture, network.InputChannels, height, width, classNames, normalization);
        History = history ?? [];
    }

    public Network Network { get; }
    public string Architecture => Network.Architecture;
    public IReadOnlyList<string> ClassNames => Description.ClassNames;
    /// <summary>Source pixels (0-255 for the built-in sources) to network inputs; the ONNX export embeds it.</summary>
    public Normalization Normalization => Description.Normalization;
    public int Channels => Network.InputChannels;
    public int Height => Description.Height;
    public int Width => Description.Width;
    /// <summary>What the model's files record about it besides the weights (architecture, input shape, classes, normalization).</summary>
    public ModelDescription Description { get; }
    /// <summary>Per-epoch metrics of the run that made the model (empty for loaded models).</summary>
    public IReadOnlyList<EpochMetrics> History { get; }

    /// <summary>
    /// Loss, top-1 and top-5 accuracy, per-class precision and recall and the confusion matrix on <paramref name="data"/>,
    /// whose classes are matched to the model's by name (it may hold a subset of them; a class the model lacks is refused).
    /// </summary>
    public EvaluationResult Evaluate(IImageBatchSource data, int batchSize = 128)
    {
        if (data.Channels != Channels || data.Height != Height || data.Width != Width)
            throw new ArgumentException($"The model takes [{Channels}, {Height}, {Width}] images, but the data holds [{data.Channels}, {data.Height}, {data.Width}].");
        if (data.Count == 0) throw new ArgumentException("The data to evaluate holds no images.");
        // By name, so data holding only some of the model's classes is scored against the right ones.
        var relabeled = ClassMap.Relabel(data, ClassMap.ByName(data.ClassNames, ClassNames), ClassNames);
        return ImageClassifierTrainer.Evaluate(Network, Normalization, relabeled, batchSize, ClassNames);
    }

    /// <summary>Evaluates an <see cref="ImageDataset"/> (see <see cref="Evaluate(IImageBatchSource, int)"/>).</summary>
    public EvaluationResult Evaluate(ImageDataset data, int batchSize = 128) => Evaluate(new ImageDatasetSource(data), batchSize);

    /// <summary>Class probabilities for raw CHW images (any count), one row of <see cref="ClassNames"/>.Count per image.</summary>
    public float[] PredictProbabilities(ReadOnlySpan<float> rawImages)
    {
        int sample = Channels * Height * Width;
        if (rawImages.Length == 0 || rawImages.Length % sample != 0)
            throw new ArgumentException($"{rawImages.Length} pixels are not a whole number of [{Channels}, {Height}, {Width}] images.");
        int n = rawImages.Length / sample, k = ClassNames.Count;
        var input = new Tensor(n, Channels, Height, Width);
        rawImages.CopyTo(input.Data);
        Normalization.Apply(input);
        var logits = Network.Forward(input, training: false).Data;
        var result = new float[n * k];
        for (int i = 0; i < n; i++)
        {
            var row = logits.AsSpan(i * k, k);
            float max = float.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, v);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(row[j] - max);
            for (int j = 0; j < k; j++) result[i * k + j] = (float)(Math.Exp(row[j] - max) / sum);
        }
        return result;
    }

    /// <summary>Metadata stored with the weights: the model's <see cref="Description"/> and the marker that makes the file a model.</summary>
    public IReadOnlyDictionary<string, string> Metadata() => new Dictionary<string, string>(Description.ToMetadata()) { [ModelMarkerKey] = "model" };

    /// <summary>Writes the weights (state dict in torchvision's names, loadable by PyTorch) with metadata as safetensors.</summary>
    public void SaveWeights(Stream output) => ModelWeights.Save(Network, output, Metadata());

    /// <summary>Writes the weights to <paramref name="path"/> atomically.</summary>
    public void SaveWeights(string path) => AtomicFile.Write(path, SaveWeights);

    /// <summary>
    /// The ONNX export options of this model: fixed input size, class names, and the normalization inside the graph, so
    /// the ONNX model takes raw pixels in source units (0-255 for the built-in sources, as ML.NET's ExtractPixels gives them).
    /// The metadata also carries the model's <see cref="Description"/>, so <see cref="ModelDescription.FromMetadata"/>
    /// reads the same description from the ONNX file as from the weights.
    /// </summary>
    /// <param name="foldBatchNorm">Fold batch norms into the convolutions (<see cref="OnnxExportOptions.FoldBatchNorm"/>).</param>
    /// <param name="testTimeFlip">Average each image with its mirror image inside the graph (<see cref="OnnxExportOptions.TestTimeFlip"/>).</param>
    /// <param name="testTimeTranslate">Also average it with its one-pixel shifts (<see cref="OnnxExportOptions.TestTimeTranslate"/>).</param>
    public OnnxExportOptions OnnxOptions(bool foldBatchNorm = true, bool testTimeFlip = false, bool testTimeTranslate = false) => new()
    {
        InputHeight = Height,
        InputWidth = Width,
        ClassNames = ClassNames,
        PixelScale = Normalization.Scale,
        Mean = Enumerable.Range(0, Channels).Select(c => Normalization.Mean[Normalization.Mean.Length == 1 ? 0 : c]).ToArray(),
        Std = Enumerable.Range(0, Channels).Select(c => Normalization.Std[Normalization.Std.Length == 1 ? 0 : c]).ToArray(),
        EmbedPreprocessing = true,
        ChannelOrder = Channels == 1 ? "Gray" : "RGB",
        FoldBatchNorm = foldBatchNorm,
        TestTimeFlip = testTimeFlip,
        TestTimeTranslate = testTimeTranslate,
        // The exporter writes architecture and class names itself (from the same values); the rest of the description
        // has no ONNX key of its own that holds it in this form (input_* is the graph's shape, mean/std are expanded per channel).
        ExtraMetadata = Description.ToMetadata().Where(kv => !OnnxMetadataKeys.All.Contains(kv.Key)).ToDictionary(),
    };

    /// <summary>Exports the model as ONNX (see <see cref="OnnxOptions"/>).</summary>
    public void ExportOnnx(Stream output, bool foldBatchNorm = true, bool testTimeFlip = false, bool testTimeTranslate = false) =>
        OnnxExporter.Export(Network, output, OnnxOptions(foldBatchNorm, testTimeFlip, testTimeTranslate));

    /// <summary>Exports the model as ONNX to <paramref name="path"/>, atomically.</summary>
    public void ExportOnnx(string path, bool foldBatchNorm = true, bool testTimeFlip = false, bool testTimeTranslate = false) =>
        OnnxExporter.Export(Network, path, OnnxOptions(foldBatchNorm, testTimeFlip, testTimeTranslate));

    /// <summary>Reads weights saved by <see cref="SaveWeights(Stream)"/> and rebuilds the model; refuses files without ResNet.ML metadata.</summary>
    public static TrainedModel LoadWeights(Stream input, string source = "the weights")
    {
        var buffer = new MemoryStream();
        input.CopyTo(buffer);
        buffer.Position = 0;
        var meta = ModelWeights.ReadMetadata(buffer, source);
        buffer.Position = 0;
        if (meta.GetValueOrDefault("format") == TrainingCheckpoint.FormatName)
            throw new InvalidDataException($"{source} is a training checkpoint, not a model: resume it with 'train --resume', or use the model file written at the end of training.");
        if (meta.GetValueOrDefault(ModelMarkerKey) != "model")
            throw new InvalidDataException($"{source} is a safetensors file without ResNet.ML model metadata (architecture, classes, preprocessing), so it cannot be rebuilt into a model.");
        return Rebuild(ModelDescription.FromMetadata(meta, source), network => ModelWeights.Load(network, buffer, source), source);
    }

    public static TrainedModel LoadWeights(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return LoadWeights(stream, $"Model file '{path}'");
        }
        catch (FileNotFoundException) { throw new FileNotFoundException($"Model file '{path}' does not exist.", path); }
    }

    /// <summary>The model a checkpoint holds (to export or inspect a run that has not finished).</summary>
    public static TrainedModel FromCheckpoint(TrainingCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        return Rebuild(checkpoint.Model, network => StateDict.Load(network, checkpoint.ModelTensors, "The checkpoint"), "The checkpoint", checkpoint.State.History);
    }

    public static TrainedModel FromCheckpoint(string path) => FromCheckpoint(TrainingCheckpoint.Load(path));

    /// <summary>A model rebuilt from what a file says it is, with the weights <paramref name="load"/> copies into its network.</summary>
    private static TrainedModel Rebuild(ModelDescription description, Action<Network> load, string source, IReadOnlyList<EpochMetrics>? history = null)
    {
        Network network;
        try { network = description.BuildNetwork(); }
        catch (ArgumentException e) when (e is not ShapeException)
        {
            throw new InvalidDataException($"{source}: metadata entry '{ModelDescription.ArchitectureKey}' ('{description.Architecture}') does not build a network for [{description.Channels}, {description.Height}, {description.Width}] input and {description.ClassNames.Count} classes ({e.Message}).");
        }
        load(network);
        return new TrainedModel(network, description.ClassNames, description.Normalization, description.Height, description.Width, history);
    }

    /// <summary>
    /// A freshly initialized (seeded) model with 0-255 → [0, 1] normalization: for interop checks and speed tests.
    /// </summary>
    public static TrainedModel CreateInitialized(string architecture, int channels, IReadOnlyList<string> classNames, int height, int width, int seed)
    {
        var network = TrainingSetup.Network(architecture, channels, classNames.Count, height, width);
        TrainingSetup.Initialize(network, seed);
        return new TrainedModel(network, classNames, Normalization.UnitRange, height, width);
    }
}
