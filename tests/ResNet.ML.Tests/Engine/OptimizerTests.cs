using ResNet.ML.Layers;
using ResNet.ML.Tensors;
using ResNet.ML.Training;

namespace ResNet.ML.Tests.Engine;

[TestClass]
public class OptimizerTests
{
    private static Parameter Param(string name, float value, float grad, bool isWeight = true)
    {
        var p = new Parameter(name, new Tensor(1, 1, 1, 1)) { IsWeight = isWeight };
        p.Value.Data[0] = value; p.Grad.Data[0] = grad;
        return p;
    }

    [TestMethod]
    public void DecoupledSgdShrinksTheWeightBeforeTheMomentumStep()
    {
        var p = Param("w", 2f, 0.5f);
        var sgd = new Sgd([p], 0.1, momentum: 0.9, weightDecay: 0.01, weightDecayMode: WeightDecayMode.Decoupled);
        sgd.Step();
        float w1 = 2f * (1 - 0.1f * 0.01f) - 0.1f * 0.5f;
        Assert.AreEqual(w1, p.Value.Data[0], 1e-6f);
        sgd.Step();   // buffer = 0.9·0.5 + 0.5
        Assert.AreEqual(w1 * (1 - 0.001f) - 0.1f * 0.95f, p.Value.Data[0], 1e-6f);
    }

    [TestMethod]
    public void WeightsOnlyDecaySkipsBiasesAndNormParameters()
    {
        var weight = Param("conv.weight", 1f, 0f);
        var bias = Param("bn.bias", 1f, 0f, isWeight: false);
        new Sgd([weight, bias], 0.1, momentum: 0, weightDecay: 0.5, decayAllParameters: false).Step();
        Assert.AreEqual(1f - 0.1f * 0.5f, weight.Value.Data[0], 1e-7f);
        Assert.AreEqual(1f, bias.Value.Data[0]);
    }

    [TestMethod]
    public void FrozenParametersDoNotMove()
    {
        var p = Param("w", 1f, 1f);
        p.Trainable = false;
        new Adam([p], 0.1).Step();
        Assert.AreEqual(1f, p.Value.Data[0]);
    }

    private static (Network Net, Tensor X, int[] Labels) Setup()
    {
        var net = TinyNetworks.Cifar(classes: 3, width: 2);
        Initializer.Initialize(net, new Rng(4));
        return (net, GradientCheck.RandomTensor(new Rng(5), 4, 3, 8, 8, 1), [0, 1, 2, 1]);
    }

    private static void TrainStep(Network net, Optimizer opt, Tensor x, int[] labels)
    {
        opt.ZeroGrad();
        var (_, g) = new SoftmaxCrossEntropy().Compute(net.Forward(x, true), labels);
        net.Backward(g);
        opt.Step();
    }

    [TestMethod]
    [DataRow("sgd")]
    [DataRow("adamw")]
    public void ExportedStateResumesBitIdentically(string kind)
    {
        Optimizer Make(Network n) => kind == "sgd" ? new Sgd(n.Parameters, 0.05, nesterov: true, weightDecay: 5e-4) : new AdamW(n.Parameters, 1e-3);
        var (a, x, labels) = Setup();
        var optA = Make(a);
        for (int i = 0; i < 3; i++) TrainStep(a, optA, x, labels);

        var (b, _, _) = Setup();
        var optB = Make(b);
        TrainStep(b, optB, x, labels);
        var state = optB.ExportState();
        Assert.AreEqual(1L, state.Step);
        Assert.IsTrue(state.Buffers.ContainsKey(kind == "sgd" ? "layer1.0.conv1.weight.momentum_buffer" : "fc.bias.exp_avg_sq"));
        // A fresh optimizer over the same weights continues where the first stopped.
        var optC = Make(b);
        optC.ImportState(state);
        for (int i = 0; i < 2; i++) TrainStep(b, optC, x, labels);
        CollectionAssert.AreEqual(a.Parameters.SelectMany(p => p.Value.Data).ToArray(), b.Parameters.SelectMany(p => p.Value.Data).ToArray());
    }

    [TestMethod]
    public void ImportRejectsForeignState()
    {
        var (net, _, _) = Setup();
        var sgd = new Sgd(net.Parameters, 0.1);
        var e = Assert.ThrowsExactly<ArgumentException>(() => sgd.ImportState(new OptimizerState("SGD", 1, new Dictionary<string, float[]> { ["fc.weight.momentum_buffer"] = new float[3] })));
        StringAssert.Contains(e.Message, "fc.weight.momentum_buffer");
        e = Assert.ThrowsExactly<ArgumentException>(() => sgd.ImportState(new OptimizerState("SGD", 1, new Dictionary<string, float[]> { ["head.weight.momentum_buffer"] = new float[3] })));
        StringAssert.Contains(e.Message, "head.weight.momentum_buffer");
        Assert.ThrowsExactly<ArgumentException>(() => sgd.ImportState(new AdamW(net.Parameters).ExportState()));
    }

    [TestMethod]
    public void SchedulesRejectBadSettings()
    {
        Assert.ThrowsExactly<ArgumentException>(() => new MultiStepSchedule(0.1, [5, 3]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new CosineSchedule(0.1, 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new StepSchedule(0.1, 3).At(-1));
    }
}
