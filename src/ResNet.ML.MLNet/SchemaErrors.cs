using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.ML.MLNet;

/// <summary>
/// The errors ML.NET's own estimators raise for input columns that are missing or of the wrong type
/// (its internal <c>Contracts.ExceptSchemaMismatch</c>): the same exception type, parameter name and wording, so code
/// and people that handle ML.NET's schema errors handle ours the same way.
/// </summary>
internal static class SchemaErrors
{
    public static ArgumentOutOfRangeException Mismatch(string paramName, string role, string column, string expected, string actual) =>
        new(paramName, $"Schema mismatch for {role} column '{column}': expected {expected}, got {actual}");

    public static ArgumentOutOfRangeException Missing(string paramName, string role, string column) =>
        new(paramName, $"Could not find {role} column '{column}'");

    /// <summary>A schema-shape column's type as ML.NET writes it in these messages (<c>Vector&lt;Single&gt;</c>, <c>Key&lt;UInt32&gt;</c>).</summary>
    public static string Describe(SchemaShape.Column column)
    {
        string result = column.ItemType.ToString() ?? "?";
        if (column.IsKey) result = $"Key<{result}>";
        return column.Kind switch
        {
            SchemaShape.Column.VectorKind.Vector => $"Vector<{result}>",
            SchemaShape.Column.VectorKind.VariableVector => $"VarVector<{result}>",
            _ => result,
        };
    }

    /// <summary>A data view column's type in the same words.</summary>
    public static string Describe(DataViewType type) => type switch
    {
        KeyDataViewType key => $"Key<{key.RawType.Name}>",
        VectorDataViewType { IsKnownSize: true } v => $"Vector<{Describe(v.ItemType)}, {string.Join(", ", v.Dimensions)}>",
        VectorDataViewType v => $"VarVector<{Describe(v.ItemType)}>",
        _ => type.ToString() ?? type.GetType().Name,
    };
}
