using System.Diagnostics;
using System.Reflection;
using System.Runtime.Intrinsics;
using ResNet.ML.Layers;
using ResNet.ML.Tensors;

/// <summary>
/// `--roofline`: the machine's measured limits beside what a training step achieves per layer kind.
/// - FMA peak: independent Vector512 (else Vector256) FMA chains (12 accumulators, enough to hide the FMA latency) per thread, 1 and
///   all threads.
/// - Memory bandwidth: a triad a = b + s*c over three 64 MB arrays, counting 12 bytes per element (no write-allocate).
/// - A step's kinds from Engine.ProfileRegions: convolution FLOPs counted from each Conv2d's own input and output
///   shapes (forward 2*N*Cout*OH*OW*Cin*k^2, backward twice that, once for the stem, whose input needs no gradient);
///   batch-norm bytes from each BatchNorm2d's input size (forward 12 bytes per element: two reads and a write;
///   backward 16: three reads and a write).
/// </summary>
internal static class Roofline
{
    public static void Run(Network net, Action step, int threads)
    {
        double peak1 = FmaPeak(1), peakN = FmaPeak(threads);
        double bw1 = Triad(1), bwN = Triad(threads);
        Console.Error.WriteLine($"FMA peak: {peak1:F1} GFLOP/s on 1 thread, {peakN:F1} on {threads}; triad bandwidth: {bw1:F1} GB/s on 1 thread, {bwN:F1} on {threads}");

        step();   // every layer has its input and output buffers after one step
        static Tensor? Field(object o, string name) => (Tensor?)o.GetType().GetField(name, BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(o);
        double convForward = 0, convBackward = 0, bnElements = 0;
        bool first = true;
        foreach (var layer in net.AllLayers)
        {
            if (layer is Conv2d conv && Field(conv, "_input") is { } x && Field(conv, "_output") is { } y)
            {
                double flops = 2.0 * y.N * conv.OutChannels * y.H * y.W * conv.InChannels * conv.KernelSize * conv.KernelSize;
                convForward += flops;
                convBackward += first ? flops : 2 * flops;
                first = false;
            }
            else if (layer is BatchNorm2d bn && Field(bn, "_input") is { } bx) bnElements += bx.Length;
        }
        var regions = new Dictionary<string, double>();
        var profiling = Engine.ProfileRegions((d, ms) => { string k = $"{d.Method.DeclaringType?.Name}.{d.Method.Name}"; regions[k] = regions.GetValueOrDefault(k) + ms; });
        const int steps = 5;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) step();
        double stepMs = sw.Elapsed.TotalMilliseconds / steps;
        profiling.Dispose();
        double Ms(string key) => regions.GetValueOrDefault(key) / steps;
        void Row(string kind, double ms, double work, string unit, double limit) =>
            Console.Error.WriteLine($"| {kind} | {ms:F1} | {work / 1e9:F2} {unit} | {work / 1e9 / (ms / 1e3):F1} {unit}/s | {100 * work / 1e9 / (ms / 1e3) / limit:F0} % |");
        Console.Error.WriteLine($"step {stepMs:F1} ms; regions cover {regions.Values.Sum() / steps:F1} ms");
        Console.Error.WriteLine("| layer kind | ms per step | work per step | achieved | of the measured limit |");
        Console.Error.WriteLine("|---|---|---|---|---|");
        Row("convolution forward", Ms("Conv2d.ForwardPart"), convForward, "GFLOP", peakN);
        Row("convolution backward (input + weight gradients)", Ms("Conv2d.BackwardPart"), convBackward, "GFLOP", peakN);
        Row("batch norm forward (+ ReLU / add fused)", Ms("BatchNorm2d.ForwardPart"), bnElements * 12, "GB", bwN);
        Row("batch norm backward", Ms("BatchNorm2d.BackwardPart"), bnElements * 16, "GB", bwN);
    }

