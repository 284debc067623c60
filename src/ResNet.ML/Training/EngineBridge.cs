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
    /// <summary>Throws naming the first buffer that is missing or of the wrong size in <paramref name="state"/>.</summary>
    void CheckState(IReadOnlyDictionary<string, float[]> state);
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
    public static void SetThreads(int threads) => Engine.Threads = threads;

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
            CheckState(state);
            for (int i = 0; i < parameters.Count; i++) state[$"{parameters[i].Name}.momentum_buffer"].CopyTo(_velocity[i], 0);
            StepCount = stepCount;
        }

        public void CheckState(IReadOnlyDictionary<string, float[]> state)
        {
            for (int i = 0; i < parameters.Count; i++)
            {
                string name = $"{parameters[i].Name}.momentum_buffer";
                if (!state.TryGetValue(name, out var values) || values.Length != _velocity[i].Length)
                    throw new InvalidDataException($"The checkpoint's optimizer state lacks '{name}' or has the wrong size.");
            }
        }
    }
}

/// <summary>Network construction (the models' <see cref="Models.ModelFactory"/>) and initialization (the engine's).</summary>
internal static class ModelBridge
{
    /// <summary>Builds <paramref name="architecture"/> (preset name or spec text) for the input and class count.</summary>
    public static Network Build(string architecture, int channels, int classes, int height, int width)
    {
        var network = Models.ModelFactory.Build(architecture, channels, classes, height, width);
        network.ValidateInput(channels, height, width);
        return network;
    }

    /// <summary>torchvision's initialization (the engine's <see cref="Initialization.Initializer"/>) from a seed.</summary>
    public static void Initialize(Network network, int seed) =>
        Initialization.Initializer.Initialize(network, new Tensors.Rng((ulong)(uint)seed ^ 0x1A17UL));
}
