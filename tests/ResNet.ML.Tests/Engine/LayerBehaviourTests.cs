using ResNet.ML.Layers;
using ResNet.ML.Layers.Reference;
using ResNet.ML.Models;
using ResNet.ML.Tensors;
using ResNet.ML.Training;

namespace ResNet.ML.Tests.Engine;

[TestClass]
public class LayerBehaviourTests
{
    [TestMethod]
    [DataRow(16, 16, 1, 28, DisplayName = "16->16 3x3 at 28x28 (784 pixels, whole pieces, 28-wide rows)")]
    [DataRow(16, 32, 2, 28, DisplayName = "16->32 3x3 stride 2, 28x28 -> 14x14 (196 pixels, partial piece)")]
    [DataRow(64, 64, 1, 7, DisplayName = "64->64 3x3 at 7x7 (49 pixels)")]
    [DataRow(32, 48, 1, 8, DisplayName = "32->48 3x3 at 8x8 (outer-product weight gradient: a 32-channel and a 16-channel block)")]
    [DataRow(64, 40, 1, 14, DisplayName = "64->40 3x3 at 14x14 (40 output channels padded to 48)")]
    [DataRow(5, 32, 1, 9, DisplayName = "5->32 3x3 at 9x9 (45 taps, padded to whole tap blocks; shifted copies)")]
    [DataRow(3, 64, 2, 13, DisplayName = "3->64 3x3 stride 2, 13x13 -> 7x7 (27 taps)")]
    [DataRow(130, 32, 1, 6, DisplayName = "130->32 3x3 at 6x6 (1,170 taps: im2col forward, outer-product weight gradient)")]
    [DataRow(132, 48, 2, 9, DisplayName = "132->48 3x3 stride 2, 9x9 -> 5x5 (1,188 taps, shifted copies)")]
    public void DirectConvolutionMatchesIm2Col(int cin, int cout, int stride, int size)
    {
        var rng = new Rng(77);
        var direct = new Conv2d("direct", cin, cout, 3, stride, 1);
        var im2col = new Conv2d("im2col", cin, cout, 3, stride, 1) { AllowDirect = false };
        for (int i = 0; i < direct.Weight.Value.Length; i++) direct.Weight.Value.Data[i] = im2col.Weight.Value.Data[i] = (float)(0.1 * rng.NextGaussian());
        var x = GradientCheck.RandomTensor(rng, 5, cin, size, size, 1.0);
        var y1 = direct.Forward(x, true);
        var y2 = im2col.Forward(x, true);
        AssertNear(y2.Data, y1.Data, "forward");
        var dy = GradientCheck.RandomTensor(rng, y1.N, y1.C, y1.H, y1.W, 1.0);
        direct.Weight.Grad.Clear();
        im2col.Weight.Grad.Clear();
        var dx1 = direct.Backward(dy);
        var dx2 = im2col.Backward(dy);
        AssertNear(dx2.Data, dx1.Data, "input gradient");
        AssertNear(im2col.Weight.Grad.Data, direct.Weight.Grad.Data, "weight gradient");

        static void AssertNear(float[] expected, float[] actual, string what)
        {
            double diff = 0, norm = 0;
            for (int i = 0; i < expected.Length; i++) { diff = Math.Max(diff, Math.Abs(expected[i] - actual[i])); norm = Math.Max(norm, Math.Abs(expected[i])); }
            Assert.IsTrue(norm > 0 && diff <= 1e-5 * norm, $"{what}: max |Δ| {diff:g3} against max |value| {norm:g3}");
        }
    }

