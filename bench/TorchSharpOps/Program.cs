// Times the libtorch 2.10 operators a ResNet-20 training step is made of, one by one, through TorchSharp 0.107, and the
// step's phases (forward + loss, backward, the rest of the trainer's step). bench/torchsharp_ops_peer.py times the same
// operators and phases in PyTorch 1.13, so the two lists say which kernels (or which overhead) make the backends differ.
// Usage: TorchSharpOps --batch 128 --threads 2 --size 28 --channels 1 --reps 7 --iters 10      Prints JSON lines.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ResNet.ML.Models;
using ResNet.ML.Tensors;
using ResNet.ML.Training;
using ResNet.ML.TorchSharp;
using TorchSharp;
using static TorchSharp.torch;
using TorchTensor = TorchSharp.torch.Tensor;

int Arg(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}
int batch = Arg("--batch", 128), threads = Arg("--threads", 2), size = Arg("--size", 28), channels = Arg("--channels", 1);
int reps = Arg("--reps", 7), iters = Arg("--iters", 10);

TorchRuntime.EnsureLoaded();
set_num_threads(threads);
manual_seed(0);

// Median over reps of the mean milliseconds per call of `body` (iters calls per rep, one dispose scope per call).
double Time(Action body)
{
    for (int i = 0; i < 2; i++) { using var warm = NewDisposeScope(); body(); }
    var samples = new List<double>();
    for (int r = 0; r < reps; r++)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < iters; i++) { using var scope = NewDisposeScope(); body(); }
        samples.Add(sw.Elapsed.TotalMilliseconds / iters);
    }
    samples.Sort();
    return samples[samples.Count / 2];
}

void Emit(object row) => Console.WriteLine(JsonSerializer.Serialize(row));

// The convolutions of ResNet-20 (3x3, padding 1, no bias) at this input size, with how many the network holds.
int s1 = size, s2 = (size + 1) / 2, s3 = (s2 + 1) / 2;
(string Name, int Cin, int Cout, int Stride, int Hw, int Count)[] convs =
[
    ("stem", channels, 16, 1, s1, 1), ("16-16", 16, 16, 1, s1, 6), ("16-32/2", 16, 32, 2, s1, 1),
    ("32-32", 32, 32, 1, s2, 5), ("32-64/2", 32, 64, 2, s2, 1), ("64-64", 64, 64, 1, s3, 5),
];
// The first pass over the convolutions only warms up (oneDNN's kernel generation, the thread pool, the allocator).
for (int pass = 0; pass < 2; pass++)
foreach (var (name, cin, cout, stride, hw, count) in convs)
{
    var x = randn(batch, cin, hw, hw).requires_grad_(cin != channels);
    var w = randn(cout, cin, 3, 3).mul_(0.1).requires_grad_();
    long o = (hw + 2 - 3) / stride + 1;
    var g = randn(batch, cout, o, o);
    double fwd = Time(() => nn.functional.conv2d(x, w, null, [stride, stride], [1, 1]));
    double both = Time(() => nn.functional.conv2d(x, w, null, [stride, stride], [1, 1]).backward([g]));
    if (pass == 1) Emit(new { op = "conv3x3", shape = $"{name}@{hw}", count, fwd_ms = Math.Round(fwd, 3), fwd_bwd_ms = Math.Round(both, 3) });
}
// Batch norm in training mode, ReLU and the residual add, at the three stage sizes (counts per network).
foreach (var (c, hw, bn, relu, add) in new[] { (16, s1, 7, 7, 3), (32, s2, 6, 6, 3), (64, s3, 6, 6, 3) })
{
    var x = randn(batch, c, hw, hw).requires_grad_();
    var g = randn(batch, c, hw, hw);
    var gamma = ones(c).requires_grad_(); var beta = zeros(c).requires_grad_();
    var mean = zeros(c); var variance = ones(c);
    double bnF = Time(() => nn.functional.batch_norm(x, mean, variance, gamma, beta, training: true));
    double bnB = Time(() => nn.functional.batch_norm(x, mean, variance, gamma, beta, training: true).backward([g]));
    Emit(new { op = "batch_norm", shape = $"{c}@{hw}", count = bn, fwd_ms = Math.Round(bnF, 3), fwd_bwd_ms = Math.Round(bnB, 3) });
    double reF = Time(() => nn.functional.relu(x));
    double reB = Time(() => nn.functional.relu(x).backward([g]));
    Emit(new { op = "relu", shape = $"{c}@{hw}", count = relu, fwd_ms = Math.Round(reF, 3), fwd_bwd_ms = Math.Round(reB, 3) });
    var x2 = randn(batch, c, hw, hw).requires_grad_();
    double addF = Time(() => x.add(x2));
    double addB = Time(() => x.add(x2).backward([g]));
    Emit(new { op = "add", shape = $"{c}@{hw}", count = add, fwd_ms = Math.Round(addF, 3), fwd_bwd_ms = Math.Round(addB, 3) });
}

