using ResNet.ML.Layers;
using ResNet.ML.Tensors;

namespace ResNet.ML.Training;

/// <summary>An optimizer as the trainer drives it: one step at a given rate, and its state for checkpoints.</summary>
internal interface ITrainerOptimizer
{
    void Step(float learningRate);
    /// <summary>Every state tensor, named (e.g. <c>layer1.0.conv1.weight.momentum</c>), plus its step counter.</summary>
    IReadOnlyList<(string Name, float[] Values)> ExportState();
    long StepCount { get; }
    /// <summary>Restores state exported by <see cref="ExportState"/>; all-or-nothing, names and lengths checked first.</summary>
    void ImportState(IReadOnlyDictionary<string, float[]> state, long stepCount);
}

/// <summary>
/// The seam between the trainer and the engine's loss, optimizers and schedules: interim implementations until the
/// engine's land (then this file maps onto them).
/// </summary>
internal static class EngineBridge
{
    /// <summary>The engine's worker thread count (process-wide).</summary>
    public static void SetThreads(int threads) => Threads = threads;
    public static int Threads { get; private set; } = Environment.ProcessorCount;

    public static ITrainerOptimizer CreateOptimizer(ResNetTrainerOptions options, IReadOnlyList<Parameter> parameters) =>
        options.Optimizer switch
        {
            OptimizerKind.SgdMomentum => new InterimSgd(parameters, options.Momentum, options.Nesterov, options.WeightDecay),
            _ => throw new NotSupportedException($"Optimizer {options.Optimizer} is not available yet."),
        };

    /// <summary>The rate after <paramref name="step"/> of <paramref name="totalSteps"/> steps.</summary>
    public static double LearningRate(ResNetTrainerOptions o, long step, long totalSteps)
    {
        double t = totalSteps <= 0 ? 0 : (double)step / totalSteps;
        double peak = o.LearningRate;
        double warm = o.Schedule == ScheduleKind.OneCycle && o.WarmupFraction == 0 ? 0.3 : o.WarmupFraction;
        if (warm > 0 && t < warm) return peak * (step + 1) / Math.Max(1.0, warm * totalSteps);
        double u = warm > 0 ? (t - warm) / (1 - warm) : t;
        return o.Schedule switch
        {
            ScheduleKind.Constant => peak,
            ScheduleKind.Step => peak * Math.Pow(0.1, o.StepMilestones.Count(m => t >= m)),
            ScheduleKind.Cosine or ScheduleKind.OneCycle => peak * 0.5 * (1 + Math.Cos(Math.PI * u)),
            _ => peak,
        };
    }

    /// <summary>Mean softmax cross-entropy over the batch with label smoothing; writes d loss / d logits into <paramref name="grad"/>.</summary>
    public static double CrossEntropy(Tensor logits, ReadOnlySpan<int> labels, float smoothing, Tensor grad)
    {
        int n = logits.N, k = logits.C;
        double total = 0;
        var l = logits.Data;
        var g = grad.Data;
        float off = smoothing / k, on = 1 - smoothing + off;
        for (int i = 0; i < n; i++)
        {
            var row = l.AsSpan(i * k, k);
            float max = float.NegativeInfinity;
            foreach (float v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (float v in row) sum += Math.Exp(v - max);
            double logSum = Math.Log(sum) + max;
            for (int j = 0; j < k; j++)
            {
                double target = j == labels[i] ? on : off;
                double p = Math.Exp(row[j] - logSum);
                total -= target * (row[j] - logSum);
                g[i * k + j] = (float)((p - target) / n);
            }
        }
        return total / n;
    }

    private sealed class InterimSgd(IReadOnlyList<Parameter> parameters, float momentum, bool nesterov, float weightDecay) : ITrainerOptimizer
    {
        private readonly float[][] _velocity = parameters.Select(p => new float[p.Value.Length]).ToArray();
        public long StepCount { get; private set; }

        public void Step(float lr)
        {
            for (int i = 0; i < parameters.Count; i++)
            {
                var p = parameters[i];
                if (!p.Trainable) continue;
                var w = p.Value.Data; var g = p.Grad.Data; var v = _velocity[i];
                float wd = p.IsWeight ? weightDecay : 0;
                for (int j = 0; j < w.Length; j++)
                {
                    float d = g[j] + wd * w[j];
                    v[j] = StepCount == 0 ? d : momentum * v[j] + d;
                    w[j] -= lr * (nesterov ? d + momentum * v[j] : v[j]);
                }
            }
            StepCount++;
        }

        public IReadOnlyList<(string Name, float[] Values)> ExportState() =>
            parameters.Select((p, i) => ($"{p.Name}.momentum_buffer", _velocity[i])).ToList();

        public void ImportState(IReadOnlyDictionary<string, float[]> state, long stepCount)
        {
            for (int i = 0; i < parameters.Count; i++)
            {
                string name = $"{parameters[i].Name}.momentum_buffer";
                if (!state.TryGetValue(name, out var values) || values.Length != _velocity[i].Length)
                    throw new InvalidDataException($"The optimizer state lacks '{name}' or has the wrong size.");
            }
            for (int i = 0; i < parameters.Count; i++) state[$"{parameters[i].Name}.momentum_buffer"].CopyTo(_velocity[i], 0);
            StepCount = stepCount;
        }
    }
}

/// <summary>Network construction and initialization: interim until the models' builder and the engine's initializer land.</summary>
internal static class ModelBridge
{
    /// <summary>Builds <paramref name="architecture"/> for the input and class count; throws naming the architecture when unknown.</summary>
    public static Network Build(string architecture, int channels, int classes, int height, int width)
    {
        var network = TestFactory?.Invoke(architecture, channels, classes)
            ?? throw new NotSupportedException($"Architecture '{architecture}' cannot be built yet.");
        network.ValidateInput(channels, height, width);
        return network;
    }

    /// <summary>Tests plug a small network in here.</summary>
    internal static Func<string, int, int, Network?>? TestFactory { get; set; }

    /// <summary>Kaiming-normal (fan-out) convolutions, BN weight 1 / bias 0, PyTorch's default uniform for linear layers.</summary>
    public static void Initialize(Network network, int seed)
    {
        var rng = new Tensors.Rng((ulong)(uint)seed ^ 0x1A17UL);
        foreach (var layer in network.AllLayers)
        {
            switch (layer)
            {
                case Conv2d conv:
                {
                    double std = Math.Sqrt(2.0 / (conv.OutChannels * conv.KernelSize * conv.KernelSize));
                    var w = conv.Weight.Value.Data;
                    for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextGaussian() * std);
                    break;
                }
                case Linear linear:
                {
                    double bound = 1.0 / Math.Sqrt(linear.InFeatures);
                    foreach (var p in linear.Parameters)
                    {
                        var w = p.Value.Data;
                        for (int i = 0; i < w.Length; i++) w[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
                    }
                    break;
                }
            }
        }
    }
}
