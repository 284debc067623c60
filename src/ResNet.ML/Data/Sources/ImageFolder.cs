using System.Buffers;

namespace ResNet.ML.Data;

/// <summary>How images are decoded to a dataset's shape, and what to do with bad ones.</summary>
public sealed record ImageFolderOptions
{
    /// <summary>1 = grayscale, 3 = RGB.</summary>
    public int Channels { get; init; } = 3;
    public int Height { get; init; } = 224;
    public int Width { get; init; } = 224;
    public ResizeMode Resize { get; init; } = ResizeMode.ShorterSideCenterCrop;

    /// <summary>
    /// Leave out images that cannot be read or decoded instead of failing, and list them in
    /// <see cref="EncodedImageDataset.SkippedFiles"/>. For <see cref="ImageFolder.Open"/> this decodes every image once
    /// when the folder is opened (one at a time, so memory stays bounded).
    /// </summary>
    public bool SkipBadImages { get; init; }

    /// <summary>File extensions taken as images (case-insensitive); other files are ignored.</summary>
    public IReadOnlyList<string> Extensions { get; init; } = [".png", ".jpg", ".jpeg"];

    internal void Validate()
    {
        if (Channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(Channels), $"ImageFolderOptions.Channels must be 1 or 3, not {Channels}.");
        if (Height <= 0 || Width <= 0) throw new ArgumentOutOfRangeException(nameof(Height), $"ImageFolderOptions size {Height}x{Width} must be positive.");
    }
}

/// <summary>
/// Images kept encoded (files on disk or byte arrays) and decoded on every read to [Channels, Height, Width]: memory stays
/// bounded however many images there are. Wrap in <see cref="InMemoryImageDataset.Materialize"/> to decode once instead.
/// </summary>
public sealed class EncodedImageDataset : ImageDataset
{
    private readonly string[] _names;
    private readonly IReadOnlyList<byte[]>? _bytes;
    private readonly int[] _labels;
    private readonly ResizeMode _resize;

    internal EncodedImageDataset(string[] names, IReadOnlyList<byte[]>? bytes, int[] labels, IReadOnlyList<string> classNames,
        ImageFolderOptions options, string source, IReadOnlyList<string> skipped)
        : base(options.Channels, options.Height, options.Width, classNames, source)
    {
        (_names, _bytes, _labels, _resize, SkippedFiles) = (names, bytes, labels, options.Resize, skipped);
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classNames.Count)
                throw new ArgumentException($"{source}: label {labels[i]} of image {i} ({names[i]}) is out of range for {classNames.Count} classes.");
    }

    public override int Count => _labels.Length;

    /// <summary>The file path (or given name) of each image, by index.</summary>
    public IReadOnlyList<string> ImageNames => _names;

    /// <summary>Images left out because they could not be read or decoded (with <see cref="ImageFolderOptions.SkipBadImages"/>).</summary>
    public IReadOnlyList<string> SkippedFiles { get; }

    public int SkippedCount => SkippedFiles.Count;

    public override int GetLabel(int index) => _labels[index];

    // The encoded bytes decide the pixels (with the size and resize mode hashed beside them): no decoding needed.
    protected override void AppendContent(System.Security.Cryptography.IncrementalHash hash)
    {
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes(_resize.ToString()));
        for (int i = 0; i < Count; i++)
        {
            hash.AppendData(BitConverter.GetBytes(_labels[i]));
            hash.AppendData(_bytes is not null ? _bytes[i] : File.ReadAllBytes(_names[i]));
        }
    }

    public override void ReadPixels(int index, Span<float> destination)
    {
        CheckIndex(index);
        CheckDestination(destination);
        if (_bytes is not null)
        {
            ImageDecoder.DecodeToChw(_bytes[index], destination, Channels, Height, Width, _resize, _names[index]);
            return;
        }
        var (buffer, length) = ImageFolder.ReadFile(_names[index]);
        try { ImageDecoder.DecodeToChw(buffer.AsSpan(0, length), destination, Channels, Height, Width, _resize, _names[index]); }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }
}

