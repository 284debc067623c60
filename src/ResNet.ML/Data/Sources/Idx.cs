using System.Buffers.Binary;

namespace ResNet.ML.Data;

/// <summary>
/// Reads the IDX format of MNIST, Fashion-MNIST and EMNIST: an images file (magic 0x00000803, dims N, H, W, then N×H×W
/// unsigned bytes) and a labels file (magic 0x00000801, dim N, then N bytes). Raw or gzip-compressed, detected from the
/// content. Images are stored as bytes (one channel).
/// </summary>
public static class Idx
{
    private const int ImagesMagic = 0x00000803;
    private const int LabelsMagic = 0x00000801;

    /// <summary>
    /// Reads an images stream and a labels stream into a dataset. <paramref name="imagesSource"/> and
    /// <paramref name="labelsSource"/> name them in error messages. <paramref name="classNames"/> defaults to "0".."K-1"
    /// with K = largest label + 1. <paramref name="transpose"/> swaps rows and columns of every image: EMNIST stores its
    /// images transposed.
    /// </summary>
    public static InMemoryImageDataset Read(Stream images, Stream labels, IReadOnlyList<string>? classNames = null,
        string imagesSource = "the IDX images stream", string labelsSource = "the IDX labels stream", bool transpose = false)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        var (pixels, count, height, width) = ReadImages(images, imagesSource);
        byte[] labelBytes = ReadLabels(labels, labelsSource);
        if (labelBytes.Length != count)
            throw new InvalidDataException($"{labelsSource} has {labelBytes.Length} labels, but {imagesSource} has {count} images.");
        if (transpose) Transpose(pixels, count, height, ref width, ref height);

        int[] labelInts = new int[count];
        int maxLabel = 0;
        for (int i = 0; i < count; i++) { labelInts[i] = labelBytes[i]; maxLabel = Math.Max(maxLabel, labelBytes[i]); }
        if (classNames is null)
        {
            // IDX files carry no class count: it is inferred from the labels, so a stray label (200 among 0..9) would
            // silently make a 201-class model. Inferred classes must each have an image.
            var present = new bool[maxLabel + 1];
            foreach (int l in labelInts) present[l] = true;
            int missing = Array.IndexOf(present, false);
            if (missing >= 0)
                throw new InvalidDataException($"{labelsSource} holds label {maxLabel} but no image of label {missing}: the labels do not number classes 0..{maxLabel} without gaps. A label is out of range, or pass the class names.");
            classNames = ImageDataset.NumberedClassNames(maxLabel + 1);
        }
        if (maxLabel >= classNames.Count)
            throw new InvalidDataException($"{labelsSource} holds label {maxLabel}, out of range for the {classNames.Count} class names given.");
        return ImageDataset.FromBytes(pixels, labelInts, 1, height, width, classNames, imagesSource);
    }

    /// <summary>Reads an images file and a labels file (raw or .gz). See <see cref="Read"/>.</summary>
    public static InMemoryImageDataset Load(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null, bool transpose = false)
    {
        using var images = OpenFile(imagesPath);
        using var labels = OpenFile(labelsPath);
        return Read(images, labels, classNames, imagesPath, labelsPath, transpose);
    }

    internal static FileStream OpenFile(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot read {path}: {e.Message}", e);
        }
    }

    private static (byte[] Pixels, int Count, int Height, int Width) ReadImages(Stream input, string source)
    {
        using var stream = DataStreams.MaybeGunzip(input);
        Span<byte> header = stackalloc byte[16];
        DataStreams.ReadExactly(stream, header[..4], source, "the IDX magic number");
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != ImagesMagic)
            throw new InvalidDataException(magic == LabelsMagic
                ? $"{source} is an IDX labels file, not an images file."
                : $"{source} is not an IDX images file: magic number 0x{magic:X8}, expected 0x{ImagesMagic:X8} (unsigned bytes, 3 dimensions).");
        DataStreams.ReadExactly(stream, header[4..16], source, "the IDX dimensions");
        int count = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
        int height = BinaryPrimitives.ReadInt32BigEndian(header[8..]);
        int width = BinaryPrimitives.ReadInt32BigEndian(header[12..]);
        long total = (long)count * height * width;
        if (count < 0 || height <= 0 || width <= 0 || total > Array.MaxLength)
            throw new InvalidDataException($"{source} declares an impossible shape [{count}, {height}, {width}].");
        var pixels = new byte[total];
        DataStreams.ReadExactly(stream, pixels, source, $"{count} images of {height}x{width}");
        if (!DataStreams.AtEnd(stream, source))
            throw new InvalidDataException($"{source} has bytes after its {count} images of {height}x{width}: the header disagrees with the data.");
        return (pixels, count, height, width);
    }

    private static byte[] ReadLabels(Stream input, string source)
    {
        using var stream = DataStreams.MaybeGunzip(input);
        Span<byte> header = stackalloc byte[8];
        DataStreams.ReadExactly(stream, header, source, "the IDX labels header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != LabelsMagic)
            throw new InvalidDataException(magic == ImagesMagic
                ? $"{source} is an IDX images file, not a labels file."
                : $"{source} is not an IDX labels file: magic number 0x{magic:X8}, expected 0x{LabelsMagic:X8} (unsigned bytes, 1 dimension).");
        int count = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
        if (count < 0) throw new InvalidDataException($"{source} declares {count} labels.");
        var labels = new byte[count];
        DataStreams.ReadExactly(stream, labels, source, $"{count} labels");
        if (!DataStreams.AtEnd(stream, source))
            throw new InvalidDataException($"{source} has bytes after its {count} labels: the header disagrees with the data.");
        return labels;
    }

    private static void Transpose(byte[] pixels, int count, int height, ref int width, ref int heightOut)
    {
        int size = height * width;
        var scratch = new byte[size];
        for (int n = 0; n < count; n++)
        {
            var image = pixels.AsSpan(n * size, size);
            image.CopyTo(scratch);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    image[x * height + y] = scratch[y * width + x];
        }
        (width, heightOut) = (height, width);
    }
}
