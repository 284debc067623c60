using ResNet.ML.Layers;

namespace ResNet.ML.Training;

/// <summary>What a run is set up from its options: the network (built and initialized), the optimizer and the schedule.</summary>
internal static class TrainingSetup
{
    /// <summary>The optimizer of <paramref name="options"/>; weight decay applies to conv and linear weights only.</summary>
    public static Optimizer Optimizer(ResNetTrainerOptions options, IReadOnlyList<Parameter> parameters) => options.Optimizer switch
    {
        OptimizerKind.SgdMomentum => new Sgd(parameters, options.ResolvedLearningRate, options.Momentum, options.Nesterov, options.ResolvedWeightDecay, decayAllParameters: false),
        OptimizerKind.Adam => new Adam(parameters, options.ResolvedLearningRate, weightDecay: options.ResolvedWeightDecay, decayAllParameters: false),
        OptimizerKind.AdamW => new AdamW(parameters, options.ResolvedLearningRate, weightDecay: options.ResolvedWeightDecay, decayAllParameters: false),
        _ => throw new ArgumentException($"Option Optimizer: unknown optimizer {options.Optimizer}."),
    };

    /// <summary>The schedule of <paramref name="o"/> over a run of <paramref name="totalSteps"/> steps (stepped per iteration).</summary>
    public static LearningRateSchedule Schedule(ResNetTrainerOptions o, long totalSteps)
    {
        totalSteps = Math.Max(totalSteps, 2);
        if (o.Schedule == ScheduleKind.OneCycle)
            return new OneCycleSchedule(o.ResolvedLearningRate, totalSteps, o.WarmupFraction > 0 ? o.WarmupFraction : 0.3);
        long warm = (long)Math.Round(o.WarmupFraction * totalSteps);
        long rest = Math.Max(totalSteps - warm, 1);
        LearningRateSchedule main = o.Schedule switch
        {
            ScheduleKind.Constant => new ConstantSchedule(o.ResolvedLearningRate),
            ScheduleKind.Step => new MultiStepSchedule(o.ResolvedLearningRate, o.StepMilestones.Select(m => (long)Math.Round(m * rest)).Where(m => m > 0).Distinct().Order()),
            ScheduleKind.Cosine => new CosineSchedule(o.ResolvedLearningRate, rest),
            _ => throw new ArgumentException($"Option Schedule: unknown schedule {o.Schedule}."),
        };
        return warm > 0 ? new WarmupSchedule(main, warm) : main;
    }

    /// <summary>Builds <paramref name="architecture"/> (preset name or spec text) for the input and class count.</summary>
    public static Network Network(string architecture, int channels, int classes, int height, int width)
    {
        var network = Models.ModelFactory.Build(architecture, channels, classes, height, width);
        network.ValidateInput(channels, height, width);
        return network;
    }

    /// <summary>torchvision's initialization (the engine's <see cref="Initializer"/>) from a seed.</summary>
    public static void Initialize(Network network, int seed) =>
        Initializer.Initialize(network, new Tensors.Rng((ulong)(uint)seed ^ 0x1A17UL));
}