    [TestMethod]
    public void NetworkFusesTheStemBatchNormAndReluWithoutChangingResults()
    {
        var rng = new Rng(21);
        var net = ModelFactory.Build("resnet20", 3, 10, 16, 16);
        Initializer.Initialize(net, rng);
        var x = GradientCheck.RandomTensor(rng, 3, 3, 16, 16, 1.0);
        var gradLogits = GradientCheck.RandomTensor(rng, 3, 10, 1, 1, 1.0);
        Assert.IsTrue(net.Layers[1] is BatchNorm2d && net.Layers[2] is ReLU, "the stem is conv, BN, ReLU");

        // Reference: every layer run on its own (the stem's BN and ReLU as two passes).
        var h = x;
        foreach (var layer in net.Layers) h = layer.Forward(h, true);
        var expectedLogits = h.Clone();
        net.ZeroGrad();
        var g = gradLogits;
        for (int i = net.Layers.Count - 1; i >= 0; i--) g = net.Layers[i].Backward(g);
        var expectedInputGrad = g.Clone();
        var expectedGrads = net.Parameters.Select(p => p.Grad.Clone()).ToArray();

        var logits = net.Forward(x, true);
        net.ZeroGrad();
        var inputGrad = net.Backward(gradLogits);
        CollectionAssert.AreEqual(expectedLogits.Data, logits.Data, "logits");
        CollectionAssert.AreEqual(expectedInputGrad.Data, inputGrad.Data, "input gradient");
        var grads = net.Parameters.ToArray();
        for (int p = 0; p < grads.Length; p++)
            CollectionAssert.AreEqual(expectedGrads[p].Data, grads[p].Grad.Data, grads[p].Name);
    }

