using System.Collections.Concurrent;
using ResNet.ML.Data;
using ResNet.ML.Layers;
using ResNet.ML.Onnx;
using ResNet.ML.Onnx.Proto;

namespace ResNet.ML.Models;

/// <summary>
/// Pretrained ImageNet weights that a NuGet package ships, imported into our network layout. <c>dnn-resnet18</c> is the
/// ResNet-18 featurizer of <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1 (MIT): a CNTK export whose stage 4
/// has three blocks, so its architecture is <c>resnet18 blocks=2,2,2,3</c>. The package's preprocessing graph (RGB to
/// BGR, minus a mean image) becomes the stem's channel order and a <see cref="Data.Normalization"/>, so a network
/// loaded from it takes raw 0-255 RGB pixels like every model here. The files are found next to the app (the
/// package's build .props copies them to <c>DnnImageModels/</c> in the output folder), in the package folder its assembly
/// is loaded from (a notebook kernel's <c>#r "nuget:"</c>, whichever packages folder it restored into) or in the NuGet
/// package cache.
/// </summary>
public sealed class PretrainedBackbone
{
    /// <summary>The name of the package's ResNet-18 (option <c>Pretrained</c>, CLI <c>--pretrained</c>).</summary>
    public const string DnnResNet18 = "dnn-resnet18";

    /// <summary>The NuGet package that ships <see cref="DnnResNet18"/>, and the version imported and tested.</summary>
    public const string DnnResNet18Package = "Microsoft.ML.DnnImageFeaturizer.ResNet18", DnnResNet18Version = "0.23.1";

    /// <summary>The pretrained names known.</summary>
    public static IReadOnlyList<string> Names { get; } = [DnnResNet18];

    /// <summary>Environment variable naming a folder that holds <c>ResNet18Onnx/ResNet18.onnx</c> and <c>ResNetPrepOnnx/ResNetPreprocess.onnx</c> (searched first).</summary>
    public const string FolderVariable = "RESNETML_DNN_IMAGE_MODELS";

    private static readonly ConcurrentDictionary<string, Lazy<PretrainedBackbone>> Cache = new(StringComparer.Ordinal);

    private PretrainedBackbone(string name, ImportedResNet weights, float[] rgbMean, string modelPath, string preprocessPath)
    {
        (Name, Imported, _rgbMean, ModelPath, PreprocessPath) = (name, weights, rgbMean, modelPath, preprocessPath);
    }

    private readonly float[] _rgbMean;

    public string Name { get; }

    /// <summary>The featurizer as read from its ONNX file (stem in raw RGB channel order).</summary>
    public ImportedResNet Imported { get; }

    public ResNetSpec Spec => Imported.Spec;

    /// <summary>The architecture text a network built for these weights has (<see cref="Network.Architecture"/>).</summary>
    public string Architecture => Spec.ToString();

    public string ModelPath { get; }
    public string PreprocessPath { get; }

    /// <summary>Channels out of the backbone (what the new head sees).</summary>
    public int FeatureCount => Spec.OutputWidth;

    /// <summary>The smallest input side: the network halves the resolution five times.</summary>
    public const int MinimumInputSize = 32;

    /// <summary>The architecture <paramref name="name"/> has, known without reading its files.</summary>
    public static string ArchitectureOf(string name) => Canonical(name) switch
    {
        DnnResNet18 => ResNetSpec.Parse("resnet18 blocks=2,2,2,3").ToString(),
        _ => throw UnknownName(name),
    };

    /// <summary>True when <paramref name="name"/> is one of <see cref="Names"/> (any case).</summary>
    public static bool IsKnown(string? name) => name is not null && Names.Contains(Canonical(name));

    /// <summary>
    /// The preprocessing for <paramref name="channels"/>-channel 0-255 input: x - mean, with the package's mean image
    /// averaged per channel (it varies by 3-6 grey levels over the image, and an average applies at any input size).
    /// Grayscale takes the mean of the three, as its stem filter is the sum of the RGB ones.
    /// </summary>
    public Normalization Normalization(int channels)
    {
        if (channels <= 0) throw new ArgumentOutOfRangeException(nameof(channels), channels, "The channel count must be positive.");
        float[] mean = channels == 1 ? [_rgbMean.Average()] : Enumerable.Range(0, channels).Select(c => _rgbMean[c % _rgbMean.Length]).ToArray();
        return new Normalization(1f, mean, Enumerable.Repeat(1f, mean.Length).ToArray());
    }

