using ResNet.ML.Data;
using ResNet.ML.Layers;
using ResNet.ML.Tensors;
using ResNet.ML.Training;

namespace ResNet.ML.Tests.Training;

/// <summary>Tiny models and tiny synthetic data, so trainer tests run in seconds.</summary>
internal static class TrainingTestData
{
    /// <summary>A CIFAR-style ResNet with widths 4/8/16 and one basic block per stage.</summary>
    public const string TinyArchitecture = "block=basic blocks=1,1,1 widths=4,8,16 stem=cifar stem-width=4 shortcut=A";

    /// <summary>
    /// <paramref name="perClass"/> 1x8x8 images per class in 0-255 units: class c is a bright horizontal bar at row 2c
    /// plus seeded noise, so a tiny network separates them in a few epochs.
    /// </summary>
    public static InMemoryImageDataset Bars(int classes = 3, int perClass = 24, int seed = 1, int size = 8, int channels = 1)
    {
        var rng = new Rng((ulong)seed);
        int n = classes * perClass, sample = channels * size * size;
        var pixels = new float[n * sample];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            int label = i % classes;
            labels[i] = label;
            for (int c = 0; c < channels; c++)
            for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                float bar = y == (2 * label) % size || y == (2 * label + 1) % size ? 200f : 30f;
                pixels[i * sample + (c * size + y) * size + x] = Math.Clamp(bar + (float)(rng.NextGaussian() * 25), 0f, 255f);
            }
        }
        return ImageDataset.FromFloats(pixels, labels, channels, size, size, Enumerable.Range(0, classes).Select(c => $"bar{c}").ToArray(), "bars");
    }

    public static ResNetTrainerOptions TinyOptions(string? checkpointFolder = null) => new()
    {
        Architecture = TinyArchitecture,
        Epochs = 3,
        BatchSize = 8,
        LearningRate = 0.05f,
        Schedule = ScheduleKind.Cosine,
        ValidationFraction = 0.25,
        Seed = 7,
        Threads = 2,
        CheckpointFolder = checkpointFolder,
    };

    public static string TempFolder()
    {
        string path = Path.Combine(Path.GetTempPath(), "resnet-ml-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Every state-dict value of a network as one array, for bit-exact comparisons.</summary>
    public static float[] Weights(Network network) =>
        network.State.SelectMany(e => e.Counter ? [(float)e.GetCounter!()] : e.Value!.Data).ToArray();

    /// <summary>A synchronous progress callback.</summary>
    public sealed class Callback(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
