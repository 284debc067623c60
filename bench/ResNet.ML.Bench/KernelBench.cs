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
        Engine.Threads = 1;
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
        foreach (var (cin, cout, hw, stride) in new[] { (3, 16, 32, 1), (16, 16, 32, 1), (16, 32, 32, 2), (32, 32, 16, 1), (32, 64, 16, 2), (64, 64, 8, 1) })
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
