using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using ResNet.ML.Layers;
using ResNet.ML.Models;

namespace ResNet.ML.Training;

/// <summary>
/// Everything needed to continue a run exactly where it stopped: weights and BN statistics, optimizer state, the
/// position in the run (epoch, step: the schedule is a function of it, and so are the shuffle order and augmentation
/// draws, which the data pipeline derives from (seed, epoch, batch) rather than from a running generator), the running
/// sums of the epoch in progress, early-stopping state, the metrics history, the model's <see cref="ModelDescription"/>
/// (architecture, input shape, classes, normalization), and a fingerprint of the options and data it was made with.
/// Stored as one safetensors file (tensors <c>model.*</c> and <c>optimizer.*</c>; the description as the same metadata
/// entries a weights file has, the run state as JSON metadata) with a SHA-256 of all of it (description, run state and
/// tensors), so a damaged or edited file is refused rather than half-loaded.
/// </summary>
public sealed class TrainingCheckpoint
{
    /// <summary>The <c>format</c> metadata entry that marks a safetensors file as a checkpoint (tools tell model files apart by it).</summary>
    public const string FormatName = "resnet.ml/checkpoint";
    // 2: the checksum covers the run state and every header field, not only the tensor bytes.
    // 3: the model's description is its own metadata entries (those of a weights file), no longer part of the run state.
    internal const int FormatVersion = 3;
    // Runs checkpointed by the previous build must still resume; its files differ only in where the description is.
    private const int PreviousFormatVersion = 2;
    public const string FileName = "checkpoint.safetensors";

    internal CheckpointState State { get; init; } = null!;
    /// <summary>The model being trained: what its weights file and ONNX export will say it is.</summary>
    public ModelDescription Model { get; internal init; } = null!;
    internal IReadOnlyList<SafetensorsTensor> ModelTensors { get; init; } = [];
    internal IReadOnlyDictionary<string, float[]> OptimizerState { get; init; } = new Dictionary<string, float[]>();
    /// <summary>The best epoch's weights so far, when early stopping restores them (empty otherwise).</summary>
    internal IReadOnlyList<SafetensorsTensor> BestModelTensors { get; init; } = [];

    /// <summary>The 0-based epoch the run continues in, and the steps of it already done.</summary>
    public int Epoch => State.Epoch;
    public int StepInEpoch => State.StepInEpoch;
    public long GlobalStep => State.GlobalStep;
    public IReadOnlyList<EpochMetrics> History => State.History;
    public IReadOnlyList<string> ClassNames => Model.ClassNames;
    /// <summary>The engine threads the run used (null for checkpoints that predate it): another count gives a slightly different result.</summary>
    public int? Threads => State.Threads;

    public void Write(Stream output) => Write(output, checkFinite: true);

