using ResNet.ML.Training;

namespace ResNet.ML.Tests.Training;

[TestClass]
public sealed class EvaluationTests
{
    [TestMethod]
    public void Accumulator_ComputesTopKPrecisionRecallAndConfusion()
    {
        var acc = new EvaluationAccumulator(["a", "b", "c", "d", "e", "f"]);
        // Rows: logits of 4 images; true labels 0, 1, 2, 2.
        float[] logits =
        [
            5, 1, 0, 0, 0, 0,   // predicted a (correct)
            3, 1, 0, 0, 0, 0,   // predicted a, true b ranks 2nd
            1.5f, 9, 1, 2, 3, 4,   // predicted b, true c ranks 6th: outside the top 5
            0, 0, 7, 0, 0, 0,   // predicted c (correct)
        ];
        acc.Add(logits, [0, 1, 2, 2]);
        var r = acc.Result();
        Assert.AreEqual(4, r.Count);
        Assert.AreEqual(0.5, r.Top1Accuracy);
        Assert.AreEqual(0.75, r.Top5Accuracy);
        Assert.AreEqual(0.5, r.Precision[0]);    // a predicted twice, once right
        Assert.AreEqual(1.0, r.Recall[0]);
        Assert.AreEqual(0.0, r.Recall[1]);
        Assert.AreEqual(0.5, r.Recall[2]);
        Assert.IsTrue(double.IsNaN(r.Precision[3]), "a class never predicted has no precision");
        Assert.AreEqual(1, r.ConfusionMatrix[1, 0]);
        Assert.AreEqual(1, r.ConfusionMatrix[2, 1]);
        double expectedLoss = new[] { (logits[..6], 0), (logits[6..12], 1), (logits[12..18], 2), (logits[18..], 2) }
            .Average(x => Math.Log(x.Item1.Sum(v => Math.Exp(v))) - x.Item1[x.Item2]);
        Assert.AreEqual(expectedLoss, r.Loss, 1e-9);
    }
}
