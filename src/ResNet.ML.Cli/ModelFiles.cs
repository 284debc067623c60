using ResNet.ML.Onnx;
using ResNet.ML.Training;

namespace ResNet.ML.Cli;

internal enum ModelFileKind { Onnx, Weights, Checkpoint, Unknown }

/// <summary>Tells model files apart by content, so a wrong kind gets a message saying what it is and what was expected.</summary>
internal static class ModelFiles
{
    public static ModelFileKind Detect(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException(Directory.Exists(path) ? $"'{path}' is a folder, not a model file." : $"Model file '{path}' does not exist.", path);
        using var stream = File.OpenRead(path);
        var head = new byte[16];
        int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (read >= 8)
        {
            ulong headerLength = BitConverter.ToUInt64(head, 0);
            if (headerLength is > 1 and < 100_000_000 && read > 8 && head[8] == (byte)'{')
            {
                stream.Position = 8;
                var header = new byte[Math.Min(headerLength, 1 << 20)];
                stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
                string text = System.Text.Encoding.UTF8.GetString(header);
                return text.Contains(TrainingCheckpoint.FormatName, StringComparison.Ordinal) ? ModelFileKind.Checkpoint : ModelFileKind.Weights;
            }
        }
        // An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
        if (read > 0 && head[0] == 0x08) return ModelFileKind.Onnx;
        return ModelFileKind.Unknown;
    }

    /// <summary>Loads a ResNet.ML weights file (what export, evaluate and info need to rebuild the network).</summary>
    public static TrainedModel LoadTrained(string path) => Detect(path) switch
    {
        ModelFileKind.Weights => TrainedModel.LoadWeights(path),
        ModelFileKind.Checkpoint => TrainedModel.FromCheckpoint(path),
        ModelFileKind.Onnx => throw new UsageException($"'{path}' is an ONNX model; this command needs the model.safetensors written next to it by 'resnet train'."),
        _ => throw new UsageException($"'{path}' is neither a ResNet.ML safetensors model nor an ONNX model."),
    };

    public static OnnxPredictor LoadOnnx(string path, int threads = 0) => Detect(path) switch
    {
        ModelFileKind.Onnx => OnnxPredictor.Load(path, new OnnxPredictorOptions { IntraOpThreads = threads }),
        ModelFileKind.Weights or ModelFileKind.Checkpoint => throw new UsageException($"'{path}' is a safetensors file, not an ONNX model; export it with 'resnet export --model {path} --output model.onnx'."),
        _ => throw new UsageException($"'{path}' is not an ONNX model."),
    };

    public static string[] NumberedClasses(int count)
    {
        if (count < 2) throw new UsageException($"--classes must be at least 2, not {count}.");
        return Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }
}
