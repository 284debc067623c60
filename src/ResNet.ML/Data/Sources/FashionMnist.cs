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
