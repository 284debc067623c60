using ResNet.ML.Data;
using ResNet.ML.Tensors;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Reliability;

/// <summary>Issue 15, case 8: random erasing fills with the dataset mean, i.e. 0 after the model's normalization.</summary>
[TestClass]
public sealed class RandomErasingTests
{
    [TestMethod]
    public void ErasedPixels_Are0AfterTheTrainersNormalization()
    {
        // Constant images: every pixel but the erased ones normalizes to (200/255 - 0.3) / 0.2.
        const int n = 16;
        var pixels = Enumerable.Repeat(200f, n * 64).ToArray();
        var data = ImageDataset.FromFloats(pixels, Enumerable.Range(0, n).Select(i => i % 2).ToArray(), 1, 8, 8, ["a", "b"]);
        var source = new ImageDatasetSource(data, new Augmentation { RandomErasing = new RandomErasing(Probability: 1) });
        var options = TinyOptions();
        options.Epochs = 1;
        options.ValidationFraction = 0;
        options.Normalization = new Normalization(1 / 255f, [0.3f], [0.2f]);
        var model = new ImageClassifierTrainer(options).Fit(source);

        float kept = (200 / 255f - 0.3f) / 0.2f;
        int erased = 0;
        foreach (var batch in source.ReadEpoch(0, 0, 8, training: true, seed: options.Seed))
        {
            var input = new Tensor(batch.Count, 1, 8, 8);
            batch.Pixels.AsSpan(0, batch.Count * 64).CopyTo(input.Data);
            model.Normalization.Apply(input);
            foreach (float v in input.Data)
            {
                if (Math.Abs(v - kept) < 1e-4f) continue;
                Assert.AreEqual(0f, v, 1e-5f, "an erased pixel is not the normalized mean");
                erased++;
            }
        }
        Assert.IsGreaterThan(0, erased, "nothing was erased");
    }
}
