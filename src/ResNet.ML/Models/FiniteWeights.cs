using System.Runtime.InteropServices;
using ResNet.ML.Layers;
using ResNet.ML.Tensors;

namespace ResNet.ML.Models;

/// <summary>
/// Keeps NaN and infinite weights out of every file we write and every model we load: a diverged run must not pass for
/// a model, and a damaged one must not score "NaN" with exit code 0.
/// </summary>
internal static class FiniteWeights
{
    /// <summary>The first non-finite value of a network's float state (weights and BN statistics), or null.</summary>
    public static (string Tensor, int Index, float Value)? FirstNonFinite(Network network)
    {
        foreach (var e in network.State)
        {
            if (e.Counter || e.Value is null) continue;
            int i = TensorChecks.IndexOfNonFinite(e.Value.Data);
            if (i >= 0) return (e.Name, i, e.Value.Data[i]);
        }
        return null;
    }

    /// <summary>Refuses to write <paramref name="what"/> from a network holding a NaN or infinity, naming the tensor.</summary>
    public static void ThrowIfNotFinite(Network network, string what)
    {
        if (FirstNonFinite(network) is var (name, index, value))
            throw new NonFiniteException($"Refusing to write {what}: tensor '{name}' holds {value} at element {index}; the weights have diverged (a learning rate too high, most likely).");
    }

    /// <summary>Refuses F32 tensors holding a NaN or infinity: <paramref name="source"/> (a file, say) and the tensor are named.</summary>
    public static void ThrowIfNotFinite(IEnumerable<SafetensorsTensor> tensors, string source, bool reading = true)
    {
        foreach (var t in tensors)
        {
            if (t.Dtype != "F32") continue;
            var values = MemoryMarshal.Cast<byte, float>(t.Bytes);
            int i = TensorChecks.IndexOfNonFinite(values);
            if (i < 0) continue;
            string message = $"tensor '{t.Name}' holds {values[i]} at element {i}";
            throw reading
                ? new InvalidDataException($"{source} cannot be used: {message}. It holds weights of a diverged run (NaN or infinity), which would score every image as NaN.")
                : new NonFiniteException($"Refusing to write {source}: {message}; the weights have diverged (a learning rate too high, most likely).");
        }
    }
}
