namespace ResNet.ML.Data;

/// <summary>Which CIFAR-100 label to use: the 20 superclasses or the 100 classes.</summary>
public enum Cifar100Labels { Fine, Coarse }

/// <summary>
/// Reads the CIFAR-10 and CIFAR-100 binary versions (Krizhevsky 2009): records of label byte(s) then 3072 bytes of a
/// 32x32 RGB image, red plane then green then blue — already CHW, so images are stored as the file's bytes.
/// CIFAR-10 records have one label byte; CIFAR-100 records have coarse then fine.
/// </summary>
public static class Cifar
{
    public const int ImageBytes = 3 * 32 * 32;

    public static IReadOnlyList<string> Cifar10ClassNames { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>Reads one or more CIFAR-10 batch streams (e.g. data_batch_1..5) into one dataset.</summary>
    public static InMemoryImageDataset ReadCifar10(IEnumerable<(Stream Stream, string Source)> batches, IReadOnlyList<string>? classNames = null) =>
        ReadRecords(batches, labelBytes: 1, labelOffset: 0, classNames ?? Cifar10ClassNames, "CIFAR-10");

    /// <summary>Reads CIFAR-100 streams (train.bin or test.bin) with fine or coarse labels.</summary>
    public static InMemoryImageDataset ReadCifar100(IEnumerable<(Stream Stream, string Source)> batches, Cifar100Labels labels = Cifar100Labels.Fine, IReadOnlyList<string>? classNames = null) =>
        ReadRecords(batches, labelBytes: 2, labelOffset: labels == Cifar100Labels.Coarse ? 0 : 1,
            classNames ?? ImageDataset.NumberedClassNames(labels == Cifar100Labels.Coarse ? 20 : 100), "CIFAR-100");

    /// <summary>
    /// Loads CIFAR-10 from the folder of the binary version (<c>cifar-10-batches-bin</c>): <c>data_batch_1..5.bin</c>, or
    /// <c>test_batch.bin</c> with <paramref name="test"/>; class names from <c>batches.meta.txt</c> when present.
    /// </summary>
    public static InMemoryImageDataset LoadCifar10(string directory, bool test = false)
    {
        RequireDirectory(directory, "CIFAR-10");
        string[] files = test
            ? [Path.Combine(directory, "test_batch.bin")]
            : Enumerable.Range(1, 5).Select(i => Path.Combine(directory, $"data_batch_{i}.bin")).ToArray();
        var names = ReadNames(Path.Combine(directory, "batches.meta.txt"), 10) ?? Cifar10ClassNames;
        return ReadFiles(files, streams => ReadCifar10(streams, names));
    }

    /// <summary>
    /// Loads CIFAR-100 from the folder of the binary version (<c>cifar-100-binary</c>): <c>train.bin</c> or <c>test.bin</c>;
    /// class names from <c>fine_label_names.txt</c> / <c>coarse_label_names.txt</c> when present.
    /// </summary>
    public static InMemoryImageDataset LoadCifar100(string directory, bool test = false, Cifar100Labels labels = Cifar100Labels.Fine)
    {
        RequireDirectory(directory, "CIFAR-100");
        string file = Path.Combine(directory, test ? "test.bin" : "train.bin");
        var names = labels == Cifar100Labels.Coarse
            ? ReadNames(Path.Combine(directory, "coarse_label_names.txt"), 20)
            : ReadNames(Path.Combine(directory, "fine_label_names.txt"), 100);
        return ReadFiles([file], streams => ReadCifar100(streams, labels, names));
    }

    private static InMemoryImageDataset ReadRecords(IEnumerable<(Stream Stream, string Source)> batches, int labelBytes, int labelOffset, IReadOnlyList<string> classNames, string what)
    {
        int record = labelBytes + ImageBytes;
        var pixels = new List<byte[]>();
        var labels = new List<int>();
        string first = "";
        Span<byte> labelBuffer = stackalloc byte[labelBytes];
        foreach (var (stream, source) in batches)
        {
            if (first.Length == 0) first = source;
            using var input = DataStreams.MaybeGunzip(stream);
            for (int n = 0; ; n++)
            {
                int got = DataStreams.ReadUpTo(input, labelBuffer, source, $"record {n}'s label");
                // An empty batch file (a failed download or copy) would silently train on less data.
                if (got == 0 && n == 0) throw new InvalidDataException($"{source} holds no images: the file is empty, where a {what} batch holds {record}-byte records.");
                if (got == 0) break;
                if (got < labelBytes)
                    throw new InvalidDataException($"{source} is truncated: record {n} ends after {got} bytes; {what} records are {record} bytes.");
                int label = labelBuffer[labelOffset];
                if (label >= classNames.Count)
                    throw new InvalidDataException($"{source}: record {n} has label {label}, out of range for {classNames.Count} classes — is this a {what} file?");
                var image = new byte[ImageBytes];
                int imageGot = DataStreams.ReadUpTo(input, image, source, $"record {n}'s pixels");
                if (imageGot < ImageBytes)
                    throw new InvalidDataException($"{source} is truncated: record {n} ends after {labelBytes + imageGot} bytes; {what} records are {record} bytes.");
                pixels.Add(image);
                labels.Add(label);
            }
        }
        if (labels.Count == 0) throw new InvalidDataException($"{(first.Length == 0 ? what : first)} holds no images.");
        var all = new byte[(long)labels.Count * ImageBytes];
        for (int i = 0; i < pixels.Count; i++) pixels[i].CopyTo(all, (long)i * ImageBytes);
        return ImageDataset.FromBytes(all, labels.ToArray(), 3, 32, 32, classNames, first);
    }

    private static InMemoryImageDataset ReadFiles(string[] files, Func<IEnumerable<(Stream, string)>, InMemoryImageDataset> read)
    {
        var opened = new List<Stream>();
        try
        {
            foreach (var f in files)
            {
                if (!File.Exists(f)) throw new FileNotFoundException($"CIFAR file {f} does not exist.", f);
                opened.Add(Idx.OpenFile(f));
            }
            return read(opened.Select((s, i) => (s, files[i])));
        }
        finally
        {
            foreach (var s in opened) s.Dispose();
        }
    }

    private static void RequireDirectory(string directory, string what)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{what} folder {directory} does not exist.");
    }

    private static string[]? ReadNames(string path, int expected)
    {
        if (!File.Exists(path)) return null;
        var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        if (names.Length != expected)
            throw new InvalidDataException($"{path} lists {names.Length} class names, expected {expected}.");
        return names;
    }
}