    /// <summary>Loads the backbone into <paramref name="network"/> (built for <see cref="Architecture"/>); its head keeps its values.</summary>
    /// <exception cref="InvalidDataException">The network is not this architecture; nothing is loaded.</exception>
    public void LoadInto(Network network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var spec = ResNetSpec.TryParse(network.Architecture, out var s, out _) ? s : null;
        if (spec != Spec)
            throw new InvalidDataException($"Pretrained {Name} is {Architecture}; the network is {network.Architecture}. Build it with PretrainedBackbone.Build or Architecture = \"{Architecture}\".");
        ModelWeights.LoadBackbone(network, Imported.Tensors, $"Pretrained {Name} ({ModelPath})", adaptInputChannels: network.InputChannels != Imported.InputChannels);
    }

    /// <summary>
    /// A network for <paramref name="classes"/> classes with these weights and a new head (initialized from
    /// <paramref name="seed"/> as torchvision initializes a linear layer).
    /// </summary>
    public Network Build(int channels, int classes, int height, int width, int seed = 0)
    {
        CheckInputSize(height, width);
        var network = ModelFactory.Build(Spec, channels, classes, height, width);
        Training.Initializer.Initialize(network, new Tensors.Rng((ulong)(uint)seed ^ 0x1A17UL));
        LoadInto(network);
        return network;
    }

    /// <summary>Throws naming the size when an input is smaller than <see cref="MinimumInputSize"/>.</summary>
    public void CheckInputSize(int height, int width) => CheckInputSize(Name, height, width);

    /// <summary>Throws naming the size when an input is too small for pretrained <paramref name="name"/>.</summary>
    public static void CheckInputSize(string name, int height, int width)
    {
        if (height < MinimumInputSize || width < MinimumInputSize)
            throw new ArgumentException($"Pretrained {Canonical(name)} needs images of at least {MinimumInputSize}x{MinimumInputSize} (it halves the resolution five times); these are {height}x{width}: resize them when loading (e.g. --image-size 64).");
    }

    /// <summary>
    /// Finds and imports <paramref name="name"/> (cached per file for the process). Throws
    /// <see cref="FileNotFoundException"/> naming the package to add when its files are nowhere to be found.
    /// </summary>
    public static PretrainedBackbone Load(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string canonical = Canonical(name);
        if (canonical != DnnResNet18) throw UnknownName(name);
        var (model, preprocess) = Locate();
        string key = $"{model}|{File.GetLastWriteTimeUtc(model).Ticks}|{preprocess}";
        var lazy = Cache.GetOrAdd(key, _ => new Lazy<PretrainedBackbone>(() => Import(canonical, model, preprocess), LazyThreadSafetyMode.ExecutionAndPublication));
        try { return lazy.Value; }
        catch
        {
            // A failed import is not cached: the next call reads the files again.
            Cache.TryRemove(new KeyValuePair<string, Lazy<PretrainedBackbone>>(key, lazy));
            throw;
        }
    }

    /// <summary>The folders searched for the package's <c>DnnImageModels</c>, in order.</summary>
    public static IReadOnlyList<string> SearchFolders() => SearchFolders(AppContext.BaseDirectory);

    internal static IReadOnlyList<string> SearchFolders(string appFolder) => SearchFolders(appFolder, LoadedPackageAssemblies());

