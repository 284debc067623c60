using ResNet.ML.Data;
namespace ResNet.ML.Training;

/// <summary>
/// Matches the classes of labelled data to a model's classes by name. Data whose folder holds only some of the model's
/// classes numbers them from 0 in its own order; scoring such labels by position would credit them to other classes.
/// </summary>
public static class ClassMap
{
    /// <summary>
    /// For each data label, the index of the model class of the same name (ordinal comparison). Throws
    /// <see cref="ArgumentException"/> listing the data's class names the model does not have.
    /// </summary>
    public static int[] ByName(IReadOnlyList<string> dataClasses, IReadOnlyList<string> modelClasses, string dataSource = "the data")
    {
        ArgumentNullException.ThrowIfNull(dataClasses);
        ArgumentNullException.ThrowIfNull(modelClasses);
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < modelClasses.Count; i++) index.TryAdd(modelClasses[i], i);
        var unknown = dataClasses.Where(n => !index.ContainsKey(n)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"{dataSource} has classes the model does not have ({List(unknown)}); classes are matched by name, and the model's are {List(modelClasses)}.");
        return dataClasses.Select(n => index[n]).ToArray();
    }

    /// <summary><paramref name="source"/> with its labels replaced through <paramref name="map"/> and the model's class names.</summary>
    public static IImageBatchSource Relabel(IImageBatchSource source, int[] map, IReadOnlyList<string> modelClasses) =>
        map.Select((m, i) => m == i).All(x => x) && map.Length == modelClasses.Count ? source : new Relabeled(source, map, modelClasses);

    private static string List(IEnumerable<string> names)
    {
        var list = names.ToList();
        return string.Join(", ", list.Take(12).Select(n => $"'{n}'")) + (list.Count > 12 ? $" and {list.Count - 12} more" : "");
    }

    private sealed class Relabeled(IImageBatchSource inner, int[] map, IReadOnlyList<string> classNames) : IImageBatchSource
    {
        public IReadOnlyList<string> ClassNames => classNames;
        public int Channels => inner.Channels;
        public int Height => inner.Height;
        public int Width => inner.Width;
        public int Count => inner.Count;

        public IEnumerable<ImageBatch> ReadEpoch(int epoch, int startBatch, int batchSize, bool training, int seed, CancellationToken cancellationToken = default)
        {
            foreach (var b in inner.ReadEpoch(epoch, startBatch, batchSize, training, seed, cancellationToken))
                yield return new ImageBatch(b.Pixels, b.Labels.Select(l => (uint)l < (uint)map.Length ? map[l] : l).ToArray(), b.Channels, b.Height, b.Width);
        }
    }
}
