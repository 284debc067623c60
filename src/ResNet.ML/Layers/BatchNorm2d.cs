using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>
/// Batch normalization over N, H, W per channel, as PyTorch's <c>nn.BatchNorm2d</c>: batch statistics and running
/// averages (unbiased variance, momentum 0.1) in training, running statistics in inference.
/// </summary>
public sealed class BatchNorm2d : Layer
{
    public BatchNorm2d(string name, int channels, float eps = 1e-5f, float momentum = 0.1f) : base(name)
    {
        if (channels <= 0) throw new ArgumentException($"BatchNorm2d '{name}' needs a positive channel count, not {channels}.");
        (Channels, Eps, Momentum) = (channels, eps, momentum);
        Weight = new Parameter($"{name}.weight", new Tensor(1, channels, 1, 1)) { IsWeight = false };
        Bias = new Parameter($"{name}.bias", new Tensor(1, channels, 1, 1)) { IsWeight = false };
        Weight.Value.Span.Fill(1f);
        RunningMean = new Tensor(1, channels, 1, 1);
        RunningVar = new Tensor(1, channels, 1, 1);
        RunningVar.Span.Fill(1f);
    }

    public int Channels { get; }
    public float Eps { get; }
    public float Momentum { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }
    public Tensor RunningMean { get; }
    public Tensor RunningVar { get; }
    public long NumBatchesTracked { get; set; }

    public override IEnumerable<Parameter> Parameters => [Weight, Bias];

    public override IEnumerable<StateEntry> State =>
    [
        new StateEntry(Weight.Name, Weight.Value, [Channels]),
        new StateEntry(Bias.Name, Bias.Value, [Channels]),
        new StateEntry($"{Name}.running_mean", RunningMean, [Channels]),
        new StateEntry($"{Name}.running_var", RunningVar, [Channels]),
        new StateEntry($"{Name}.num_batches_tracked", null, [], () => NumBatchesTracked, v => NumBatchesTracked = v),
    ];

    public override (int C, int H, int W) OutputShape(int c, int h, int w) =>
        c == Channels ? (c, h, w) : throw new ShapeException($"BatchNorm2d '{Name}' normalizes {Channels} channels, but its input [{c}, {h}, {w}] has {c}.");

    public override Tensor Forward(Tensor input, bool training) => throw new NotImplementedException();
    public override Tensor Backward(Tensor gradOutput) => throw new NotImplementedException();
}
