using ResNet.ML.Cli;
using ResNet.ML.Tests.Data;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Reliability;

/// <summary>Tiny IDX data and an in-process <c>resnet</c> for the reliability tests.</summary>
internal static class CliHarness
{
    /// <summary>An 8x8 IDX folder of <paramref name="count"/> images in 3 classes (class c: bright rows 2c, 2c+1).</summary>
    public static string IdxFolder(int count = 48, int variant = 0)
    {
        string folder = TempFolder();
        var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 3)).ToArray();
        File.WriteAllBytes(Path.Combine(folder, "train-images-idx3-ubyte"),
            DataFixtures.IdxImages(count, 8, 8, (n, p) => (byte)(p / 16 == labels[n] ? 220 - variant : 30 + (n * 7 + p * 3 + variant) % 20)));
        File.WriteAllBytes(Path.Combine(folder, "train-labels-idx1-ubyte"), DataFixtures.IdxLabels(labels));
        return folder;
    }

    /// <summary>A tiny training run; <paramref name="more"/> may replace the default 2 epochs.</summary>
    public static string[] TrainArgs(string data, string output, params string[] more) =>
        ["train", "--data", data, "--arch", TinyArchitecture, .. more.Contains("--epochs") ? Array.Empty<string>() : ["--epochs", "2"],
         "--batch-size", "8", "--threads", "2", "--output", output, .. more];

    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = ResNetCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
