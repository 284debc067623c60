using ResNet.ML.Layers;

namespace ResNet.ML.Training;

/// <summary>How weight decay enters an update.</summary>
public enum WeightDecayMode
{
    /// <summary>Added to the gradient (grad + λ·w), as PyTorch's SGD and Adam do: an L2 penalty.</summary>
    L2,
    /// <summary>Applied to the weight itself (w ← w·(1 − lr·λ)) before the update, as AdamW (and SGDW) do.</summary>
    Decoupled,
}

/// <summary>
/// An optimizer's state for a checkpoint: the step count and each per-parameter buffer named
/// <c>{parameter}.{buffer}</c> (e.g. <c>layer1.0.conv1.weight.momentum_buffer</c>, <c>fc.bias.exp_avg_sq</c>).
/// </summary>
public sealed record OptimizerState(string Kind, long Step, IReadOnlyDictionary<string, float[]> Buffers);

/// <summary>
/// Updates parameters from their gradients with PyTorch's formulas. The trainer sets <see cref="LearningRate"/> (from a
/// schedule), and calls <see cref="Step"/> after <c>network.Backward</c>; frozen parameters (<see cref="Parameter.Trainable"/>
/// false) are skipped. Buffers are created on the first step, so an imported state must match the parameters.
/// </summary>
public abstract class Optimizer
{
    private readonly Dictionary<string, float[]>[] _buffers;

    protected Optimizer(IEnumerable<Parameter> parameters, double learningRate, double weightDecay, bool decayAllParameters)
    {
        Parameters = parameters.ToList();
        if (Parameters.Count == 0) throw new ArgumentException("An optimizer needs at least one parameter.", nameof(parameters));
        var duplicate = Parameters.GroupBy(p => p.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Parameter '{duplicate.Key}' is given to the optimizer twice.", nameof(parameters));
        if (!(learningRate >= 0) || double.IsInfinity(learningRate)) throw new ArgumentOutOfRangeException(nameof(learningRate), $"The learning rate must be finite and not negative, not {learningRate}.");
        if (!(weightDecay >= 0) || double.IsInfinity(weightDecay)) throw new ArgumentOutOfRangeException(nameof(weightDecay), $"Weight decay must be finite and not negative, not {weightDecay}.");
        LearningRate = learningRate;
        WeightDecay = weightDecay;
        DecayAllParameters = decayAllParameters;
        _buffers = Parameters.Select(_ => new Dictionary<string, float[]>()).ToArray();
    }

    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>The learning rate of the next step (a schedule sets it before each step or epoch).</summary>
    public double LearningRate { get; set; }

    public double WeightDecay { get; }

    /// <summary>True (PyTorch's default): decay every parameter; false: only weights (<see cref="Parameter.IsWeight"/>), not biases or BN parameters.</summary>
    public bool DecayAllParameters { get; }

    /// <summary>Steps taken so far.</summary>
    public long StepCount { get; private set; }

    /// <summary>Applies one update to every trainable parameter from its accumulated gradient.</summary>
    public void Step()
    {
        StepCount++;
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            if (!p.Trainable) continue;
            float decay = DecayAllParameters || p.IsWeight ? (float)WeightDecay : 0f;
            Update(p, i, decay);
        }
    }

    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.Grad.Clear();
    }

    /// <summary>Updates one parameter; <paramref name="index"/> addresses its buffers.</summary>
    protected abstract void Update(Parameter parameter, int index, float weightDecay);

    /// <summary>The buffers' names, e.g. <c>momentum_buffer</c>.</summary>
    protected abstract IReadOnlyList<string> BufferNames { get; }

    protected abstract string Kind { get; }

    /// <summary>The named buffer of parameter <paramref name="index"/>; <paramref name="created"/> tells whether it was just made (zeroed).</summary>
    protected float[] Buffer(int index, string name, out bool created)
    {
        var buffers = _buffers[index];
        created = !buffers.TryGetValue(name, out var buffer);
        if (created) buffers[name] = buffer = new float[Parameters[index].Value.Length];
        return buffer!;
    }

    /// <summary>A copy of the state (step count and buffers by parameter name), for a checkpoint.</summary>
    public OptimizerState ExportState()
    {
        var buffers = new Dictionary<string, float[]>();
        for (int i = 0; i < Parameters.Count; i++)
            foreach (var (name, values) in _buffers[i]) buffers[$"{Parameters[i].Name}.{name}"] = (float[])values.Clone();
        return new OptimizerState(Kind, StepCount, buffers);
    }

    /// <summary>Restores a state exported by the same kind of optimizer over parameters with the same names and sizes.</summary>
    public void ImportState(OptimizerState state)
    {
        if (state.Kind != Kind) throw new ArgumentException($"The optimizer state is {state.Kind}'s, not {Kind}'s.", nameof(state));
        if (state.Step < 0) throw new ArgumentException($"The optimizer state has a negative step count {state.Step}.", nameof(state));
        var known = new HashSet<string>();
        var restored = Parameters.Select(_ => new Dictionary<string, float[]>()).ToArray();
        for (int i = 0; i < Parameters.Count; i++)
            foreach (var name in BufferNames)
            {
                string key = $"{Parameters[i].Name}.{name}";
                known.Add(key);
                if (!state.Buffers.TryGetValue(key, out var values)) continue;   // a parameter not yet stepped (e.g. frozen)
                if (values.Length != Parameters[i].Value.Length)
                    throw new ArgumentException($"Optimizer buffer '{key}' has {values.Length} values, but parameter '{Parameters[i].Name}' has {Parameters[i].Value.Length}.", nameof(state));
                restored[i][name] = (float[])values.Clone();
            }
        var unknown = state.Buffers.Keys.FirstOrDefault(k => !known.Contains(k));
        if (unknown is not null) throw new ArgumentException($"Optimizer buffer '{unknown}' belongs to no parameter of this model.", nameof(state));
        for (int i = 0; i < Parameters.Count; i++)
        {
            _buffers[i].Clear();
            foreach (var (k, v) in restored[i]) _buffers[i][k] = v;
        }
        StepCount = state.Step;
    }
}
