using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ResNet.ML.Models;

/// <summary>The residual block a stage is made of.</summary>
public enum BlockKind
{
    /// <summary>Two 3x3 convolutions (ResNet-18/34, the CIFAR ResNets); output width = stage width.</summary>
    Basic,

    /// <summary>1x1 reduce, 3x3 (carries the stride, torchvision "v1.5"), 1x1 expand; output width = 4 x stage width.</summary>
    Bottleneck,
}

/// <summary>The layers before the first stage.</summary>
public enum StemKind
{
    /// <summary><c>conv1</c> 7x7 stride 2 padding 3, <c>bn1</c>, <c>relu</c>, <c>maxpool</c> 3x3 stride 2 padding 1 (torchvision).</summary>
    ImageNet,

    /// <summary><c>conv1</c> 3x3 stride 1 padding 1, <c>bn1</c>, <c>relu</c> (the paper's CIFAR-10 nets and the seed experiment's ResNet).</summary>
    Cifar,
}

/// <summary>What a block adds back where its input and output shapes differ (identity elsewhere).</summary>
public enum ShortcutKind
{
    /// <summary>The paper's option A: subsample and pad the new channels with zeros; no parameters (<c>ZeroPadShortcut</c>).</summary>
    ZeroPad,

    /// <summary>The paper's option B: 1x1 convolution (stride s) + BN, torchvision's <c>downsample.0/1</c> (<c>ProjectionShortcut</c>).</summary>
    Projection,

    /// <summary>The seed experiment's shortcut: 3x3 convolution (stride s, padding 1) + BN, named <c>downsample.0/1</c>.</summary>
    Conv3x3Projection,
}

