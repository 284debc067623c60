using System.ComponentModel;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace ResNet.ML.MLNet.Mappings;

// ML.NET's CustomMapping saves a contract name and this assembly's name in the model, and on Model.Load loads this
// assembly and finds the factory by its contract, so a saved model needs no registration by the user. The factories
// and their row classes must be public for ML.NET to create and reflect over them; they are infrastructure of the
// fitted model, not API.

/// <summary>Column names of the fitted model's intermediate columns (dropped before its output).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class ScoringColumns
{
    /// <summary>The predicted class's key value as a one-slot vector (ONNX Runtime gives tensors, never scalars).</summary>
    public const string PredictedValueVector = "ResNet.ML.PredictedValueVector";
    /// <summary>The predicted class's key value as a scalar, which MapValueToKey turns into the PredictedLabel key.</summary>
    public const string PredictedValue = "ResNet.ML.PredictedValue";
    /// <summary>A copy of the encoded image bytes column under the name the decoding mapping reads.</summary>
    public const string ImageBytes = "ResNet.ML.ImageBytes";
    /// <summary>What to decode to: [channels, height, width, resize mode], a constant of the fitted model.</summary>
    public const string DecodeTarget = "ResNet.ML.DecodeTarget";
    /// <summary>Decoded and resized pixels, planar CHW, 0-255.</summary>
    public const string Pixels = "ResNet.ML.Pixels";
}

/// <summary>Input row of a first-slot mapping.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class PredictedValueVector<T>
{
    /// <summary>The one slot.</summary>
    [VectorType(1)]
    [ColumnName(ScoringColumns.PredictedValueVector)]
    public T[] Value = [];
}

/// <summary>Output row of a first-slot mapping.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class PredictedValue<T>
{
    /// <summary>The value.</summary>
    [ColumnName(ScoringColumns.PredictedValue)]
    public T Value = default!;
}

/// <summary>Turns the one-slot vector into its scalar, for one key-value type each (contracts are looked up by name).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract class FirstSlotMapping<T> : CustomMappingFactory<PredictedValueVector<T>, PredictedValue<T>>
{
    /// <summary>The mapping.</summary>
    public static void Map(PredictedValueVector<T> input, PredictedValue<T> output) =>
        output.Value = input.Value.Length == 1 ? input.Value[0]
            : throw new InvalidOperationException($"The ResNet model gave {input.Value.Length} predicted values for one row instead of 1.");

    /// <inheritdoc />
    public override Action<PredictedValueVector<T>, PredictedValue<T>> GetMapping() => Map;
}

#pragma warning disable CS1591 // one line each; the contract names say what they are
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(Contract)]
public sealed class FirstSlotText : FirstSlotMapping<string> { public const string Contract = "ResNet.ML.FirstSlot.Text"; }
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(Contract)]
public sealed class FirstSlotSingle : FirstSlotMapping<float> { public const string Contract = "ResNet.ML.FirstSlot.Single"; }
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(Contract)]
public sealed class FirstSlotDouble : FirstSlotMapping<double> { public const string Contract = "ResNet.ML.FirstSlot.Double"; }
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(Contract)]
public sealed class FirstSlotInt32 : FirstSlotMapping<int> { public const string Contract = "ResNet.ML.FirstSlot.Int32"; }
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(Contract)]
public sealed class FirstSlotInt64 : FirstSlotMapping<long> { public const string Contract = "ResNet.ML.FirstSlot.Int64"; }
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(Contract)]
public sealed class FirstSlotUInt32 : FirstSlotMapping<uint> { public const string Contract = "ResNet.ML.FirstSlot.UInt32"; }
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(Contract)]
public sealed class FirstSlotUInt64 : FirstSlotMapping<ulong> { public const string Contract = "ResNet.ML.FirstSlot.UInt64"; }
#pragma warning restore CS1591

/// <summary>A row of the key data MapValueToKey numbers the predicted values with.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class KeyDataRow<T>
{
    /// <summary>One key value.</summary>
    public T Value = default!;
}

/// <summary>Input row of the decoding mapping.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class EncodedImageRow
{
    /// <summary>The encoded image.</summary>
    [ColumnName(ScoringColumns.ImageBytes)]
    public byte[] Bytes = [];

    /// <summary>[channels, height, width, resize mode].</summary>
    [VectorType(4)]
    [ColumnName(ScoringColumns.DecodeTarget)]
    public long[] Target = new long[4];
}

/// <summary>Output row of the decoding mapping.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class DecodedImageRow
{
    /// <summary>Planar CHW pixels, 0-255.</summary>
    [ColumnName(ScoringColumns.Pixels)]
    public float[] Pixels = [];
}

/// <summary>
/// Decodes and resizes encoded image bytes with ResNet.ML's decoder, the same call training makes, so a model scores
/// exactly the pixels it was trained on.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never), CustomMappingFactoryAttribute(Contract)]
public sealed class DecodeImage : CustomMappingFactory<EncodedImageRow, DecodedImageRow>
{
    /// <summary>The contract name saved in models.</summary>
    public const string Contract = "ResNet.ML.DecodeImage";

    /// <summary>The mapping.</summary>
    public static void Map(EncodedImageRow input, DecodedImageRow output)
    {
        if (input.Target.Length != 4)
            throw new InvalidOperationException($"The decode target has {input.Target.Length} values instead of [channels, height, width, resize mode].");
        var shape = new ImageShape((int)input.Target[0], (int)input.Target[1], (int)input.Target[2]);
        output.Pixels = EncodedImages.Decode(input.Bytes, shape, (ResNet.ML.Data.ResizeMode)input.Target[3]);
    }

    /// <inheritdoc />
    public override Action<EncodedImageRow, DecodedImageRow> GetMapping() => Map;
}
