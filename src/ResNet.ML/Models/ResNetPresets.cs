using System.Globalization;

namespace ResNet.ML.Models;

/// <summary>
/// The named ResNets: torchvision's ImageNet ResNets (<c>resnet18/34/50/101/152</c>, "v1.5": stride on the bottleneck's
/// 3x3, 1x1 projection shortcuts where shapes change), the paper's CIFAR ResNets (<c>resnet20/32/44/56/110/1202</c>,
/// any depth 6n+2 works: 3x3 stem, 16/32/64 channels, option A shortcuts, or option B with the suffix <c>-b</c>, e.g.
/// <c>resnet56-b</c>), the seed experiment's <c>seed-resnet</c> (blocks [2,2,2], 16/32/64, 3x3 conv + BN downsample), and
/// the paper's plain twin of each with the prefix <c>plain-</c> (e.g. <c>plain-resnet20</c>). Names are case-insensitive.
/// The non-residual baseline <c>simplecnn</c> is built by <see cref="ModelFactory"/>.
/// </summary>
public static class ResNetPresets
{
    private static readonly Dictionary<int, (BlockKind Block, int[] Blocks)> ImageNetDepths = new()
    {
        [18] = (BlockKind.Basic, [2, 2, 2, 2]),
        [34] = (BlockKind.Basic, [3, 4, 6, 3]),
        [50] = (BlockKind.Bottleneck, [3, 4, 6, 3]),
        [101] = (BlockKind.Bottleneck, [3, 4, 23, 3]),
        [152] = (BlockKind.Bottleneck, [3, 8, 36, 3]),
    };

    private static readonly int[] CifarDepths = [20, 32, 44, 56, 110, 1202];

    /// <summary>The preset names (without the <c>plain-</c> twins, which exist for each of them).</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        .. ImageNetDepths.Keys.Select(d => $"resnet{d}"),
        .. CifarDepths.Select(d => $"resnet{d}"),
        .. CifarDepths.Select(d => $"resnet{d}-b"),
        "seed-resnet",
    ];

    /// <summary>The spec a preset name stands for; throws <see cref="ArgumentException"/> listing the known names otherwise.</summary>
    public static ResNetSpec Get(string name) =>
        TryGet(name, out var spec) ? spec! : throw new ArgumentException(UnknownNameMessage(name));

    /// <summary>The spec a preset name stands for, or false.</summary>
    public static bool TryGet(string name, out ResNetSpec? spec)
    {
        spec = null;
        if (string.IsNullOrWhiteSpace(name)) return false;
        string n = name.Trim().ToLowerInvariant();
        bool plain = n.StartsWith("plain-", StringComparison.Ordinal);
        if (plain) n = n["plain-".Length..];
        if (n == "seed-resnet")
        {
            spec = new ResNetSpec(BlockKind.Basic, [2, 2, 2], [16, 32, 64], StemKind.Cifar, 16, ShortcutKind.Conv3x3Projection, plain);
            return true;
        }
        bool optionB = n.EndsWith("-b", StringComparison.Ordinal);
        if (optionB) n = n[..^2];
        if (!n.StartsWith("resnet", StringComparison.Ordinal) ||
            !int.TryParse(n.AsSpan("resnet".Length), NumberStyles.None, CultureInfo.InvariantCulture, out int depth))
            return false;
        if (ImageNetDepths.TryGetValue(depth, out var imageNet))
        {
            if (optionB) return false;   // the ImageNet nets already use projections
            spec = new ResNetSpec(imageNet.Block, imageNet.Blocks, [64, 128, 256, 512], StemKind.ImageNet, 64, ShortcutKind.Projection, plain);
            return true;
        }
        if (depth >= 8 && (depth - 2) % 6 == 0)
        {
            int perStage = (depth - 2) / 6;
            spec = new ResNetSpec(BlockKind.Basic, [perStage, perStage, perStage], [16, 32, 64], StemKind.Cifar, 16,
                optionB ? ShortcutKind.Projection : ShortcutKind.ZeroPad, plain);
            return true;
        }
        return false;
    }

    internal static string UnknownNameMessage(string name) =>
        $"Unknown architecture '{name}'. Known: {string.Join(", ", ModelFactory.KnownNames)} " +
        "(each ResNet also as plain-<name>; any CIFAR depth 6n+2 as resnet<depth>; or a spec such as " +
        "'block=basic blocks=3,3,3 widths=16,32,64' or 'resnet18 widths=32,64,128,256 stem-width=32').";
}
