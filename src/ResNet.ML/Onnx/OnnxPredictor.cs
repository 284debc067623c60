using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

namespace ResNet.ML.Onnx;

/// <summary>One class and its probability.</summary>
public sealed record ClassScore(int Index, string Label, float Probability)
{
    public override string ToString() => $"{Label} ({Probability:P1})";
}

/// <summary>The scores of one image: logits, softmax probabilities, and the top-k classes, best first.</summary>
public sealed class Prediction(float[] logits, float[] probabilities, IReadOnlyList<ClassScore> topK)
{
    public float[] Logits { get; } = logits;
    public float[] Probabilities { get; } = probabilities;

    /// <summary>The k most probable classes, best first (ties: lower class index first).</summary>
    public IReadOnlyList<ClassScore> TopK { get; } = topK;

    public ClassScore Best => TopK[0];
    public override string ToString() => string.Join(", ", TopK);
}

/// <summary>Raw scores of a batch: row-major [batch, classes] logits and probabilities.</summary>
public sealed record BatchScores(int Count, int Classes, float[] Logits, float[] Probabilities)
{
    public ReadOnlySpan<float> ProbabilitiesOf(int image) => Probabilities.AsSpan(image * Classes, Classes);
    public ReadOnlySpan<float> LogitsOf(int image) => Logits.AsSpan(image * Classes, Classes);
}

/// <summary>
/// Scores images with an ONNX image classifier through ONNX Runtime's <see cref="InferenceSession"/>: a model
/// exported by <see cref="OnnxExporter"/> (class names and input size read from its metadata) or any model with one
/// float input [batch, C, H, W] and a [batch, classes] logits output (e.g. PyTorch's own export).
/// Images are planar CHW float arrays (C·H·W values each), batches are images back to back.
/// <para>
/// Thread safety: one predictor may be shared by any number of threads. ONNX Runtime documents concurrent
/// <c>InferenceSession.Run</c> calls on one session as safe, and the predictor keeps no per-call state. Do not
/// dispose it while calls are running.
/// </para>
/// </summary>
public sealed class OnnxPredictor : IDisposable
{
    /// <summary>ONNX Runtime's name of its CUDA execution provider, as <c>OrtEnv.GetAvailableProviders()</c> lists it.</summary>
    public const string CudaProvider = "CUDAExecutionProvider";
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;   // logits, then probabilities when the model has them
    private bool _disposed;