/// <summary>
/// A ResNet architecture as data: stem, stages of residual blocks, global average pool, linear head. Stage i is named
/// <c>layer{i}</c> (1-based) as torchvision names it; the first stage keeps the resolution, each later stage halves it
/// in its first block. Users define custom depths and widths with a spec instead of code, in a short text form
/// (<see cref="Parse"/>, <see cref="ToString"/>) or JSON (<see cref="FromJson"/>, <see cref="ToJson"/>).
/// </summary>
/// <param name="Block">Basic or bottleneck blocks.</param>
/// <param name="Blocks">Blocks per stage, e.g. [2, 2, 2, 2] for ResNet-18, [3, 3, 3] for ResNet-20.</param>
/// <param name="Widths">Stage widths (torchvision's "planes"; a bottleneck stage outputs 4 x its width), one per stage.</param>
/// <param name="Stem">The stem's kind.</param>
/// <param name="StemWidth">Channels out of the stem (64 for the ImageNet nets, 16 for the CIFAR nets).</param>
/// <param name="Shortcut">The shortcut where shapes change.</param>
/// <param name="Plain">The paper's plain twin: the same layers without any shortcut (y = relu(F(x))).</param>
public sealed record ResNetSpec(
    BlockKind Block,
    IReadOnlyList<int> Blocks,
    IReadOnlyList<int> Widths,
    StemKind Stem,
    int StemWidth,
    ShortcutKind Shortcut,
    bool Plain = false)
{
    /// <summary>Channels out of the last stage (what the head sees).</summary>
    public int OutputWidth => Widths[^1] * Expansion;

    /// <summary>Channels out of a block per unit of stage width: 1 for basic blocks, 4 for bottlenecks.</summary>
    public int Expansion => Block == BlockKind.Bottleneck ? 4 : 1;

    /// <summary>Weighted layers (convolutions and the head, not shortcuts) as the paper counts depth: 18 for ResNet-18, 20 for ResNet-20.</summary>
    public int Depth => 1 + Blocks.Sum() * (Block == BlockKind.Bottleneck ? 3 : 2) + 1;

    /// <summary>Throws <see cref="ArgumentException"/> naming the field at fault when the spec cannot be built.</summary>
    public ResNetSpec Validate()
    {
        if (Blocks is null || Blocks.Count == 0) throw new ArgumentException("ResNet spec: 'blocks' needs at least one stage.");
        if (Widths is null || Widths.Count != Blocks.Count)
            throw new ArgumentException($"ResNet spec: 'widths' has {Widths?.Count ?? 0} entries but 'blocks' has {Blocks.Count} stages; give one width per stage.");
        for (int i = 0; i < Blocks.Count; i++)
        {
            if (Blocks[i] <= 0) throw new ArgumentException($"ResNet spec: stage {i + 1} ('blocks') needs at least one block, not {Blocks[i]}.");
            if (Widths[i] <= 0) throw new ArgumentException($"ResNet spec: stage {i + 1} ('widths') needs a positive width, not {Widths[i]}.");
        }
        if (StemWidth <= 0) throw new ArgumentException($"ResNet spec: 'stem-width' must be positive, not {StemWidth}.");
        if (!Enum.IsDefined(Block)) throw new ArgumentException($"ResNet spec: 'block' {Block} is not a block kind.");
        if (!Enum.IsDefined(Stem)) throw new ArgumentException($"ResNet spec: 'stem' {Stem} is not a stem kind.");
        if (!Enum.IsDefined(Shortcut)) throw new ArgumentException($"ResNet spec: 'shortcut' {Shortcut} is not a shortcut kind.");
        if (Shortcut == ShortcutKind.ZeroPad && !Plain)
        {
            int c = StemWidth;
            for (int i = 0; i < Widths.Count; i++)
            {
                int o = Widths[i] * Expansion;
                if (o < c)
                    throw new ArgumentException($"ResNet spec: shortcut A (zero padding) can only widen, but stage {i + 1} narrows {c} -> {o} channels; use shortcut=B.");
                c = o;
            }
        }
        return this;
    }

    // ---- text form -------------------------------------------------------------------------------------------------

    /// <summary>
    /// The short text form, e.g. <c>block=basic blocks=3,3,3 widths=16,32,64 stem=cifar stem-width=16 shortcut=A</c>
    /// (plus <c>plain=true</c> for a plain twin). <see cref="Parse"/> reads it back.
    /// </summary>
    public override string ToString() =>
        $"block={BlockText(Block)} blocks={string.Join(',', Blocks)} widths={string.Join(',', Widths)} " +
        $"stem={StemText(Stem)} stem-width={StemWidth} shortcut={ShortcutText(Shortcut)}" + (Plain ? " plain=true" : "");

    public bool Equals(ResNetSpec? other) =>
        other is not null && Block == other.Block && Blocks.SequenceEqual(other.Blocks) && Widths.SequenceEqual(other.Widths) &&
        Stem == other.Stem && StemWidth == other.StemWidth && Shortcut == other.Shortcut && Plain == other.Plain;

    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);

    /// <summary>
    /// Reads a spec from its text form or JSON (text starting with <c>{</c>). The text form is whitespace-separated
    /// <c>key=value</c> pairs (keys: block, blocks, widths, stem, stem-width, shortcut, plain); it may start with a preset
    /// name whose fields the pairs then override, e.g. <c>resnet18 widths=32,64,128,256 stem-width=32</c> or
    /// <c>resnet56 shortcut=B</c>. Without a preset, block, blocks and widths are required; stem defaults to cifar for
    /// three stages or fewer and imagenet otherwise, stem-width to the first width, shortcut to A for the CIFAR stem and
    /// B for the ImageNet stem. Throws <see cref="FormatException"/> naming the part at fault.
    /// </summary>
    public static ResNetSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim();
        if (t.Length == 0) throw new FormatException("ResNet spec: the text is empty.");
        if (t.StartsWith('{')) return FromJson(t);

        var tokens = t.Split((char[])[' ', '\t', '\n', '\r', ';'], StringSplitOptions.RemoveEmptyEntries);
        ResNetSpec? baseSpec = null;
        int start = 0;
        if (!tokens[0].Contains('='))
        {
            if (tokens[0].Equals(ModelFactory.SimpleCnn, StringComparison.OrdinalIgnoreCase))
                throw new FormatException($"ResNet spec: {ModelFactory.SimpleCnn} is not a ResNet and takes no spec fields.");
            baseSpec = ResNetPresets.Get(tokens[0]);
            start = 1;
        }

        BlockKind? block = baseSpec?.Block;
        IReadOnlyList<int>? blocks = baseSpec?.Blocks, widths = baseSpec?.Widths;
        StemKind? stem = baseSpec?.Stem;
        int? stemWidth = baseSpec?.StemWidth;
        ShortcutKind? shortcut = baseSpec?.Shortcut;
        bool plain = baseSpec?.Plain ?? false;
        var seen = new HashSet<string>();
        for (int i = start; i < tokens.Length; i++)
        {
            string token = tokens[i];
            int eq = token.IndexOf('=');
            string key = (eq < 0 ? token : token[..eq]).ToLowerInvariant(), value = eq < 0 ? "" : token[(eq + 1)..];
            if (key == "plain" && eq < 0) value = "true";
            else if (eq < 0) throw new FormatException($"ResNet spec: '{token}' is not key=value (keys: block, blocks, widths, stem, stem-width, shortcut, plain).");
            if (!seen.Add(key)) throw new FormatException($"ResNet spec: '{key}' is given twice.");
            switch (key)
            {
                case "block": block = ParseBlock(value); break;
                case "blocks": blocks = ParseInts(key, value); break;
                case "widths": widths = ParseInts(key, value); break;
                case "stem": stem = ParseStem(value); break;
                case "stem-width" or "stemwidth": stemWidth = ParseInt(key, value); break;
                case "shortcut": shortcut = ParseShortcut(value); break;
                case "plain":
                    plain = value.ToLowerInvariant() switch
                    {
                        "true" or "1" or "yes" => true,
                        "false" or "0" or "no" => false,
                        _ => throw new FormatException($"ResNet spec: 'plain' is true or false, not '{value}'."),
                    };
                    break;
                default: throw new FormatException($"ResNet spec: unknown key '{key}' (keys: block, blocks, widths, stem, stem-width, shortcut, plain).");
            }
        }
        return Complete(block, blocks, widths, stem, stemWidth, shortcut, plain);
    }

    /// <summary>Parses like <see cref="Parse"/>, returning false (and the reason) instead of throwing.</summary>
    public static bool TryParse(string text, out ResNetSpec? spec, out string? error)
    {
        try { spec = Parse(text); error = null; return true; }
        catch (Exception e) when (e is FormatException or ArgumentException or KeyNotFoundException) { spec = null; error = e.Message; return false; }
    }

    // ---- JSON --------------------------------------------------------------------------------------------------------

    /// <summary>
    /// JSON form: <c>{"block":"basic","blocks":[3,3,3],"widths":[16,32,64],"stem":"cifar","stemWidth":16,"shortcut":"A","plain":false}</c>.
    /// </summary>
    public string ToJson() => new JsonObject
    {
        ["block"] = BlockText(Block),
        ["blocks"] = new JsonArray(Blocks.Select(b => (JsonNode)b).ToArray()),
        ["widths"] = new JsonArray(Widths.Select(w => (JsonNode)w).ToArray()),
        ["stem"] = StemText(Stem),
        ["stemWidth"] = StemWidth,
        ["shortcut"] = ShortcutText(Shortcut),
        ["plain"] = Plain,
    }.ToJsonString();

    /// <summary>Reads the JSON form (keys as <see cref="ToJson"/> writes them; <c>stem-width</c> is accepted too; defaults as <see cref="Parse"/>).</summary>
    public static ResNetSpec FromJson(string json)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json); }
        catch (JsonException e) { throw new FormatException($"ResNet spec: not valid JSON ({e.Message})."); }
        if (root is not JsonObject obj) throw new FormatException("ResNet spec: the JSON is not an object.");
        BlockKind? block = null; IReadOnlyList<int>? blocks = null, widths = null; StemKind? stem = null;
        int? stemWidth = null; ShortcutKind? shortcut = null; bool plain = false;
        foreach (var (key, value) in obj)
        {
            var node = value ?? throw new FormatException($"ResNet spec: JSON key '{key}' is null.");
            try
            {
                switch (key.ToLowerInvariant())
                {
                    case "block": block = ParseBlock(node.GetValue<string>()); break;
                    case "blocks": blocks = node.AsArray().Select(n => n!.GetValue<int>()).ToArray(); break;
                    case "widths": widths = node.AsArray().Select(n => n!.GetValue<int>()).ToArray(); break;
                    case "stem": stem = ParseStem(node.GetValue<string>()); break;
                    case "stemwidth" or "stem-width" or "stem_width": stemWidth = node.GetValue<int>(); break;
                    case "shortcut": shortcut = ParseShortcut(node.GetValue<string>()); break;
                    case "plain": plain = node.GetValue<bool>(); break;
                    default: throw new FormatException($"ResNet spec: unknown JSON key '{key}' (keys: block, blocks, widths, stem, stemWidth, shortcut, plain).");
                }
            }
            catch (Exception e) when (e is InvalidOperationException or NullReferenceException)
            {
                throw new FormatException($"ResNet spec: JSON key '{key}' has a value of the wrong type ({node.ToJsonString()}).");
            }
        }
        return Complete(block, blocks, widths, stem, stemWidth, shortcut, plain);
    }

    // ---- helpers -----------------------------------------------------------------------------------------------------

    private static ResNetSpec Complete(BlockKind? block, IReadOnlyList<int>? blocks, IReadOnlyList<int>? widths, StemKind? stem,
        int? stemWidth, ShortcutKind? shortcut, bool plain)
    {
        if (block is null) throw new FormatException("ResNet spec: 'block' (basic or bottleneck) is missing.");
        if (blocks is null) throw new FormatException("ResNet spec: 'blocks' (blocks per stage, e.g. 2,2,2,2) is missing.");
        if (widths is null) throw new FormatException("ResNet spec: 'widths' (one width per stage, e.g. 64,128,256,512) is missing.");
        var s = stem ?? (blocks.Count <= 3 ? StemKind.Cifar : StemKind.ImageNet);
        var spec = new ResNetSpec(block.Value, blocks.ToArray(), widths.ToArray(), s,
            stemWidth ?? (widths.Count > 0 ? widths[0] : 0),
            shortcut ?? (s == StemKind.Cifar ? ShortcutKind.ZeroPad : ShortcutKind.Projection), plain);
        return spec.Validate();
    }

    private static int ParseInt(string key, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int v)
            ? v : throw new FormatException($"ResNet spec: '{key}' must be a whole number, not '{value}'.");

    private static int[] ParseInts(string key, string value) =>
        value.Split(',').Select(v => ParseInt(key, v.Trim())).ToArray();

    internal static string BlockText(BlockKind b) => b == BlockKind.Basic ? "basic" : "bottleneck";
    internal static string StemText(StemKind s) => s == StemKind.ImageNet ? "imagenet" : "cifar";
    internal static string ShortcutText(ShortcutKind s) => s switch
    {
        ShortcutKind.ZeroPad => "A",
        ShortcutKind.Projection => "B",
        _ => "conv3x3",
    };

    private static BlockKind ParseBlock(string v) => v.ToLowerInvariant() switch
    {
        "basic" => BlockKind.Basic,
        "bottleneck" => BlockKind.Bottleneck,
        _ => throw new FormatException($"ResNet spec: 'block' is basic or bottleneck, not '{v}'."),
    };

    private static StemKind ParseStem(string v) => v.ToLowerInvariant() switch
    {
        "imagenet" => StemKind.ImageNet,
        "cifar" or "seed" => StemKind.Cifar,
        _ => throw new FormatException($"ResNet spec: 'stem' is imagenet (7x7/2 + max pool) or cifar (3x3/1), not '{v}'."),
    };

    private static ShortcutKind ParseShortcut(string v) => v.ToLowerInvariant() switch
    {
        "a" or "zeropad" or "zero-pad" => ShortcutKind.ZeroPad,
        "b" or "projection" => ShortcutKind.Projection,
        "conv3x3" or "seed" => ShortcutKind.Conv3x3Projection,
        _ => throw new FormatException($"ResNet spec: 'shortcut' is A (zero padding), B (1x1 projection) or conv3x3 (the seed's 3x3 projection), not '{v}'."),
    };
}
