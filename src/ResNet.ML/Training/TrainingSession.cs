using ResNet.ML.Layers;
using ResNet.ML.Tensors;

namespace ResNet.ML.Training;

/// <summary>
/// One network being trained: the network, its optimizer and its loss, advanced one step at a time.
/// <see cref="ImageClassifierTrainer"/> runs epochs, validation and checkpoints around it; the benchmark times it alone.
/// </summary>
public sealed class TrainingSession
{
    private readonly SoftmaxCrossEntropy _loss;

    private TrainingSession(Network network, ResNetTrainerOptions options)
    {
        Network = network;
        Optimizer = TrainingSetup.Optimizer(options, network.Parameters.ToList());
        _loss = new SoftmaxCrossEntropy(options.LabelSmoothing);
    }

    public Network Network { get; }
    /// <summary>The engine optimizer that <see cref="ResNetTrainerOptions.Optimizer"/> names.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>Builds <see cref="ResNetTrainerOptions.Architecture"/> for the input and classes and initializes it from <see cref="ResNetTrainerOptions.Seed"/>.</summary>
    public static TrainingSession Create(ResNetTrainerOptions options, int channels, int classes, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(options);
        var network = TrainingSetup.Network(options.Architecture, channels, classes, height, width);
        TrainingSetup.Initialize(network, options.Seed);
        return new TrainingSession(network, options);
    }

    /// <summary>Wraps a network built and initialized elsewhere.</summary>
    public static TrainingSession ForNetwork(Network network, ResNetTrainerOptions options) => new(network, options);

    /// <summary>Forward, loss, backward and one optimizer update on a normalized batch; returns the mean loss and the correct count.</summary>
    public (double Loss, int Correct) TrainStep(Tensor input, int[] labels, float learningRate, long step = -1)
    {
        var logits = Network.Forward(input, training: true);
        int correct = CountCorrect(logits, labels);
        var (loss, grad) = _loss.Compute(logits, labels, step);
        Network.ZeroGrad();
        Network.BackwardParameters(grad);
        Optimizer.LearningRate = learningRate;
        Optimizer.Step();
        return (loss, correct);
    }

    internal static int CountCorrect(Tensor logits, int[] labels)
    {
        int k = logits.C, correct = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            var row = logits.Data.AsSpan(i * k, k);
            int argmax = 0;
            for (int j = 1; j < k; j++) if (row[j] > row[argmax]) argmax = j;
            if (argmax == labels[i]) correct++;
        }
        return correct;
    }
}
