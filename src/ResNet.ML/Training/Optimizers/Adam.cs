using ResNet.ML.Layers;

namespace ResNet.ML.Training;

/// <summary>
/// Adam as <c>torch.optim.Adam</c> (no AMSGrad): m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g²,
/// w ← w − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε). Weight decay is L2 (added to g) by default, as in Adam; <see cref="AdamW"/>
/// decouples it.
/// </summary>
public class Adam : Optimizer
{
    public Adam(IEnumerable<Parameter> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double epsilon = 1e-8, double weightDecay = 0, WeightDecayMode weightDecayMode = WeightDecayMode.L2, bool decayAllParameters = true)
        : base(parameters, learningRate, weightDecay, decayAllParameters)
    {
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
            throw new ArgumentOutOfRangeException(nameof(beta1), $"Adam's betas must be in [0, 1), not ({beta1}, {beta2}).");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), $"Adam's epsilon must be positive, not {epsilon}.");
        (Beta1, Beta2, Epsilon, WeightDecayMode) = (beta1, beta2, epsilon, weightDecayMode);
    }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Epsilon { get; }
    public WeightDecayMode WeightDecayMode { get; }

    protected override string Kind => WeightDecayMode == WeightDecayMode.Decoupled ? "AdamW" : "Adam";
    protected override IReadOnlyList<string> BufferNames { get; } = ["exp_avg", "exp_avg_sq"];

    protected override void Update(Parameter parameter, int index, float weightDecay)
    {
        var w = parameter.Value.Data;
        var g = parameter.Grad.Data;
        var m = Buffer(index, "exp_avg", out _);
        var v = Buffer(index, "exp_avg_sq", out _);
        float lr = (float)LearningRate;
        bool l2 = WeightDecayMode == WeightDecayMode.L2 && weightDecay != 0;
        if (WeightDecayMode == WeightDecayMode.Decoupled && weightDecay != 0)
        {
            float shrink = 1f - lr * weightDecay;
            for (int i = 0; i < w.Length; i++) w[i] *= shrink;
        }
        // Bias corrections in double, as PyTorch computes them in Python floats.
        long t = StepCount;
        double correction1 = 1 - Math.Pow(Beta1, t), correction2 = 1 - Math.Pow(Beta2, t);
        float stepSize = (float)(LearningRate / correction1);
        float correction2Sqrt = (float)Math.Sqrt(correction2);
        float b1 = (float)Beta1, b2 = (float)Beta2, eps = (float)Epsilon;
        for (int i = 0; i < w.Length; i++)
        {
            float gi = l2 ? g[i] + weightDecay * w[i] : g[i];
            m[i] = m[i] * b1 + (1 - b1) * gi;
            v[i] = v[i] * b2 + (1 - b2) * gi * gi;
            float denom = MathF.Sqrt(v[i]) / correction2Sqrt + eps;
            w[i] -= stepSize * (m[i] / denom);
        }
    }
}

/// <summary>AdamW as <c>torch.optim.AdamW</c>: Adam with decoupled weight decay (default λ = 0.01).</summary>
public sealed class AdamW(IEnumerable<Parameter> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
    double epsilon = 1e-8, double weightDecay = 1e-2, bool decayAllParameters = true)
    : Adam(parameters, learningRate, beta1, beta2, epsilon, weightDecay, WeightDecayMode.Decoupled, decayAllParameters);