/// <summary>
/// The torchvision <c>ImageFolder</c> convention: <c>root/&lt;class&gt;/**/*.png|jpg|jpeg</c>, classes sorted by name
/// (ordinal), files sorted by path within each class. PNG and JPEG decode to RGB or grayscale at the size in
/// <see cref="ImageFolderOptions"/>.
/// </summary>
public static class ImageFolder
{
    /// <summary>Lists the folder and decodes on every read (streaming; for folders larger than RAM).</summary>
    public static EncodedImageDataset Open(string root, ImageFolderOptions? options = null)
    {
        options ??= new ImageFolderOptions();
        options.Validate();
        var (files, labels, classes) = List(root, options);
        var skipped = new List<string>();
        if (options.SkipBadImages)
        {
            var bad = new bool[files.Length];
            Parallel(files.Length, options, (i, scratch) => bad[i] = !TryDecode(files[i], options, scratch));
            (files, labels) = Keep(files, labels, bad, skipped);
        }
        CheckNoEmptyClass(root, classes, labels);
        return new EncodedImageDataset(files, null, labels, classes, options, root, skipped);
    }

    /// <summary>
    /// Lists the folder and decodes every image once into memory (bytes, compact). Bad images fail naming the file, or
    /// with <see cref="ImageFolderOptions.SkipBadImages"/> are left out and listed in the result's
    /// <see cref="LoadedImageFolder.SkippedFiles"/>.
    /// </summary>
    public static LoadedImageFolder Load(string root, ImageFolderOptions? options = null)
    {
        options ??= new ImageFolderOptions();
        options.Validate();
        var (files, labels, classes) = List(root, options);
        int size = options.Channels * options.Height * options.Width;
        var pixels = new byte[(long)files.Length * size];
        var bad = new bool[files.Length];
        var errors = new Exception?[files.Length];
        Parallel(files.Length, options, (i, scratch) =>
        {
            try
            {
                Decode(files[i], options, scratch);
                PixelConvert.FloatsToBytes(scratch, pixels.AsSpan(i * size, size));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { bad[i] = true; errors[i] = e; }
        });
        if (!options.SkipBadImages)
        {
            int first = Array.IndexOf(bad, true);
            if (first >= 0) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(errors[first]!).Throw();
        }
        var skipped = new List<string>();
        var keep = new List<int>();
        for (int i = 0; i < files.Length; i++) if (bad[i]) skipped.Add(files[i]); else keep.Add(i);
        var keptLabels = keep.Select(i => labels[i]).ToArray();
        CheckNoEmptyClass(root, classes, keptLabels);
        if (skipped.Count > 0)
        {
            var compact = new byte[(long)keep.Count * size];
            for (int k = 0; k < keep.Count; k++) pixels.AsSpan(keep[k] * size, size).CopyTo(compact.AsSpan(k * size, size));
            pixels = compact;
        }
        var dataset = new InMemoryImageDataset(pixels, null, keptLabels, options.Channels, options.Height, options.Width, classes, root);
        return new LoadedImageFolder(dataset, keep.Select(i => files[i]).ToArray(), skipped);
    }

    /// <summary>
    /// A dataset of encoded PNG/JPEG byte arrays (e.g. an ML.NET image-bytes column), decoded on every read.
    /// <paramref name="names"/> (optional) name the images in error messages; <paramref name="source"/> names the whole set.
    /// </summary>
    public static EncodedImageDataset FromEncoded(IReadOnlyList<byte[]> images, int[] labels, IReadOnlyList<string> classNames,
        ImageFolderOptions? options = null, IReadOnlyList<string>? names = null, string source = "encoded images")
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        options ??= new ImageFolderOptions();
        options.Validate();
        if (images.Count != labels.Length) throw new ArgumentException($"{images.Count} images but {labels.Length} labels.", nameof(labels));
        var imageNames = names?.ToArray() ?? Enumerable.Range(0, images.Count).Select(i => $"image {i}").ToArray();
        if (imageNames.Length != images.Count) throw new ArgumentException($"{images.Count} images but {imageNames.Length} names.", nameof(names));
        return new EncodedImageDataset(imageNames, images, labels, classNames, options, source, []);
    }