    /// <summary>Tests write a non-finite checkpoint with <paramref name="checkFinite"/> off, to prove the reader refuses it.</summary>
    internal void Write(Stream output, bool checkFinite)
    {
        var tensors = ModelTensors.Select(t => t with { Name = "model." + t.Name })
            .Concat(BestModelTensors.Select(t => t with { Name = "best." + t.Name }))
            .Concat(OptimizerState.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => SafetensorsTensor.FromFloats("optimizer." + kv.Key, kv.Value, kv.Value.Length)))
            .ToList();
        // A checkpoint of a diverged run would replace the last good one and resume into NaN.
        if (checkFinite) FiniteWeights.ThrowIfNotFinite(tensors, "a checkpoint", reading: false);
        var metadata = new Dictionary<string, string>(Model.ToMetadata())
        {
            ["format"] = FormatName,
            ["version"] = FormatVersion.ToString(CultureInfo.InvariantCulture),
            ["state"] = JsonSerializer.Serialize(State, CheckpointJson.Options),
        };
        metadata[ChecksumKey] = Checksum(tensors, metadata);
        Safetensors.Write(output, tensors, metadata);
    }

    /// <summary>Writes to <paramref name="path"/> through a temporary file and a rename, so the old checkpoint stays whole until the new one is.</summary>
    public void Save(string path) => AtomicFile.Write(path, Write);

    public static TrainingCheckpoint Read(Stream input, string source = "the checkpoint")
    {
        var (tensors, metadata) = Safetensors.Read(input, source);
        if (!metadata.TryGetValue("format", out var format) || format != FormatName)
            throw new InvalidDataException($"{source} is not a ResNet.ML training checkpoint (it is a safetensors file without checkpoint metadata; a weights file cannot be resumed from).");
        string version = metadata.GetValueOrDefault("version", "(none)");
        bool current = version == FormatVersion.ToString(CultureInfo.InvariantCulture);
        if (!current && version != PreviousFormatVersion.ToString(CultureInfo.InvariantCulture))
            throw new InvalidDataException($"{source} is a checkpoint of format version {version}; this build reads versions {PreviousFormatVersion} and {FormatVersion}.");
        // Versions 2 and 3 are checksummed alike: every metadata entry but the checksum, and every tensor.
        if (!metadata.TryGetValue(ChecksumKey, out var hash) || hash != Checksum(tensors, metadata))
            throw new InvalidDataException($"{source} is corrupt: its contents (model description, run state or tensors) do not match the checksum written with it.");
        FiniteWeights.ThrowIfNotFinite(tensors, source);
        string stateJson = metadata.GetValueOrDefault("state", "");
        CheckpointState? state;
        try { state = JsonSerializer.Deserialize<CheckpointState>(stateJson, CheckpointJson.Options); }
        catch (JsonException e) { throw new InvalidDataException($"{source} is corrupt: its run state is not readable ({e.Message})."); }
        if (state is null || state.Fingerprint is null || state.OptimizerKind is null || state.History is null)
            throw new InvalidDataException($"{source} is corrupt: its run state is incomplete.");
        return new TrainingCheckpoint
        {
            State = state,
            Model = current ? ModelDescription.FromMetadata(metadata, source) : Version2Model.Read(stateJson, source),
            ModelTensors = tensors.Where(t => t.Name.StartsWith("model.", StringComparison.Ordinal)).Select(t => t with { Name = t.Name["model.".Length..] }).ToList(),
            OptimizerState = tensors.Where(t => t.Name.StartsWith("optimizer.", StringComparison.Ordinal)).ToDictionary(t => t.Name["optimizer.".Length..], t => t.ToFloats()),
            BestModelTensors = tensors.Where(t => t.Name.StartsWith("best.", StringComparison.Ordinal)).Select(t => t with { Name = t.Name["best.".Length..] }).ToList(),
        };
    }

    public static TrainingCheckpoint Load(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return Read(stream, $"Checkpoint '{path}'");
        }
        catch (FileNotFoundException) { throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", path); }
    }

    internal const string ChecksumKey = "sha256";

    /// <summary>
    /// SHA-256 of everything the file says but the checksum itself: each metadata entry (the run state included) and each
    /// tensor's name, dtype, shape and bytes, in a fixed order. An edit anywhere (a resume step, a normalization mean)
    /// is refused instead of silently skipping steps.
    /// </summary>
    internal static string Checksum(IEnumerable<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Text(string s) { sha.AppendData(System.Text.Encoding.UTF8.GetBytes(s)); sha.AppendData([0]); }
        foreach (var (key, value) in metadata.Where(kv => kv.Key != ChecksumKey).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            Text(key);
            Text(value);
        }
        foreach (var t in tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            Text(t.Name);
            Text(t.Dtype);
            Text(t.ShapeText);
            sha.AppendData(t.Bytes);
        }
        return Convert.ToHexString(sha.GetHashAndReset());
    }
}

/// <summary>The run state of a checkpoint besides the tensors and the model's description.</summary>
internal sealed record CheckpointState
{
    public required string Fingerprint { get; init; }
    public required int Epoch { get; init; }
    public required int StepInEpoch { get; init; }
    public required long GlobalStep { get; init; }
    public required string OptimizerKind { get; init; }
    public required long OptimizerSteps { get; init; }
    public required double EpochLossSum { get; init; }
    public required long EpochCorrect { get; init; }
    public required long EpochSeen { get; init; }
    public required double EpochSeconds { get; init; }
    public double? BestMetric { get; init; }
    public int EpochsWithoutImprovement { get; init; }
    public required List<EpochMetrics> History { get; init; }
    public int? Threads { get; init; }
}

