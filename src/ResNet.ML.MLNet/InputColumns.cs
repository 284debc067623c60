using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace ResNet.ML.MLNet;

/// <summary>The three kinds of feature column the trainer takes.</summary>
internal enum FeatureKind
{
    /// <summary>A known-size float vector of planar CHW pixels, as ML.NET's <c>ExtractPixels</c> makes it.</summary>
    Pixels,
    /// <summary>A byte vector holding one encoded image (PNG, JPEG), as ML.NET's <c>LoadRawImageBytes</c> makes it.</summary>
    EncodedImage,
    /// <summary>An <c>MLImage</c> column (ML.NET's ImageAnalytics), resized and read by ML.NET's own image transforms.</summary>
    Image,
}

/// <summary>Image geometry the network is built for: channels, height and width of its input.</summary>
internal readonly record struct ImageShape(int Channels, int Height, int Width)
{
    public int Size => Channels * Height * Width;
    public override string ToString() => $"[{Channels}, {Height}, {Width}]";
}

/// <summary>
/// Checks the trainer's input columns, on schema shapes (<see cref="IEstimator{TTransformer}.GetOutputSchema"/>) and on
/// real schemas (Fit), and throws ML.NET's schema-mismatch errors naming the column and the type it must have.
/// </summary>
internal static class InputColumns
{
    public const string LabelRole = "label";
    public const string FeatureRole = "feature";

    public static string ExpectedFeatureTypes =>
        "known-size vector of Single (CHW pixels), variable-size vector of Byte (encoded image bytes) or Image";

    public const string ExpectedLabelType = "Key type with key values (as MapValueToKey makes it)";

