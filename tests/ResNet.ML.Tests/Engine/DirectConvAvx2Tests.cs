using ResNet.ML.Layers.Reference;
using ResNet.ML.Tensors;

namespace ResNet.ML.Tests.Engine;

/// <summary>
/// The AVX2 direct kernels called directly, so that they are checked on AVX-512 machines too (where convolutions take
/// the AVX-512 kernels and would never reach these), against the float64 reference.
/// </summary>
[TestClass]
public class DirectConvAvx2Tests
{
    [TestMethod]
    [DataRow(3, 16, 3, 1, 28, 28)]   // a CIFAR stage-1 layer at 28x28
    [DataRow(5, 11, 3, 1, 7, 9)]     // channel counts not a multiple of the 8-channel or 3x4 tiles, odd sizes
    [DataRow(2, 3, 1, 0, 5, 6)]      // 1x1
    [DataRow(4, 9, 5, 2, 6, 13)]     // 5x5, padding 2
    [DataRow(3, 4, 3, 0, 9, 8)]      // no padding: output smaller than input
    [DataRow(16, 3, 3, 2, 4, 4)]     // the input gradient's shape: padding k-1-p
    public unsafe void ForwardAndWeightGradient_MatchTheReference(int cin, int cout, int k, int pad, int h, int w)
    {
        if (!DirectConvAvx2.Supports(1)) Assert.Inconclusive("AVX2 with FMA is needed.");
        var rng = new Rng((ulong)(cin * 1000 + cout * 10 + k));
        int oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1, taps = cin * k * k;
        float[] x = Random(rng, cin * h * w), weight = Random(rng, cout * taps), dy = Random(rng, cout * oh * ow);
        var packed = new float[Gemm.PackedALength(cout, taps)];
        Gemm.PackWholeA(false, weight, taps, cout, taps, packed);
        var y = new float[cout * oh * ow];
        var grad = Enumerable.Repeat(0.5f, cout * taps).ToArray();   // accumulates: starts from what is there
        fixed (float* px = x, pw = packed, py = y, pdy = dy, pg = grad)
        {
            DirectConvAvx2.Convolve(px, cin, h, w, pw, cout, k, pad, oh, ow, py);
            DirectConvAvx2.AccumulateWeightGradient(px, cin, h, w, pdy, cout, k, pad, oh, ow, pg);
        }
        double[] xd = GradientCheck.ToDouble(x), wd = GradientCheck.ToDouble(weight), dyd = GradientCheck.ToDouble(dy);
        var expected = new double[y.Length];
        ReferenceKernels.Conv2dForward(expected, xd, wd, null, 1, cin, h, w, cout, k, 1, pad, oh, ow);
        GradientCheck.AssertClose(GradientCheck.ToDouble(y), expected, 1e-5, "forward");
        var expectedGrad = Enumerable.Repeat(0.5, grad.Length).ToArray();
        ReferenceKernels.Conv2dBackward(null, expectedGrad, null, dyd, xd, wd, 1, cin, h, w, cout, k, 1, pad, oh, ow);
        GradientCheck.AssertClose(GradientCheck.ToDouble(grad), expectedGrad, 1e-5, "weight gradient");
    }

    private static float[] Random(Rng rng, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)rng.NextGaussian();
        return a;
    }
}
