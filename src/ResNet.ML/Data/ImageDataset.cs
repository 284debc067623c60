using ResNet.ML.Tensors;

namespace ResNet.ML.Data;

/// <summary>
/// A labelled set of images that all have the same shape [<see cref="Channels"/>, <see cref="Height"/>, <see cref="Width"/>].
/// Pixels come out as float CHW in the source's own units — 0..255 for every built-in source (IDX, CIFAR, PNG/JPEG) —
/// and <see cref="Normalization"/> maps them to what the network sees (by default ×1/255, like torchvision's ToTensor).
/// </summary>
/// <remarks>
/// Implementations must allow concurrent <see cref="ReadPixels"/> calls from several threads: the
/// <see cref="BatchLoader"/> reads from worker threads. In-memory sets store bytes or floats; folder and encoded-image
/// sets decode on every read, so they never hold more than a few images at a time.
/// </remarks>
public abstract class ImageDataset
{
    protected ImageDataset(int channels, int height, int width, IReadOnlyList<string> classNames, string source)
    {
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentOutOfRangeException(nameof(channels), $"{source}: image shape [{channels}, {height}, {width}] must be positive.");
        ArgumentNullException.ThrowIfNull(classNames);
        if (classNames.Count == 0) throw new ArgumentException($"{source}: a dataset needs at least one class name.", nameof(classNames));
        (Channels, Height, Width, ClassNames, Source) = (channels, height, width, classNames.ToArray(), source);
    }

    /// <summary>Number of images.</summary>
    public abstract int Count { get; }

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>Class names, indexed by label.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    public int ClassCount => ClassNames.Count;

    /// <summary>Floats per image: Channels × Height × Width.</summary>
    public int SampleSize => Channels * Height * Width;

    /// <summary>Where the images come from (a file, folder or "arrays"); error messages name it.</summary>
    public string Source { get; }

    /// <summary>The label (class index) of image <paramref name="index"/>.</summary>
    public abstract int GetLabel(int index);

    /// <summary>Writes image <paramref name="index"/> as CHW floats (source units, 0..255 for built-in sources) into <paramref name="destination"/>.</summary>
    public abstract void ReadPixels(int index, Span<float> destination);

    private string? _contentHash;

    /// <summary>
    /// A SHA-256 (hex) of the images and labels, with the shape and class names: computed on first use, then kept. A
    /// checkpoint stores it, so a run is never resumed on other images that merely have the same count.
    /// </summary>
    public string ContentHash => _contentHash ??= ComputeContentHash();

