using ResNet.ML.Tensors;

namespace ResNet.ML.Layers;

/// <summary>How a convolution's output is computed (forward, or the input gradient taken as a convolution).</summary>
public enum ConvKernel
{
    /// <summary>The direct AVX-512 kernels over a padded copy of the image (<see cref="ConvCopy"/>).</summary>
    Direct,
    /// <summary>im2col panels packed straight into the blocked GEMM (the column matrix is never materialized).</summary>
    Im2ColGemm,
    /// <summary>AVX2 without AVX-512: 4 channels x 24 pixels a register tile over a zero-padded (for strides above 1, phase-split) copy (<see cref="DirectConvAvx2"/>).</summary>
    DirectAvx2,
}

/// <summary>How a convolution's weight gradient is accumulated.</summary>
public enum WeightGradientKernel
{
    /// <summary>Outer products, 16 output channels a vector (32+ output channels): streams dYᵀ and the image, not the weights.</summary>
    DirectOuter,
    /// <summary>Inner products over groups of images (fewer than 32 output channels, where the direct kernels serve).</summary>
    DirectInner,
    /// <summary>dY·colᵀ on a 1x1, stride-1 convolution's input as it is (no column matrix).</summary>
    PointwiseGemm,
    /// <summary>dY·colᵀ on an im2col column matrix.</summary>
    Im2ColGemm,
    /// <summary>AVX2 without AVX-512: 4 output channels x 3 taps a register tile over the padded copy and dY, per image.</summary>
    DirectAvx2,
}

/// <summary>How a convolution's input gradient is computed.</summary>
public enum InputGradientKernel
{
    /// <summary>Stride 1: a convolution of the output gradient with the transposed, flipped kernel.</summary>
    TransposedConvolution,
    /// <summary>Wᵀ·dY into columns, folded back onto the image (col2im).</summary>
    GemmCol2Im,
}

/// <summary>
/// The kernels one convolution runs for one input shape, chosen once from its geometry and the plan's
/// <see cref="EngineTuning"/> (not per call): what a <see cref="TrainingPlan"/> lists per convolution. The weight
/// gradient reads the image over the forward's geometry, so it takes <see cref="ForwardCopy"/> too.
/// </summary>
public sealed record ConvAlgorithms(
    int InputHeight, int InputWidth, EngineTuning Tuning,
    ConvKernel Forward, ConvCopy ForwardCopy,
    WeightGradientKernel WeightGradient, int WeightGradientGroup,
    InputGradientKernel InputGradient, ConvKernel InputGradientConvolution, ConvCopy InputGradientCopy)
{
    internal static ConvAlgorithms Choose(Conv2d conv, int h, int w, int oh, int ow, EngineTuning tuning, bool allowDirect)
    {
        int k = conv.KernelSize, s = conv.Stride, p = conv.Padding;
        bool avx512 = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        var forwardCopy = DirectConv.ChooseCopy(k, s, oh, ow, tuning.ForceShiftedConvolution);
        bool direct = allowDirect && DirectConv.Supports(conv.InChannels, k, forwardCopy);
        // Without AVX-512, convolutions still avoid im2col where AVX2 serves.
        ConvKernel Fallback(int stride) => allowDirect && !avx512 && DirectConvAvx2.Supports(stride) ? ConvKernel.DirectAvx2 : ConvKernel.Im2ColGemm;
        bool pointwise = k == 1 && s == 1 && p == 0;
        // Weight gradient: im2col-free where the direct kernels serve (AVX-512), else dY·colᵀ on an im2col matrix. With
        // 32+ output channels, the outer-product form, also beyond the taps the direct forward takes (256 and 512
        // channels): it streams dYᵀ and the image, not the weights (bench --ab with AB_IMAGENET=1: 11–19 % faster than
        // im2col + GEMM on ResNet-18's 14x14 and 7x7 layers). 1x1 convolutions keep their plain GEMM there.
        bool outer = conv.OutChannels >= 32 && (direct || (allowDirect && !pointwise && avx512));
        var weightGradient = outer ? WeightGradientKernel.DirectOuter
            : direct ? WeightGradientKernel.DirectInner
            : pointwise ? WeightGradientKernel.PointwiseGemm
            : Fallback(s) == ConvKernel.DirectAvx2 ? WeightGradientKernel.DirectAvx2
            : WeightGradientKernel.Im2ColGemm;
        int group = weightGradient == WeightGradientKernel.DirectInner
            ? DirectConv.WeightGradientGroup(forwardCopy, conv.InChannels, h, w, k, s, p, oh, ow, tuning.WeightGradientGroupBytes, tuning.WeightGradientGroupPixels)
            : 1;
        // The input gradient as a convolution: Cout -> Cin channels, stride 1, padding k-1-p, onto the input's h x w.
        var inputCopy = DirectConv.ChooseCopy(k, 1, h, w, tuning.ForceShiftedConvolution);
        var inputConvolution = allowDirect && DirectConv.Supports(conv.OutChannels, k, inputCopy) ? ConvKernel.Direct : Fallback(1);
        return new(h, w, tuning,
            direct ? ConvKernel.Direct : Fallback(s), forwardCopy,
            weightGradient, group,
            conv.BackwardAsConvolution ? InputGradientKernel.TransposedConvolution : InputGradientKernel.GemmCol2Im, inputConvolution, inputCopy);
    }
}