    [TestMethod]
    [DataRow(16, 32)]
    [DataRow(14, 28)]
    [DataRow(7, 14)]
    [DataRow(7, 13)]
    [DataRow(24, 47)]
    [DataRow(3, 5)]
    public void StridedMaskedAddTouchesOnlyEvenColumnsWithinTheRow(int outWidth, int inWidth)
    {
        // The zero-padding shortcut's backward adds a masked output row into every other input column; the vector path
        // must match the scalar rule exactly and never write past the row it was given.
        var rng = new Rng((ulong)(outWidth * 100 + inWidth));
        float[] dy = Enumerable.Range(0, outWidth).Select(_ => (float)rng.NextGaussian()).ToArray();
        float[] y = Enumerable.Range(0, outWidth).Select(_ => (float)rng.NextGaussian()).ToArray();
        float[] row = Enumerable.Range(0, inWidth + 8).Select(_ => (float)rng.NextGaussian()).ToArray();
        float[] expected = (float[])row.Clone();
        for (int j = 0; j < outWidth; j++) if (y[j] > 0) expected[2 * j] += dy[j];
        float[] actual = (float[])row.Clone();
        int done = Kernels.AddMaskedSpread2(dy, y, actual.AsSpan(0, inWidth));
        for (int j = done; j < outWidth; j++) if (y[j] > 0) actual[2 * j] += dy[j];
        CollectionAssert.AreEqual(expected, actual);
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported && inWidth >= 16) Assert.IsTrue(done >= 8, "the vector path ran");
    }

    [TestMethod]
    [DataRow(32, 32)]
    [DataRow(33, 35)]
    [DataRow(112, 112)]
    [DataRow(7, 40)]
    public void StemMaxPoolMatchesTheWindowRuleWithTiesAndNaN(int h, int w)
    {
        // 3x3 / 2 / pad 1 (the stem's pooling, vectorized for rows of 16+ outputs): values from a small set, so windows
        // tie, and a few NaNs; the maximum and the position that receives the gradient must follow the scalar rule
        // (scan rows then columns, strictly greater wins, the first NaN wins).
        var rng = new Rng((ulong)(h * 1000 + w));
        var x = new Tensor(2, 3, h, w);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextInt(50) == 0 ? float.NaN : rng.NextInt(4) - 1.5f;
        var pool = new MaxPool2d("pool", 3, 2, 1);
        var y = pool.Forward(x, true);
        var dy = new Tensor(y.N, y.C, y.H, y.W);
        for (int i = 0; i < dy.Length; i++) dy.Data[i] = i + 1;
        var dx = pool.Backward(dy);
        var expectedDx = new float[x.Length];
        for (int plane = 0; plane < x.N * x.C; plane++)
            for (int oy = 0; oy < y.H; oy++)
                for (int ox = 0; ox < y.W; ox++)
                {
                    float best = float.NegativeInfinity;
                    int bestAt = -1;
                    for (int iy = 2 * oy - 1; iy <= 2 * oy + 1; iy++)
                        for (int ix = 2 * ox - 1; ix <= 2 * ox + 1; ix++)
                        {
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            float v = x.Data[plane * h * w + iy * w + ix];
                            if (bestAt < 0 && !(v > best) && !float.IsNaN(v)) bestAt = iy * w + ix;   // first valid position
                            if (float.IsNaN(best)) continue;
                            if (v > best || float.IsNaN(v)) { best = v; bestAt = iy * w + ix; }
                        }
                    int o = (plane * y.H + oy) * y.W + ox;
                    Assert.AreEqual(best, y.Data[o], $"plane {plane}, output ({oy}, {ox})");
                    expectedDx[plane * h * w + bestAt] += dy.Data[o];
                }
        CollectionAssert.AreEqual(expectedDx, dx.Data, "the gradient goes to the first maximum (or first NaN) of each window");
    }

    [TestMethod]
    public void BatchNormTrainingUpdatesRunningStatsAndEvalUsesThem()
    {
        var rng = new Rng(5);
        var bn = new BatchNorm2d("bn", 2);
        var x = GradientCheck.RandomTensor(rng, 4, 2, 3, 3, 2.0);
        for (int i = 0; i < x.Length; i++) x.Data[i] += 1.5f;   // a non-zero mean
        var y = bn.Forward(x, training: true);
        Assert.AreEqual(1L, bn.NumBatchesTracked);
        for (int c = 0; c < 2; c++)
        {
            var values = Enumerable.Range(0, 4).SelectMany(n => x.Data.Skip((n * 2 + c) * 9).Take(9)).Select(v => (double)v).ToArray();
            double mean = values.Average(), biased = values.Select(v => (v - mean) * (v - mean)).Sum() / values.Length;
            double unbiased = biased * values.Length / (values.Length - 1);
            Assert.AreEqual(0.1 * mean, bn.RunningMean.Data[c], 1e-5, "running_mean = 0.9·0 + 0.1·mean");
            Assert.AreEqual(0.9 + 0.1 * unbiased, bn.RunningVar.Data[c], 1e-5, "running_var uses the unbiased variance");
            var outs = Enumerable.Range(0, 4).SelectMany(n => y.Data.Skip((n * 2 + c) * 9).Take(9)).Select(v => (double)v).ToArray();
            Assert.AreEqual(0, outs.Average(), 1e-5);
            Assert.AreEqual(biased / (biased + 1e-5), outs.Select(v => v * v).Average(), 1e-4, "normalized with the biased variance");
        }
        var eval = bn.Forward(x, training: false);
        Assert.AreEqual(1L, bn.NumBatchesTracked, "inference does not count batches");
        for (int i = 0; i < x.Length; i++)
        {
            int c = i / 9 % 2;
            double expected = (x.Data[i] - bn.RunningMean.Data[c]) / Math.Sqrt(bn.RunningVar.Data[c] + 1e-5);
            Assert.AreEqual(expected, eval.Data[i], 1e-4);
        }
    }

    [TestMethod]
    public void ShapeMismatchesNameTheLayerAndShapes()
    {
        var conv = new Conv2d("layer1.0.conv1", 16, 16, 3, 1, 1);
        var e = Assert.ThrowsExactly<ShapeException>(() => conv.Forward(new Tensor(2, 3, 8, 8), true));
        StringAssert.Contains(e.Message, "layer1.0.conv1");
        StringAssert.Contains(e.Message, "[3, 8, 8]");
        conv.Forward(new Tensor(2, 16, 8, 8), true);
        var g = Assert.ThrowsExactly<ShapeException>(() => conv.Backward(new Tensor(2, 16, 4, 4)));
        StringAssert.Contains(g.Message, "layer1.0.conv1");
        StringAssert.Contains(g.Message, "[2, 16, 4, 4]");
        var fc = new Linear("fc", 64, 10);
        StringAssert.Contains(Assert.ThrowsExactly<ShapeException>(() => fc.Forward(new Tensor(1, 32, 1, 1), false)).Message, "fc");
        var bn = new BatchNorm2d("bn1", 4);
        StringAssert.Contains(Assert.ThrowsExactly<ShapeException>(() => bn.Forward(new Tensor(1, 4, 1, 1), true)).Message, "bn1");
    }

    [TestMethod]
    public void NetworkRejectsNonFiniteInput()
    {
        var net = TinyNetworks.Cifar(classes: 3);
        var x = new Tensor(2, 3, 8, 8);
        x.Data[5] = float.NaN;
        Assert.ThrowsExactly<NonFiniteException>(() => net.Forward(x, true));
    }

    [TestMethod]
    public void InitializerFollowsTorchvision()
    {
        var net = TinyNetworks.Cifar(classes: 10, width: 16);
        Initializer.Initialize(net, new Rng(1), zeroInitLastBlockBn: true);
        var conv = net.AllLayers.OfType<Conv2d>().Last(c => c.KernelSize == 3);
        double std = Math.Sqrt(conv.Weight.Value.Data.Select(v => (double)v * v).Average());
        double expected = Math.Sqrt(2.0 / (conv.OutChannels * 9));
        Assert.AreEqual(expected, std, 0.1 * expected, "Kaiming normal, fan-out");
        var fc = net.AllLayers.OfType<Linear>().Single();
        double bound = 1 / Math.Sqrt(fc.InFeatures);
        Assert.IsTrue(fc.Weight.Value.Data.All(v => Math.Abs(v) <= bound) && fc.Bias!.Value.Data.All(v => Math.Abs(v) <= bound));
        Assert.IsTrue(fc.Weight.Value.Data.Max() > bound * 0.8 && fc.Weight.Value.Data.Min() < -bound * 0.8, "uniform over ±1/√fan_in");
        foreach (var block in net.AllLayers.OfType<ResidualBlock>())
        {
            Assert.IsTrue(block.Branch[^1].Bn.Weight.Value.Data.All(v => v == 0), $"{block.Name}: last BN zeroed");
            Assert.IsTrue(block.Branch[0].Bn.Weight.Value.Data.All(v => v == 1));
        }
        var again = TinyNetworks.Cifar(classes: 10, width: 16);
        Initializer.Initialize(again, new Rng(1), zeroInitLastBlockBn: true);
        CollectionAssert.AreEqual(conv.Weight.Value.Data, again.AllLayers.OfType<Conv2d>().Last(c => c.KernelSize == 3).Weight.Value.Data, "same seed, same weights");
    }

    [TestMethod]
    public void BackwardParametersGivesTheSameParameterGradientsAsFullBackward()
    {
        var net = TinyNetworks.Cifar(classes: 3, width: 4);
        var rng = new Rng(12);
        foreach (var p in net.Parameters)
            for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] = (float)(0.5 * rng.NextGaussian());
        var x = GradientCheck.RandomTensor(rng, 3, 3, 10, 10, 1);
        var r = GradientCheck.RandomTensor(rng, 3, 3, 1, 1, 1);
        net.Forward(x, training: false);
        net.ZeroGrad();
        net.Backward(r);
        var full = net.Parameters.Select(p => p.Grad.Data.ToArray()).ToList();
        net.ZeroGrad();
        net.BackwardParameters(r);
        var parameters = net.Parameters.ToList();
        Assert.IsTrue(full[0].Any(v => v != 0), "the stem's weight gradient is not trivially zero");
        for (int i = 0; i < parameters.Count; i++)
            CollectionAssert.AreEqual(full[i], parameters[i].Grad.Data, $"{parameters[i].Name}: bit-identical gradient");
    }

    [TestMethod]
    public void SmallNetworkGradient_MatchesTheScalarReference_WhoseGradientMatchesFiniteDifferences()
    {
        // A stem, an option-A stage, an option-B stage, pooling and head: the whole chain through Network.Backward, its
        // fusions included (the stem's BN-ReLU pair, each block's BN-add-ReLU), against the unfused float64 reference.
        var net = TinyNetworks.Cifar(classes: 3, width: 2);
        var rng = new Rng(11);
        foreach (var p in net.Parameters)
            for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] = p.Name.Contains("bn") || p.Name.EndsWith(".1.weight") ? (float)(1 + 0.2 * rng.NextGaussian()) : (float)(0.5 * rng.NextGaussian());
        var x = GradientCheck.RandomTensor(rng, 2, 3, 6, 6, 1);
        var parameters = net.Parameters.ToList();
        var values = parameters.ToDictionary(p => p, p => p.Value.Data.Select(v => (double)v).ToArray());
        var reference = ReferencePass.Forward(net, Activation.From(x), training: true, values);
        var logits = net.Forward(x, training: true);
        GradientCheck.AssertClose(GradientCheck.ToDouble(logits.Data), reference.Output.Data, 1e-4, "network forward");
        var r = GradientCheck.RandomTensor(rng, 2, 3, 1, 1, 1);
        net.ZeroGrad();
        var dx = net.Backward(r);
        var rd = GradientCheck.ToDouble(r.Data);
        var referenceDx = reference.Backward(rd);
        GradientCheck.AssertClose(GradientCheck.ToDouble(dx.Data), referenceDx, 5e-4, "network d/dinput against the reference");
        foreach (var p in parameters)
            GradientCheck.AssertClose(GradientCheck.ToDouble(p.Grad.Data), reference.Gradient(p), 5e-4, $"network d/d{p.Name} against the reference");

        var xd = GradientCheck.ToDouble(x.Data);
        double Objective() => ReferencePass.Forward(net, new Activation(xd, 2, 3, 6, 6), true, values).Output.Data.Select((v, i) => v * rd[i]).Sum();
        GradientCheck.CheckTensor("reference network d/dinput", xd, referenceDx, Objective, rng, 12, 1e-5);
        foreach (var p in parameters)
            GradientCheck.CheckTensor($"reference network d/d{p.Name}", values[p], reference.Gradient(p), Objective, rng, 6, 1e-5);
    }

    [TestMethod]
    public void TheThreadCount_BelongsToTheCallingThread_AndReachesTheWorkersOfItsRegions()
    {
        // 5, not this machine's core count, so a worker that did not take its caller's count would show.
        using var outer = ResNet.ML.Tensors.Engine.UseThreads(5);
        Assert.AreEqual(5, ResNet.ML.Tensors.Engine.Threads);
        using (ResNet.ML.Tensors.Engine.UseThreads(1)) Assert.AreEqual(1, ResNet.ML.Tensors.Engine.Threads, "scopes nest");
        Assert.AreEqual(5, ResNet.ML.Tensors.Engine.Threads, "disposing restores the count before");

        // Another thread with another count: neither sees the other's, and each region's parts see their caller's.
        int seenByOther = 0;
        var partsSeen = new int[2];
        var other = new Thread(() =>
        {
            using var scope = ResNet.ML.Tensors.Engine.UseThreads(3);
            seenByOther = ResNet.ML.Tensors.Engine.Threads;
        });
        other.Start();
        other.Join();
        Assert.AreEqual(3, seenByOther);
        Assert.AreEqual(5, ResNet.ML.Tensors.Engine.Threads);
        ResNet.ML.Tensors.Engine.ParallelFor(2, (part, _, _) => partsSeen[part] = ResNet.ML.Tensors.Engine.Threads);
        CollectionAssert.AreEqual(new[] { 5, 5 }, partsSeen, "a worker running part 1 partitions nested work as its caller does");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ResNet.ML.Tensors.Engine.UseThreads(0));
    }

    [TestMethod]
    public void SameThreadCountGivesBitIdenticalGradients()
    {
        float[] Run(int threads)
        {
            using var scope = ResNet.ML.Tensors.Engine.UseThreads(threads);
            var net = TinyNetworks.Cifar(classes: 4, width: 4);
            Initializer.Initialize(net, new Rng(9));
            var x = GradientCheck.RandomTensor(new Rng(10), 7, 3, 8, 8, 1);
            var logits = net.Forward(x, true);
            var (_, g) = new ResNet.ML.Training.SoftmaxCrossEntropy().Compute(logits, [0, 1, 2, 3, 0, 1, 2]);
            net.ZeroGrad();
            net.Backward(g);
            return net.Parameters.SelectMany(p => p.Grad.Data).ToArray();
        }
        var a = Run(3); var b = Run(3); var single = Run(1);
        CollectionAssert.AreEqual(a, b, "same thread count, same bits");
        GradientCheck.AssertClose(a.Select(v => (double)v).ToArray(), single.Select(v => (double)v).ToArray(), 1e-5, "3 threads vs 1");
    }
}

internal static class TinyNetworks
{
    /// <summary>conv1/bn1/relu stem, an option-A block and an option-B block, global pooling, fc (torchvision names).</summary>
    public static Network Cifar(int classes, int width = 4) => new("tiny", 3, classes,
    [
        new Conv2d("conv1", 3, width, 3, 1, 1), new BatchNorm2d("bn1", width), new ReLU("relu"),
        new BasicBlock("layer1.0", width, width, 1, null),
        new BasicBlock("layer2.0", width, 2 * width, 2, new ZeroPadShortcut("layer2.0.shortcut", width, 2 * width, 2)),
        new BasicBlock("layer3.0", 2 * width, 4 * width, 2, new ProjectionShortcut("layer3.0.downsample", 2 * width, 4 * width, 2)),
        new GlobalAvgPool2d("avgpool"), new Linear("fc", 4 * width, classes),
    ]);
}
