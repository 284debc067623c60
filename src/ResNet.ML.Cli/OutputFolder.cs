using System.Text;
using ResNet.ML.Reporting;
using System.Security.Cryptography;
using System.Text.Json;
using ResNet.ML.Training;

namespace ResNet.ML.Cli;

internal static class OutputFolder
{
    /// <summary>The file whose exclusive lock marks a folder as in use by one <c>resnet train</c>.</summary>
    internal const string LockFileName = ".resnet-train.lock";

    /// <summary>What a run leaves in its output folder; <c>--overwrite</c> removes all of it before the new run starts.</summary>
    internal static readonly string[] RunFiles = [ManifestName, "model.onnx", "model.safetensors", "metrics.json", Path.Combine("checkpoints", TrainingCheckpoint.FileName)];

    /// <summary>Written last by a finished run: its id and the size and SHA-256 of each file it wrote.</summary>
    internal const string ManifestName = "manifest.json";

    /// <summary>Creates <paramref name="folder"/> and proves it writable before hours of training, naming it when it is not.</summary>
    public static void EnsureWritable(string folder)
    {
        try
        {
            Directory.CreateDirectory(folder);
            string probe = Path.Combine(folder, $".write-test-{Guid.NewGuid():N}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"The output folder '{folder}' is not writable ({e.Message.TrimEnd('.')}); choose another with --output.", e);
        }
    }

    /// <summary>
    /// Takes the folder's lock for the life of the returned handle, or refuses naming the folder. The lock is an open
    /// file with <see cref="FileShare.None"/> (flock on Unix): the operating system drops it when the process ends in any
    /// way, so a killed run never leaves the folder locked.
    /// </summary>
    public static IDisposable Lock(string folder)
    {
        string path = Path.Combine(folder, LockFileName);
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new UsageException($"Another 'resnet train' is writing to the output folder '{folder}' (it holds the lock on '{path}': {e.Message.TrimEnd('.')}); wait for it to finish, or choose another --output.");
        }
    }

    /// <summary>
    /// Refuses to start a run over another run's checkpoint unless it continues that checkpoint or <paramref name="overwrite"/>
    /// says to replace it. Returns whether the earlier run's files are to be deleted (by <see cref="StartRun"/>, once
    /// everything else has been checked: a typo in another option must not cost the earlier run).
    /// </summary>
    public static bool CheckPreviousRun(string folder, string? resumeFrom, bool overwrite)
    {
        string checkpoint = Path.Combine(folder, "checkpoints", TrainingCheckpoint.FileName);
        bool continuing = resumeFrom is not null && string.Equals(Path.GetFullPath(resumeFrom), checkpoint, StringComparison.Ordinal);
        if (continuing) return false;
        if (overwrite) return true;
        if (File.Exists(checkpoint))
            throw new UsageException($"The output folder '{folder}' holds the checkpoint of an earlier run ('{checkpoint}'): continue it with --resume {checkpoint}, or replace that run with --overwrite.");
        return false;
    }

    /// <summary>
    /// Readies a locked folder for a run that is about to start: an earlier run's files go when it is replaced,
    /// temporaries of writes killed midway are removed, and the manifest goes, since from now on the folder's files are
    /// being replaced and it no longer vouches for them.
    /// </summary>
    public static void StartRun(string folder, bool replaceEarlierRun)
    {
        if (replaceEarlierRun)
            foreach (var file in RunFiles.Select(f => Path.Combine(folder, f)).Where(File.Exists)) File.Delete(file);
        AtomicFile.RemoveStaleTemporaries(folder);
        AtomicFile.RemoveStaleTemporaries(Path.Combine(folder, "checkpoints"));
        File.Delete(Path.Combine(folder, ManifestName));
    }

    /// <summary>model.onnx, model.safetensors and metrics.json, each atomically; a failure names its file and leaves the others.</summary>
    public static void WriteDeliverables(string folder, TrainedModel model, bool testTimeFlip = false, bool testTimeTranslate = false)
    {
        model.ExportOnnx(Path.Combine(folder, "model.onnx"), testTimeFlip: testTimeFlip, testTimeTranslate: testTimeTranslate);
        model.SaveWeights(Path.Combine(folder, "model.safetensors"));
        AtomicFile.Write(Path.Combine(folder, "metrics.json"), s => JsonSerializer.Serialize(s, model.History, new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.Write(Path.Combine(folder, "training-curves.svg"), s => s.Write(Encoding.UTF8.GetBytes(TrainingCharts.CurvesSvg(model.History, $"{model.Architecture}: loss and accuracy per epoch"))));
    }

    /// <summary>
    /// The proof that the folder's files come from one run: a new run id and each file's size and SHA-256, written last.
    /// A folder without it holds an unfinished or interrupted run; a file that does not match it was replaced since.
    /// </summary>
    public static void WriteManifest(string folder, bool withCheckpoint)
    {
        var files = new List<string> { "model.onnx", "model.safetensors", "metrics.json", "training-curves.svg" };
        if (withCheckpoint) files.Add(Path.Combine("checkpoints", TrainingCheckpoint.FileName));
        var manifest = new
        {
            run_id = Guid.NewGuid().ToString("N"),
            finished_utc = DateTime.UtcNow.ToString("O"),
            files = files.Select(f =>
            {
                using var stream = File.OpenRead(Path.Combine(folder, f));
                long bytes = stream.Length;
                return new { name = f.Replace('\\', '/'), bytes, sha256 = Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant() };
            }).ToList(),
        };
        AtomicFile.Write(Path.Combine(folder, ManifestName), s => JsonSerializer.Serialize(s, manifest, new JsonSerializerOptions { WriteIndented = true }));
    }
}
