using Microsoft.ML;

namespace ResNet.ML.MLNet;

/// <summary>
/// <c>mlContext.MulticlassClassification.Trainers.ResNet(...)</c>: ResNet.ML's trainer in ML.NET's trainer catalog.
/// </summary>
public static class ResNetCatalog
{
    /// <summary>
    /// Creates a <see cref="ResNetTrainer"/>, which trains a ResNet image classifier on a key-typed label and an image
    /// feature column (CHW pixels from <c>ExtractPixels</c>, or encoded image bytes from <c>LoadRawImageBytes</c>) and
    /// adds <c>Score</c> and <c>PredictedLabel</c> as ML.NET's multiclass trainers do.
    /// </summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="labelColumnName">The label column, a key type with key values (from <c>MapValueToKey</c>).</param>
    /// <param name="featureColumnName">The image column: see <see cref="ResNetTrainer"/>.</param>
    /// <param name="architecture">The ResNet.ML preset, e.g. "resnet20" (CIFAR-style) or "resnet18" (ImageNet-style).</param>
    /// <param name="epochs">Passes over the training data; null: the options' default (see <see cref="ResNet.ML.Training.ResNetTrainerOptions.Epochs"/>).</param>
    /// <param name="batchSize">Images per step; null: the options' default.</param>
    /// <param name="learningRate">Peak learning rate (SGD with momentum, cosine schedule); null: the optimizer's default.</param>
    /// <param name="seed">Seeds initialization, shuffling, splitting and augmentation.</param>
    /// <remarks>
    /// ML.NET gives catalog extensions no access to the <see cref="MLContext"/> they hang off, so the fitted model's
    /// transforms are made with an MLContext of this trainer's own (seeded with <paramref name="seed"/>); use
    /// <c>new ResNetTrainer(mlContext, options)</c> to have them made with yours.
    /// </remarks>
    public static ResNetTrainer ResNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", string architecture = "resnet20",
        int? epochs = null, int? batchSize = null, float? learningRate = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        // The defaults live once, in the options; only what the caller gave is set.
        var options = new ResNetTrainer.Options
        {
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            Architecture = architecture,
            LearningRate = learningRate,
            Seed = seed,
        };
        if (epochs is int e) options.Epochs = e;
        if (batchSize is int b) options.BatchSize = b;
        return new ResNetTrainer(new MLContext(seed), options);
    }

    /// <summary>Creates a <see cref="ResNetTrainer"/> with advanced options (every option is documented on <see cref="ResNetTrainer.Options"/>).</summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="options">The trainer's options.</param>
    public static ResNetTrainer ResNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, ResNetTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new ResNetTrainer(new MLContext(options.Seed), options);
    }
}
