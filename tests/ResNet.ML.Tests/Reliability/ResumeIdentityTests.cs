using ResNet.ML.Data;
using System.Text;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Reliability;

/// <summary>Issue 15, case 5: a resume never continues the wrong run.</summary>
[TestClass]
public sealed class ResumeIdentityTests
{
    private static string OneEpochCheckpoint(InMemoryImageDataset data, out ResNetTrainerOptions options)
    {
        string folder = TempFolder();
        var o = TinyOptions(folder);
        o.Epochs = 2;
        options = o;
        using var cancel = new CancellationTokenSource();
        var progress = new Callback(p => { if (p.Phase == TrainingPhase.EpochEnd) cancel.Cancel(); });
        var canceled = Assert.ThrowsExactly<TrainingCanceledException>(() => new ImageClassifierTrainer(o).Fit(data, progress: progress, cancellationToken: cancel.Token));
        return canceled.CheckpointPath!;
    }

    /// <summary>Changes one digit of the first number after <paramref name="key"/> in the file's JSON header.</summary>
    private static byte[] EditDigitAfter(byte[] file, string key)
    {
        var edited = (byte[])file.Clone();
        int at = Encoding.ASCII.GetString(file).IndexOf(key, StringComparison.Ordinal);
        Assert.IsGreaterThanOrEqualTo(0, at, $"{key} is not in the checkpoint header");
        int digit = Array.FindIndex(edited, at + key.Length, b => b is >= (byte)'0' and <= (byte)'9');
        edited[digit] = (byte)(edited[digit] == '9' ? '1' : edited[digit] + 1);
        return edited;
    }

    [TestMethod]
    [DataRow("GlobalStep\\u0022:")]
    [DataRow("Mean\\u0022:[")]
    public void AnEditedRunState_IsRefusedAsCorrupt(string key)
    {
        string path = OneEpochCheckpoint(Bars(perClass: 8), out _);
        var edited = EditDigitAfter(File.ReadAllBytes(path), key);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Read(new MemoryStream(edited), "the edited checkpoint"));
        StringAssert.Contains(e.Message, "the edited checkpoint is corrupt");
    }

    [TestMethod]
    public void ResumingOnOtherImagesOfTheSameCount_IsRefused_NamingTheData()
    {
        var data = Bars(perClass: 8, seed: 1);
        string path = OneEpochCheckpoint(data, out var options);
        var other = Bars(perClass: 8, seed: 2);   // same count, classes and shape; other pixels
        Assert.AreEqual(data.Count, other.Count);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new ImageClassifierTrainer(options).Resume(TrainingCheckpoint.Load(path), other));
        StringAssert.Contains(e.Message, "TrainingData differs");
        StringAssert.Contains(e.Message, "images or labels");

        // One label changed is another run too.
        var pixels = new float[data.Count * data.SampleSize];
        for (int i = 0; i < data.Count; i++) data.ReadPixels(i, pixels.AsSpan(i * data.SampleSize, data.SampleSize));
        var labels = data.GetLabels();
        labels[0] = (labels[0] + 1) % 3;
        var relabeled = ML.Data.ImageDataset.FromFloats(pixels, labels, 1, 8, 8, data.ClassNames, "relabeled");
        Assert.ThrowsExactly<InvalidDataException>(() => new ImageClassifierTrainer(options).Resume(TrainingCheckpoint.Load(path), relabeled));

        // The same data still resumes.
        var resumed = new ImageClassifierTrainer(options).Resume(TrainingCheckpoint.Load(path), data);
        Assert.HasCount(2, resumed.History);
    }
}
