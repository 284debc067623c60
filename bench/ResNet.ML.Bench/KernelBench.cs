using System.Diagnostics;
using ResNet.ML.Layers;
using ResNet.ML.Tensors;

/// <summary>
/// Single-thread kernel timings by CPU time (the machine is shared, so wall time lies): each ResNet-20 convolution
/// shape's forward and backward over a batch, reported in GFLOP/s. Run with --kernels.
/// </summary>
internal static class KernelBench
{
    public static void Run()
    {
        using var engineThreads = Engine.UseThreads(1);
        var rng = new Rng(1);
        foreach (var (m, n, k) in new[] { (64, 256, 256), (16, 1024, 144), (144, 1024, 16), (16, 144, 1024), (64, 64, 576) })
        {
            var a = new float[m * k]; var b = new float[k * n]; var c = new float[m * n];
            for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextGaussian();
            for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextGaussian();
            int reps = (int)Math.Max(1, 2e8 / (2.0 * m * n * k));
            double sec = CpuSeconds(() => { for (int r = 0; r < reps; r++) Gemm.Multiply(false, false, m, n, k, a, k, b, n, c, n, false); }, 5);
            Console.WriteLine($"gemm {m}x{n}x{k}: {2.0 * m * n * k * reps / sec / 1e9:F1} GFLOP/s");
        }
        foreach (var (cin, cout, hw, stride) in new[] { (3, 16, 32, 1), (16, 16, 32, 1), (16, 32, 32, 2), (32, 32, 16, 1), (32, 64, 16, 2), (64, 64, 8, 1),
                     (16, 16, 28, 1), (16, 32, 28, 2), (32, 32, 14, 1), (32, 64, 14, 2), (64, 64, 7, 1) })
        {
            var conv = new Conv2d("conv", cin, cout, 3, stride, 1);
            foreach (var p in conv.Parameters) for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] = (float)rng.NextGaussian();
            int n = 32;
            var x = new Tensor(n, cin, hw, hw);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)rng.NextGaussian();
            var y = conv.Forward(x, true);
            var dy = y.Clone();
            double flops = 2.0 * n * cout * y.H * y.W * cin * 9;
            double fwd = CpuSeconds(() => conv.Forward(x, true), 5);
            double bwd = CpuSeconds(() => conv.Backward(dy), 5);
            Console.WriteLine($"conv {cin}->{cout} {hw}x{hw} s{stride}: fwd {flops / fwd / 1e9,6:F1} GFLOP/s ({fwd * 1e3 / n:F3} ms/img)  bwd {2 * flops / bwd / 1e9,6:F1} GFLOP/s ({bwd * 1e3 / n:F3} ms/img)");
        }
        var bn = new BatchNorm2d("bn", 16);
        var t = new Tensor(32, 16, 32, 32);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (float)rng.NextGaussian();
        bn.Forward(t, true);
        double bf = CpuSeconds(() => bn.Forward(t, true), 5), bb = CpuSeconds(() => bn.Backward(t), 5);
        Console.WriteLine($"bn 16x32x32: fwd {bf * 1e3 / 32:F3} ms/img  bwd {bb * 1e3 / 32:F3} ms/img");
    }

    /// <summary>
    /// A/B of the weight-gradient group budget: conv backward over 64 images on one thread, the variants interleaved
    /// call by call and the minimum of each kept, so that slow phases of a shared machine hit both alike. Run with --groups.
    /// </summary>
    public static void Groups()
    {
        using var engineThreads = Engine.UseThreads(1);
        var rng = new Rng(1);
        (int Pixels, long Bytes)[] budgets = [(512, 256 << 10), (2048, 256 << 10), (8192, 256 << 10), (8192, 1 << 20)];
        foreach (var (cin, cout, hw, stride) in new[] { (16, 16, 32, 1), (32, 32, 16, 1), (64, 64, 8, 1), (16, 16, 28, 1), (32, 32, 14, 1), (64, 64, 7, 1) })
        {
            var (conv, x, dy) = RandomConv(rng, cin, cout, hw, stride, 64);
            var best = budgets.Select(_ => double.MaxValue).ToArray();
            double fwdBest = double.MaxValue;
            for (int rep = 0; rep < 15; rep++)
            {
                fwdBest = Math.Min(fwdBest, CpuSeconds(() => conv.Forward(x, true), 1));
                for (int b = 0; b < budgets.Length; b++)
                {
                    conv.Configure(hw, hw, EngineTuning.Default with { WeightGradientGroupPixels = budgets[b].Pixels, WeightGradientGroupBytes = budgets[b].Bytes });
                    best[b] = Math.Min(best[b], CpuSeconds(() => conv.Backward(dy), 1));
                }
            }
            Console.WriteLine($"conv {cin}->{cout} {hw}x{hw}: fwd {fwdBest * 1e3:F2} ms; bwd " +
                string.Join(", ", budgets.Select((g, b) => $"{g.Pixels} px/{g.Bytes >> 10} KB {best[b] * 1e3:F2} ms")));
        }
    }

    /// <summary>
    /// A/B of the padded-copy layouts (default choice against the shifted copies), interleaved call by call, minimum
    /// of 15. Run with --layouts.
    /// </summary>
    public static void Layouts()
    {
        using var engineThreads = Engine.UseThreads(1);
        var rng = new Rng(1);
        string[] names = ["default", "shifted"];
        foreach (var (cin, cout, hw) in new[] { (16, 16, 32), (16, 16, 28), (32, 32, 14), (64, 64, 8), (64, 64, 7) })
        {
            var (conv, x, dy) = RandomConv(rng, cin, cout, hw, 1, 64);
            const int variants = 2;
            var fwd = Enumerable.Repeat(double.MaxValue, variants).ToArray();
            var bwd = Enumerable.Repeat(double.MaxValue, variants).ToArray();
            for (int rep = 0; rep < 15; rep++)
                for (int v = 0; v < variants; v++)
                {
                    conv.Configure(hw, hw, EngineTuning.Default with { ForceShiftedConvolution = v == 1 });
                    fwd[v] = Math.Min(fwd[v], CpuSeconds(() => conv.Forward(x, true), 1));
                    bwd[v] = Math.Min(bwd[v], CpuSeconds(() => conv.Backward(dy), 1));
                }
            Console.WriteLine($"conv {cin}->{cout} {hw}x{hw}: " + string.Join("; ", Enumerable.Range(0, variants).Select(v => $"{names[v]} fwd {fwd[v] * 1e3:F2} bwd {bwd[v] * 1e3:F2} ms")));
        }
    }

    /// <summary>
    /// A/B of the batch norm's plane visiting order (<see cref="EngineTuning.BatchNormImageMajorBelow"/>: 0 = channel by channel
    /// everywhere, 1024, 4096 = image by image up to 32x32), fused BN+ReLU forward and backward over a batch of 128,
    /// interleaved, minimum of 15. Run with --bn T.
    /// </summary>
    public static void BatchNormOrder(int threads)
    {
        using var engineThreads = Engine.UseThreads(threads);
        var rng = new Rng(1);
        int[] thresholds = [0, 1024, 4096];
        foreach (var (c, hw) in new[] { (16, 32), (32, 16), (64, 8), (16, 28), (32, 14), (64, 7) })
        {
            var bn = new BatchNorm2d("bn", c);
            var x = new Tensor(128, c, hw, hw);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)rng.NextGaussian();
            var dy = x.Clone();
            var fwd = thresholds.Select(_ => double.MaxValue).ToArray();
            var bwd = thresholds.Select(_ => double.MaxValue).ToArray();
            for (int rep = 0; rep < 15; rep++)
                for (int v = 0; v < thresholds.Length; v++)
                {
                    bn.Tuning = EngineTuning.Default with { BatchNormImageMajorBelow = thresholds[v] };
                    var t = Stopwatch.StartNew();
                    bn.ForwardFused(x, true, null, relu: true);
                    fwd[v] = Math.Min(fwd[v], t.Elapsed.TotalMilliseconds);
                    t.Restart();
                    bn.BackwardFused(dy, overwriteGradOutput: false, keepMasked: false);
                    bwd[v] = Math.Min(bwd[v], t.Elapsed.TotalMilliseconds);
                }
            Console.WriteLine($"bn {c}x{hw}x{hw}: " + string.Join("; ", thresholds.Select((th, v) => $"image-major below {th}: fwd {fwd[v]:F2} bwd {bwd[v]:F2} ms")));
        }
    }

    /// <summary>Where a basic block's time goes: its convolutions and BNs timed one by one (minimum of 10). Run with --block T.</summary>
    public static void Block(int threads)
    {
        using var engineThreads = Engine.UseThreads(threads);
        var rng = new Rng(1);
        foreach (var (c, hw) in new[] { (16, 32), (32, 16), (64, 8), (16, 28) })
        {
            var block = new BasicBlock("b", c, c, 1, null);
            foreach (var p in block.Parameters) for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] = (float)(0.2 * rng.NextGaussian()) + (p.Name.Contains("bn") ? 1 : 0);
            var x = new Tensor(128, c, hw, hw);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)rng.NextGaussian();
            var (conv, bn) = block.Branch[0];
            var dy = block.Forward(x, true).Clone();
            double Wall(Action a) { a(); double best = double.MaxValue; for (int r = 0; r < 10; r++) { var t = Stopwatch.StartNew(); a(); best = Math.Min(best, t.Elapsed.TotalMilliseconds); } return best; }
            double blockFwd = Wall(() => block.Forward(x, true));
            double blockBwd = Wall(() => { block.Forward(x, true); block.Backward(dy); }) - blockFwd;
            double convFwd = Wall(() => conv.Forward(x, true));
            double convBwd = Wall(() => { conv.Forward(x, true); conv.Backward(dy); }) - convFwd;
            double convWgrad = Wall(() => { conv.Forward(x, true); conv.BackwardParametersOnly(dy); }) - convFwd;
            var h = conv.Forward(x, true);
            double bnFwd = Wall(() => bn.ForwardFused(h, true, null, relu: true));
            double bnBwd = Wall(() => { bn.ForwardFused(h, true, null, relu: true); bn.BackwardFused(dy, overwriteGradOutput: false, keepMasked: false); }) - bnFwd;
            Console.WriteLine($"block {c}x{hw}x{hw}, batch 128, {threads} threads: block fwd {blockFwd:F1} bwd {blockBwd:F1} ms | conv fwd {convFwd:F1} bwd {convBwd:F1} (weights {convWgrad:F1}) | bn+relu fwd {bnFwd:F1} bwd {bnBwd:F1} | rest fwd {blockFwd - 2 * convFwd - 2 * bnFwd:F1} bwd {blockBwd - 2 * convBwd - 2 * bnBwd:F1}");
        }
    }

    /// <summary>A 3x3 convolution (padding 1) with Gaussian weights, a Gaussian batch for it and an output gradient.</summary>
    private static (Conv2d Conv, Tensor X, Tensor Dy) RandomConv(Rng rng, int cin, int cout, int hw, int stride, int images)
    {
        var conv = new Conv2d("conv", cin, cout, 3, stride, 1);
        for (int i = 0; i < conv.Weight.Value.Length; i++) conv.Weight.Value.Data[i] = (float)rng.NextGaussian();
        var x = new Tensor(images, cin, hw, hw);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)rng.NextGaussian();
        return (conv, x, conv.Forward(x, true).Clone());
    }

    private static double CpuSeconds(Action action, int repeats)
    {
        action();
        var process = Process.GetCurrentProcess();
        double best = double.MaxValue;
        for (int r = 0; r < repeats; r++)
        {
            process.Refresh();
            var before = process.TotalProcessorTime;
            action();
            process.Refresh();
            best = Math.Min(best, (process.TotalProcessorTime - before).TotalSeconds);
        }
        return best;
    }
}
