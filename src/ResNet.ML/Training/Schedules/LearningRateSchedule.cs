namespace ResNet.ML.Training;

/// <summary>
/// A learning rate as a function of a step counter (epochs or iterations, whichever the trainer steps it by), with the
/// closed forms of PyTorch's schedulers, so a resumed run gets the same rate without replaying history.
/// </summary>
public abstract class LearningRateSchedule
{
    /// <summary>The learning rate at step <paramref name="step"/> (0-based).</summary>
    public abstract double At(long step);

    protected static void CheckStep(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), $"A schedule step cannot be negative ({step}).");
    }
}

/// <summary>A constant rate.</summary>
public sealed class ConstantSchedule(double learningRate) : LearningRateSchedule
{
    public double LearningRate { get; } = learningRate;
    public override double At(long step) { CheckStep(step); return LearningRate; }
}

/// <summary><c>StepLR</c>: the rate times γ every <c>stepSize</c> steps.</summary>
public sealed class StepSchedule : LearningRateSchedule
{
    public StepSchedule(double baseLearningRate, int stepSize, double gamma = 0.1)
    {
        if (stepSize <= 0) throw new ArgumentOutOfRangeException(nameof(stepSize), $"The step size must be positive, not {stepSize}.");
        (BaseLearningRate, StepSize, Gamma) = (baseLearningRate, stepSize, gamma);
    }

    public double BaseLearningRate { get; }
    public int StepSize { get; }
    public double Gamma { get; }

    public override double At(long step) { CheckStep(step); return BaseLearningRate * Math.Pow(Gamma, step / StepSize); }
}

/// <summary><c>MultiStepLR</c>: the rate times γ at each milestone (the paper divides by 10 at 32k and 48k iterations).</summary>
public sealed class MultiStepSchedule : LearningRateSchedule
{
    public MultiStepSchedule(double baseLearningRate, IEnumerable<long> milestones, double gamma = 0.1)
    {
        Milestones = milestones.ToArray();
        if (Milestones.Any(m => m <= 0) || Milestones.Zip(Milestones.Skip(1)).Any(p => p.First >= p.Second))
            throw new ArgumentException($"Milestones must be positive and increasing, not [{string.Join(", ", Milestones)}].", nameof(milestones));
        (BaseLearningRate, Gamma) = (baseLearningRate, gamma);
    }

    public double BaseLearningRate { get; }
    public IReadOnlyList<long> Milestones { get; }
    public double Gamma { get; }

    public override double At(long step)
    {
        CheckStep(step);
        return BaseLearningRate * Math.Pow(Gamma, Milestones.Count(m => m <= step));
    }
}

/// <summary><c>CosineAnnealingLR</c> (closed form): η_min + (η₀ − η_min)·(1 + cos(π·t/T))/2, held at η_min after T.</summary>
public sealed class CosineSchedule : LearningRateSchedule
{
    public CosineSchedule(double baseLearningRate, long totalSteps, double minLearningRate = 0)
    {
        if (totalSteps <= 0) throw new ArgumentOutOfRangeException(nameof(totalSteps), $"The cosine period must be positive, not {totalSteps}.");
        (BaseLearningRate, TotalSteps, MinLearningRate) = (baseLearningRate, totalSteps, minLearningRate);
    }

    public double BaseLearningRate { get; }
    public long TotalSteps { get; }
    public double MinLearningRate { get; }

    public override double At(long step)
    {
        CheckStep(step);
        double t = Math.Min(step, TotalSteps);
        return MinLearningRate + (BaseLearningRate - MinLearningRate) * (1 + Math.Cos(Math.PI * t / TotalSteps)) / 2;
    }
}

/// <summary>
/// Linear warm-up (<c>LinearLR</c>) then another schedule: the rate ramps from <c>startFactor</c>·r to r = the next
/// schedule's first rate over <c>warmupSteps</c>, then follows that schedule from its step 0 (as PyTorch's SequentialLR).
/// The paper warms ResNet-110 up at 0.01 until training error drops below 80%; this is the smooth equivalent.
/// </summary>
public sealed class WarmupSchedule : LearningRateSchedule
{
    public WarmupSchedule(LearningRateSchedule after, long warmupSteps, double startFactor = 0.1)
    {
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), $"Warm-up steps cannot be negative ({warmupSteps}).");
        if (!(startFactor > 0 && startFactor <= 1)) throw new ArgumentOutOfRangeException(nameof(startFactor), $"The start factor must be in (0, 1], not {startFactor}.");
        (After, WarmupSteps, StartFactor) = (after, warmupSteps, startFactor);
    }

    public LearningRateSchedule After { get; }
    public long WarmupSteps { get; }
    public double StartFactor { get; }

    public override double At(long step)
    {
        CheckStep(step);
        if (step >= WarmupSteps) return After.At(step - WarmupSteps);
        return After.At(0) * (StartFactor + (1 - StartFactor) * step / WarmupSteps);
    }
}

/// <summary>
/// <c>OneCycleLR</c> (two phases, cosine annealing): from max/<c>divFactor</c> up to max over the first
/// <c>pctStart</c> of the steps, then down to max/(<c>divFactor</c>·<c>finalDivFactor</c>). Stepped per iteration.
/// </summary>
public sealed class OneCycleSchedule : LearningRateSchedule
{
    public OneCycleSchedule(double maxLearningRate, long totalSteps, double pctStart = 0.3, double divFactor = 25, double finalDivFactor = 1e4)
    {
        if (totalSteps < 2) throw new ArgumentOutOfRangeException(nameof(totalSteps), $"One-cycle needs at least 2 steps, not {totalSteps}.");
        if (!(pctStart > 0 && pctStart < 1)) throw new ArgumentOutOfRangeException(nameof(pctStart), $"pctStart must be in (0, 1), not {pctStart}.");
        (MaxLearningRate, TotalSteps, PctStart, DivFactor, FinalDivFactor) = (maxLearningRate, totalSteps, pctStart, divFactor, finalDivFactor);
    }

    public double MaxLearningRate { get; }
    public long TotalSteps { get; }
    public double PctStart { get; }
    public double DivFactor { get; }
    public double FinalDivFactor { get; }

    public override double At(long step)
    {
        CheckStep(step);
        double initial = MaxLearningRate / DivFactor, min = initial / FinalDivFactor;
        double peak = PctStart * TotalSteps - 1, end = TotalSteps - 1;
        double t = Math.Min(step, end);
        return t <= peak
            ? Anneal(initial, MaxLearningRate, t / peak)
            : Anneal(MaxLearningRate, min, (t - peak) / (end - peak));
    }

    private static double Anneal(double start, double end, double pct) => end + (start - end) / 2 * (Math.Cos(Math.PI * pct) + 1);
}
