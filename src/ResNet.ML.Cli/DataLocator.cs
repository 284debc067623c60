using System.Reflection;
using ResNet.ML.Data;

namespace ResNet.ML.Cli;

internal enum DataSplit { Train, Test }

/// <summary>How folder images are decoded: resized to a square size and to a channel count (null: as they come).</summary>
/// <param name="Warnings">Where a warning about the data goes (skipped images); the CLI's error writer. Default: none written.</param>
internal sealed record DataRequest(int? ImageSize, int? Channels, bool SkipBadImages = false, TextWriter? Warnings = null);

/// <summary>Finds out what a --data path holds (IDX files, CIFAR batches, an image folder) and loads it.</summary>
internal static class DataLocator
{
    internal const string EmbeddedImages = "fashion-mnist-subset/train-images-idx3-ubyte.gz";
    internal const string EmbeddedLabels = "fashion-mnist-subset/train-labels-idx1-ubyte.gz";

    /// <summary>The 9,000-image Fashion-MNIST training subset built into the tool (data/fashion-mnist-subset).</summary>
    public static ImageDataset EmbeddedDefault()
    {
        var assembly = typeof(DataLocator).Assembly;
        using var images = assembly.GetManifestResourceStream(EmbeddedImages)
            ?? throw new InvalidOperationException("The embedded Fashion-MNIST subset is missing from this build of the tool; pass --data PATH.");
        using var labels = assembly.GetManifestResourceStream(EmbeddedLabels)
            ?? throw new InvalidOperationException("The embedded Fashion-MNIST labels are missing from this build of the tool; pass --data PATH.");
        return FashionMnist.Read(images, labels, "the embedded Fashion-MNIST subset");
    }

    /// <summary>
    /// Loads <paramref name="path"/>: a folder of IDX files (train-*/t10k-* as for MNIST and Fashion-MNIST; the test
    /// split for <see cref="DataSplit.Test"/> when present), a CIFAR-10 binary folder, or an image folder with one
    /// subfolder per class.
    /// </summary>
    public static ImageDataset Load(string path, DataSplit split, DataRequest request)
    {
        var data = LoadAsStored(path, split, request);
        // Folders are resized while decoding; IDX and CIFAR images are resampled as they are read.
        return request.ImageSize is int size ? ResizedImageDataset.To(data, size, size) : data;
    }

    private static ImageDataset LoadAsStored(string path, DataSplit split, DataRequest request)
    {
        if (File.Exists(path))
            throw new ArgumentException($"--data '{path}' is a file; give the folder that holds the dataset (IDX files, CIFAR batches, or one subfolder per class).");
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"Data folder '{path}' does not exist.");
        var files = Directory.GetFiles(path).Select(Path.GetFileName).ToHashSet(StringComparer.OrdinalIgnoreCase);
        bool test = split == DataSplit.Test;
        bool HasIdx(string prefix) => files.Any(f => f!.StartsWith(prefix + "-images", StringComparison.OrdinalIgnoreCase) && f.Contains("idx3", StringComparison.OrdinalIgnoreCase));
        if (HasIdx("train") || HasIdx("t10k"))
        {
            bool useTest = test ? HasIdx("t10k") : !HasIdx("train");
            string prefix = useTest ? "t10k" : "train";
            string images = files.First(f => f!.StartsWith(prefix + "-images", StringComparison.OrdinalIgnoreCase))!;
            string labels = files.FirstOrDefault(f => f!.StartsWith(prefix + "-labels", StringComparison.OrdinalIgnoreCase))
                ?? throw new FileNotFoundException($"Data folder '{path}' has {images} but no {prefix}-labels file.");
            string labelsPath = Path.Combine(path, labels);
            return Idx.Load(Path.Combine(path, images), labelsPath, IdxClassNames(path, labelsPath));
        }
        if (files.Any(f => f!.StartsWith("data_batch_", StringComparison.OrdinalIgnoreCase)) || files.Contains("test_batch.bin"))
            return Cifar.LoadCifar10(path, test && files.Contains("test_batch.bin"));
        if (files.Contains("train.bin") || files.Contains("test.bin"))
            return Cifar.LoadCifar100(path, test && files.Contains("test.bin"));
        return ImageFolders.Load(path, request);
    }

    /// <summary>The name of an IDX folder's classes, since IDX files carry none: the folder's <c>classes.txt</c> (one name per
    /// line, by label), else Fashion-MNIST's when the label file is one of its own (by content), else the label numbers.</summary>
    internal static IReadOnlyList<string>? IdxClassNames(string folder, string labelsPath)
    {
        string listed = Path.Combine(folder, ClassListFile);
        if (File.Exists(listed))
        {
            var names = File.ReadAllLines(listed).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            if (names.Length == 0) throw new InvalidDataException($"{listed} names no class; write one class name per line, in label order.");
            if (names.Distinct(StringComparer.Ordinal).Count() != names.Length) throw new InvalidDataException($"{listed} names a class twice.");
            return names;
        }
        return FashionMnist.IsLabelFile(labelsPath) ? FashionMnist.ClassNames : null;
    }

    /// <summary>The file beside IDX files that names their classes.</summary>
    internal const string ClassListFile = "classes.txt";

    /// <summary>The first <paramref name="count"/> images.</summary>
    public static ImageDataset Limit(ImageDataset data, int count)
    {
        if (count <= 0) throw new ArgumentException($"--limit must be positive, not {count}.");
        return count >= data.Count ? data : data.Subset(Enumerable.Range(0, count).ToArray());
    }
}