// The trainer's step, split: forward + loss, backward, and the whole TrainStep (upload, update, the one host sync).
var network = ModelFactory.Build("resnet20", channels, 10, size, size);
Initializer.Initialize(network, new Rng(0x1A17UL));
var options = new ResNetTrainerOptions { Architecture = "resnet20", BatchSize = batch, Threads = threads, Backend = TrainingBackend.TorchSharp };
using var runner = new TorchSharpTrainingRunner(network, options, CPU);
var images = new ResNet.ML.Tensors.Tensor(batch, channels, size, size);
var rng = new Rng(1);
for (int i = 0; i < images.Length; i++) images.Data[i] = (float)rng.NextGaussian();
int[] labels = Enumerable.Range(0, batch).Select(i => i % 10).ToArray();
var xs = randn(batch, channels, size, size);
var ys = tensor(labels.Select(l => (long)l).ToArray());
var model = runner.Model;
// Phases timed inside one loop, as the peer's step (torch.optim.SGD, momentum 0.9, weight decay 5e-4), then the
// trainer's own TrainStep (the managed optimizers' rules, the host upload and the one sync) on its own.
var sgd = optim.SGD(model.parameters(), 0.01, momentum: 0.9, weight_decay: 5e-4);
var phases = new double[3];
var perStep = new List<double[]>();
for (int i = 0; i < 2 + reps * iters; i++)
{
    using var scope = NewDisposeScope();
    long t0 = Stopwatch.GetTimestamp();
    sgd.zero_grad();
    var loss = nn.functional.cross_entropy(model.call(xs), ys);
    long t1 = Stopwatch.GetTimestamp();
    loss.backward();
    long t2 = Stopwatch.GetTimestamp();
    sgd.step();
    long t3 = Stopwatch.GetTimestamp();
    if (i >= 2) perStep.Add([Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds, Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds, Stopwatch.GetElapsedTime(t2, t3).TotalMilliseconds]);
}
double Median(IEnumerable<double> v) { var l = v.OrderBy(d => d).ToList(); return l[l.Count / 2]; }
for (int k = 0; k < 3; k++) phases[k] = Median(perStep.Select(p => p[k]));
long step = 0;
double trainStep = Time(() => runner.TrainStep(images, labels, 0.01f, step++));
Emit(new { phase = "forward+loss", ms = Math.Round(phases[0], 2) });
Emit(new { phase = "backward", ms = Math.Round(phases[1], 2) });
Emit(new { phase = "optimizer step (torch.optim.SGD)", ms = Math.Round(phases[2], 2) });
Emit(new { phase = "step (sum of the phases)", ms = Math.Round(phases.Sum(), 2), images_per_sec = Math.Round(batch * 1000 / phases.Sum(), 1) });
Emit(new { phase = "trainer's TrainStep (TorchSharpTrainingRunner)", ms = Math.Round(trainStep, 2), images_per_sec = Math.Round(batch * 1000 / trainStep, 1) });
