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
    [DataRow(3, 16, 3, 1, 1, 28, 28)]   // a CIFAR stage-1 layer at 28x28
    [DataRow(5, 11, 3, 1, 1, 7, 9)]     // channel counts not a multiple of the 4-channel or 4x3 tiles, odd sizes
    [DataRow(2, 3, 1, 1, 0, 5, 6)]      // 1x1
    [DataRow(4, 9, 5, 1, 2, 6, 13)]     // 5x5, padding 2
    [DataRow(3, 4, 3, 1, 0, 9, 8)]      // no padding: output smaller than input
    [DataRow(16, 3, 3, 1, 2, 4, 4)]     // the input gradient's shape: padding k-1-p
    [DataRow(6, 13, 3, 2, 1, 28, 28)]   // a stage's first, stride-2 convolution
    [DataRow(5, 7, 3, 2, 1, 7, 9)]      // stride 2 on odd sizes (phases of unequal height and width)
    [DataRow(4, 9, 1, 2, 0, 9, 10)]     // a 1x1 stride-2 projection
    [DataRow(3, 8, 7, 2, 3, 19, 17)]    // an ImageNet stem: 7x7, stride 2, padding 3
    [DataRow(2, 5, 3, 3, 1, 11, 10)]    // stride 3
    public unsafe void ForwardAndWeightGradient_MatchTheReference(int cin, int cout, int k, int stride, int pad, int h, int w)
    {
        if (!DirectConvAvx2.Supports(stride)) Assert.Inconclusive("AVX2 with FMA is needed.");
        var rng = new Rng((ulong)(cin * 1000 + cout * 10 + k));
        int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1, taps = cin * k * k;
        float[] x = Random(rng, cin * h * w), weight = Random(rng, cout * taps), dy = Random(rng, cout * oh * ow);
        var packed = new float[Gemm.PackedALength(cout, taps)];
        Gemm.PackWholeA(false, weight, taps, cout, taps, packed);
        var y = new float[cout * oh * ow];
        var grad = Enumerable.Repeat(0.5f, cout * taps).ToArray();   // accumulates: starts from what is there
        fixed (float* px = x, pw = packed, py = y, pdy = dy, pg = grad)
        {
            DirectConvAvx2.Convolve(px, cin, h, w, pw, cout, k, stride, pad, oh, ow, py);
            DirectConvAvx2.AccumulateWeightGradient(px, cin, h, w, pdy, cout, k, stride, pad, oh, ow, pg);
        }
        double[] xd = GradientCheck.ToDouble(x), wd = GradientCheck.ToDouble(weight), dyd = GradientCheck.ToDouble(dy);
        var expected = new double[y.Length];
        ReferenceKernels.Conv2dForward(expected, xd, wd, null, 1, cin, h, w, cout, k, stride, pad, oh, ow);
        GradientCheck.AssertClose(GradientCheck.ToDouble(y), expected, 1e-5, "forward");
        var expectedGrad = Enumerable.Repeat(0.5, grad.Length).ToArray();
        ReferenceKernels.Conv2dBackward(null, expectedGrad, null, dyd, xd, wd, 1, cin, h, w, cout, k, stride, pad, oh, ow);
        GradientCheck.AssertClose(GradientCheck.ToDouble(grad), expectedGrad, 1e-5, "weight gradient");
    }

    private static float[] Random(Rng rng, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)rng.NextGaussian();
        return a;
    }
}
