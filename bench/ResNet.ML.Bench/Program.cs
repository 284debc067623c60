using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Tensors;
using ResNet.ML.Training;

// The engine benchmark, measured as ../shared/bench/pytorch_peer.py measures PyTorch: synthetic batches, SGD momentum
// 0.9 with weight decay 1e-4, 3 warm-up steps, then `steps` timed training steps and `steps` timed inference passes.
// Usage: dotnet run -c Release --project bench/ResNet.ML.Bench -- [--arch resnet20] [--batch 128] [--threads 2]
//        [--steps 20] [--size 32] [--channels 3] [--profile] [--roofline]   (A/B of two builds: BASELINE=old.dll bench/run_vs_pytorch.sh, or bench/ab_builds.sh)
var options = new Dictionary<string, string> { ["arch"] = "resnet20", ["batch"] = "128", ["threads"] = Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture), ["steps"] = "20", ["size"] = "32", ["channels"] = "3" };
bool profile = false, roofline = false;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--profile") { profile = true; continue; }
    if (args[i] == "--roofline") { roofline = true; continue; }
    if (args[i] == "--kernels") { KernelBench.Run(); return 0; }
    if (args[i] == "--groups") { KernelBench.Groups(); return 0; }
    if (args[i] == "--bn") { KernelBench.BatchNormOrder(int.Parse(args[i + 1], CultureInfo.InvariantCulture)); return 0; }
    if (args[i] == "--layouts") { KernelBench.Layouts(); return 0; }
    if (args[i] == "--block") { KernelBench.Block(int.Parse(args[i + 1], CultureInfo.InvariantCulture)); return 0; }
    if (!args[i].StartsWith("--") || i + 1 >= args.Length) { Console.Error.WriteLine($"Unknown argument '{args[i]}'."); return 2; }
    options[args[i][2..]] = args[++i];
}
int batch = int.Parse(options["batch"], CultureInfo.InvariantCulture), steps = int.Parse(options["steps"], CultureInfo.InvariantCulture);
int size = int.Parse(options["size"], CultureInfo.InvariantCulture), channels = int.Parse(options["channels"], CultureInfo.InvariantCulture);
using var engineThreads = Engine.UseThreads(int.Parse(options["threads"], CultureInfo.InvariantCulture));

var net = ModelFactory.Build(options["arch"], channels, 10, size, size);
var rng = new Rng(0);
Initializer.Initialize(net, rng);
var x = new Tensor(batch, channels, size, size);
for (int i = 0; i < x.Length; i++) x.Data[i] = (float)rng.NextGaussian();
var labels = Enumerable.Range(0, batch).Select(_ => rng.NextInt(10)).ToArray();
var loss = new SoftmaxCrossEntropy();
var sgd = new Sgd(net.Parameters, 0.1, momentum: 0.9, weightDecay: 1e-4);
var perLayer = new Dictionary<string, double>();

void Step()
{
    sgd.ZeroGrad();
    var logits = net.Forward(x, training: true);
    var (_, g) = loss.Compute(logits, labels);
    net.BackwardParameters(g);
    sgd.Step();
}

for (int i = 0; i < 3; i++) Step();
var sw = Stopwatch.StartNew();
for (int i = 0; i < steps; i++) Step();
double train = steps * batch / sw.Elapsed.TotalSeconds;
for (int i = 0; i < 3; i++) net.Forward(x, training: false);
sw.Restart();
for (int i = 0; i < steps; i++) net.Forward(x, training: false);
double infer = steps * batch / sw.Elapsed.TotalSeconds;

if (roofline) Roofline.Run(net, Step, Engine.Threads);

if (profile)
{
    // Per-layer times of one training step (forward + backward), to see where the time goes.
    var timings = new List<(string, double, double)>();
    var h = x;
    var fw = new List<double>();
    foreach (var layer in net.Layers) { var t = Stopwatch.StartNew(); h = layer.Forward(h, true); fw.Add(t.Elapsed.TotalMilliseconds); }
    var (_, gl) = loss.Compute(h, labels);
    var gg = gl;
    var bw = new double[net.Layers.Count];
    for (int i = net.Layers.Count - 1; i >= 0; i--) { var t = Stopwatch.StartNew(); gg = net.Layers[i].Backward(gg); bw[i] = t.Elapsed.TotalMilliseconds; }
    var o = Stopwatch.StartNew(); sgd.Step(); double optMs = o.Elapsed.TotalMilliseconds;
    // Wall time per kernel (parallel region) over a few whole steps, against the steps' wall time.
    var regions = new Dictionary<string, double>();
    var profiling = Engine.ProfileRegions((d, ms) =>
    {
        string key = $"{d.Method.DeclaringType?.Name}.{d.Method.Name}";
        if (d.Target is Layer l && Environment.GetEnvironmentVariable("PROFILE_LAYERS") == "1") key += " " + l.Name;
        regions[key] = regions.GetValueOrDefault(key) + ms;
    });
    var stepWatch = Stopwatch.StartNew();
    for (int i = 0; i < 5; i++) Step();
    double stepMs = stepWatch.Elapsed.TotalMilliseconds / 5;
    profiling.Dispose();
    foreach (var (key, ms) in regions.OrderByDescending(r => r.Value)) Console.Error.WriteLine($"{key,-60} {ms / 5,8:F2} ms/step");
    Console.Error.WriteLine($"{"(all parallel regions)",-60} {regions.Values.Sum() / 5,8:F2} ms/step of {stepMs:F2}");
    long allocated = GC.GetTotalAllocatedBytes(precise: true);
    Step();
    Console.Error.WriteLine($"managed allocation in one training step: {GC.GetTotalAllocatedBytes(precise: true) - allocated} bytes");
    for (int i = 0; i < net.Layers.Count; i++) Console.Error.WriteLine($"{net.Layers[i].Name,-12} fwd {fw[i],8:F2} ms  bwd {bw[i],8:F2} ms");
    Console.Error.WriteLine($"optimizer {optMs:F2} ms; total fwd {fw.Sum():F1} bwd {bw.Sum():F1}");
}

double peakRss = 0;
foreach (var line in File.ReadLines("/proc/self/status"))
    if (line.StartsWith("VmHWM:")) peakRss = double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
Console.WriteLine(JsonSerializer.Serialize(new
{
    engine = "ResNet.ML",
    arch = options["arch"],
    batch,
    threads = Engine.Threads,
    @params = net.ParameterCount,
    train_images_per_sec = Math.Round(train, 1),
    infer_images_per_sec = Math.Round(infer, 1),
    peak_rss_mb = Math.Round(peakRss, 1),
}));
return 0;
