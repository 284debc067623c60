// ONNX Runtime throughput of ResNet.ML's exported model against PyTorch's own ONNX export of the same weights, both
// scored by ONNX Runtime through OnnxPredictor with the same session options, in the same process, calls interleaved
// so machine load hits both alike. Prints one JSON line per model and a Markdown table row for bench/BENCHMARKS.md.
// Usage (after make_bench_models.py): dotnet run --project bench/onnx/OnnxBench -c Release -- [--dir bench/onnx/out]
//        [--threads 2] [--pairs 20] [--seconds 20] [--models resnet20,resnet50] [--save-optimized 1]
// (at least --pairs alternating call pairs per model, and at least --seconds of them)
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ResNet.ML.Models;
using ResNet.ML.Onnx;
using ResNet.ML.Onnx.Proto;
using ResNet.ML.Tensors;

var opts = ParseArgs(args);
string dir = opts.GetValueOrDefault("dir", Path.Combine("bench", "onnx", "out"));
int threads = int.Parse(opts.GetValueOrDefault("threads", "2"), CultureInfo.InvariantCulture);
int minPairs = int.Parse(opts.GetValueOrDefault("pairs", "20"), CultureInfo.InvariantCulture);
double seconds = double.Parse(opts.GetValueOrDefault("seconds", "20"), CultureInfo.InvariantCulture);
var models = opts.GetValueOrDefault("models", "resnet20,resnet50").Split(',', StringSplitOptions.RemoveEmptyEntries);

var setups = new Dictionary<string, (int Size, int Classes, int Batch)>
{
    ["resnet20"] = (32, 10, 64),
    ["resnet50"] = (224, 1000, 8),
};

var rows = new List<string>();
foreach (string arch in models)
{
    var (size, classes, batch) = setups[arch];
    var net = ModelFactory.Build(arch, 3, classes, size, size);
    ModelWeights.Load(net, Path.Combine(dir, arch + ".safetensors"));
    string oursPath = Path.Combine(dir, arch + ".resnetml.onnx"), torchPath = Path.Combine(dir, arch + ".torch.onnx");
    OnnxExporter.Export(net, oursPath, new OnnxExportOptions { InputHeight = size, InputWidth = size });

    if (opts.ContainsKey("save-optimized"))   // ONNX Runtime's optimized graphs, to compare what actually runs
        foreach (string path in new[] { oursPath, torchPath })
        {
            using var so = new Microsoft.ML.OnnxRuntime.SessionOptions { GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelFilePath = path + ".optimized" };
            OnnxRuntimeNative.EnsureAvailable();
            using var _ = new Microsoft.ML.OnnxRuntime.InferenceSession(path, so);
        }

    var sessionOptions = new OnnxPredictorOptions { IntraOpThreads = threads, InterOpThreads = 1 };
    using var ours = OnnxPredictor.Load(oursPath, sessionOptions);
    using var torch = OnnxPredictor.Load(torchPath, sessionOptions);

    var rng = new Rng(42);
    var x = new float[batch * 3 * size * size];
    for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextGaussian();

    // Same model: the two files agree before either is timed.
    var a = ours.Score(x).Logits;
    var b = torch.Score(x).Logits;
    double maxAbs = b.Max(v => Math.Abs(v)), maxErr = a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
    double relErr = maxErr / Math.Max(maxAbs, 1e-12);
    if (relErr > 1e-4) throw new InvalidOperationException($"{arch}: our export and PyTorch's disagree (max relative error {relErr:E2}); not benchmarking different models.");

    for (int w = 0; w < 3; w++) { ours.Score(x); torch.Score(x); }   // warm-up (allocations, thread pool)
    // Calls alternate one by one (ours, torch, torch, ours, ...) so the load of a shared machine, which changes over
    // seconds, falls on both alike; each model's rate is the batch over its median call time, and the ratio is the
    // median of the per-pair ratios.
    var oursTimes = new List<double>();
    var torchTimes = new List<double>();
    var sw = Stopwatch.StartNew();
    for (int pair = 0; pair < minPairs || sw.Elapsed.TotalSeconds < seconds; pair++)
    {
        if (pair % 2 == 0) { oursTimes.Add(Time(ours, x)); torchTimes.Add(Time(torch, x)); }
        else { torchTimes.Add(Time(torch, x)); oursTimes.Add(Time(ours, x)); }
    }
    double oursMedian = batch / Median(oursTimes), torchMedian = batch / Median(torchTimes);
    double ratio = Median(oursTimes.Zip(torchTimes, (o, t) => t / o).ToList());
    var oursModel = ModelProto.Parser.ParseFrom(File.ReadAllBytes(oursPath));
    var torchModel = ModelProto.Parser.ParseFrom(File.ReadAllBytes(torchPath));
    Console.WriteLine(JsonSerializer.Serialize(new
    {
        arch, input = $"{batch}x3x{size}x{size}", threads, pairs = oursTimes.Count, seconds = Math.Round(sw.Elapsed.TotalSeconds, 1),
        ours_images_per_sec = Math.Round(oursMedian, 1), torch_images_per_sec = Math.Round(torchMedian, 1),
        ratio_median_of_pairs = Math.Round(ratio, 3),
        ours_ms_min = Math.Round(oursTimes.Min() * 1000, 1), torch_ms_min = Math.Round(torchTimes.Min() * 1000, 1),
        ours_nodes = oursModel.Graph.Node.Count, torch_nodes = torchModel.Graph.Node.Count,
        ours_bytes = new FileInfo(oursPath).Length, torch_bytes = new FileInfo(torchPath).Length,
        max_relative_logit_difference = relErr,
    }));
    rows.Add(string.Create(CultureInfo.InvariantCulture,
        $"| {arch} | {batch}x3x{size}x{size} | {threads} | {oursMedian:F1} | {torchMedian:F1} | {ratio:F3} | {oursTimes.Count} | {oursModel.Graph.Node.Count} / {torchModel.Graph.Node.Count} | {relErr:0.0E+0} |"));
}
Console.WriteLine();
Console.WriteLine("| model | batch input | intra-op threads | ResNet.ML export (images/s) | PyTorch export (images/s) | ratio (median of pairs) | pairs | nodes (ours / torch) | max rel. logit diff |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
foreach (var row in rows) Console.WriteLine(row);

static double Time(OnnxPredictor predictor, float[] x)
{
    long start = Stopwatch.GetTimestamp();
    predictor.Score(x);
    return Stopwatch.GetElapsedTime(start).TotalSeconds;
}

static double Median(List<double> values)
{
    var s = values.Order().ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
}

static Dictionary<string, string> ParseArgs(string[] args)
{
    var d = new Dictionary<string, string>();
    for (int i = 0; i < args.Length; i++)
    {
        if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            throw new ArgumentException($"Unexpected argument '{args[i]}'. Options: --dir, --threads, --pairs, --seconds, --models, --save-optimized 1.");
        d[args[i][2..]] = args[++i];
    }
    return d;
}
