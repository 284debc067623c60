using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Tensors;
using ResNet.ML.Training;

namespace ResNet.ML.Tests.Engine;

/// <summary>
/// Exact agreement with PyTorch 1.13 on fixtures made by tools/fixtures/make_engine_fixtures.py. Criterion, per tensor:
/// ‖ours − torch‖₂ ≤ 1e-4 · max(‖torch‖₂, 1e-3·√n) (norm-relative, with a floor for tensors that are all near zero).
/// </summary>
[TestClass]
public class PyTorchParityTests
{
    private const double Tolerance = 1e-4;
    private static readonly Lazy<Dictionary<string, SafetensorsTensor>> Layers = new(() => Load("layers.safetensors"));
    private static readonly Lazy<Dictionary<string, SafetensorsTensor>> Net = new(() => Load("network.safetensors"));

    private static Dictionary<string, SafetensorsTensor> Load(string file)
    {
        using var s = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "Fixtures", "engine", file));
        return Safetensors.Read(s, file).Tensors.ToDictionary(t => t.Name);
    }

    private static Tensor AsTensor(SafetensorsTensor t)
    {
        var s = t.Shape.Select(d => (int)d).ToArray();
        var data = t.ToFloats();
        return s.Length switch
        {
            4 => new Tensor(data, s[0], s[1], s[2], s[3]),
            2 => new Tensor(data, s[0], s[1], 1, 1),
            1 => new Tensor(data, 1, s[0], 1, 1),
            _ => throw new InvalidDataException($"{t.Name}: unexpected rank {s.Length}"),
        };
    }

    internal static void AssertMatches(ReadOnlySpan<float> ours, float[] torch, string what)
    {
        Assert.AreEqual(torch.Length, ours.Length, $"{what}: element count");
        double diff = 0, norm = 0;
        for (int i = 0; i < torch.Length; i++) { double d = ours[i] - torch[i]; diff += d * d; norm += (double)torch[i] * torch[i]; }
        double scale = Math.Max(Math.Sqrt(norm), 1e-3 * Math.Sqrt(torch.Length));
        Assert.IsTrue(Math.Sqrt(diff) <= Tolerance * scale, $"{what}: ‖ours − torch‖ = {Math.Sqrt(diff):E3}, ‖torch‖ = {Math.Sqrt(norm):E3}");
    }

    private static void CheckLayer(string name, Layer layer, Func<string, string>? paramKey = null)
    {
        var f = Layers.Value;
        foreach (var p in layer.Parameters)
        {
            string key = $"{name}.{p.Name[(p.Name.LastIndexOf('.') + 1)..]}";
            f[key].ToFloats().CopyTo(p.Value.Data, 0);
            p.Grad.Clear();
        }
        var x = AsTensor(f[$"{name}.x"]);
        if (layer is Linear) x = new Tensor(x.Data, x.N, x.C, 1, 1);
        var y = layer.Forward(x, training: true);
        AssertMatches(y.Data, f[$"{name}.y"].ToFloats(), $"{name} output");
        var gy = f[$"{name}.gy"].ToFloats();
        var dx = layer.Backward(new Tensor(gy, y.N, y.C, y.H, y.W));
        AssertMatches(dx.Data, f[$"{name}.gx"].ToFloats(), $"{name} input gradient");
        foreach (var p in layer.Parameters)
            AssertMatches(p.Grad.Data, f[$"{name}.g{p.Name[(p.Name.LastIndexOf('.') + 1)..]}"].ToFloats(), $"{name} {p.Name} gradient");
    }

    [TestMethod] public void Conv3x3Stride1() => CheckLayer("conv3x3s1", new Conv2d("conv", 3, 4, 3, 1, 1));
    [TestMethod] public void Conv3x3Stride2() => CheckLayer("conv3x3s2", new Conv2d("conv", 4, 6, 3, 2, 1));
    [TestMethod] public void Conv1x1() => CheckLayer("conv1x1", new Conv2d("conv", 5, 3, 1));
    [TestMethod] public void Conv1x1Stride2() => CheckLayer("conv1x1s2", new Conv2d("conv", 4, 6, 1, 2));
    [TestMethod] public void Conv7x7Stride2Pad3() => CheckLayer("conv7x7s2", new Conv2d("conv", 3, 4, 7, 2, 3));
    [TestMethod] public void MaxPool3Stride2Pad1() => CheckLayer("maxpool", new MaxPool2d("pool", 3, 2, 1));
    [TestMethod] public void GlobalAvgPool() => CheckLayer("gap", new GlobalAvgPool2d("gap"));
    [TestMethod] public void Linear() => CheckLayer("linear", new Linear("fc", 12, 5));

    [TestMethod]
    public void BatchNormTraining()
    {
        var bn = new BatchNorm2d("bn", 5);
        CheckLayer("bn", bn);
        var f = Layers.Value;
        AssertMatches(bn.RunningMean.Data, f["bn.running_mean"].ToFloats(), "running_mean");
        AssertMatches(bn.RunningVar.Data, f["bn.running_var"].ToFloats(), "running_var");
        Assert.AreEqual(f["bn.num_batches_tracked"].ToInt64()[0], bn.NumBatchesTracked);
    }

    [TestMethod]
    [DataRow("ce", 0.0f)]
    [DataRow("ce_smooth", 0.1f)]
    public void CrossEntropy(string name, float smoothing)
    {
        var f = Layers.Value;
        var logits = AsTensor(f[$"{name}.logits"]);
        var labels = f[$"{name}.labels"].ToInt64().Select(l => (int)l).ToArray();
        var (loss, grad) = new SoftmaxCrossEntropy(smoothing).Compute(logits, labels);
        AssertMatches([loss], f[$"{name}.loss"].ToFloats(), $"{name} loss");
        AssertMatches(grad.Data, f[$"{name}.glogits"].ToFloats(), $"{name} logits gradient");
    }

    /// <summary>The fixture's network, built by hand from BasicBlocks with torchvision names.</summary>
    internal static Network SmallResNet() => new("small-resnet", 3, 10,
    [
        new Conv2d("conv1", 3, 8, 3, 1, 1), new BatchNorm2d("bn1", 8), new ReLU("relu"),
        new BasicBlock("layer1.0", 8, 16, 2, new ZeroPadShortcut("layer1.0.shortcut", 8, 16, 2)),
        new BasicBlock("layer2.0", 16, 32, 2, new ProjectionShortcut("layer2.0.downsample", 16, 32, 2)),
        new GlobalAvgPool2d("avgpool"), new Linear("fc", 32, 10),
    ]);

    private static void LoadState(Network net, string prefix)
    {
        var f = Net.Value;
        foreach (var e in net.State)
        {
            var t = f[$"{prefix}.{e.Name}"];
            if (e.Counter) e.SetCounter!(t.ToInt64()[0]);
            else t.ToFloats().CopyTo(e.Value!.Data, 0);
        }
    }

    private static void TrainAndCompare(string prefix, Func<Network, Optimizer> makeOptimizer)
    {
        var f = Net.Value;
        var net = SmallResNet();
        LoadState(net, "init");
        var optimizer = makeOptimizer(net);
        var loss = new SoftmaxCrossEntropy();
        var losses = new float[3];
        for (int step = 0; step < 3; step++)
        {
            var x = AsTensor(f[$"batch{step}.x"]);
            var labels = f[$"batch{step}.y"].ToInt64().Select(l => (int)l).ToArray();
            optimizer.ZeroGrad();
            var logits = net.Forward(x, training: true);
            var (l, g) = loss.Compute(logits, labels, step);
            losses[step] = l;
            net.Backward(g);
            optimizer.Step();
        }
        AssertMatches(losses, f[$"{prefix}.loss"].ToFloats(), $"{prefix} losses");
        foreach (var e in net.State)
        {
            var t = f[$"{prefix}.{e.Name}"];
            if (e.Counter) Assert.AreEqual(t.ToInt64()[0], e.GetCounter!(), e.Name);
            else AssertMatches(e.Value!.Data, t.ToFloats(), $"{prefix} {e.Name}");
        }
    }

    [TestMethod]
    public void StateNamesMatchTorchvision()
    {
        var names = SmallResNet().State.Select(e => e.Name).ToList();
        var torch = Net.Value.Keys.Where(k => k.StartsWith("init.")).Select(k => k["init.".Length..]).ToHashSet();
        CollectionAssert.AreEquivalent(torch.ToList(), names);
    }

    [TestMethod] public void ThreeSgdMomentumSteps() => TrainAndCompare("sgd", n => new Sgd(n.Parameters, 0.1, momentum: 0.9, weightDecay: 1e-4));
    [TestMethod] public void ThreeSgdNesterovSteps() => TrainAndCompare("nesterov", n => new Sgd(n.Parameters, 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4));
    [TestMethod] public void ThreeAdamSteps() => TrainAndCompare("adam", n => new Adam(n.Parameters, 1e-2));
    [TestMethod] public void ThreeAdamStepsWithL2() => TrainAndCompare("adam_l2", n => new Adam(n.Parameters, 1e-2, weightDecay: 0.1));
    [TestMethod] public void ThreeAdamWSteps() => TrainAndCompare("adamw", n => new AdamW(n.Parameters, 1e-2, weightDecay: 0.5));

    [TestMethod]
    public void SchedulesMatchPyTorch()
    {
        using var s = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "Fixtures", "engine", "schedules.safetensors"));
        var f = Safetensors.Read(s).Tensors.ToDictionary(t => t.Name, t => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(t.Bytes).ToArray());
        void Check(string name, LearningRateSchedule schedule)
        {
            var expected = f[name];
            for (int i = 0; i < expected.Length; i++)
                Assert.AreEqual(expected[i], schedule.At(i), 1e-9 + 1e-6 * expected[i], $"{name} at step {i}");
        }
        Check("multistep", new MultiStepSchedule(0.1, [3, 6]));
        Check("step", new StepSchedule(0.1, 4));
        Check("cosine", new CosineSchedule(0.1, 10, 0.001));
        Check("onecycle", new OneCycleSchedule(0.1, 20));
        Check("linear_warmup", new WarmupSchedule(new ConstantSchedule(0.1), 5, 0.1));
    }
}
