using System.Globalization;
using System.Text.Json;
using ResNet.ML.Data;
using ResNet.ML.Layers;
using ResNet.ML.Onnx;

namespace ResNet.ML.Training;

/// <summary>
/// What a model file says about the model besides its weights: the architecture, the input shape, the class names and
/// the normalization its input needs. Weights files, training checkpoints and ONNX exports carry it as the same string
/// metadata entries (<see cref="ToMetadata"/>), and every reader parses it with <see cref="FromMetadata"/>, so the
/// files of one model cannot disagree about what the model is.
/// </summary>
public sealed record ModelDescription
{
    // The key names are those weights files were written with before this type existed, so those files stay readable.
    // Architecture and class names are the very entries the ONNX exporter writes, hence the shared constants.
    public const string ArchitectureKey = OnnxMetadataKeys.Architecture;
    public const string ChannelsKey = "channels";
    public const string HeightKey = "height";
    public const string WidthKey = "width";
    /// <summary>JSON array of class names in class-index order.</summary>
    public const string ClassNamesKey = OnnxMetadataKeys.ClassNames;
    /// <summary>JSON object <c>{"Scale":…,"Mean":[…],"Std":[…]}</c> (see <see cref="Data.Normalization"/>).</summary>
    public const string NormalizationKey = "normalization";

    /// <summary>Every key <see cref="ToMetadata"/> writes.</summary>
    public static IReadOnlyList<string> Keys { get; } = [ArchitectureKey, ChannelsKey, HeightKey, WidthKey, ClassNamesKey, NormalizationKey];

    public ModelDescription(string architecture, int channels, int height, int width, IReadOnlyList<string> classNames, Normalization normalization)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(architecture);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(normalization);
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"A model's input shape must be positive, not [{channels}, {height}, {width}].");
        if (classNames.Count == 0) throw new ArgumentException("A model needs at least one class name.", nameof(classNames));
        if (classNames.Any(n => n is null)) throw new ArgumentException("A model's class names must not be null.", nameof(classNames));
        normalization.CheckChannels(channels);
        (Architecture, Channels, Height, Width, Normalization) = (architecture, channels, height, width, normalization);
        // A copy, so the caller's list changing later cannot change a description already written or compared.
        ClassNames = classNames.ToArray();
    }

    public string Architecture { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Source pixels to network inputs (see <see cref="TrainedModel.Normalization"/>).</summary>
    public Normalization Normalization { get; }

    /// <summary>The description as metadata entries: invariant-culture numbers, JSON for the class names and normalization.</summary>
    public IReadOnlyDictionary<string, string> ToMetadata() => new Dictionary<string, string>
    {
        [ArchitectureKey] = Architecture,
        [ChannelsKey] = Channels.ToString(CultureInfo.InvariantCulture),
        [HeightKey] = Height.ToString(CultureInfo.InvariantCulture),
        [WidthKey] = Width.ToString(CultureInfo.InvariantCulture),
        [ClassNamesKey] = JsonSerializer.Serialize(ClassNames),
        [NormalizationKey] = JsonSerializer.Serialize(NormalizationState.From(Normalization)),
    };

    /// <summary>
    /// Reads what <see cref="ToMetadata"/> wrote (other entries are ignored). Throws <see cref="InvalidDataException"/>
    /// naming <paramref name="source"/> and the first entry that is missing or unreadable.
    /// </summary>
    /// <param name="metadata">The metadata of a weights file, a checkpoint or an ONNX model.</param>
    /// <param name="source">Names the file in messages, e.g. <c>Model file 'run/model.safetensors'</c>.</param>
    public static ModelDescription FromMetadata(IReadOnlyDictionary<string, string> metadata, string source)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        string Entry(string key) => metadata.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v) ? v
            : throw new InvalidDataException($"{source} has no '{key}' metadata entry; a ResNet.ML model file records '{string.Join("', '", Keys)}'.");
        InvalidDataException Bad(string key, string why) => new($"{source}: metadata entry '{key}' {why}.");
        int Positive(string key)
        {
            string text = Entry(key);
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0
                ? n : throw Bad(key, $"is '{text}', not a positive whole number");
        }
        T Json<T>(string key, string what) where T : class
        {
            string text = Entry(key);
            try { return JsonSerializer.Deserialize<T>(text) ?? throw Bad(key, $"is null, not {what}"); }
            catch (JsonException e) { throw Bad(key, $"is not {what} ({e.Message})"); }
        }

        string architecture = Entry(ArchitectureKey);
        int channels = Positive(ChannelsKey), height = Positive(HeightKey), width = Positive(WidthKey);
        var classNames = Json<List<string>>(ClassNamesKey, "a JSON array of class names");
        if (classNames.Count == 0 || classNames.Any(n => n is null)) throw Bad(ClassNamesKey, "holds no class names, or a null one");
        var state = Json<NormalizationState>(NormalizationKey, "a JSON normalization (Scale, Mean, Std)");
        Normalization normalization;
        try
        {
            normalization = state.ToNormalization();
            normalization.CheckChannels(channels);
        }
        catch (ArgumentException e) { throw Bad(NormalizationKey, $"is not a usable normalization for {channels}-channel input ({e.Message})"); }
        return new ModelDescription(architecture, channels, height, width, classNames, normalization);
    }

    /// <summary>A freshly built (uninitialized) network of this architecture, input shape and class count.</summary>
    internal Network BuildNetwork() => TrainingSetup.Network(Architecture, Channels, ClassNames.Count, Height, Width);

    public bool Equals(ModelDescription? other) =>
        other is not null && Architecture == other.Architecture && Channels == other.Channels && Height == other.Height &&
        Width == other.Width && ClassNames.SequenceEqual(other.ClassNames) && Normalization.Equals(other.Normalization);

    public override int GetHashCode() => HashCode.Combine(Architecture, Channels, Height, Width, ClassNames.Count, Normalization);

    public override string ToString() =>
        $"{Architecture}, input [{Channels}, {Height}, {Width}], {ClassNames.Count} classes ({string.Join(", ", ClassNames)}), {Normalization}";
}

/// <summary>A <see cref="Data.Normalization"/> as plain JSON data.</summary>
internal sealed record NormalizationState(float Scale, float[] Mean, float[] Std)
{
    public static NormalizationState From(Normalization n) => new(n.Scale, n.Mean, n.Std);

    /// <summary>Throws <see cref="ArgumentException"/> when a member is missing (null in the JSON) or out of range.</summary>
    public Normalization ToNormalization() =>
        new(Scale, Mean ?? throw new ArgumentException("it has no Mean"), Std ?? throw new ArgumentException("it has no Std"));
}