    private OnnxPredictor(Func<SessionOptions, InferenceSession> open, string source, OnnxPredictorOptions? options)
    {
        options ??= new OnnxPredictorOptions();
        OnnxRuntimeNative.EnsureAvailable();
        Source = source;
        using var sessionOptions = new SessionOptions
        {
            IntraOpNumThreads = options.IntraOpThreads,
            InterOpNumThreads = options.InterOpThreads,
            GraphOptimizationLevel = options.OptimizationLevel,
            ExecutionMode = options.ExecutionMode,
        };
        ExecutionProvider = ChooseProvider(sessionOptions, options);
        try { _session = open(sessionOptions); }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{source} is not an ONNX model that ONNX Runtime can load: {e.Message}", e);
        }
        try
        {
            Metadata = _session.ModelMetadata.CustomMetadataMap;
            (InputName, Channels, Height, Width) = ReadInput(options);
            _inputNames = [InputName];
            (string logits, string? probabilities, NumClasses) = ReadOutputs();
            _outputNames = probabilities is null ? [logits] : [logits, probabilities];
            ClassNames = ReadClassNames(options);
        }
        catch
        {
            _session.Dispose();
            throw;
        }
    }

    /// <summary>Loads an ONNX model file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an ONNX model, or its input/outputs do not fit an image classifier or the expected input.</exception>
    public static OnnxPredictor Load(string path, OnnxPredictorOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"The ONNX model '{full}' does not exist.", full);
        using (var file = File.OpenRead(full)) ThrowIfNotFinite(file, $"'{full}'");
        return new OnnxPredictor(so => new InferenceSession(full, so), $"'{full}'", options);
    }

    /// <summary>Loads an ONNX model from its bytes; <paramref name="source"/> names it in error messages.</summary>
    public static OnnxPredictor FromBytes(byte[] model, OnnxPredictorOptions? options = null, string source = "the in-memory ONNX model")
    {
        ArgumentNullException.ThrowIfNull(model);
        using (var bytes = new MemoryStream(model, writable: false)) ThrowIfNotFinite(bytes, source);
        return new OnnxPredictor(so => new InferenceSession(model, so), source, options);
    }

    /// <summary>
    /// Refuses a model whose float initializers hold a NaN or infinity (the export of a diverged run): ONNX Runtime would
    /// load it and score every image as NaN. Bytes that are not a ModelProto are left to ONNX Runtime's own message.
    /// </summary>
    private static void ThrowIfNotFinite(Stream model, string source)
    {
        Proto.ModelProto proto;
        try { proto = Proto.ModelProto.Parser.ParseFrom(model); }
        catch (Google.Protobuf.InvalidProtocolBufferException) { return; }
        foreach (var t in proto.Graph?.Initializer ?? [])
        {
            if (t.DataType != (int)Proto.TensorProto.Types.DataType.Float) continue;
            ReadOnlySpan<float> values = t.RawData.Length > 0
                ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.RawData.Span)
                : t.FloatData.ToArray();
            int i = Tensors.TensorChecks.IndexOfNonFinite(values);
            if (i >= 0)
                throw new InvalidDataException($"{source} cannot be used: initializer '{t.Name}' holds {values[i]} at element {i}. It holds weights of a diverged run (NaN or infinity), which would score every image as NaN.");
        }
    }

    /// <summary>Loads an ONNX model from a stream (read to its end); <paramref name="source"/> names it in error messages.</summary>
    public static OnnxPredictor FromStream(Stream model, OnnxPredictorOptions? options = null, string source = "the ONNX model stream")
    {
        ArgumentNullException.ThrowIfNull(model);
        using var buffer = new MemoryStream();
        model.CopyTo(buffer);
        return FromBytes(buffer.ToArray(), options, source);
    }

    /// <summary>The file (or description) the model came from.</summary>
    public string Source { get; }

    /// <summary>"CUDAExecutionProvider" or "CPUExecutionProvider".</summary>
    public string ExecutionProvider { get; }

    public string InputName { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>Values per image: C·H·W.</summary>
    public int ImageLength => Channels * Height * Width;

    public int NumClasses { get; }
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The model's metadata_props (see <see cref="OnnxMetadataKeys"/> for the keys our exporter writes).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Scores one image (C·H·W values) and returns its top <paramref name="topK"/> classes.</summary>
    public Prediction Predict(ReadOnlySpan<float> image, int topK = 5)
    {
        CheckLength(image.Length, 1, nameof(image));
        return ToPredictions(Run(image.ToArray(), 1), topK)[0];
    }

    /// <summary>Scores images stored back to back (a multiple of C·H·W values).</summary>
    public IReadOnlyList<Prediction> PredictBatch(ReadOnlySpan<float> images, int topK = 5) => ToPredictions(Score(images), topK);

    /// <summary>Scores a list of images, each C·H·W values.</summary>
    public IReadOnlyList<Prediction> PredictBatch(IReadOnlyList<float[]> images, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) return [];
        var batch = new float[(long)images.Count * ImageLength];
        for (int i = 0; i < images.Count; i++)
        {
            if (images[i] is null || images[i].Length != ImageLength)
                throw new ArgumentException($"Image {i} has {images[i]?.Length ?? 0} values, but {Source} takes [{Channels}, {Height}, {Width}] = {ImageLength} values per image.", nameof(images));
            images[i].CopyTo(batch, (long)i * ImageLength);
        }
        return ToPredictions(Run(batch, images.Count), topK);
    }

    /// <summary>Logits and probabilities of images stored back to back, without top-k (the fast path for bulk scoring).</summary>
    public BatchScores Score(ReadOnlySpan<float> images)
    {
        int count = images.Length / Math.Max(1, ImageLength);
        CheckLength(images.Length, count, nameof(images));
        return Run(images.ToArray(), count);
    }

    /// <summary>As <see cref="Score(ReadOnlySpan{float})"/>, without copying <paramref name="images"/> (ONNX Runtime reads the array in place).</summary>
    public BatchScores Score(float[] images)
    {
        ArgumentNullException.ThrowIfNull(images);
        int count = images.Length / Math.Max(1, ImageLength);
        CheckLength(images.Length, count, nameof(images));
        return Run(images, count);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _session.Dispose();
    }

    private void CheckLength(int length, int count, string parameter)
    {
        if (length == 0 || length != count * ImageLength)
            throw new ArgumentException($"{length} values are not a whole number of images: {Source} takes [{Channels}, {Height}, {Width}] = {ImageLength} values per image (planar CHW floats).", parameter);
    }

    private BatchScores Run(float[] batch, int count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var input = OrtValue.CreateTensorValueFromMemory(batch, [count, Channels, Height, Width]);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, _inputNames, [input], _outputNames);
        float[] logits = ReadScores(outputs[0], _outputNames[0], count);
        float[] probabilities = outputs.Count > 1 ? ReadScores(outputs[1], _outputNames[1], count) : Softmax(logits, NumClasses);
        return new BatchScores(count, NumClasses, logits, probabilities);
    }

    private float[] ReadScores(OrtValue value, string name, int count)
    {
        var data = value.GetTensorDataAsSpan<float>();
        if (data.Length != count * NumClasses)
            throw new InvalidDataException($"{Source}: output '{name}' has {data.Length} values for {count} images, not {count} x {NumClasses} classes.");
        return data.ToArray();
    }

    internal static float[] Softmax(float[] logits, int classes)
    {
        var p = new float[logits.Length];
        for (int row = 0; row < logits.Length; row += classes)
        {
            var x = logits.AsSpan(row, classes);
            var y = p.AsSpan(row, classes);
            float max = float.NegativeInfinity;
            foreach (float v in x) max = MathF.Max(max, v);
            double sum = 0;
            for (int i = 0; i < classes; i++) sum += y[i] = MathF.Exp(x[i] - max);
            for (int i = 0; i < classes; i++) y[i] = (float)(y[i] / sum);
        }
        return p;
    }

    private IReadOnlyList<Prediction> ToPredictions(BatchScores scores, int topK)
    {
        if (topK <= 0) throw new ArgumentOutOfRangeException(nameof(topK), $"topK must be positive, not {topK}.");
        int k = Math.Min(topK, NumClasses);
        var result = new Prediction[scores.Count];
        for (int i = 0; i < scores.Count; i++)
        {
            float[] p = scores.ProbabilitiesOf(i).ToArray();
            var order = Enumerable.Range(0, NumClasses).OrderByDescending(c => p[c]).ThenBy(c => c).Take(k);
            result[i] = new Prediction(scores.LogitsOf(i).ToArray(), p, order.Select(c => new ClassScore(c, ClassNames[c], p[c])).ToArray());
        }
        return result;
    }

    private static string ChooseProvider(SessionOptions sessionOptions, OnnxPredictorOptions options)
    {
        const string cpu = "CPUExecutionProvider";
        if (!options.UseGpu) return cpu;
        string[] available = OrtEnv.Instance().GetAvailableProviders();
        string failure;
        if (!available.Contains(CudaProvider))
            failure = $"the GPU was asked for, but this ONNX Runtime has no {CudaProvider} (it has {string.Join(", ", available)}); reference Microsoft.ML.OnnxRuntime.Gpu instead of Microsoft.ML.OnnxRuntime in the app, on a machine with CUDA 13 and cuDNN 9";
        else
        {
            try
            {
                sessionOptions.AppendExecutionProvider_CUDA(options.GpuDeviceId);
                return CudaProvider;
            }
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                failure = $"the GPU was asked for, but {CudaProvider} (device {options.GpuDeviceId}) could not be started: {e.Message}";
            }
        }
        if (!options.AllowCpuFallback)
            throw new GpuUnavailableException($"ONNX Runtime cannot use the GPU: {failure}. Set OnnxPredictorOptions.AllowCpuFallback to run on the CPU instead.");
        (options.Warning ?? (m => Console.Error.WriteLine(m)))($"warning: {failure}; running on the CPU instead.");
        return cpu;
    }

    private (string Name, int C, int H, int W) ReadInput(OnnxPredictorOptions options)
    {
        if (_session.InputMetadata.Count != 1)
            throw new InvalidDataException($"{Source} has {_session.InputMetadata.Count} inputs ({string.Join(", ", _session.InputNames)}); an image classifier has one input [batch, C, H, W].");
        var (name, meta) = _session.InputMetadata.First();
        if (!meta.IsTensor || meta.ElementType != typeof(float) || meta.Dimensions.Length != 4)
            throw new InvalidDataException($"{Source}: input '{name}' is not a float tensor [batch, C, H, W] (it is {Describe(meta)}).");
        int Dim(int axis, string key, int? expected, string what)
        {
            int d = meta.Dimensions[axis];
            if (d <= 0 && Metadata.TryGetValue(key, out string? text) && int.TryParse(text, CultureInfo.InvariantCulture, out int m)) d = m;
            if (d <= 0) d = expected ?? throw new InvalidDataException($"{Source}: input '{name}' has no fixed {what} and the model's metadata does not give it; set OnnxPredictorOptions.Expected{char.ToUpperInvariant(what[0])}{what[1..]}.");
            return d;
        }
        int c = Dim(1, OnnxMetadataKeys.InputChannels, options.ExpectedChannels, "channels");
        int h = Dim(2, OnnxMetadataKeys.InputHeight, options.ExpectedHeight, "height");
        int w = Dim(3, OnnxMetadataKeys.InputWidth, options.ExpectedWidth, "width");
        if ((options.ExpectedChannels ?? c) != c || (options.ExpectedHeight ?? h) != h || (options.ExpectedWidth ?? w) != w)
            throw new InvalidDataException(
                $"{Source} takes input '{name}' of [batch, {c}, {h}, {w}], but [{options.ExpectedChannels?.ToString(CultureInfo.InvariantCulture) ?? "any"}, " +
                $"{options.ExpectedHeight?.ToString(CultureInfo.InvariantCulture) ?? "any"}, {options.ExpectedWidth?.ToString(CultureInfo.InvariantCulture) ?? "any"}] (channels, height, width) was expected.");
        return (name, c, h, w);
    }

    private (string Logits, string? Probabilities, int Classes) ReadOutputs()
    {
        var outputs = _session.OutputMetadata;
        string? Named(string key, string fallback) =>
            Metadata.TryGetValue(key, out string? n) && outputs.ContainsKey(n) ? n : outputs.ContainsKey(fallback) ? fallback : null;
        string? logits = Named(OnnxMetadataKeys.LogitsOutput, "logits")
            ?? outputs.Where(o => o.Value.IsTensor && o.Value.ElementType == typeof(float) && o.Value.Dimensions.Length == 2).Select(o => o.Key).FirstOrDefault();
        if (logits is null)
            throw new InvalidDataException($"{Source} has no float output [batch, classes] to read scores from (its outputs: {string.Join(", ", outputs.Select(o => $"{o.Key} {Describe(o.Value)}"))}).");
        var meta = outputs[logits];
        if (!meta.IsTensor || meta.ElementType != typeof(float) || meta.Dimensions.Length != 2)
            throw new InvalidDataException($"{Source}: output '{logits}' is not a float tensor [batch, classes] (it is {Describe(meta)}).");
        int classes = meta.Dimensions[1];
        if (classes <= 0 && Metadata.TryGetValue(OnnxMetadataKeys.ClassNames, out string? json)) classes = ParseClassNames(json)?.Length ?? 0;
        if (classes <= 0) throw new InvalidDataException($"{Source}: output '{logits}' has no fixed number of classes and the metadata lists no class names.");
        string? probabilities = Named(OnnxMetadataKeys.ProbabilitiesOutput, "probabilities");
        if (probabilities == logits) probabilities = null;
        return (logits, probabilities, classes);
    }

    private IReadOnlyList<string> ReadClassNames(OnnxPredictorOptions options)
    {
        IReadOnlyList<string>? names = options.ClassNames;
        string from = "OnnxPredictorOptions.ClassNames";
        if (names is null && Metadata.TryGetValue(OnnxMetadataKeys.ClassNames, out string? json))
        {
            names = ParseClassNames(json) ?? throw new InvalidDataException($"{Source}: the metadata entry '{OnnxMetadataKeys.ClassNames}' is not a JSON array of strings.");
            from = $"the metadata entry '{OnnxMetadataKeys.ClassNames}'";
        }
        names ??= Enumerable.Range(0, NumClasses).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        if (names.Count != NumClasses)
            throw new InvalidDataException($"{Source} scores {NumClasses} classes, but {from} lists {names.Count} names.");
        return names;
    }

    private static string[]? ParseClassNames(string json)
    {
        try { return JsonSerializer.Deserialize<string[]>(json); }
        catch (JsonException) { return null; }
    }

    private static string Describe(NodeMetadata m) =>
        m.IsTensor ? $"{m.ElementType.Name}[{string.Join(", ", m.Dimensions.Select((d, i) => d > 0 ? d.ToString(CultureInfo.InvariantCulture) : (m.SymbolicDimensions[i] is { Length: > 0 } s ? s : "?")))}]" : m.OnnxValueType.ToString();
}