    internal static (byte[] Buffer, int Length) ReadFile(string path)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            long length = RandomAccess.GetLength(handle);
            if (length > int.MaxValue) throw new ImageDecodeException(path, $"the file is {length} bytes, too large for an image.");
            byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(length, 1));
            int total = 0;
            try
            {
                while (total < length)
                {
                    int n = RandomAccess.Read(handle, buffer.AsSpan(total, (int)length - total), total);
                    if (n == 0) break;
                    total += n;
                }
            }
            catch { ArrayPool<byte>.Shared.Return(buffer); throw; }
            return (buffer, total);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not ImageDecodeException)
        {
            throw new ImageDecodeException(path, $"cannot be read: {e.Message}", e);
        }
    }

    private static void Decode(string path, ImageFolderOptions options, float[] scratch)
    {
        var (buffer, length) = ReadFile(path);
        try { ImageDecoder.DecodeToChw(buffer.AsSpan(0, length), scratch, options.Channels, options.Height, options.Width, options.Resize, path); }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    // Decodes files on all cores, one scratch image per thread; an unexpected failure (a missing native library, say)
    // comes out as itself rather than wrapped in an AggregateException.
    private static void Parallel(int count, ImageFolderOptions options, Action<int, float[]> body)
    {
        try
        {
            System.Threading.Tasks.Parallel.For(0, count, () => new float[options.Channels * options.Height * options.Width],
                (i, _, scratch) => { body(i, scratch); return scratch; }, _ => { });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count >= 1)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    private static bool TryDecode(string path, ImageFolderOptions options, float[] scratch)
    {
        try { Decode(path, options, scratch); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private static (string[] Files, int[] Labels) Keep(string[] files, int[] labels, bool[] bad, List<string> skipped)
    {
        var keptFiles = new List<string>();
        var keptLabels = new List<int>();
        for (int i = 0; i < files.Length; i++)
        {
            if (bad[i]) skipped.Add(files[i]);
            else { keptFiles.Add(files[i]); keptLabels.Add(labels[i]); }
        }
        return (keptFiles.ToArray(), keptLabels.ToArray());
    }

    private static (string[] Files, int[] Labels, string[] Classes) List(string root, ImageFolderOptions options)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (File.Exists(root)) throw new IOException($"Image folder {root} is a file, not a folder of class subfolders.");
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"Image folder {root} does not exist.");
        var extensions = new HashSet<string>(options.Extensions, StringComparer.OrdinalIgnoreCase);
        string[] classDirs = Enumerate(root, () => Directory.GetDirectories(root));
        Array.Sort(classDirs, StringComparer.Ordinal);
        if (classDirs.Length == 0)
            throw new InvalidDataException($"Image folder {root} has no class subfolders (expected {root}/<class name>/<images>).");
        var files = new List<string>();
        var labels = new List<int>();
        for (int c = 0; c < classDirs.Length; c++)
        {
            string dir = classDirs[c];
            var inClass = Enumerate(dir, () => Directory.GetFiles(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = false, AttributesToSkip = 0 }))
                .Where(f => extensions.Contains(Path.GetExtension(f)))
                .ToArray();
            if (inClass.Length == 0)
                throw new InvalidDataException($"Class folder {dir} has no images ({string.Join(", ", options.Extensions)}); every class needs at least one.");
            Array.Sort(inClass, StringComparer.Ordinal);
            files.AddRange(inClass);
            labels.AddRange(Enumerable.Repeat(c, inClass.Length));
        }
        return (files.ToArray(), labels.ToArray(), classDirs.Select(d => Path.GetFileName(d)).ToArray());
    }

    private static void CheckNoEmptyClass(string root, string[] classes, int[] labels)
    {
        var counts = new int[classes.Length];
        foreach (int l in labels) counts[l]++;
        int empty = Array.IndexOf(counts, 0);
        if (empty >= 0)
            throw new InvalidDataException($"Class folder {Path.Combine(root, classes[empty])} has no image that decodes; every class needs at least one.");
    }

    private static string[] Enumerate(string folder, Func<string[]> list)
    {
        try { return list(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Image folder {folder} cannot be read: {e.Message}", e);
        }
    }
}

/// <summary>The result of <see cref="ImageFolder.Load"/>: the decoded images, their files, and the files skipped.</summary>
public sealed record LoadedImageFolder(InMemoryImageDataset Dataset, IReadOnlyList<string> Files, IReadOnlyList<string> SkippedFiles)
{
    public int SkippedCount => SkippedFiles.Count;
}