    public static void Check(SchemaShape inputSchema, string labelColumnName, string featureColumnName)
    {
        if (Find(inputSchema, labelColumnName) is not { } label)
            throw SchemaErrors.Missing(nameof(inputSchema), LabelRole, labelColumnName);
        if (!label.IsKey || label.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw SchemaErrors.Mismatch(nameof(inputSchema), LabelRole, labelColumnName, ExpectedLabelType, SchemaErrors.Describe(label));
        if (Find(label.Annotations, AnnotationKinds.KeyValues) is null)
            throw SchemaErrors.Mismatch(nameof(inputSchema), LabelRole, labelColumnName, ExpectedLabelType, SchemaErrors.Describe(label) + " without key values");

        if (Find(inputSchema, featureColumnName) is not { } features)
            throw SchemaErrors.Missing(nameof(inputSchema), FeatureRole, featureColumnName);
        bool ok = !features.IsKey && (
            (features.Kind == SchemaShape.Column.VectorKind.Vector && features.ItemType == NumberDataViewType.Single)
            || (features.Kind == SchemaShape.Column.VectorKind.VariableVector && features.ItemType == NumberDataViewType.Byte)
            || (features.Kind == SchemaShape.Column.VectorKind.Scalar && features.ItemType is ImageDataViewType)
            );
        if (!ok)
            throw SchemaErrors.Mismatch(nameof(inputSchema), FeatureRole, featureColumnName, ExpectedFeatureTypes, SchemaErrors.Describe(features));
    }

    // SchemaShape's own lookup is internal to ML.NET; it is a list of uniquely named columns.
    private static SchemaShape.Column? Find(SchemaShape shape, string name)
    {
        foreach (var column in shape)
            if (column.Name == name) return column;
        return null;
    }

    /// <summary>The label column, checked: a key type whose key values name the classes.</summary>
    public static DataViewSchema.Column Label(DataViewSchema schema, string name)
    {
        var column = schema.GetColumnOrNull(name) ?? throw SchemaErrors.Missing("inputSchema", LabelRole, name);
        if (column.Type is not KeyDataViewType key)
            throw SchemaErrors.Mismatch("inputSchema", LabelRole, name, ExpectedLabelType, SchemaErrors.Describe(column.Type));
        var keyValues = column.Annotations.Schema.GetColumnOrNull(AnnotationKinds.KeyValues);
        if (keyValues is null || keyValues.Value.Type is not VectorDataViewType kv || (ulong)kv.Size != key.Count)
            throw SchemaErrors.Mismatch("inputSchema", LabelRole, name, ExpectedLabelType, SchemaErrors.Describe(column.Type) + " without key values");
        if (key.Count < 2)
            throw new ArgumentOutOfRangeException("inputSchema", $"The label column '{name}' has {key.Count} class; a classifier needs at least two.");
        return column;
    }

    /// <summary>The feature column, checked, with its kind.</summary>
    public static (DataViewSchema.Column Column, FeatureKind Kind) Features(DataViewSchema schema, string name)
    {
        var column = schema.GetColumnOrNull(name) ?? throw SchemaErrors.Missing("inputSchema", FeatureRole, name);
        switch (column.Type)
        {
            case VectorDataViewType { IsKnownSize: true } v when v.ItemType == NumberDataViewType.Single:
                return (column, FeatureKind.Pixels);
            case VectorDataViewType { IsKnownSize: false } v when v.ItemType == NumberDataViewType.Byte:
                return (column, FeatureKind.EncodedImage);
            case ImageDataViewType:
                return (column, FeatureKind.Image);
            default:
                throw SchemaErrors.Mismatch("inputSchema", FeatureRole, name, ExpectedFeatureTypes, SchemaErrors.Describe(column.Type));
        }
    }

    /// <summary>
    /// The [C, H, W] a pixel vector holds: its own dimensions when it has three (ExtractPixels gives [C, H, W]),
    /// otherwise the height and width options, otherwise a square image of 3 or 1 channels.
    /// </summary>
    public static ImageShape PixelShape(DataViewSchema.Column column, int? height, int? width)
    {
        var type = (VectorDataViewType)column.Type;
        var dims = type.Dimensions;
        if (dims.Length == 3)
        {
            var shape = new ImageShape(dims[0], dims[1], dims[2]);
            if ((height is int h && h != shape.Height) || (width is int w && w != shape.Width))
                throw new ArgumentOutOfRangeException("inputSchema",
                    $"The feature column '{column.Name}' holds {shape} pixels, but the options ImageHeight/ImageWidth ask for {height}x{width}; resize the images to that size first.");
            return Checked(shape, column.Name);
        }
        int size = type.Size;
        if (height is int hh && width is int ww)
        {
            if (hh <= 0 || ww <= 0 || size % (hh * ww) != 0)
                throw new ArgumentOutOfRangeException("inputSchema",
                    $"The feature column '{column.Name}' holds {size} values, which is not a whole number of {hh}x{ww} channels.");
            return Checked(new ImageShape(size / (hh * ww), hh, ww), column.Name);
        }
        foreach (int channels in (int[])[3, 1])
        {
            if (size % channels != 0) continue;
            int side = (int)Math.Round(Math.Sqrt(size / channels));
            if (side * side * channels == size) return Checked(new ImageShape(channels, side, side), column.Name);
        }
        throw new ArgumentOutOfRangeException("inputSchema",
            $"The feature column '{column.Name}' holds {size} values, which is no square RGB or grayscale image; set the options ImageHeight and ImageWidth.");
    }

    private static ImageShape Checked(ImageShape shape, string column)
    {
        if (shape.Channels is not (1 or 3))
            throw new ArgumentOutOfRangeException("inputSchema",
                $"The feature column '{column}' holds {shape} pixels; ResNet.ML takes 1 (grayscale) or 3 (RGB) channels.");
        return shape;
    }
}

/// <summary>Annotation names ML.NET uses (its AnnotationUtils.Kinds is not public).</summary>
internal static class AnnotationKinds
{
    public const string KeyValues = "KeyValues";
    public const string SlotNames = "SlotNames";
}
