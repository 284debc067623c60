using ResNet.ML.Layers;
using ResNet.ML.Layers.Reference;
using ResNet.ML.Tensors;
using ResNet.ML.Training;

namespace ResNet.ML.Tests.Engine;

[TestClass]
public class LossTests
{
    private static double ReferenceLoss(double[] z, int n, int classes, int[] labels, double eps) =>
        ReferenceKernels.SoftmaxCrossEntropy(new double[z.Length], z, labels, n, classes, eps);

    [TestMethod]
    [DataRow(0.0f)]
    [DataRow(0.1f)]
    public void LossAndGradientMatchTheDefinition(float smoothing)
    {
        var rng = new Rng(3);
        int n = 5, classes = 7;
        var logits = GradientCheck.RandomTensor(rng, n, classes, 1, 1, 3.0);
        int[] labels = [0, 6, 3, 3, 1];
        var (loss, grad) = new SoftmaxCrossEntropy(smoothing).Compute(logits, labels);
        var z = logits.Data.Select(v => (double)v).ToArray();
        Assert.AreEqual(ReferenceLoss(z, n, classes, labels, smoothing), loss, 1e-5);
        var numeric = new double[z.Length];
        for (int i = 0; i < z.Length; i++)
        {
            double s = z[i];
            z[i] = s + 1e-6; double plus = ReferenceLoss(z, n, classes, labels, smoothing);
            z[i] = s - 1e-6; double minus = ReferenceLoss(z, n, classes, labels, smoothing);
            z[i] = s;
            numeric[i] = (plus - minus) / 2e-6;
        }
        GradientCheck.AssertClose(grad.Data.Select(v => (double)v).ToArray(), numeric, 1e-4, "d loss / d logits");
        // The reference's analytic gradient agrees with its own central differences, and so with the engine's.
        var referenceGrad = new double[z.Length];
        ReferenceKernels.SoftmaxCrossEntropy(referenceGrad, z, labels, n, classes, smoothing);
        GradientCheck.AssertClose(referenceGrad, numeric, 1e-6, "the reference's d loss / d logits");
    }

    [TestMethod]
    public void DivergedLossNamesTheStep()
    {
        var logits = new Tensor(2, 3, 1, 1);
        logits.Data[4] = float.PositiveInfinity;
        var e = Assert.ThrowsExactly<NonFiniteException>(() => new SoftmaxCrossEntropy().Compute(logits, [0, 1], step: 42));
        StringAssert.Contains(e.Message, "diverged");
        StringAssert.Contains(e.Message, "step 42");
    }

    [TestMethod]
    public void BadLabelsAndShapesAreNamed()
    {
        var logits = new Tensor(2, 3, 1, 1);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new SoftmaxCrossEntropy().Compute(logits, [0, 3]));
        StringAssert.Contains(e.Message, "Label 3 of sample 1");
        Assert.ThrowsExactly<ShapeException>(() => new SoftmaxCrossEntropy().Compute(logits, [0]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new SoftmaxCrossEntropy(1.5f));
    }
}
