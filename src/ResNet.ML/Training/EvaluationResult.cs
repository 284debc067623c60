using System.Text;

namespace ResNet.ML.Training;

/// <summary>How a model does on a labelled dataset.</summary>
public sealed class EvaluationResult
{
    internal EvaluationResult(IReadOnlyList<string> classNames, long[,] confusion, double lossSum, long top1, long top5, long count)
    {
        ClassNames = classNames;
        ConfusionMatrix = confusion;
        Count = count;
        Loss = count == 0 ? double.NaN : lossSum / count;
        Top1Accuracy = count == 0 ? double.NaN : (double)top1 / count;
        Top5Accuracy = count == 0 ? double.NaN : (double)top5 / count;
        int k = classNames.Count;
        var precision = new double[k];
        var recall = new double[k];
        for (int c = 0; c < k; c++)
        {
            long tp = confusion[c, c], predicted = 0, actual = 0;
            for (int j = 0; j < k; j++) { predicted += confusion[j, c]; actual += confusion[c, j]; }
            precision[c] = predicted == 0 ? double.NaN : (double)tp / predicted;
            recall[c] = actual == 0 ? double.NaN : (double)tp / actual;
        }
        Precision = precision;
        Recall = recall;
    }

    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Images evaluated.</summary>
    public long Count { get; }
    /// <summary>Mean cross-entropy (no label smoothing).</summary>
    public double Loss { get; }
    public double Top1Accuracy { get; }
    /// <summary>Whether the true class is among the five most probable (all classes count when there are fewer than five).</summary>
    public double Top5Accuracy { get; }
    /// <summary>Per class: of the images predicted as the class, the fraction that are (NaN when none was predicted).</summary>
    public IReadOnlyList<double> Precision { get; }
    /// <summary>Per class: of the images of the class, the fraction predicted as it (NaN when the class has no images).</summary>
    public IReadOnlyList<double> Recall { get; }
    /// <summary>[actual, predicted] image counts.</summary>
    public long[,] ConfusionMatrix { get; }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{Count} images: loss {Loss:F4}, top-1 {Top1Accuracy:P2}, top-5 {Top5Accuracy:P2}");
        for (int c = 0; c < ClassNames.Count; c++)
            sb.AppendLine($"  {ClassNames[c],-20} precision {Precision[c]:P1}  recall {Recall[c]:P1}");
        return sb.ToString();
    }
}

/// <summary>Accumulates an <see cref="EvaluationResult"/> batch by batch from logits.</summary>
public sealed class EvaluationAccumulator(IReadOnlyList<string> classNames)
{
    private readonly long[,] _confusion = new long[classNames.Count, classNames.Count];
    private double _lossSum;
    private long _top1, _top5, _count;

    /// <summary>Adds one batch: logits [n x k] row-major, true labels.</summary>
    public void Add(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels)
    {
        int k = classNames.Count;
        for (int i = 0; i < labels.Length; i++)
        {
            var row = logits.Slice(i * k, k);
            int label = labels[i];
            float max = float.NegativeInfinity;
            int argmax = 0;
            for (int j = 0; j < k; j++) if (row[j] > max) { max = row[j]; argmax = j; }
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(row[j] - max);
            _lossSum += Math.Log(sum) - (row[label] - max);
            int higher = 0;   // classes ranked strictly above the true one
            for (int j = 0; j < k; j++) if (row[j] > row[label]) higher++;
            if (argmax == label) _top1++;
            if (higher < 5) _top5++;
            _confusion[label, argmax]++;
            _count++;
        }
    }

    public EvaluationResult Result() => new(classNames, _confusion, _lossSum, _top1, _top5, _count);
}
