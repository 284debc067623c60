using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Tensors;
using ResNet.ML.Training;
using TorchSharp;

namespace ResNet.ML.TorchSharp.Tests;

/// <summary>
/// The managed engine and TorchSharp, started from the same weights, give the same logits, gradients and updates.
/// Tolerances are stated per quantity; the worst differences observed are printed (dotnet test -v n shows them).
/// </summary>
[TestClass]
public sealed class ParityTests
{
    private const int Size = 16, Batch = 8, Classes = 10;

    internal static Network Initialized(string architecture, int channels, int seed)
    {
        var network = ModelFactory.Build(architecture, channels, Classes, Size, Size);
        Initializer.Initialize(network, new Rng((ulong)seed));
        // Non-trivial BN affine parameters and running statistics, so eval mode tests more than the identity.
        var rng = new Rng((ulong)seed + 1);
        foreach (var bn in network.AllLayers.OfType<Layers.BatchNorm2d>())
            for (int c = 0; c < bn.Channels; c++)
            {
                bn.Weight.Value.Data[c] = 0.5f + rng.NextFloat();
                bn.Bias.Value.Data[c] = 0.2f * (rng.NextFloat() - 0.5f);
                bn.RunningMean.Data[c] = 0.1f * (rng.NextFloat() - 0.5f);
                bn.RunningVar.Data[c] = 0.5f + rng.NextFloat();
            }
        return network;
    }

    internal static Network Copy(Network source)
    {
        var copy = ModelFactory.Build(source.Architecture, source.InputChannels, source.NumClasses, Size, Size);
        using var stream = new MemoryStream();
        ModelWeights.Save(source, stream);
        stream.Position = 0;
        ModelWeights.Load(copy, stream);
        return copy;
    }

