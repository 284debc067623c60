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

    /// <summary>
    /// PyTorch's <c>bn.eval()</c> inside a training pass: normalize with the running statistics and leave them as they
    /// are, so a frozen pretrained backbone keeps computing what it was trained to while a new head learns on top.
    /// </summary>
    public bool UseRunningStatistics { get; set; }

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

    /// <summary>What a batch norm keeps from its forward to its backward (the batch statistics among it), and its calls' arguments.</summary>
    internal sealed class Run : LayerWorkspace
    {
        public Tensor? Input, Output, GradOutput, GradInput, MaskedGrad, Residual, Dx;
        public float[] Mean = [], InvStd = [], Scale = [], Shift = [], GradScale = [], GradMean = [], CenteredCoefficient = [];
        public double[] Sums = [], Dots = [];   // per-channel sums; each part touches only its own channels
        public bool TrainingPass, Relu, KeepMasked;
        public EngineTuning Tuning = EngineTuning.Default;
        internal override IEnumerable<Tensor?> Tensors => [Output, GradInput, MaskedGrad];
    }

    internal override LayerWorkspace CreateWorkspace() => new Run();

    private Action<int, int, int>? _forwardPart, _backwardPart;

    public override Tensor Forward(Tensor input, bool training) => ForwardFused(input, training, residual: null, relu: false);

    /// <summary>
    /// relu(bn(x) + residual) in one pass when <paramref name="relu"/> is set (residual optional): how residual blocks run
    /// their BN–ReLU and BN–add–ReLU pairs without storing the intermediate tensors.
    /// </summary>
    internal Tensor ForwardFused(Tensor input, bool training, Tensor? residual, bool relu)
    {
        OutputShape(input.C, input.H, input.W);
        long perChannel = (long)input.N * input.H * input.W;
        training &= !UseRunningStatistics;
        if (training && perChannel <= 1)
            throw new ShapeException($"BatchNorm2d '{Name}' needs more than one value per channel to train, but its input is {input.Shape}: use a batch larger than 1.");
        if (residual is not null && !residual.SameShape(input))
            throw new ShapeException($"BatchNorm2d '{Name}': the residual {residual.Shape} does not match the input {input.Shape}.");
        var ws = Workspace<Run>();
        var output = Tensor.Reuse(ref ws.Output, input.N, input.C, input.H, input.W);
        if (ws.Mean.Length != Channels)
        {
            (ws.Mean, ws.InvStd, ws.Scale, ws.Shift) = (new float[Channels], new float[Channels], new float[Channels], new float[Channels]);
            (ws.GradScale, ws.GradMean, ws.CenteredCoefficient) = (new float[Channels], new float[Channels], new float[Channels]);
            (ws.Sums, ws.Dots) = (new double[Channels], new double[Channels]);
        }
        (ws.Input, ws.TrainingPass, ws.Residual, ws.Relu) = (input, training, residual, relu);
        Engine.ParallelFor(Channels, _forwardPart ??= ForwardPart);
        ws.Residual = null;
        if (training) NumBatchesTracked++;
        return output;
    }

    /// <summary>
    /// The plan's tuning (kept in the bound workspace); its <see cref="EngineTuning.BatchNormImageMajorBelow"/> sets the visiting order. Planes smaller
    /// than that many values are visited image by image (all of a part's channels of image 0, then of image 1, ...), so
    /// that each pass streams memory in order: a channel's 8x8 planes lie 16 KB apart, too short a run for the
    /// prefetcher, and such passes measured 2–4x slower per byte than over 32x32 planes. Larger planes are visited
    /// channel by channel, which keeps a channel's values in L2 from one pass to the next. Either way each channel's sums
    /// run over the images in order, so the results are the same.
    /// </summary>
    internal EngineTuning Tuning
    {
        get => Workspace<Run>().Tuning;
        set => Workspace<Run>().Tuning = value;
    }

    /// <summary>The q-th plane (image i, channel c) of a part's channels [begin, begin + channels) in visiting order.</summary>
    private static (int I, int C) PlaneAt(int q, int images, int begin, int channels, bool imageMajor) =>
        imageMajor ? (q / channels, begin + q % channels) : (q % images, begin + q / images);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void ForwardPart(int part, int begin, int end)
    {
        var ws = Workspace<Run>();
        var x = ws.Input!;
        var y = ws.Output!;
        var r = ws.Residual;
        int plane = x.H * x.W, n = x.N, channels = end - begin, planes = n * channels;
        bool imageMajor = plane < ws.Tuning.BatchNormImageMajorBelow;
        long count = (long)n * plane;
        var gamma = Weight.Value.Data;
        var beta = Bias.Value.Data;
        var sums = ws.Sums;
        var (meanOf, invStdOf, scaleOf, shiftOf) = (ws.Mean, ws.InvStd, ws.Scale, ws.Shift);
        if (ws.TrainingPass)
        {
            // Two passes (mean, then squared deviations), per-plane sums gathered in double, for accuracy.
            Array.Clear(sums, begin, channels);
            for (int q = 0; q < planes; q++)
            {
                var (i, c) = PlaneAt(q, n, begin, channels, imageMajor);
                sums[c] += System.Numerics.Tensors.TensorPrimitives.Sum(Plane(x, i, c));
            }
            for (int c = begin; c < end; c++) { meanOf[c] = (float)(sums[c] / count); sums[c] = 0; }
            for (int q = 0; q < planes; q++)
            {
                var (i, c) = PlaneAt(q, n, begin, channels, imageMajor);
                sums[c] += SumSquaredDeviation(Plane(x, i, c), meanOf[c]);
            }
        }
        for (int c = begin; c < end; c++)
        {
            float mean, invStd;
            if (ws.TrainingPass)
            {
                mean = meanOf[c];
                double squares = sums[c], variance = squares / count;
                invStd = (float)(1.0 / Math.Sqrt(variance + Eps));
                var rm = RunningMean.Data; var rv = RunningVar.Data;
                rm[c] = (1 - Momentum) * rm[c] + Momentum * mean;
                rv[c] = (1 - Momentum) * rv[c] + Momentum * (float)(squares / (count - 1));
            }
            else
            {
                mean = RunningMean.Data[c];
                invStd = (float)(1.0 / Math.Sqrt(RunningVar.Data[c] + (double)Eps));
            }
            meanOf[c] = mean;
            invStdOf[c] = invStd;
            scaleOf[c] = gamma[c] * invStd;
            shiftOf[c] = beta[c] - mean * scaleOf[c];
        }
        for (int q = 0; q < planes; q++)
        {
            var (i, c) = PlaneAt(q, n, begin, channels, imageMajor);
            var src = Plane(x, i, c);
            var dst = y.Data.AsSpan((i * x.C + c) * plane, plane);
            if (r is not null) Kernels.ScaleShiftAddRelu(src, scaleOf[c], shiftOf[c], Plane(r, i, c), dst, ws.Relu);
            else if (ws.Relu) Kernels.ScaleShiftRelu(src, scaleOf[c], shiftOf[c], dst);
            else Kernels.ScaleShift(src, scaleOf[c], shiftOf[c], dst);
        }
    }

    private static ReadOnlySpan<float> Plane(Tensor t, int n, int c) => t.Data.AsSpan((n * t.C + c) * t.H * t.W, t.H * t.W);

    private static double SumSquaredDeviation(ReadOnlySpan<float> values, float mean)
    {
        float s = 0;
        int i = 0;
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && values.Length >= 16)
        {
            var acc = System.Runtime.Intrinsics.Vector512<float>.Zero;
            var m = System.Runtime.Intrinsics.Vector512.Create(mean);
            for (; i <= values.Length - 16; i += 16)
            {
                var d = System.Runtime.Intrinsics.Vector512.Create(values.Slice(i, 16)) - m;
                acc += d * d;
            }
            s = System.Runtime.Intrinsics.Vector512.Sum(acc);
        }
        else if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated && values.Length >= 8)
        {
            var acc = System.Runtime.Intrinsics.Vector256<float>.Zero;
            var m = System.Runtime.Intrinsics.Vector256.Create(mean);
            for (; i <= values.Length - 8; i += 8)
            {
                var d = System.Runtime.Intrinsics.Vector256.Create(values.Slice(i, 8)) - m;
                acc += d * d;
            }
            s = System.Runtime.Intrinsics.Vector256.Sum(acc);
        }
        for (; i < values.Length; i++) { float d = values[i] - mean; s += d * d; }
        return s;
    }

    public override Tensor Backward(Tensor gradOutput) => BackwardFused(gradOutput, overwriteGradOutput: false, keepMasked: false);

    /// <summary>
    /// The gradient with respect to relu's input, dy·(y &gt; 0), from the last fused backward run with keepMasked: what
    /// a residual block's projection or zero-padding shortcut receives. Null otherwise.
    /// </summary>
    internal Tensor? MaskedGradOutput => Workspace<Run>() is { Relu: true, KeepMasked: true } ws ? ws.MaskedGrad : null;

    /// <summary>
    /// Backward of <see cref="ForwardFused"/>. A fused ReLU's mask is applied on the fly (from the stored output), so the
    /// masked gradient is written to memory only with <paramref name="keepMasked"/>. With
    /// <paramref name="overwriteGradOutput"/>, the input gradient is written over <paramref name="gradOutput"/> (the
    /// caller's buffer, which it no longer needs): one tensor less to write and keep.
    /// </summary>
    internal Tensor BackwardFused(Tensor gradOutput, bool overwriteGradOutput, bool keepMasked)
    {
        var ws = Workspace<Run>();
        var x = ws.Input ?? throw new InvalidOperationException($"BatchNorm2d '{Name}': Backward was called before Forward.");
        if (!gradOutput.SameShape(x))
            throw new ShapeException($"BatchNorm2d '{Name}': the output gradient {gradOutput.Shape} does not match the output {x.Shape}.");
        ws.GradOutput = gradOutput;
        ws.KeepMasked = keepMasked && ws.Relu;
        if (ws.KeepMasked) Tensor.Reuse(ref ws.MaskedGrad, x.N, x.C, x.H, x.W);
        var dx = ws.Dx = overwriteGradOutput ? gradOutput : Tensor.Reuse(ref ws.GradInput, x.N, x.C, x.H, x.W);
        Engine.ParallelFor(Channels, _backwardPart ??= BackwardPart);
        (ws.Dx, ws.GradOutput) = (null, null);
        return dx;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void BackwardPart(int part, int begin, int end)
    {
        var ws = Workspace<Run>();
        var x = ws.Input!;
        var dyIn = ws.GradOutput!;
        var y = ws.Relu ? ws.Output : null;   // the ReLU mask is y > 0
        var masked = ws.KeepMasked ? ws.MaskedGrad : null;
        var dx = ws.Dx!;
        int plane = x.H * x.W, n = x.N, channels = end - begin, planes = n * channels;
        bool imageMajor = plane < ws.Tuning.BatchNormImageMajorBelow;
        long count = (long)n * plane;
        var gamma = Weight.Value.Data;
        var (sumDy, sumDyXc) = (ws.Sums, ws.Dots);
        var (meanOf, invStdOf) = (ws.Mean, ws.InvStd);
        var (gradScale, gradMean, centered) = (ws.GradScale, ws.GradMean, ws.CenteredCoefficient);
        bool trainingPass = ws.TrainingPass;
        Array.Clear(sumDy, begin, channels);
        Array.Clear(sumDyXc, begin, channels);
        // sum(g) and sum(g·(x − mean)) with g = dy, masked by the ReLU when fused (and stored when asked)
        for (int q = 0; q < planes; q++)
        {
            var (i, c) = PlaneAt(q, n, begin, channels, imageMajor);
            var (a, b) = Kernels.SumAndCenteredDot(Plane(dyIn, i, c), y is null ? default : Plane(y, i, c), Plane(x, i, c), meanOf[c],
                masked is null ? default : masked.Data.AsSpan((i * x.C + c) * plane, plane));
            sumDy[c] += a; sumDyXc[c] += b;
        }
        for (int c = begin; c < end; c++)
        {
            float invStd = invStdOf[c], sumDyXhat = (float)(sumDyXc[c] * invStd);
            Weight.Grad.Data[c] += sumDyXhat;
            Bias.Grad.Data[c] += (float)sumDy[c];
            // dx = γ·invStd·(g − mean(g) − x̂·mean(g·x̂)) in training, γ·invStd·g in inference
            gradScale[c] = gamma[c] * invStd;
            gradMean[c] = trainingPass ? (float)(sumDy[c] / count) : 0f;
            centered[c] = trainingPass ? sumDyXhat / count * invStd : 0f;
        }
        // element by element, so dx may be dy's own storage
        for (int q = 0; q < planes; q++)
        {
            var (i, c) = PlaneAt(q, n, begin, channels, imageMajor);
            Kernels.BatchNormInputGradient(Plane(dyIn, i, c), y is null ? default : Plane(y, i, c), Plane(x, i, c), gradScale[c], gradMean[c], meanOf[c],
                centered[c], dx.Data.AsSpan((i * x.C + c) * plane, plane));
        }
    }
}
