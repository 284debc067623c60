using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>2-D convolution, square kernel, weight [out, in, k, k] as PyTorch's <c>nn.Conv2d</c>.</summary>
public sealed class Conv2d : Layer
{
    public Conv2d(string name, int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, bool bias = false)
        : base(name)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernelSize <= 0 || stride <= 0 || padding < 0)
            throw new ArgumentException($"Conv2d '{name}': channels, kernel size and stride must be positive and padding not negative (in {inChannels}, out {outChannels}, k {kernelSize}, stride {stride}, padding {padding}).");
        (InChannels, OutChannels, KernelSize, Stride, Padding) = (inChannels, outChannels, kernelSize, stride, padding);
        Weight = new Parameter($"{name}.weight", new Tensor(outChannels, inChannels, kernelSize, kernelSize));
        if (bias) Bias = new Parameter($"{name}.bias", new Tensor(1, outChannels, 1, 1)) { IsWeight = false };
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int KernelSize { get; }
    public int Stride { get; }
    public int Padding { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    /// <summary>Whether the direct (im2col-free) kernels may be used; tests turn it off to check the im2col path.</summary>
    internal bool AllowDirect
    {
        get => _allowDirect;
        set { _allowDirect = value; _allowDirectChanges++; }
    }

    private bool _allowDirect = true;
    private int _allowDirectChanges;   // a workspace's choice made before the last change is made again

    /// <summary>
    /// The kernels this convolution runs for an input of <paramref name="height"/> x <paramref name="width"/> under
    /// <paramref name="tuning"/>, chosen once (a <see cref="TrainingPlan"/> does it when it is compiled) and kept until
    /// the shape or the tuning changes.
    /// </summary>
    internal ConvAlgorithms Configure(int height, int width, EngineTuning tuning)
    {
        var ws = Workspace<Run>();
        if (ws.Algorithms is { } a && a.InputHeight == height && a.InputWidth == width && a.Tuning == tuning && ws.ChosenAt == _allowDirectChanges) return a;
        var (_, oh, ow) = OutputShape(InChannels, height, width);
        ws.ChosenAt = _allowDirectChanges;
        return ws.Algorithms = ConvAlgorithms.Choose(this, height, width, oh, ow, tuning, _allowDirect);
    }

    /// <summary>The kernels chosen for the last input shape in the bound workspace (null before the first <see cref="Configure"/> or forward).</summary>
    internal ConvAlgorithms? Algorithms => Workspace<Run>().Algorithms;

    /// <summary>What a convolution keeps from its forward to its backward, and the backward's call arguments its parts read.</summary>
    internal sealed class Run : LayerWorkspace
    {
        public Tensor? Input, Output, GradOutput, GradInput;
        public ConvAlgorithms? Algorithms;
        public int ChosenAt;
        /// <summary>The per-part weight and bias gradients; a plan gives all its convolutions one set.</summary>
        public PartialSums Sums = new();
        // Backward's arguments for its parts: whether to make the input gradient, and an identity shortcut's masked add.
        public bool InputGradient = true;
        public Tensor? AddResidual, AddMask;
        internal override IEnumerable<Tensor?> Tensors => [Output, GradInput];
    }

    internal override LayerWorkspace CreateWorkspace() => new Run();

    public override IEnumerable<Parameter> Parameters => Bias is null ? [Weight] : [Weight, Bias];

    public override IEnumerable<StateEntry> State =>
        Bias is null ? [new StateEntry(Weight.Name, Weight.Value)]
                     : [new StateEntry(Weight.Name, Weight.Value), new StateEntry(Bias.Name, Bias.Value, [OutChannels])];

    public override (int C, int H, int W) OutputShape(int c, int h, int w)
    {
        if (c != InChannels)
            throw new ShapeException($"Conv2d '{Name}' takes {InChannels} channels, but its input [{c}, {h}, {w}] has {c}.");
        int oh = (h + 2 * Padding - KernelSize) / Stride + 1, ow = (w + 2 * Padding - KernelSize) / Stride + 1;
        if (h + 2 * Padding < KernelSize || w + 2 * Padding < KernelSize || oh <= 0 || ow <= 0)
            throw new ShapeException($"Conv2d '{Name}' ({KernelSize}x{KernelSize}, stride {Stride}, padding {Padding}) cannot slide over an input of [{c}, {h}, {w}]: the image is too small for this architecture.");
        return (OutChannels, oh, ow);
    }

    // Derived from the weights and rebuilt by every call that reads them, so they belong to the layer, not to a workspace.
    private float[] _packedWeight = [], _flippedWeight = [], _packedFlipped = [];
    private Action<int, int, int>? _forwardPart, _backwardPart;

    private int ColumnRows => InChannels * KernelSize * KernelSize;

    /// <summary>With stride 1, the input gradient is itself a convolution of the output gradient (transposed, flipped kernel).</summary>
    internal bool BackwardAsConvolution => Stride == 1 && Padding <= KernelSize - 1;

    public override Tensor Forward(Tensor input, bool training)
    {
        var (oc, oh, ow) = OutputShape(input.C, input.H, input.W);
        var ws = Workspace<Run>();
        var output = Tensor.Reuse(ref ws.Output, input.N, oc, oh, ow);
        ws.Input = input;
        Configure(input.H, input.W, ws.Algorithms?.Tuning ?? EngineTuning.Default);   // chooses again only when the shape changed
        int k = ColumnRows;
        if (_packedWeight.Length != Gemm.PackedALength(OutChannels, k)) _packedWeight = new float[Gemm.PackedALength(OutChannels, k)];
        Gemm.PackWholeA(false, Weight.Value.Data, k, OutChannels, k, _packedWeight);
        Engine.ParallelFor(input.N, _forwardPart ??= ForwardPart);
        return output;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private unsafe void ForwardPart(int part, int begin, int end)
    {
        var ws = Workspace<Run>();
        var x = ws.Input!;
        var y = ws.Output!;
        var algorithms = ws.Algorithms!;
        fixed (float* px = x.Data, py = y.Data, pw = _packedWeight)
            for (int n = begin; n < end; n++)
            {
                float* yn = py + (long)n * y.SampleSize;
                Convolve(algorithms.Forward, algorithms.ForwardCopy, px + (long)n * x.SampleSize, InChannels, x.H, x.W, pw, OutChannels, KernelSize, Stride, Padding, y.H, y.W, yn);
                if (Bias is not null)
                    for (int o = 0; o < OutChannels; o++)
                    {
                        var plane = new Span<float>(yn + o * y.H * y.W, y.H * y.W);
                        System.Numerics.Tensors.TensorPrimitives.Add(plane, Bias.Value.Data[o], plane);
                    }
            }
    }

    /// <summary>
    /// One image [cin, h, w] convolved into [m, oh, ow] by weights packed with <see cref="Gemm.PackWholeA"/>: the column
    /// matrix is never materialized, im2col writes straight into GEMM panels a block of pixels at a time.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Convolve(ConvKernel kernelChoice, ConvCopy copy, float* image, int cin, int h, int w, float* packedWeight, int m, int kernel, int stride, int padding, int oh, int ow, float* output)
    {
        if (kernelChoice == ConvKernel.DirectAvx2)
        {
            DirectConvAvx2.Convolve(image, cin, h, w, packedWeight, m, kernel, stride, padding, oh, ow, output);
            return;
        }
        if (kernelChoice == ConvKernel.Direct)
        {
            DirectConv.Convolve(copy, image, cin, h, w, packedWeight, m, kernel, stride, padding, oh, ow, output);
            return;
        }
        int k = cin * kernel * kernel, pixels = oh * ow, nr = Gemm.PanelWidth;
        int nc = Math.Min(Gemm.RoundUp(pixels, nr), 8 * nr);
        int kBlocks = (k + 255) / 256, kcStep = (k + kBlocks - 1) / kBlocks;
        float[] panels = Engine.Scratch(ScratchSlot.ConvolutionPanels, kcStep * nc);
        fixed (float* bp = panels)
            for (int jc = 0; jc < pixels; jc += nc)
            {
                int ncur = Math.Min(nc, pixels - jc);
                for (int pc = 0; pc < k; pc += kcStep)
                {
                    int kc = Math.Min(kcStep, k - pc);
                    Im2Col.PackPanels(image, h, w, kernel, stride, padding, oh, ow, pc, kc, jc, ncur, nr, bp);
                    Gemm.MultiplyPanels(m, ncur, kc, packedWeight + (long)pc * Gemm.Mr, k * Gemm.Mr, bp, output + jc, pixels, add: pc > 0);
                }
            }
    }

    public override Tensor Backward(Tensor gradOutput) => Backward(gradOutput, inputGradient: true)!;

    /// <summary>
    /// Backward whose input gradient also receives <paramref name="residual"/> where <paramref name="mask"/> &gt; 0 (a
    /// residual block's identity shortcut through its final ReLU), added image by image while that image's input
    /// gradient is still in cache instead of in a separate pass over memory.
    /// </summary>
    internal Tensor BackwardAddingMasked(Tensor gradOutput, Tensor residual, Tensor mask)
    {
        var ws = Workspace<Run>();
        var x = ws.Input ?? throw new InvalidOperationException($"Conv2d '{Name}': Backward was called before Forward.");
        if (!residual.SameShape(x) || !mask.SameShape(x))
            throw new ShapeException($"Conv2d '{Name}': the residual gradient {residual.Shape} and mask {mask.Shape} must match the input {x.Shape}.");
        (ws.AddResidual, ws.AddMask) = (residual, mask);
        try { return Backward(gradOutput, inputGradient: true)!; }
        finally { (ws.AddResidual, ws.AddMask) = (null, null); }
    }

    /// <summary>Accumulates the weight (and bias) gradients without computing the input gradient (a network's first layer).</summary>
    public void BackwardParametersOnly(Tensor gradOutput) => Backward(gradOutput, inputGradient: false);

    private Tensor? Backward(Tensor gradOutput, bool inputGradient)
    {
        var ws = Workspace<Run>();
        ws.InputGradient = inputGradient;
        var x = ws.Input ?? throw new InvalidOperationException($"Conv2d '{Name}': Backward was called before Forward.");
        var y = ws.Output!;
        if (!gradOutput.SameShape(y))
            throw new ShapeException($"Conv2d '{Name}': the output gradient {gradOutput.Shape} does not match the output {y.Shape}.");
        ws.GradOutput = gradOutput;
        var gradInput = inputGradient ? Tensor.Reuse(ref ws.GradInput, x.N, x.C, x.H, x.W) : null;
        int parts = Engine.Parts(x.N);
        ws.Sums.Reserve(parts, OutChannels * ColumnRows, OutChannels);
        if (ws.Algorithms!.InputGradient == InputGradientKernel.TransposedConvolution && inputGradient)
        {
            // W'[c, o, ky, kx] = W[o, c, k-1-ky, k-1-kx], packed as the weights of a Cout -> Cin convolution.
            int kk = KernelSize * KernelSize, rows = OutChannels * kk;
            if (_flippedWeight.Length != Weight.Value.Length) _flippedWeight = new float[Weight.Value.Length];
            var wsrc = Weight.Value.Data;
            for (int o = 0; o < OutChannels; o++)
                for (int c = 0; c < InChannels; c++)
                    for (int t = 0; t < kk; t++)
                        _flippedWeight[(c * OutChannels + o) * kk + t] = wsrc[(o * InChannels + c) * kk + (kk - 1 - t)];
            if (_packedFlipped.Length != Gemm.PackedALength(InChannels, rows)) _packedFlipped = new float[Gemm.PackedALength(InChannels, rows)];
            Gemm.PackWholeA(false, _flippedWeight, rows, InChannels, rows, _packedFlipped);
        }
        Engine.ParallelFor(x.N, _backwardPart ??= BackwardPart);
        // Partial sums are added in part order: deterministic for a given thread count.
        var wg = Weight.Grad.Data;
        for (int p = 0; p < parts; p++)
            System.Numerics.Tensors.TensorPrimitives.Add(wg, ws.Sums.Weights[p].AsSpan(0, wg.Length), wg);
        if (Bias is not null)
        {
            var bg = Bias.Grad.Data;
            for (int p = 0; p < parts; p++)
                System.Numerics.Tensors.TensorPrimitives.Add(bg, ws.Sums.Biases[p].AsSpan(0, bg.Length), bg);
        }
        ws.GradOutput = null;
        return gradInput;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private unsafe void BackwardPart(int part, int begin, int end)
    {
        var ws = Workspace<Run>();
        var x = ws.Input!;
        var dy = ws.GradOutput!;
        var dx = ws.GradInput;   // null when only the parameter gradients are wanted
        bool inputGradient = ws.InputGradient;
        int k = ColumnRows, pixels = dy.H * dy.W;
        var algorithms = ws.Algorithms!;
        bool outer = algorithms.WeightGradient == WeightGradientKernel.DirectOuter;
        bool inner = algorithms.WeightGradient == WeightGradientKernel.DirectInner;
        int group = algorithms.WeightGradientGroup;
        var copy = algorithms.ForwardCopy;   // the weight gradient reads the image as the forward does
        float[]? gradT = outer ? Engine.Scratch(ScratchSlot.OuterGradient, DirectConv.OuterGradientLength(OutChannels, k)) : null;
        if (gradT is not null) Array.Clear(gradT, 0, DirectConv.OuterGradientLength(OutChannels, k));
        float[]? columns = algorithms.WeightGradient == WeightGradientKernel.Im2ColGemm ? Engine.Scratch(ScratchSlot.Columns, k * pixels) : null;
        float[]? gradColumns = algorithms.InputGradient == InputGradientKernel.GemmCol2Im && inputGradient ? Engine.Scratch(ScratchSlot.GradientColumns, k * pixels) : null;
        var weightGrad = ws.Sums.Weights[part];
        if (inner) Array.Clear(weightGrad, 0, OutChannels * k);   // the inner kernel accumulates into it; the outer one's result is transposed over it
        var biasGrad = ws.Sums.Biases[part];
        var weight = Weight.Value.Data;
        fixed (float* px = x.Data, pdy = dy.Data, pdx = dx?.Data, pwg = weightGrad, pflip = _packedFlipped, pgt = gradT)
        {
            for (int n = begin; n < end; n++)
            {
                float* xn = px + (long)n * x.SampleSize, dyn = pdy + (long)n * dy.SampleSize, dxn = pdx + (long)n * x.SampleSize;
                var dySpan = new ReadOnlySpan<float>(dyn, dy.SampleSize);
                if (outer)
                    DirectConv.AccumulateWeightGradientOuter(copy, xn, InChannels, x.H, x.W, dyn, OutChannels, KernelSize, Stride, Padding, dy.H, dy.W, pgt);
                else if (algorithms.WeightGradient == WeightGradientKernel.DirectAvx2)
                {
                    // Each image adds into this part's sum, cleared at the part's first image.
                    if (n == begin) Array.Clear(weightGrad, 0, OutChannels * k);
                    DirectConvAvx2.AccumulateWeightGradient(xn, InChannels, x.H, x.W, dyn, OutChannels, KernelSize, Stride, Padding, dy.H, dy.W, pwg);
                }
                else if (inner)
                {
                    // A group of images at a time, starting at the group's first image.
                    if ((n - begin) % group == 0)
                        DirectConv.AccumulateWeightGradient(copy, xn, Math.Min(group, end - n), x.SampleSize, InChannels, x.H, x.W,
                            dyn, dy.SampleSize, OutChannels, KernelSize, Stride, Padding, dy.H, dy.W, pwg);
                }
                else
                {
                    ReadOnlySpan<float> b = new(xn, x.SampleSize);
                    if (columns is not null)
                    {
                        Im2Col.Unfold(b, InChannels, x.H, x.W, KernelSize, Stride, Padding, dy.H, dy.W, columns);
                        b = columns.AsSpan(0, k * pixels);
                    }
                    // dW += dY_n · colᵀ
                    Gemm.Multiply(false, true, OutChannels, k, pixels, dySpan, pixels, b, pixels, weightGrad, k, accumulate: n != begin);
                }
                if (Bias is not null)
                    for (int o = 0; o < OutChannels; o++)
                    {
                        float s = System.Numerics.Tensors.TensorPrimitives.Sum(dySpan.Slice(o * pixels, pixels));
                        biasGrad[o] = n == begin ? s : biasGrad[o] + s;
                    }
                if (!inputGradient) continue;
                if (gradColumns is null)
                    Convolve(algorithms.InputGradientConvolution, algorithms.InputGradientCopy, dyn, OutChannels, dy.H, dy.W, pflip, InChannels, KernelSize, 1, KernelSize - 1 - Padding, x.H, x.W, dxn);
                else
                {
                    // dcol = Wᵀ · dY_n, folded back onto the image
                    Gemm.Multiply(true, false, k, pixels, OutChannels, weight, k, dySpan, pixels, gradColumns, pixels, accumulate: false);
                    Im2Col.Fold(gradColumns, InChannels, x.H, x.W, KernelSize, Stride, Padding, dy.H, dy.W, new Span<float>(dxn, x.SampleSize));
                }
                if (ws.AddResidual is { } residual)
                    Kernels.AddMasked(residual.Data.AsSpan(n * x.SampleSize, x.SampleSize), ws.AddMask!.Data.AsSpan(n * x.SampleSize, x.SampleSize),
                        new Span<float>(dxn, x.SampleSize));
            }
            if (gradT is not null)
            {
                int mPad = Gemm.RoundUp(OutChannels, 16);
                for (int o = 0; o < OutChannels; o++)
                    for (int t = 0; t < k; t++) pwg[(long)o * k + t] = gradT[(long)t * mPad + o];
            }
        }
    }
}