/// <summary>
/// Where a format-2 checkpoint kept the model's description: inside the run state JSON, beside the run's position.
/// Only read, so runs checkpointed by the previous build resume; their next checkpoint is written in the current format.
/// </summary>
internal sealed record Version2Model(string? Architecture, int Channels, int Height, int Width, List<string>? ClassNames, NormalizationState? Normalization)
{
    public static ModelDescription Read(string stateJson, string source)
    {
        string where = $"{source} (checkpoint format version 2) is corrupt: its run state";
        Version2Model? fields;
        try { fields = JsonSerializer.Deserialize<Version2Model>(stateJson, CheckpointJson.Options); }
        catch (JsonException e) { throw new InvalidDataException($"{where} is not readable ({e.Message})."); }
        if (fields is null) throw new InvalidDataException($"{where} is empty.");
        string? missing = fields.Architecture is null ? nameof(Architecture) : fields.ClassNames is null ? nameof(ClassNames)
            : fields.Normalization is null ? nameof(Normalization) : null;
        if (missing is not null) throw new InvalidDataException($"{where} has no '{missing}' field.");
        try
        {
            return new ModelDescription(fields.Architecture!, fields.Channels, fields.Height, fields.Width, fields.ClassNames!, fields.Normalization!.ToNormalization());
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{where} does not describe a usable model ({e.Message})."); }
    }
}

internal static class CheckpointJson
{
    public static readonly JsonSerializerOptions Options = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
}

/// <summary>Model weights as safetensors entries and back, with every name and shape checked before anything is copied.</summary>
internal static class StateDict
{
    public static List<SafetensorsTensor> ToTensors(Network network) =>
        network.State.Select(e => e.Counter
            ? SafetensorsTensor.FromInt64(e.Name, [e.GetCounter!()])
            : SafetensorsTensor.FromFloats(e.Name, e.Value!.Data, e.Dims.Select(d => (long)d).ToArray())).ToList();

    /// <summary>
    /// Copies <paramref name="tensors"/> into <paramref name="network"/>; every entry of the network must be present with
    /// its shape, and (unless <paramref name="skip"/> says so) nothing extra: checked in full before the first copy.
    /// </summary>
    public static void Load(Network network, IEnumerable<SafetensorsTensor> tensors, string source, Func<string, bool>? skip = null)
    {
        var byName = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        foreach (var t in tensors) byName[t.Name] = t;
        var entries = network.State.Where(e => skip is null || !skip(e.Name)).ToList();
        var names = entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (!byName.TryGetValue(e.Name, out var t))
                throw new InvalidDataException($"{source} has no tensor '{e.Name}' that {network.Architecture} needs.");
            if (e.Counter)
            {
                if (t.Dtype != "I64" || t.ElementCount != 1)
                    throw new InvalidDataException($"{source}: tensor '{e.Name}' should be one I64 counter, but is {t.Dtype} {t.ShapeText}.");
            }
            else if (t.Dtype != "F32" || !t.Shape.SequenceEqual(e.Dims.Select(d => (long)d)))
            {
                throw new InvalidDataException($"{source}: tensor '{e.Name}' is {t.Dtype} {t.ShapeText}, but {network.Architecture} needs F32 [{string.Join(", ", e.Dims)}].");
            }
        }
        var extra = byName.Keys.FirstOrDefault(n => !names.Contains(n) && (skip is null || !skip(n)));
        if (extra is not null) throw new InvalidDataException($"{source} has a tensor '{extra}' that {network.Architecture} does not have.");
        FiniteWeights.ThrowIfNotFinite(entries.Select(e => byName[e.Name]), source);
        foreach (var e in entries)
        {
            var t = byName[e.Name];
            if (e.Counter) e.SetCounter!(t.ToInt64()[0]);
            else t.ToFloats().CopyTo(e.Value!.Data, 0);
        }
    }
}
