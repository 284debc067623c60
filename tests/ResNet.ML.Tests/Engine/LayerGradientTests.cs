using ResNet.ML.Layers;

namespace ResNet.ML.Tests.Engine;

[TestClass]
public class LayerGradientTests
{
    [TestMethod] public void Conv3x3Stride1OddSizes() => GradientCheck.Run(new Conv2d("c", 3, 4, 3, 1, 1), 2, 3, 7, 5);
    // Widths that are multiples of 16 take the direct (no im2col) path: odd piece counts, channels not a multiple of 8.
    [TestMethod] public void Conv3x3DirectPath() => GradientCheck.Run(new Conv2d("c", 3, 10, 3, 1, 1), 2, 3, 5, 16, seed: 31);
    [TestMethod] public void Conv5x5DirectPathWithBias() => GradientCheck.Run(new Conv2d("c", 2, 9, 5, 1, 2, bias: true), 1, 2, 3, 32, seed: 32);
    [TestMethod] public void Conv3x3Stride2DirectPath() => GradientCheck.Run(new Conv2d("c", 3, 5, 3, 2, 1), 2, 3, 4, 16, seed: 34);
    [TestMethod] public void Conv1x1Stride2DirectPath8Wide() => GradientCheck.Run(new Conv2d("c", 4, 6, 1, 2, 0), 1, 4, 12, 16, seed: 35);
    [TestMethod] public void Conv3x3DirectPath8Wide() => GradientCheck.Run(new Conv2d("c", 5, 4, 3, 1, 1), 1, 5, 6, 8, seed: 36);
    // 32x32 outputs take the weight gradient 8 images at a time: 10 images make a full and a partial group.
    [TestMethod] public void Conv3x3DirectPathSeveralImageGroups() => GradientCheck.Run(new Conv2d("c", 2, 3, 3, 1, 1), 10, 2, 32, 32, seed: 37, maxChecksPerTensor: 24);
    [TestMethod] public void Conv3x3Stride1Batch1NoPadding() => GradientCheck.Run(new Conv2d("c", 3, 4, 3, 1, 0), 1, 3, 6, 18, seed: 33);
    [TestMethod] public void Conv3x3Stride2Batch1WithBias() => GradientCheck.Run(new Conv2d("c", 3, 5, 3, 2, 1, bias: true), 1, 3, 7, 6, seed: 2);
    // Sizes the phase-split copy cannot tile (Fashion-MNIST's 28 -> 14 -> 7): the virtual-pitch copy (stride 1) and the
    // shifted copies (stride > 1, and stride-1 sizes where virtual pixels would cost too much), with a partial last piece.
    [TestMethod] public void Conv3x3Stride1ShiftedPathTinyOutput() => GradientCheck.Run(new Conv2d("c", 2, 3, 3, 1, 1), 2, 2, 3, 5, seed: 44);
    [TestMethod] public void Conv3x3VirtualPitchPath7x7() => GradientCheck.Run(new Conv2d("c", 3, 9, 3, 1, 1), 2, 3, 7, 7, seed: 38);
    [TestMethod] public void Conv3x3VirtualPitchPathOddRectangle() => GradientCheck.Run(new Conv2d("c", 2, 5, 3, 1, 1), 2, 2, 5, 11, seed: 43);
    [TestMethod] public void Conv3x3Stride2ShiftedPath() => GradientCheck.Run(new Conv2d("c", 2, 4, 3, 2, 1), 3, 2, 14, 14, seed: 39);
    [TestMethod] public void Conv5x5Stride3ShiftedPathNoPadding() => GradientCheck.Run(new Conv2d("c", 2, 3, 5, 3, 0), 2, 2, 13, 11, seed: 40);
    // The im2col + GEMM path, which the direct kernels now cover for these sizes.
    [TestMethod] public void Conv3x3Stride1OddSizesIm2Col() => GradientCheck.Run(new Conv2d("c", 3, 4, 3, 1, 1) { AllowDirect = false }, 2, 3, 7, 5, seed: 41);
    [TestMethod] public void Conv3x3Stride2Im2ColWithBias() => GradientCheck.Run(new Conv2d("c", 3, 5, 3, 2, 1, bias: true) { AllowDirect = false }, 2, 3, 9, 6, seed: 42);
    [TestMethod] public void Conv1x1() => GradientCheck.Run(new Conv2d("c", 5, 3, 1), 2, 5, 3, 4, seed: 3);
    [TestMethod] public void Conv1x1Stride2() => GradientCheck.Run(new Conv2d("c", 4, 6, 1, 2), 3, 4, 5, 5, seed: 4);
    [TestMethod] public void Conv7x7Stride2Pad3() => GradientCheck.Run(new Conv2d("c", 2, 3, 7, 2, 3), 1, 2, 11, 9, seed: 5);
    [TestMethod] public void Conv5x5Stride3NoPadding() => GradientCheck.Run(new Conv2d("c", 2, 3, 5, 3, 0), 2, 2, 12, 10, seed: 6);
    [TestMethod] public void BatchNormTraining() => GradientCheck.Run(new BatchNorm2d("bn", 4), 3, 4, 5, 3, training: true, seed: 7);
    [TestMethod] public void BatchNormTrainingBatch1() => GradientCheck.Run(new BatchNorm2d("bn", 3), 1, 3, 3, 3, training: true, seed: 8);
    [TestMethod] public void BatchNormEval() => GradientCheck.Run(new BatchNorm2d("bn", 4), 2, 4, 3, 3, training: false, seed: 9);
    [TestMethod] public void Relu() => GradientCheck.Run(new ReLU("relu"), 2, 3, 5, 7, seed: 10);
    [TestMethod] public void MaxPool3Stride2Pad1() => GradientCheck.Run(new MaxPool2d("pool", 3, 2, 1), 2, 3, 9, 7, seed: 11);
    [TestMethod] public void MaxPool2Stride2() => GradientCheck.Run(new MaxPool2d("pool", 2, 2), 1, 2, 5, 6, seed: 12);
    [TestMethod] public void GlobalAvgPool() => GradientCheck.Run(new GlobalAvgPool2d("avgpool"), 3, 4, 5, 3, seed: 13);
    [TestMethod] public void LinearFlattens() => GradientCheck.Run(new Linear("fc", 12, 5), 3, 3, 2, 2, seed: 14);
    [TestMethod] public void LinearBatch1() => GradientCheck.Run(new Linear("fc", 7, 3), 1, 7, 1, 1, seed: 15);
    [TestMethod] public void ZeroPadShortcutStride2OddPad() => GradientCheck.Run(new ZeroPadShortcut("sc", 3, 8, 2), 2, 3, 5, 5, seed: 16);
    [TestMethod] public void ZeroPadShortcutStride1() => GradientCheck.Run(new ZeroPadShortcut("sc", 2, 4, 1), 1, 2, 3, 4, seed: 17);
    [TestMethod] public void ProjectionShortcut() => GradientCheck.Run(new ProjectionShortcut("downsample", 3, 6, 2), 2, 3, 5, 6, seed: 18);

    [TestMethod] public void BasicBlockIdentity() => GradientCheck.Run(new BasicBlock("layer1.0", 3, 3, 1, null), 2, 3, 5, 4, seed: 19);
    [TestMethod] public void BasicBlockOptionA() =>
        GradientCheck.Run(new BasicBlock("layer2.0", 3, 6, 2, new ZeroPadShortcut("layer2.0.shortcut", 3, 6, 2)), 2, 3, 7, 5, seed: 20);
    [TestMethod] public void BasicBlockOptionB() =>
        GradientCheck.Run(new BasicBlock("layer2.0", 3, 5, 2, new ProjectionShortcut("layer2.0.downsample", 3, 5, 2)), 2, 3, 6, 6, seed: 21);
    [TestMethod] public void PlainBlock() => GradientCheck.Run(new BasicBlock("layer1.0", 3, 4, 1, null, plain: true), 2, 3, 4, 5, seed: 22);
    [TestMethod] public void BottleneckBlockWithProjection() =>
        GradientCheck.Run(new BottleneckBlock("layer1.0", 5, 2, 2, new ProjectionShortcut("layer1.0.downsample", 5, 8, 2)), 2, 5, 5, 5, seed: 23);
}
