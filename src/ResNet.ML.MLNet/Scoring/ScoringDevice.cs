using ResNet.ML.Training;

namespace ResNet.ML.MLNet.Scoring;

/// <summary>
/// Where the fitted model scores: the GPU id and CPU fallback handed to ML.NET's ApplyOnnxModel.
/// </summary>
/// <remarks>
/// The rule, first match wins:
/// <list type="number">
/// <item>The option <c>GpuDeviceId</c>, with <c>FallbackToCpu</c>.</item>
/// <item>ML.NET's context-wide <c>MLContext.GpuDeviceId</c>, with <c>MLContext.FallbackToCpu</c>.</item>
/// <item><c>Device = Cpu</c>: the CPU, for scoring as for training.</item>
/// <item>Otherwise (<c>Auto</c>, <c>Cuda</c>): GPU 0 with a CPU fallback when the ONNX Runtime the app loaded has the CUDA
/// provider (the app references Microsoft.ML.OnnxRuntime.Gpu), else the CPU.</item>
/// </list>
/// ML.NET falls back to the CPU only when ONNX Runtime reports a CUDA error; an ONNX Runtime built without CUDA (the
/// CPU package) lacks the entry point altogether, which ML.NET does not catch. So without a CUDA provider an asked-for
/// GPU is dropped here when a fallback is allowed, and refused, naming the option, when it is not.
/// </remarks>
internal static class ScoringDevice
{
    public static (int? GpuDeviceId, bool FallbackToCpu) Resolve(int? optionGpu, bool optionFallback, int? contextGpu, bool contextFallback,
        TrainingDevice device, IReadOnlyCollection<string> providers)
    {
        bool cuda = providers.Contains(Onnx.OnnxPredictor.CudaProvider);
        if (optionGpu is not null) return Asked(optionGpu.Value, optionFallback, cuda, "Option GpuDeviceId", providers);
        if (contextGpu is not null) return Asked(contextGpu.Value, contextFallback, cuda, "MLContext.GpuDeviceId", providers);
        if (device == TrainingDevice.Cpu || !cuda) return (null, false);
        return (0, true);
    }

    private static (int?, bool) Asked(int gpu, bool fallback, bool cuda, string what, IReadOnlyCollection<string> providers)
    {
        if (cuda) return (gpu, fallback);
        if (fallback) return (null, false);
        throw new InvalidOperationException(
            $"{what} is {gpu}, but this ONNX Runtime has no CUDA execution provider (it offers {string.Join(", ", providers)}); " +
            "reference Microsoft.ML.OnnxRuntime.Gpu instead of Microsoft.ML.OnnxRuntime in the app, or allow the CPU fallback (FallbackToCpu) to score on the CPU.");
    }
}
