using System.Text.Json;
using ResNet.ML.Models;

namespace ResNet.ML.Tests.Models;

/// <summary>The committed PyTorch fixtures of tools/fixtures/make_model_fixtures.py.</summary>
internal static class ModelFixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "models");

    public static string PathOf(string file) => Path.Combine(Dir, file);

    /// <summary>The tensors of a fixture file by name, in file order.</summary>
    public static (IReadOnlyList<SafetensorsTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string file)
    {
        using var s = File.OpenRead(PathOf(file));
        return Safetensors.Read(s, file);
    }

    public static byte[] Bytes(string file) => File.ReadAllBytes(PathOf(file));

    public sealed record Count(string Name, int Classes, int[] Input, long Params);

    public static IReadOnlyList<Count> ParamCounts()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(PathOf("param_counts.json")));
        return doc.RootElement.GetProperty("counts").EnumerateObject().Select(p => new Count(
            p.Value.TryGetProperty("name", out var n) ? n.GetString()! : p.Name,
            p.Value.GetProperty("classes").GetInt32(),
            p.Value.GetProperty("input").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            p.Value.GetProperty("params").GetInt64())).ToList();
    }
}
