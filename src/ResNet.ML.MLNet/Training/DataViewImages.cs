using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.ML.Data;

namespace ResNet.ML.MLNet.Training;

/// <summary>
/// Reads an IDataView's label and feature columns through one cursor into a ResNet.ML <see cref="ImageDataset"/>, which
/// the core trainer then shuffles, augments, splits and batches. Pixel vectors are kept as floats; encoded images are
/// kept encoded and decoded (and resized) on every read, so memory stays at the size of the encoded files.
/// Rows whose label is missing (key 0) are skipped, as ML.NET's trainers skip them.
/// </summary>
internal static class DataViewImages
{
    public static ImageDataset Read(IDataView data, DataViewSchema.Column label, DataViewSchema.Column features, FeatureKind kind,
        ImageShape shape, ResizeMode resize, IReadOnlyList<string> classNames, string what, CancellationToken cancellationToken)
    {
        return kind switch
        {
            FeatureKind.Pixels => ReadPixels(data, label, features, shape, classNames, what, cancellationToken),
            FeatureKind.EncodedImage => ReadEncoded(data, label, features, shape, resize, classNames, what, cancellationToken),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Image columns are turned into pixels by ML.NET's transforms before reading."),
        };
    }

    private static ImageDataset ReadPixels(IDataView data, DataViewSchema.Column label, DataViewSchema.Column features, ImageShape shape,
        IReadOnlyList<string> classNames, string what, CancellationToken cancellationToken)
    {
        int size = shape.Size;
        var pixels = new List<float[]>();
        var labels = ReadLabelledRows<float>(data, label, features, what, cancellationToken, (position, buffer) =>
        {
            if (buffer.Length != size)
                throw new InvalidDataException($"Row {position} of {what}: the feature column '{features.Name}' holds {buffer.Length} values, not {size}.");
            var row = new float[size];
            buffer.CopyTo(row);
            pixels.Add(row);
        });
        var all = new float[(long)labels.Count * size];
        for (int i = 0; i < pixels.Count; i++) pixels[i].CopyTo(all, (long)i * size);
        return ImageDataset.FromFloats(all, [.. labels], shape.Channels, shape.Height, shape.Width, classNames, what);
    }

    private static ImageDataset ReadEncoded(IDataView data, DataViewSchema.Column label, DataViewSchema.Column features, ImageShape shape,
        ResizeMode resize, IReadOnlyList<string> classNames, string what, CancellationToken cancellationToken)
    {
        var images = new List<byte[]>();
        var labels = ReadLabelledRows<byte>(data, label, features, what, cancellationToken, (_, buffer) =>
        {
            var bytes = new byte[buffer.Length];
            buffer.CopyTo(bytes);
            images.Add(bytes);
        });
        // The core's encoded-image dataset, its images named by row and column for the decoder's error messages.
        var names = Enumerable.Range(0, images.Count).Select(i => $"row {i} of {what}, column '{features.Name}'").ToArray();
        return ImageFolder.FromEncoded(images, [.. labels], classNames,
            new ImageFolderOptions { Channels = shape.Channels, Height = shape.Height, Width = shape.Width, Resize = resize }, names, what);
    }

    /// <summary>
    /// Walks the rows of <paramref name="label"/> and <paramref name="features"/>, handing each labelled row's cursor
    /// position and feature vector to <paramref name="row"/>; rows with a missing key (0) are skipped. Returns the labels
    /// (key − 1) of the rows handed over, in order; throws naming <paramref name="what"/> when no row has a label.
    /// </summary>
    private static List<int> ReadLabelledRows<T>(IDataView data, DataViewSchema.Column label, DataViewSchema.Column features, string what,
        CancellationToken cancellationToken, Action<long, VBuffer<T>> row)
    {
        var labels = new List<int>();
        using var cursor = data.GetRowCursor([label, features]);
        var getLabel = cursor.GetGetter<uint>(label);
        var getFeatures = cursor.GetGetter<VBuffer<T>>(features);
        uint key = 0;
        VBuffer<T> buffer = default;
        while (cursor.MoveNext())
        {
            cancellationToken.ThrowIfCancellationRequested();
            getLabel(ref key);
            if (key == 0) continue;
            getFeatures(ref buffer);
            row(cursor.Position, buffer);
            labels.Add((int)key - 1);
        }
        if (labels.Count == 0) throw new InvalidDataException($"{what} has no row with a label (column '{label.Name}').");
        return labels;
    }
}
