using ResNet.ML.Cli;
using ResNet.ML.Tests.Data;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Cli;

/// <summary><c>resnet train --pretrained dnn-resnet18</c> in-process, on 8x8 IDX images resampled to 32x32.</summary>
[TestClass]
public sealed class PretrainedCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = ResNetCli.Run(args, output, error, CancellationToken.None);
        return (code, output.ToString(), error.ToString());
    }

    [TestMethod]
    public void Train_Pretrained_FineTunesAndExportsAModelOfTheResizedInput()
    {
        // Two classes: a bright top half or a bright bottom half.
        string data = TempFolder();
        var labels = Enumerable.Range(0, 16).Select(i => (byte)(i % 2)).ToArray();
        File.WriteAllBytes(Path.Combine(data, "train-images-idx3-ubyte"),
            DataFixtures.IdxImages(16, 8, 8, (n, p) => (byte)((p / 32 == labels[n]) ? 220 - n % 5 * 7 : 30 + n % 3 * 9)));
        File.WriteAllBytes(Path.Combine(data, "train-labels-idx1-ubyte"), DataFixtures.IdxLabels(labels));
        string output = TempFolder();

        var tooSmall = Run("train", "--data", data, "--pretrained", "dnn-resnet18", "--epochs", "1", "--output", output);
        Assert.AreNotEqual(0, tooSmall.Code);
        StringAssert.Contains(tooSmall.Err, "at least 32x32");

        var train = Run("train", "--data", data, "--pretrained", "dnn-resnet18", "--image-size", "32", "--epochs", "2", "--freeze-backbone-epochs", "1",
            "--batch-size", "8", "--validation-fraction", "0", "--threads", "2", "--output", output);
        Assert.AreEqual(0, train.Code, train.Err);
        StringAssert.Contains(train.Out, "dnn-resnet18 (block=basic blocks=2,2,2,3");
        string onnx = Path.Combine(output, "model.onnx");
        var info = Run("info", onnx);
        Assert.AreEqual(0, info.Code, info.Err);
        StringAssert.Contains(info.Out, "input [batch, 1, 32, 32]");

        // A recipe's architecture and rate (fast: resnet14 at 0.2) give way to the pretrained network and its own rate.
        var recipe = Run("train", "--recipe", "fast", "--data", data, "--pretrained", "dnn-resnet18", "--image-size", "32", "--epochs", "1",
            "--batch-size", "8", "--validation-fraction", "0", "--threads", "2", "--output", TempFolder());
        Assert.AreEqual(0, recipe.Code, recipe.Err);
        StringAssert.Contains(recipe.Out, "dnn-resnet18 (block=basic blocks=2,2,2,3");
        StringAssert.Contains(recipe.Out, "SgdMomentum lr 0.01,");
    }
}