    private string ComputeContentHash()
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"{Count} [{Channels}, {Height}, {Width}] {System.Text.Json.JsonSerializer.Serialize(ClassNames)}\n"));
        AppendContent(hash);
        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    /// <summary>Feeds every label and pixel to <paramref name="hash"/>; stores with cheaper exact forms (raw bytes, encoded files) override it.</summary>
    protected virtual void AppendContent(System.Security.Cryptography.IncrementalHash hash)
    {
        var pixels = new float[SampleSize];
        for (int i = 0; i < Count; i++)
        {
            ReadPixels(i, pixels);
            hash.AppendData(BitConverter.GetBytes(GetLabel(i)));
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(pixels.AsSpan()));
        }
    }

    /// <summary>A new array of every label, in index order.</summary>
    public int[] GetLabels()
    {
        var labels = new int[Count];
        for (int i = 0; i < labels.Length; i++) labels[i] = GetLabel(i);
        return labels;
    }

    /// <summary>How many images each class has, indexed by label.</summary>
    public int[] CountPerClass()
    {
        var counts = new int[ClassCount];
        for (int i = 0; i < Count; i++) counts[GetLabel(i)]++;
        return counts;
    }

    /// <summary>Image <paramref name="index"/> as a new [1, C, H, W] tensor in source units.</summary>
    public Tensor GetImage(int index)
    {
        var t = new Tensor(1, Channels, Height, Width);
        ReadPixels(index, t.Data);
        return t;
    }

    /// <summary>A view of the images at <paramref name="indices"/> (in that order), sharing this set's storage.</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices) => new SubsetImageDataset(this, indices);

    /// <summary>
    /// Splits into train and validation views, stratified: each class gives round(n × <paramref name="validationFraction"/>)
    /// of its images to validation (at least one when it has two or more and the fraction is positive), chosen by a
    /// <see cref="Rng"/> seeded with <paramref name="seed"/>. Both views keep index order; the loader shuffles.
    /// </summary>
    public (ImageDataset Train, ImageDataset Validation) StratifiedSplit(double validationFraction, ulong seed)
    {
        if (!(validationFraction >= 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), $"The validation fraction must be in [0, 1), not {validationFraction}.");
        var byClass = new List<int>[ClassCount];
        for (int c = 0; c < byClass.Length; c++) byClass[c] = [];
        for (int i = 0; i < Count; i++) byClass[GetLabel(i)].Add(i);
        var rng = new Rng(seed);
        var isValidation = new bool[Count];
        foreach (var members in byClass)
        {
            int take = (int)Math.Round(members.Count * validationFraction, MidpointRounding.AwayFromZero);
            if (take == 0 && validationFraction > 0 && members.Count >= 2) take = 1;
            if (take >= members.Count && members.Count > 0) take = members.Count - 1;   // keep every class in training
            var shuffled = members.ToArray();
            rng.Shuffle<int>(shuffled);
            for (int k = 0; k < take; k++) isValidation[shuffled[k]] = true;
        }
        var train = new List<int>(Count);
        var validation = new List<int>();
        for (int i = 0; i < Count; i++) (isValidation[i] ? validation : train).Add(i);
        return (Subset(train), Subset(validation));
    }

    /// <summary>
    /// Wraps caller-held bytes (N×C×H×W, CHW per image, not copied) as a dataset: the compact form for 8-bit images.
    /// </summary>
    public static InMemoryImageDataset FromBytes(byte[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classNames, string source = "arrays") =>
        new(pixels, null, labels, channels, height, width, classNames, source);

    /// <summary>Wraps caller-held floats (N×C×H×W, CHW per image, not copied) as a dataset.</summary>
    public static InMemoryImageDataset FromFloats(float[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classNames, string source = "arrays") =>
        new(null, pixels, labels, channels, height, width, classNames, source);

    /// <summary>Class names "0", "1", …, for sources that carry none.</summary>
    public static string[] NumberedClassNames(int count) => Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    internal void CheckIndex(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"{Source}: image {index} is out of range; the dataset has {Count}.");
    }

    internal void CheckDestination(Span<float> destination)
    {
        if (destination.Length < SampleSize)
            throw new ArgumentException($"{Source}: an image needs {SampleSize} floats, the destination has {destination.Length}.", nameof(destination));
    }
}

/// <summary>Images held in memory as bytes (compact: IDX, CIFAR, decoded folders) or floats.</summary>
public sealed class InMemoryImageDataset : ImageDataset
{
    private readonly byte[]? _bytes;
    private readonly float[]? _floats;
    private readonly int[] _labels;

    internal InMemoryImageDataset(byte[]? bytes, float[]? floats, int[] labels, int channels, int height, int width, IReadOnlyList<string> classNames, string source)
        : base(channels, height, width, classNames, source)
    {
        ArgumentNullException.ThrowIfNull(labels);
        long needed = (long)labels.Length * SampleSize;
        long have = bytes?.LongLength ?? floats!.LongLength;
        if (have != needed)
            throw new ArgumentException($"{source}: {labels.Length} labels need {needed} pixel values of [{channels}, {height}, {width}] images, but there are {have}.");
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classNames.Count)
                throw new ArgumentException($"{source}: label {labels[i]} of image {i} is out of range for {classNames.Count} classes.");
        (_bytes, _floats, _labels) = (bytes, floats, labels);
    }

    public override int Count => _labels.Length;

    /// <summary>True when pixels are stored as bytes (one per value), false for floats.</summary>
    public bool StoresBytes => _bytes is not null;

    public override int GetLabel(int index) => _labels[index];

    protected override void AppendContent(System.Security.Cryptography.IncrementalHash hash)
    {
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_labels.AsSpan()));
        if (_bytes is not null) hash.AppendData(_bytes);
        else hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_floats.AsSpan()));
    }

    public override void ReadPixels(int index, Span<float> destination)
    {
        CheckIndex(index);
        CheckDestination(destination);
        int size = SampleSize;
        if (_bytes is not null) PixelConvert.BytesToFloats(_bytes.AsSpan(index * size, size), destination);
        else _floats.AsSpan(index * size, size).CopyTo(destination);
    }

    /// <summary>
    /// Decodes every image of <paramref name="dataset"/> into memory as bytes (values rounded and clamped to 0..255):
    /// one pass over a folder, then reads cost no decoding.
    /// </summary>
    public static InMemoryImageDataset Materialize(ImageDataset dataset)
    {
        if (dataset is InMemoryImageDataset { StoresBytes: true } already) return already;
        int size = dataset.SampleSize;
        var bytes = new byte[(long)dataset.Count * size];
        var labels = new int[dataset.Count];
        var scratch = new float[size];
        for (int i = 0; i < dataset.Count; i++)
        {
            dataset.ReadPixels(i, scratch);
            PixelConvert.FloatsToBytes(scratch, bytes.AsSpan(i * size, size));
            labels[i] = dataset.GetLabel(i);
        }
        return new InMemoryImageDataset(bytes, null, labels, dataset.Channels, dataset.Height, dataset.Width, dataset.ClassNames, dataset.Source);
    }
}

