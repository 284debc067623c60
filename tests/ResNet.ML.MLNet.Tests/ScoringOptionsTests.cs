using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;

namespace ResNet.ML.MLNet.Tests;

/// <summary>The scoring options reach ML.NET's ApplyOnnxModel: a GPU id is tried, and the CPU fallback decides what happens without one.</summary>
[TestClass]
public sealed class ScoringOptionsTests
{
    private static ITransformer Fit(MLContext ml, IDataView data, int? gpu, bool fallback) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(new ResNetTrainer(ml, new ResNetTrainer.Options
            {
                Architecture = "resnet8", FeatureColumnName = "Pixels", Epochs = 1, BatchSize = 10, ValidationFraction = 0,
                GpuDeviceId = gpu, FallbackToCpu = fallback,
            }))
            .Fit(data);

    [TestMethod]
    public void GpuDeviceId_IsPassedToApplyOnnxModel_WithItsCpuFallback()
    {
        var ml = new MLContext(seed: 5);
        var data = ml.Data.LoadFromEnumerable(ColorImages.PixelRows(30, seed: 5));
        bool cuda = OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider");

        var withFallback = Fit(ml, data, gpu: 0, fallback: true);
        var metrics = ml.MulticlassClassification.Evaluate(withFallback.Transform(data));
        Assert.IsGreaterThan(0.0, metrics.MicroAccuracy + 1e-9, "the model scores (on the GPU, or on the CPU after falling back)");

        if (!cuda)
        {
            // Without a CUDA provider, asking for GPU 0 with no fallback is refused, naming the option.
            var ex = Assert.ThrowsExactly<InvalidOperationException>(() => Fit(ml, data, gpu: 0, fallback: false));
            StringAssert.Contains(ex.Message, "GpuDeviceId");
            StringAssert.Contains(ex.Message, "CUDA");
        }
    }
}
