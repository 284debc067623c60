using ResNet.ML.Cli;
using ResNet.ML.Data;
using ResNet.ML.Tests.Data;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Reliability.CliHarness;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Reliability;

/// <summary>Issue 15, case 9: data readers refuse files that would silently train on the wrong classes or less data.</summary>
[TestClass]
public sealed class DataRefusalTests
{
    [TestMethod]
    public void AnIdxLabelOutsideTheClasses_IsRefused_WhateverTheFolderName()
    {
        string folder = TempFolder();
        var labels = Enumerable.Range(0, 12).Select(i => (byte)(i % 3)).ToArray();
        labels[7] = 200;
        File.WriteAllBytes(Path.Combine(folder, "train-images-idx3-ubyte"), DataFixtures.IdxImages(12, 8, 8, (n, p) => (byte)p));
        File.WriteAllBytes(Path.Combine(folder, "train-labels-idx1-ubyte"), DataFixtures.IdxLabels(labels));
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Idx.Load(Path.Combine(folder, "train-images-idx3-ubyte"), Path.Combine(folder, "train-labels-idx1-ubyte")));
        StringAssert.Contains(e.Message, "label 200");
        StringAssert.Contains(e.Message, "train-labels-idx1-ubyte");
        var r = Run(TrainArgs(folder, TempFolder()));
        Assert.AreEqual(ResNetCli.ExitError, r.Code);
        StringAssert.Contains(r.Err, "label 200");
    }

    [TestMethod]
    public void AnEmptyCifarBatchFile_IsRefused_NamingIt()
    {
        string folder = TempFolder();
        for (int i = 1; i <= 5; i++)
            File.WriteAllBytes(Path.Combine(folder, $"data_batch_{i}.bin"), i == 3 ? [] : DataFixtures.CifarRecords([[i % 10], [(i + 1) % 10]]));
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Cifar.LoadCifar10(folder));
        StringAssert.Contains(e.Message, "data_batch_3.bin");
        StringAssert.Contains(e.Message, "empty");
    }
}