    internal static (Tensor Input, int[] Labels) RandomBatch(int channels, int seed)
    {
        var rng = new Rng((ulong)seed);
        var x = new Tensor(Batch, channels, Size, Size);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)rng.NextGaussian();
        var labels = Enumerable.Range(0, Batch).Select(_ => rng.NextInt(Classes)).ToArray();
        return (x, labels);
    }

    private static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.AreEqual(a.Length, b.Length);
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = MathF.Max(m, MathF.Abs(a[i] - b[i]));
        return m;
    }

    private static float MaxAbs(ReadOnlySpan<float> a)
    {
        float m = 0;
        foreach (var v in a) m = MathF.Max(m, MathF.Abs(v));
        return m;
    }

    [TestMethod]
    [DataRow("resnet8", 3)]
    [DataRow("resnet8-b", 1)]
    [DataRow("plain-resnet8", 3)]
    [DataRow("seed-resnet", 3)]
    [DataRow("simplecnn", 1)]
    [DataRow("block=bottleneck blocks=1,1 widths=4,8 stem=cifar stem-width=8 shortcut=B", 3)]
    [DataRow("block=basic blocks=1,1 widths=8,16 stem=imagenet stem-width=8 shortcut=B", 3)]
    public void LogitsAgreeInEvalAndTrainMode(string architecture, int channels)
    {
        var managed = Initialized(architecture, channels, seed: 3);
        var mirrored = Copy(managed);
        var (x, _) = RandomBatch(channels, seed: 4);
        using var runner = new TorchSharpTrainingRunner(mirrored, new ResNetTrainerOptions { Threads = 2 }, TrainingDevice.Cpu);

        var evalManaged = managed.Forward(x, training: false).Data.ToArray();
        var evalTorch = runner.Infer(x).Data.ToArray();
        float evalDiff = MaxAbsDiff(evalManaged, evalTorch);

        var trainManaged = managed.Forward(x, training: true).Data.ToArray();
        float[] trainTorch;
        using (var scope = torch.NewDisposeScope())
        {
            runner.Model.train();
            var logits = runner.Model.call(torch.tensor(x.Data, [Batch, channels, Size, Size]));
            trainTorch = logits.contiguous().data<float>().ToArray();
        }
        float trainDiff = MaxAbsDiff(trainManaged, trainTorch);
        Console.WriteLine($"{architecture}: max |logit difference| eval {evalDiff:E2}, train {trainDiff:E2} (logits up to {MaxAbs(trainManaged):F2})");
        Assert.IsTrue(evalDiff <= 1e-4f, $"{architecture}: eval-mode logits differ by {evalDiff}");
        Assert.IsTrue(trainDiff <= 1e-4f, $"{architecture}: train-mode logits differ by {trainDiff}");
        // Both updated their running statistics the same way in the training pass.
        runner.PullState();
        foreach (var (a, b) in managed.State.Zip(mirrored.State))
        {
            if (a.Counter) Assert.AreEqual(a.GetCounter!(), b.GetCounter!(), a.Name);
            else Assert.IsTrue(MaxAbsDiff(a.Value!.Data, b.Value!.Data) <= 1e-5f, $"{a.Name} after a training pass");
        }
    }

    [TestMethod]
    [DataRow(OptimizerKind.SgdMomentum, false, 0f, 0.1f)]
    [DataRow(OptimizerKind.SgdMomentum, true, 0.1f, 0.1f)]
    [DataRow(OptimizerKind.AdamW, false, 0f, 1e-3f)]
    [DataRow(OptimizerKind.Adam, false, 0.1f, 1e-3f)]
    public void GradientsAndUpdatesAgreeOverTwoSteps(OptimizerKind optimizer, bool nesterov, float labelSmoothing, float lr)
    {
        var options = new ResNetTrainerOptions
        {
            Optimizer = optimizer, Nesterov = nesterov, LabelSmoothing = labelSmoothing, LearningRate = lr,
            WeightDecay = 5e-3f, Threads = 2,
        };
        var managedNet = Initialized("resnet8-b", 3, seed: 5);
        var torchNet = Copy(managedNet);
        var managed = new ManagedTrainingRunner(managedNet, options);
        using var runner = new TorchSharpTrainingRunner(torchNet, options, TrainingDevice.Cpu);
        float worstGrad = 0, worstWeight = 0;
        long loose = 0, total = 0;
        bool adam = optimizer != OptimizerKind.SgdMomentum;
        for (int step = 0; step < 2; step++)
        {
            var (x, labels) = RandomBatch(3, seed: 10 + step);
            var (lossA, correctA) = managed.TrainStep(x, labels, lr, step);
            var (lossB, correctB) = runner.TrainStep(x, labels, lr, step);
            Assert.AreEqual(lossA, lossB, 1e-5, $"loss at step {step}");
            Assert.AreEqual(correctA, correctB, $"correct count at step {step}");
            runner.PullGradients();
            runner.PullState();
            foreach (var (a, b) in managedNet.Parameters.Zip(torchNet.Parameters))
            {
                // Gradients: relative to the tensor's largest gradient (sums over a batch in another order).
                float g = MaxAbsDiff(a.Grad.Data, b.Grad.Data) / MathF.Max(MaxAbs(a.Grad.Data), 1e-3f);
                worstGrad = MathF.Max(worstGrad, g);
                Assert.IsTrue(g <= 1e-3f, $"{optimizer}: gradient of {a.Name} at step {step} differs by {g:E2} (relative)");
                // Weights: SGD within a thousandth of lr. Adam's step is about lr·g/(|g| + ε) per element, which turns
                // the last bits of a near-zero gradient into a visible part of a step, so there: within a tenth of a step
                // everywhere, and within a thousandth of a step for all but 0.5% of the elements.
                float w = MaxAbsDiff(a.Value.Data, b.Value.Data);
                worstWeight = MathF.Max(worstWeight, w);
                Assert.IsTrue(w <= (adam ? 0.1f : 1e-3f) * lr, $"{optimizer}: {a.Name} after step {step} differs by {w:E2}");
                for (int i = 0; i < a.Value.Length; i++) if (MathF.Abs(a.Value.Data[i] - b.Value.Data[i]) > 1e-3f * lr) loose++;
                total += a.Value.Length;
            }
        }
        Assert.IsTrue(loose <= (adam ? total / 200 : 0), $"{optimizer}: {loose} of {total} weights differ by more than a thousandth of a step");
        var exported = runner.ExportOptimizerState();
        var reference = managed.ExportOptimizerState();
        Assert.AreEqual(reference.Kind, exported.Kind);
        Assert.AreEqual(reference.Step, exported.Step);
        CollectionAssert.AreEquivalent(reference.Buffers.Keys.ToList(), exported.Buffers.Keys.ToList());
        Console.WriteLine($"{optimizer} nesterov={nesterov} smoothing={labelSmoothing}: worst relative gradient difference {worstGrad:E2}, worst weight difference {worstWeight:E2} (lr {lr}), {loose} of {total} weights beyond lr/1000");
    }
}
