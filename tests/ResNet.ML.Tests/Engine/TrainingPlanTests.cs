using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Tensors;

namespace ResNet.ML.Tests.Engine;

[TestClass]
public class TrainingPlanTests
{
    private static Network Resnet(int channels, int size, ulong seed = 5)
    {
        var net = ModelFactory.Build("resnet20 widths=16,32,64", channels, 10, size, size);
        var rng = new Rng(seed);
        foreach (var p in net.Parameters)
            for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] = p.Name.Contains("bn") ? (float)(1 + 0.1 * rng.NextGaussian()) : (float)(0.1 * rng.NextGaussian());
        return net;
    }

    private static (float[] Logits, float[][] Grads) Step(Network net, TrainingPlan plan, Tensor x, Tensor dLogits)
    {
        var logits = plan.Forward(x, training: true).Data.ToArray();
        net.ZeroGrad();
        plan.BackwardParameters(dLogits);
        return (logits, net.Parameters.Select(p => p.Grad.Data.ToArray()).ToArray());
    }

    [TestMethod]
    public void ThePlanFixesTheKernelSequenceAndEveryConvolutionsKernels_Once()
    {
        var net = Resnet(1, 28);
        var plan = net.Compile(1, 28, 28);
        Assert.AreEqual("conv1", plan.Steps[0].Layer.Name);
        Assert.AreEqual("bn1+relu", plan.Steps[1].ToString(), "the stem's BN-ReLU pair runs as one step");
        Assert.AreEqual(net.AllLayers.OfType<Conv2d>().Count(), plan.Convolutions.Count, "every convolution, blocks included, has its kernels");
        // Each convolution's kernels are for its own input: the stage-3 convolutions see 7x7.
        var last = plan.Convolutions[^1];
        Assert.AreEqual((7, 7), (last.Algorithms.InputHeight, last.Algorithms.InputWidth), last.Conv.Name);
        Assert.AreSame(last.Algorithms, last.Conv.Algorithms, "the plan's choice is the one the layer runs");
        Assert.IsTrue(plan.Convolutions.All(c => c.Algorithms.InputGradient == (c.Conv.Stride == 1 ? InputGradientKernel.TransposedConvolution : InputGradientKernel.GemmCol2Im)));
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
        {
            Assert.AreEqual(ConvKernel.Direct, plan.Convolutions[0].Algorithms.Forward);
            Assert.AreEqual(WeightGradientKernel.DirectInner, plan.Convolutions[0].Algorithms.WeightGradient, "16 output channels");
            Assert.AreEqual(WeightGradientKernel.DirectOuter, last.Algorithms.WeightGradient, "64 output channels");
        }
        // Running the plan does not choose again.
        var x = new Tensor(2, 1, 28, 28);
        plan.Forward(x, training: false);
        Assert.AreSame(last.Algorithms, last.Conv.Algorithms);
    }

    [TestMethod]
    public void OtherTuning_ChangesTheKernelsOrTheirOrder_NotTheResult()
    {
        // Batch norm channel by channel everywhere, the shifted copies and small weight-gradient groups: on AVX-512 the
        // convolutions take other copies; on any machine the batch norms visit their planes in another order.
        var rng = new Rng(3);
        var x = GradientCheck.RandomTensor(rng, 4, 3, 32, 32, 1);
        var dLogits = GradientCheck.RandomTensor(rng, 4, 10, 1, 1, 1);
        var a = Resnet(3, 32);
        var b = Resnet(3, 32);
        var planA = a.Compile(3, 32, 32);
        var other = EngineTuning.Default with { ForceShiftedConvolution = true, WeightGradientGroupPixels = 256, BatchNormImageMajorBelow = 0 };
        var planB = b.Compile(3, 32, 32, other);
        Assert.AreSame(other, planB.Tuning);
        Assert.IsTrue(planB.Convolutions.All(c => c.Algorithms.ForwardCopy == ConvCopy.Shifted && c.Algorithms.InputGradientCopy == ConvCopy.Shifted));
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            Assert.IsTrue(planA.Convolutions.Any(c => c.Algorithms.ForwardCopy != ConvCopy.Shifted && c.Algorithms.Forward == ConvKernel.Direct), "the default takes other copies somewhere");
        var (la, ga) = Step(a, planA, x, dLogits);
        var (lb, gb) = Step(b, planB, x, dLogits);
        GradientCheck.AssertClose(GradientCheck.ToDouble(lb), GradientCheck.ToDouble(la), 1e-5, "logits");
        for (int i = 0; i < ga.Length; i++)
            GradientCheck.AssertClose(GradientCheck.ToDouble(gb[i]), GradientCheck.ToDouble(ga[i]), 1e-4, a.Parameters.ElementAt(i).Name);
    }

    [TestMethod]
    public void TwoPlansOfOneNetwork_EachRunsWithItsOwnChoices()
    {
        // Each plan binds its own choices to the layers: alternating 28x28 and 32x32 plans must each give what a network
        // with only that plan gives.
        var rng = new Rng(4);
        var x28 = GradientCheck.RandomTensor(rng, 2, 1, 28, 28, 1);
        var x32 = GradientCheck.RandomTensor(rng, 2, 1, 32, 32, 1);
        var both = Resnet(1, 28);
        var p28 = both.Compile(1, 28, 28);
        var p32 = both.Compile(1, 32, 32, EngineTuning.Default with { ForceShiftedConvolution = true });
        var only28 = Resnet(1, 28).Compile(1, 28, 28);
        var only32 = Resnet(1, 32).Compile(1, 32, 32, EngineTuning.Default with { ForceShiftedConvolution = true });
        for (int round = 0; round < 2; round++)
        {
            CollectionAssert.AreEqual(only32.Forward(x32, false).Data, p32.Forward(x32, false).Data, $"32x32, round {round}");
            CollectionAssert.AreEqual(only28.Forward(x28, false).Data, p28.Forward(x28, false).Data, $"28x28, round {round}");
        }
        Assert.AreSame(p28, both.PlanFor(1, 28, 28), "the last plan compiled serves Forward for its shape");
    }

    [TestMethod]
    public void AWrongShapeOrABackwardWithoutForward_IsRefusedNamingThePlan()
    {
        var net = Resnet(1, 28);
        var plan = net.Compile(1, 28, 28);
        var e = Assert.ThrowsExactly<ShapeException>(() => plan.Forward(new Tensor(2, 1, 32, 32), training: true));
        StringAssert.Contains(e.Message, "[1, 28, 28]");
        StringAssert.Contains(e.Message, "[1, 32, 32]");
        var b = Assert.ThrowsExactly<InvalidOperationException>(() => plan.Backward(new Tensor(2, 10, 1, 1)));
        StringAssert.Contains(b.Message, "before this plan's Forward");
        var t = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => net.Compile(1, 28, 28, EngineTuning.Default with { WeightGradientGroupPixels = 0 }));
        StringAssert.Contains(t.Message, "WeightGradientGroupPixels");
    }

    [TestMethod]
    public void ABackwardAfterAnotherPlansForward_ReadsItsOwnActivations()
    {
        // Each plan owns its layers' workspaces: a 32x32 forward between a 28x28 forward and its backward (a validation
        // batch at another size, say) must leave the 28x28 backward what it would have been alone.
        var rng = new Rng(6);
        var x28 = GradientCheck.RandomTensor(rng, 3, 1, 28, 28, 1);
        var x32 = GradientCheck.RandomTensor(rng, 3, 1, 32, 32, 1);
        var dLogits = GradientCheck.RandomTensor(rng, 3, 10, 1, 1, 1);
        var alone = Resnet(1, 28);
        var (_, expected) = Step(alone, alone.Compile(1, 28, 28), x28, dLogits);

        var both = Resnet(1, 28);
        var p28 = both.Compile(1, 28, 28);
        var p32 = both.Compile(1, 32, 32);
        Assert.AreEqual(0, p28.ArenaBytes, "a plan allocates its activations on first use, for the batch it meets");
        p28.Forward(x28, training: true);
        long after28 = p28.ArenaBytes;
        Assert.IsTrue(after28 > 3L * 16 * 28 * 28 * 4 * both.AllLayers.Count(l => l.Name.EndsWith("conv1") && l.Name.StartsWith("layer1")), $"the 28x28 activations are held: {after28} bytes");
        p32.Forward(x32, training: true);
        Assert.AreEqual(after28, p28.ArenaBytes, "another plan's forward writes into its own arena");
        both.ZeroGrad();
        p28.BackwardParameters(dLogits);
        var actual = both.Parameters.Select(p => p.Grad.Data.ToArray()).ToArray();
        for (int i = 0; i < expected.Length; i++)
            CollectionAssert.AreEqual(expected[i], actual[i], both.Parameters.ElementAt(i).Name);
        // And the network's own Backward follows the plan that ran last.
        both.ZeroGrad();
        p32.Forward(x32, training: true);
        Assert.AreEqual(3 * 32 * 32, both.Backward(dLogits).Length);
    }
}