/// <summary>A view of another dataset through an index map.</summary>
internal sealed class SubsetImageDataset : ImageDataset
{
    private readonly ImageDataset _parent;
    private readonly int[] _indices;

    public SubsetImageDataset(ImageDataset parent, IReadOnlyList<int> indices)
        : base(parent.Channels, parent.Height, parent.Width, parent.ClassNames, parent.Source)
    {
        _parent = parent;
        _indices = indices.ToArray();
        foreach (int i in _indices) parent.CheckIndex(i);
    }

    public override int Count => _indices.Length;
    public override int GetLabel(int index) => _parent.GetLabel(_indices[index]);

    // The parent's hash and the index map say exactly which images these are, without reading them again.
    protected override void AppendContent(System.Security.Cryptography.IncrementalHash hash)
    {
        hash.AppendData(System.Text.Encoding.ASCII.GetBytes(_parent.ContentHash));
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_indices.AsSpan()));
    }
    public override void ReadPixels(int index, Span<float> destination) => _parent.ReadPixels(_indices[index], destination);
}

internal static class PixelConvert
{
    public static void BytesToFloats(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int i = 0;
        int n = System.Numerics.Vector<byte>.Count;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            int quarter = System.Numerics.Vector<float>.Count;
            for (; i <= source.Length - n; i += n)
            {
                System.Numerics.Vector.Widen(new System.Numerics.Vector<byte>(source[i..]), out var lo, out var hi);
                System.Numerics.Vector.Widen(lo, out var a, out var b);
                System.Numerics.Vector.Widen(hi, out var c, out var d);
                System.Numerics.Vector.ConvertToSingle(a).CopyTo(destination[i..]);
                System.Numerics.Vector.ConvertToSingle(b).CopyTo(destination[(i + quarter)..]);
                System.Numerics.Vector.ConvertToSingle(c).CopyTo(destination[(i + 2 * quarter)..]);
                System.Numerics.Vector.ConvertToSingle(d).CopyTo(destination[(i + 3 * quarter)..]);
            }
        }
        for (; i < source.Length; i++) destination[i] = source[i];
    }

    public static void FloatsToBytes(ReadOnlySpan<float> source, Span<byte> destination)
    {
        for (int i = 0; i < source.Length; i++) destination[i] = (byte)Math.Clamp(MathF.Round(source[i]), 0f, 255f);
    }
}

internal static class SpanMath
{
    /// <summary>destination[i] = source[i] × a + b, vectorized (source and destination may be the same span).</summary>
    public static void Affine(ReadOnlySpan<float> source, float a, float b, Span<float> destination)
    {
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated && source.Length >= System.Numerics.Vector<float>.Count)
        {
            var va = new System.Numerics.Vector<float>(a);
            var vb = new System.Numerics.Vector<float>(b);
            int n = System.Numerics.Vector<float>.Count;
            for (; i <= source.Length - n; i += n)
                (new System.Numerics.Vector<float>(source[i..]) * va + vb).CopyTo(destination[i..]);
        }
        for (; i < source.Length; i++) destination[i] = source[i] * a + b;
    }
}