    private static double FmaPeak(int threads)
    {
        const long iterations = 40_000_000;
        double Run()
        {
            var sw = Stopwatch.StartNew();
            // The widest vectors the machine runs natively: AVX-512 where it is, else AVX2 (Vector512 would be emulated).
            bool wide = Vector512.IsHardwareAccelerated;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => { if (wide) Chains(iterations); else Chains256(iterations); });
            return threads * iterations * 12.0 * (wide ? Vector512<float>.Count : Vector256<float>.Count) * 2 / sw.Elapsed.TotalSeconds / 1e9;
        }
        Run();
        return Enumerable.Range(0, 3).Max(_ => Run());
    }

    private static float Chains(long iterations)
    {
        var m = Vector512.Create(0.999999f); var a = Vector512.Create(1e-7f);
        Vector512<float> v0 = Vector512.Create(1f), v1 = v0, v2 = v0, v3 = v0, v4 = v0, v5 = v0, v6 = v0, v7 = v0, v8 = v0, v9 = v0, v10 = v0, v11 = v0;
        for (long i = 0; i < iterations; i++)
        {
            v0 = Vector512.FusedMultiplyAdd(v0, m, a); v1 = Vector512.FusedMultiplyAdd(v1, m, a); v2 = Vector512.FusedMultiplyAdd(v2, m, a);
            v3 = Vector512.FusedMultiplyAdd(v3, m, a); v4 = Vector512.FusedMultiplyAdd(v4, m, a); v5 = Vector512.FusedMultiplyAdd(v5, m, a);
            v6 = Vector512.FusedMultiplyAdd(v6, m, a); v7 = Vector512.FusedMultiplyAdd(v7, m, a); v8 = Vector512.FusedMultiplyAdd(v8, m, a);
            v9 = Vector512.FusedMultiplyAdd(v9, m, a); v10 = Vector512.FusedMultiplyAdd(v10, m, a); v11 = Vector512.FusedMultiplyAdd(v11, m, a);
        }
        return Vector512.Sum(v0 + v1 + v2 + v3 + v4 + v5 + v6 + v7 + v8 + v9 + v10 + v11);
    }

    private static float Chains256(long iterations)
    {
        var m = Vector256.Create(0.999999f); var a = Vector256.Create(1e-7f);
        Vector256<float> v0 = Vector256.Create(1f), v1 = v0, v2 = v0, v3 = v0, v4 = v0, v5 = v0, v6 = v0, v7 = v0, v8 = v0, v9 = v0, v10 = v0, v11 = v0;
        for (long i = 0; i < iterations; i++)
        {
            v0 = Vector256.FusedMultiplyAdd(v0, m, a); v1 = Vector256.FusedMultiplyAdd(v1, m, a); v2 = Vector256.FusedMultiplyAdd(v2, m, a);
            v3 = Vector256.FusedMultiplyAdd(v3, m, a); v4 = Vector256.FusedMultiplyAdd(v4, m, a); v5 = Vector256.FusedMultiplyAdd(v5, m, a);
            v6 = Vector256.FusedMultiplyAdd(v6, m, a); v7 = Vector256.FusedMultiplyAdd(v7, m, a); v8 = Vector256.FusedMultiplyAdd(v8, m, a);
            v9 = Vector256.FusedMultiplyAdd(v9, m, a); v10 = Vector256.FusedMultiplyAdd(v10, m, a); v11 = Vector256.FusedMultiplyAdd(v11, m, a);
        }
        return Vector256.Sum(v0 + v1 + v2 + v3 + v4 + v5 + v6 + v7 + v8 + v9 + v10 + v11);
    }

    private static double Triad(int threads)
    {
        const int n = 16 << 20;   // 64 MB per array
        var a = new float[n]; var b = new float[n]; var c = new float[n];
        Array.Fill(b, 1f); Array.Fill(c, 2f);
        double Run()
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                int begin = (int)((long)n * t / threads), end = (int)((long)n * (t + 1) / threads);
                var s = Vector512.Create(3f);
                for (int i = begin; i + 16 <= end; i += 16)
                    Vector512.FusedMultiplyAdd(s, Vector512.Create(c.AsSpan(i, 16)), Vector512.Create(b.AsSpan(i, 16))).CopyTo(a.AsSpan(i, 16));
            });
            return 12.0 * n / sw.Elapsed.TotalSeconds / 1e9;
        }
        Run();
        return Enumerable.Range(0, 5).Max(_ => Run());
    }
}
