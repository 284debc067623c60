using ResNet.ML.Layers;
using ResNet.ML.Tensors;

namespace ResNet.ML.Training;

/// <summary>
/// Softmax cross-entropy over logits [N, classes, 1, 1] and integer labels, averaged over the batch, as PyTorch's
/// <c>nn.CrossEntropyLoss(label_smoothing=ε)</c>: the target is (1−ε)·onehot + ε/classes, so
/// loss = mean over samples of −(1−ε)·log p_label − ε/classes·Σ_c log p_c. <see cref="Compute"/> also fills the
/// gradient with respect to the logits, (softmax − target)/N, into a buffer reused from call to call.
/// </summary>
public sealed class SoftmaxCrossEntropy
{
    private Tensor? _gradLogits;

    public SoftmaxCrossEntropy(float labelSmoothing = 0f)
    {
        if (!(labelSmoothing >= 0f && labelSmoothing < 1f))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), $"Label smoothing must be in [0, 1), not {labelSmoothing}.");
        LabelSmoothing = labelSmoothing;
    }

    public float LabelSmoothing { get; }

    /// <summary>
    /// The mean loss over the batch and its gradient with respect to <paramref name="logits"/> (valid until the next call).
    /// <paramref name="step"/> only names the step in the exception thrown when the loss is NaN or infinite.
    /// </summary>
    public (float Loss, Tensor GradLogits) Compute(Tensor logits, ReadOnlySpan<int> labels, long step = -1)
    {
        int n = logits.N, classes = logits.C * logits.H * logits.W;
        if (logits.H != 1 || logits.W != 1)
            throw new ShapeException($"Cross-entropy takes logits [N, classes, 1, 1], not {logits.Shape}.");
        if (labels.Length != n)
            throw new ShapeException($"Cross-entropy got {labels.Length} labels for a batch of {n} logits {logits.Shape}.");
        var grad = Tensor.Reuse(ref _gradLogits, n, logits.C, 1, 1);
        double total = 0;
        float eps = LabelSmoothing, offTarget = eps / classes, onTarget = 1f - eps + offTarget;
        for (int i = 0; i < n; i++)
        {
            int label = labels[i];
            if ((uint)label >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(labels), $"Label {label} of sample {i} is outside the {classes} classes [0, {classes - 1}].");
            var z = logits.Data.AsSpan(i * classes, classes);
            var g = grad.Data.AsSpan(i * classes, classes);
            float max = float.NegativeInfinity;
            foreach (float v in z) max = MathF.Max(max, v);
            double sumExp = 0;
            for (int c = 0; c < classes; c++) sumExp += Math.Exp(z[c] - max);
            double logSumExp = max + Math.Log(sumExp);
            double loss = -(1 - eps) * (z[label] - logSumExp);
            if (eps > 0)
            {
                double sumLogP = 0;
                for (int c = 0; c < classes; c++) sumLogP += z[c] - logSumExp;
                loss -= eps / classes * sumLogP;
            }
            total += loss;
            for (int c = 0; c < classes; c++)
            {
                double p = Math.Exp(z[c] - logSumExp);
                g[c] = (float)((p - (c == label ? onTarget : offTarget)) / n);
            }
        }
        float mean = (float)(total / n);
        if (!float.IsFinite(mean))
            throw new NonFiniteException($"Training diverged{(step >= 0 ? $" at step {step}" : "")}: the loss is {mean} (logits {logits.Shape}). Lower the learning rate or check the input data.");
        return (mean, grad);
    }
}
