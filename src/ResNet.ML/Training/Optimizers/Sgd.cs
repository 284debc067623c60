using ResNet.ML.Layers;

namespace ResNet.ML.Training;

/// <summary>
/// Stochastic gradient descent with momentum as <c>torch.optim.SGD</c> (dampening 0): d = g + λ·w (L2 mode);
/// b = d on the first step, else b = μ·b + d; the step is d + μ·b with Nesterov, else b; w ← w − lr·step.
/// With <see cref="WeightDecayMode.Decoupled"/> the weight is first shrunk by (1 − lr·λ) instead (SGDW).
/// </summary>
public sealed class Sgd : Optimizer
{
    public Sgd(IEnumerable<Parameter> parameters, double learningRate, double momentum = 0.9, bool nesterov = false,
        double weightDecay = 0, WeightDecayMode weightDecayMode = WeightDecayMode.L2, bool decayAllParameters = true)
        : base(parameters, learningRate, weightDecay, decayAllParameters)
    {
        if (!(momentum >= 0 && momentum < 1)) throw new ArgumentOutOfRangeException(nameof(momentum), $"Momentum must be in [0, 1), not {momentum}.");
        if (nesterov && momentum == 0) throw new ArgumentException("Nesterov momentum needs a momentum above 0.", nameof(nesterov));
        (Momentum, Nesterov, WeightDecayMode) = (momentum, nesterov, weightDecayMode);
    }

    public double Momentum { get; }
    public bool Nesterov { get; }
    public WeightDecayMode WeightDecayMode { get; }

    protected override string Kind => "SGD";
    protected override IReadOnlyList<string> BufferNames { get; } = ["momentum_buffer"];

    protected override void Update(Parameter parameter, int index, float weightDecay)
    {
        var w = parameter.Value.Data;
        var g = parameter.Grad.Data;
        float lr = (float)LearningRate, mu = (float)Momentum;
        bool l2 = WeightDecayMode == WeightDecayMode.L2 && weightDecay != 0;
        if (WeightDecayMode == WeightDecayMode.Decoupled && weightDecay != 0)
        {
            float shrink = 1f - lr * weightDecay;
            for (int i = 0; i < w.Length; i++) w[i] *= shrink;
        }
        if (mu == 0)
        {
            for (int i = 0; i < w.Length; i++)
            {
                float d = l2 ? g[i] + weightDecay * w[i] : g[i];
                w[i] -= lr * d;
            }
            return;
        }
        var b = Buffer(index, "momentum_buffer", out bool first);
        for (int i = 0; i < w.Length; i++)
        {
            float d = l2 ? g[i] + weightDecay * w[i] : g[i];
            float buf = first ? d : mu * b[i] + d;
            b[i] = buf;
            w[i] -= lr * (Nesterov ? d + mu * buf : buf);
        }
    }
}
