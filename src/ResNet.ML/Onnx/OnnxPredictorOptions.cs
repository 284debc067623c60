using Microsoft.ML.OnnxRuntime;

namespace ResNet.ML.Onnx;

/// <summary>How <see cref="OnnxPredictor"/> sets up its ONNX Runtime session; every setting has the default documented on it.</summary>
public sealed class OnnxPredictorOptions
{
    /// <summary>Threads ONNX Runtime uses inside one operator (a convolution). Default 0: ONNX Runtime's choice (one per physical core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Threads for running independent operators in parallel (used only in parallel execution mode). Default 0: ONNX Runtime's choice.</summary>
    public int InterOpThreads { get; init; }

    /// <summary>Default <see cref="GraphOptimizationLevel.ORT_ENABLE_ALL"/>.</summary>
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Default <see cref="Microsoft.ML.OnnxRuntime.ExecutionMode.ORT_SEQUENTIAL"/> (a ResNet is a chain; parallel mode rarely pays).</summary>
    public ExecutionMode ExecutionMode { get; init; } = ExecutionMode.ORT_SEQUENTIAL;

    /// <summary>Ask for ONNX Runtime's CUDA execution provider. Default false (CPU).</summary>
    public bool UseGpu { get; init; }

    /// <summary>CUDA device when <see cref="UseGpu"/> is set. Default 0.</summary>
    public int GpuDeviceId { get; init; }

    /// <summary>
    /// When <see cref="UseGpu"/> is set but the CUDA provider is absent (a CPU-only ONNX Runtime, no CUDA libraries),
    /// run on the CPU and report it through <see cref="Warning"/> (true, default), or fail with
    /// <see cref="GpuUnavailableException"/> (false).
    /// </summary>
    public bool AllowCpuFallback { get; init; } = true;

    /// <summary>Receives warnings such as the CPU fallback. Default null: they are written to <see cref="Console.Error"/>.</summary>
    public Action<string>? Warning { get; init; }

    /// <summary>
    /// The input the caller will feed, checked against the model when it loads: channels, height, width. Default
    /// null (taken from the model). A model whose input disagrees fails to load with a message naming the file.
    /// </summary>
    public int? ExpectedChannels { get; init; }

    /// <inheritdoc cref="ExpectedChannels"/>
    public int? ExpectedHeight { get; init; }

    /// <inheritdoc cref="ExpectedChannels"/>
    public int? ExpectedWidth { get; init; }

    /// <summary>Class names to report, overriding the model's <c>class_names</c> metadata. Default null (from the metadata, else "0", "1", ...).</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }
}

/// <summary>The CUDA execution provider was asked for, is not available, and CPU fallback is disabled.</summary>
public sealed class GpuUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
