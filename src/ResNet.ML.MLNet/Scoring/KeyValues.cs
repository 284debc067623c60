using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.ML.MLNet.Mappings;
using ResNet.ML.Onnx.Proto;
using DataType = ResNet.ML.Onnx.Proto.TensorProto.Types.DataType;

namespace ResNet.ML.MLNet.Scoring;

/// <summary>The label's key values in key order: class names for training, and what PredictedLabel maps back to.</summary>
internal abstract class KeyValueTable
{
    /// <summary>The key values as text: the class names ResNet.ML trains with and the slot names of Score.</summary>
    public abstract IReadOnlyList<string> Names { get; }

    /// <summary>The ONNX element type of the key values.</summary>
    public abstract DataType OnnxType { get; }

    /// <summary>The key values as an ONNX constant [K].</summary>
    public abstract TensorProto ToTensor(string name);

    /// <summary>
    /// ML.NET transforms from the model's one-slot predicted value (<see cref="ScoringColumns.PredictedValueVector"/>)
    /// to <paramref name="outputColumnName"/>: a key of the label's key type whose key values are the label's.
    /// </summary>
    public abstract IEstimator<ITransformer> PredictedLabel(MLContext ml, string outputColumnName);

    /// <summary>Reads the key values of a checked label column (see <see cref="InputColumns.Label"/>).</summary>
    public static KeyValueTable Read(DataViewSchema.Column label)
    {
        var itemType = ((VectorDataViewType)label.Annotations.Schema[AnnotationKinds.KeyValues].Type).ItemType;
        KeyValueTable table = itemType.RawType switch
        {
            var t when t == typeof(ReadOnlyMemory<char>) => Text(label),
            var t when t == typeof(float) => Numeric<float>(label, DataType.Float, FirstSlotSingle.Contract),
            var t when t == typeof(double) => Numeric<double>(label, DataType.Double, FirstSlotDouble.Contract),
            var t when t == typeof(int) => Numeric<int>(label, DataType.Int32, FirstSlotInt32.Contract),
            var t when t == typeof(long) => Numeric<long>(label, DataType.Int64, FirstSlotInt64.Contract),
            var t when t == typeof(uint) => Numeric<uint>(label, DataType.Uint32, FirstSlotUInt32.Contract),
            var t when t == typeof(ulong) => Numeric<ulong>(label, DataType.Uint64, FirstSlotUInt64.Contract),
            _ => throw SchemaErrors.Mismatch("inputSchema", InputColumns.LabelRole, label.Name,
                "Key type with key values of Text, Single, Double, Int32, Int64, UInt32 or UInt64", $"key values of {itemType}"),
        };
        var duplicate = table.Names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"The label column '{label.Name}' has the key value '{duplicate.Key}' more than once; each class needs its own key value.");
        return table;
    }

    private static KeyValueTable Text(DataViewSchema.Column label)
    {
        VBuffer<ReadOnlyMemory<char>> buffer = default;
        label.GetKeyValues(ref buffer);
        var values = buffer.DenseValues().Select(v => v.ToString()).ToArray();
        return new KeyValueTable<string>(values, DataType.String, v => v, FirstSlotText.Contract,
            (t, vs) => t.StringData.Add(vs.Select(ByteString.CopyFromUtf8)));
    }

    private static KeyValueTable Numeric<T>(DataViewSchema.Column label, DataType type, string contract)
        where T : unmanaged, IFormattable
    {
        VBuffer<T> buffer = default;
        label.GetKeyValues(ref buffer);
        var values = buffer.DenseValues().ToArray();
        return new KeyValueTable<T>(values, type, v => v.ToString(null, CultureInfo.InvariantCulture), contract,
            (t, vs) => t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(vs.AsSpan())));
    }
}

internal sealed class KeyValueTable<T> : KeyValueTable
{
    private readonly T[] _values;
    private readonly string _contract;
    private readonly Action<TensorProto, T[]> _fill;

    public KeyValueTable(T[] values, DataType onnxType, Func<T, string> toText, string contract, Action<TensorProto, T[]> fill)
    {
        (_values, OnnxType, _contract, _fill) = (values, onnxType, contract, fill);
        Names = values.Select(toText).ToArray();
    }

    public override IReadOnlyList<string> Names { get; }
    public override DataType OnnxType { get; }

    public override TensorProto ToTensor(string name)
    {
        var t = new TensorProto { Name = name, DataType = (int)OnnxType };
        t.Dims.Add(_values.Length);
        _fill(t, _values);
        return t;
    }

    public override IEstimator<ITransformer> PredictedLabel(MLContext ml, string outputColumnName)
    {
        // MapValueToKey with the key values as its key data numbers them 1..K in this order, so a predicted value maps
        // to the same key as that class in the label column, and the key values travel with the model.
        var keyData = ml.Data.LoadFromEnumerable(_values.Select(v => new KeyDataRow<T> { Value = v }));
        return ml.Transforms.CustomMapping<PredictedValueVector<T>, PredictedValue<T>>(FirstSlotMapping<T>.Map, _contract)
            .Append(ml.Transforms.Conversion.MapValueToKey(outputColumnName, ScoringColumns.PredictedValue, keyData: keyData));
    }
}