    internal static IReadOnlyList<string> SearchFolders(string appFolder, IEnumerable<string> packageAssemblyPaths)
    {
        var folders = new List<string>();
        if (Environment.GetEnvironmentVariable(FolderVariable) is { Length: > 0 } given) folders.Add(given);
        folders.Add(Path.Combine(appFolder, "DnnImageModels"));
        // The package's own assembly, where a host loaded it from the package folder (a notebook kernel's #r "nuget:",
        // which may restore into a fallback packages folder or a packages folder of its own, not the NuGet cache below).
        foreach (string path in packageAssemblyPaths)
            if (PackageModelsFolder(path) is { } folder && !folders.Contains(folder, StringComparer.Ordinal)) folders.Add(folder);
        string? cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(cache))
        {
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            cache = string.IsNullOrEmpty(home) ? null : Path.Combine(home, ".nuget", "packages");
        }
        if (cache is not null)
            folders.Add(Path.Combine(cache, DnnResNet18Package.ToLowerInvariant(), DnnResNet18Version, "tools", "DnnImageModels"));
        return folders;
    }

    /// <summary>
    /// The package's <c>tools/DnnImageModels</c> for its assembly at <paramref name="assemblyPath"/> when that lies in
    /// the package's <c>lib/&lt;framework&gt;/</c> folder (as restored into a packages folder); null otherwise (e.g. an
    /// app's output folder, where the .props copied the models next to it).
    /// </summary>
    internal static string? PackageModelsFolder(string assemblyPath)
    {
        if (string.IsNullOrEmpty(assemblyPath)) return null;
        var framework = Directory.GetParent(Path.GetFullPath(assemblyPath));
        var lib = framework?.Parent;
        if (lib?.Parent is not { } package || !string.Equals(lib.Name, "lib", StringComparison.OrdinalIgnoreCase)) return null;
        return Path.Combine(package.FullName, "tools", "DnnImageModels");
    }

    /// <summary>
    /// Where the package's assembly is loaded from. A reference alone loads nothing (a kernel's <c>#r "nuget:"</c> only
    /// references it), so when it is not loaded yet it is loaded by name, which the host resolves to the file it
    /// referenced; without the package that fails and nothing is returned.
    /// </summary>
    private static List<string> LoadedPackageAssemblies()
    {
        var loaded = AppDomain.CurrentDomain.GetAssemblies()
            .Where(a => !a.IsDynamic && string.Equals(a.GetName().Name, DnnResNet18Package, StringComparison.OrdinalIgnoreCase)).ToList();
        if (loaded.Count == 0)
        {
            try { loaded.Add(System.Reflection.Assembly.Load(new System.Reflection.AssemblyName(DnnResNet18Package))); }
            catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException) { }
        }
        var locations = new List<string>();
        foreach (var assembly in loaded)
        {
            try { if (assembly.Location.Length > 0) locations.Add(assembly.Location); }
            catch (NotSupportedException) { }
        }
        return locations;
    }

    /// <summary>The featurizer and preprocessing files of <see cref="DnnResNet18"/>.</summary>
    public static (string Model, string Preprocess) Locate() => Locate(AppContext.BaseDirectory);

    internal static (string Model, string Preprocess) Locate(string appFolder) => Locate(SearchFolders(appFolder));

    internal static (string Model, string Preprocess) Locate(IReadOnlyList<string> folders)
    {
        foreach (string folder in folders)
        {
            string model = Path.Combine(folder, "ResNet18Onnx", "ResNet18.onnx"), preprocess = Path.Combine(folder, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
            if (File.Exists(model) && File.Exists(preprocess)) return (model, preprocess);
        }
        throw new FileNotFoundException(
            $"Pretrained {DnnResNet18} needs the NuGet package {DnnResNet18Package} {DnnResNet18Version}: add it to the app " +
            $"(<PackageReference Include=\"{DnnResNet18Package}\" Version=\"{DnnResNet18Version}\" />, which copies DnnImageModels/ next to it) " +
            $"or restore it into the NuGet cache. Looked in: {string.Join("; ", folders)}.");
    }

    private static PretrainedBackbone Import(string name, string modelPath, string preprocessPath)
    {
        var imported = OnnxResNetImporter.Import(modelPath);
        string expected = ArchitectureOf(name);
        if (imported.Spec.ToString() != expected)
            throw new InvalidDataException($"{modelPath} is {imported.Spec}, not the {expected} of {DnnResNet18Package} {DnnResNet18Version}.");
        var (order, mean) = ReadPreprocessing(preprocessPath, imported);
        // The featurizer's channel k is raw channel order[k]: the stem's input channels are permuted so that the
        // network takes raw (RGB) channels, and each raw channel gets its featurizer channel's mean.
        var rawMean = new float[order.Length];
        for (int k = 0; k < order.Length; k++) rawMean[order[k]] = mean[k];
        var tensors = imported.Tensors.Select(t => t.Name == "conv1.weight" ? PermuteInputChannels(t, order) : t).ToList();
        return new PretrainedBackbone(name, imported with { Tensors = tensors }, rawMean, modelPath, preprocessPath);
    }

    private static SafetensorsTensor PermuteInputChannels(SafetensorsTensor weight, int[] order)
    {
        var w = weight.ToFloats();
        int o = (int)weight.Shape[0], c = (int)weight.Shape[1], plane = (int)(weight.Shape[2] * weight.Shape[3]);
        var result = new float[w.Length];
        for (int oc = 0; oc < o; oc++)
            for (int k = 0; k < c; k++)
                w.AsSpan((oc * c + k) * plane, plane).CopyTo(result.AsSpan((oc * c + order[k]) * plane, plane));
        return SafetensorsTensor.FromFloats(weight.Name, result, weight.Shape);
    }

    /// <summary>
    /// Reads the preprocessing graph: Split of the input along channels, Concat of the parts in some order, Sub of a
    /// constant mean (per pixel or per channel). Returns, per featurizer channel, the raw channel it takes and its mean.
    /// </summary>
    internal static (int[] Order, float[] Mean) ReadPreprocessing(string path, ImportedResNet featurizer)
    {
        ModelProto model;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
        {
            try { model = ModelProto.Parser.ParseFrom(stream); }
            catch (Google.Protobuf.InvalidProtocolBufferException e) { throw new InvalidDataException($"{path} is not an ONNX model: {e.Message}", e); }
        }
        var g = model.Graph ?? throw new InvalidDataException($"{path} has no graph.");
        int channels = featurizer.InputChannels;
        InvalidDataException Fail(NodeProto n, string message) =>
            new($"{path}: {OnnxResNetImporter.Describe(n)} {message}; the preprocessing should be Split, Concat and Sub of a mean.");
        var initializers = g.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var inputs = g.Input.Where(i => !initializers.ContainsKey(i.Name)).ToList();
        if (inputs.Count != 1 || g.Output.Count != 1 || g.Node.Count != 3)
            throw new InvalidDataException($"{path}: the preprocessing has {inputs.Count} inputs, {g.Output.Count} outputs and {g.Node.Count} nodes, not one input, one output and Split, Concat, Sub.");
        var (split, concat, sub) = (g.Node[0], g.Node[1], g.Node[2]);
        long Axis(NodeProto n) => n.Attribute.FirstOrDefault(a => a.Name == "axis")?.I ?? 0;
        if (split.OpType != "Split" || split.Input.Count != 1 || split.Input[0] != inputs[0].Name || Axis(split) != 1 || split.Output.Count != channels)
            throw Fail(split, $"should split the input '{inputs[0].Name}' into its {channels} channels");
        if (concat.OpType != "Concat" || Axis(concat) != 1 || concat.Input.Count != channels)
            throw Fail(concat, "should join the channels again");
        var order = concat.Input.Select(i => split.Output.IndexOf(i)).ToArray();
        if (order.Any(k => k < 0) || order.Distinct().Count() != channels) throw Fail(concat, $"joins [{string.Join(", ", concat.Input)}], not a reordering of the split channels");
        if (sub.OpType != "Sub" || sub.Input.Count != 2 || sub.Input[0] != concat.Output[0] || !initializers.TryGetValue(sub.Input[1], out var meanTensor) || sub.Output[0] != g.Output[0].Name)
            throw Fail(sub, "should subtract a stored mean from the reordered channels and give the graph's output");
        var values = OnnxResNetImporter.Floats(meanTensor, $"{path}: {OnnxResNetImporter.Describe(sub)}");
        var dims = meanTensor.Dims.SkipWhile(d => d == 1 && meanTensor.Dims.Count > 3).ToArray();
        if (dims.Length == 0 || dims[0] != channels || values.Length % channels != 0)
            throw Fail(sub, $"subtracts '{meanTensor.Name}' of dims [{string.Join(", ", meanTensor.Dims)}], not a mean per channel or per pixel of {channels} channels");
        int plane = values.Length / channels;
        var mean = new float[channels];
        for (int c = 0; c < channels; c++) mean[c] = (float)values.AsSpan(c * plane, plane).ToArray().Average(v => (double)v);
        return (order, mean);
    }

    private static string Canonical(string name) => name.Trim().ToLowerInvariant();

    private static ArgumentException UnknownName(string name) =>
        new($"Pretrained '{name}' is not known; the pretrained weights are: {string.Join(", ", Names)} (from the NuGet package {DnnResNet18Package} {DnnResNet18Version}).");
}
