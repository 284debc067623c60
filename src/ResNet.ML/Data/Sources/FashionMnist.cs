namespace ResNet.ML.Data;

/// <summary>
/// Fashion-MNIST (Zalando Research, MIT licence): 28x28 grayscale clothing images in 10 classes, 60k train / 10k test,
/// in IDX files. The repository ships a 9,000-image stratified subset of the training split in
/// <c>data/fashion-mnist-subset/</c>; Debian's <c>dataset-fashion-mnist</c> package installs the full set in
/// <see cref="DebianDirectory"/>.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package puts the four IDX files.</summary>
    public const string DebianDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The repository-relative folder of the committed training subset.</summary>
    public const string SubsetDirectory = "data/fashion-mnist-subset";

    /// <summary>The ten class names, indexed by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// Loads the training split (<c>train-images-idx3-ubyte[.gz]</c> + <c>train-labels-idx1-ubyte[.gz]</c>) or, with
    /// <paramref name="test"/>, the test split (<c>t10k-*</c>) from <paramref name="directory"/>: the Debian folder, the
    /// committed subset folder, or a folder of the original downloads.
    /// </summary>
    public static InMemoryImageDataset LoadIdx(string directory, bool test = false)
    {
        string prefix = test ? "t10k" : "train";
        string images = Find(directory, $"{prefix}-images-idx3-ubyte");
        string labels = Find(directory, $"{prefix}-labels-idx1-ubyte");
        return Idx.Load(images, labels, ClassNames);
    }

    /// <summary>Reads an images stream and a labels stream (raw or gzipped IDX), e.g. embedded resources.</summary>
    public static InMemoryImageDataset Read(Stream images, Stream labels, string source = "Fashion-MNIST") =>
        Idx.Read(images, labels, ClassNames, $"{source} images", $"{source} labels");

    // SHA-256 of the decompressed official label files (train, t10k), as Debian's dataset-fashion-mnist ships them, and
    // of the committed subset's labels: IDX files carry no class names, and a path is no evidence of what a file holds.
    private static readonly string[] LabelFileHashes =
    [
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        "6b1e17d25b074cd3c10d32c1072ebb89c98da164c072fafd2140369f3f854b27",
    ];

    /// <summary>
    /// Whether <paramref name="labelsPath"/> (raw or gzipped IDX) holds Fashion-MNIST's training or test labels, or the
    /// committed subset's: recognized by content, so its images can be given the class names.
    /// </summary>
    public static bool IsLabelFile(string labelsPath)
    {
        using var file = Idx.OpenFile(labelsPath);
        using var stream = DataStreams.MaybeGunzip(file);
        using var sha = System.Security.Cryptography.SHA256.Create();
        string hash = Convert.ToHexStringLower(sha.ComputeHash(stream));
        return LabelFileHashes.Contains(hash);
    }

    private static string Find(string directory, string name)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Fashion-MNIST folder {directory} does not exist (Debian's package dataset-fashion-mnist puts it in {DebianDirectory}).");
        foreach (string candidate in new[] { name + ".gz", name, name.Replace("-idx", ".idx") + ".gz", name.Replace("-idx", ".idx") })
        {
            string path = Path.Combine(directory, candidate);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException($"Fashion-MNIST folder {directory} has no {name}.gz or {name}.", Path.Combine(directory, name + ".gz"));
    }
}
