using ResNet.ML.Data;
using ResNet.ML.Training;

namespace ResNet.ML.Cli;

/// <summary>Checks of train's options that need no data, so a mistake costs no loading; and warnings that change no result.</summary>
internal static class TrainChecks
{
    /// <summary>The largest --image-size: one 3-channel float image of it is already 200 MB.</summary>
    internal const int MaxImageSize = 4096;

    /// <summary>The smallest --image-size: every ResNet here halves its input at least three times.</summary>
    internal const int MinImageSize = 8;

    public static void BeforeLoading(int? imageSize, int? channels)
    {
        if (imageSize is int s && s < MinImageSize)
            throw new UsageException($"--image-size {s} is too small: give at least {MinImageSize} pixels (a ResNet halves the image three to five times).");
        if (imageSize is int l && l > MaxImageSize)
            throw new UsageException($"--image-size {l} is too large: give at most {MaxImageSize} pixels.");
        if (channels is int c && c is not (1 or 3))
            throw new UsageException($"--channels must be 1 (grayscale) or 3 (RGB), not {c}.");
    }

    /// <summary>
    /// --image-size and --channels resize and convert image folders; IDX and CIFAR data keep their own shape, so a value
    /// that does not match it is refused rather than silently ignored.
    /// </summary>
    public static void RequestUsed(ImageDataset data, int? imageSize, int? channels)
    {
        if (imageSize is int s && (data.Height != s || data.Width != s))
            throw new UsageException($"--image-size {s} does not apply to {data.Source}: its images are {data.Height}x{data.Width} and only image folders are resized; leave --image-size out.");
        if (channels is int c && data.Channels != c)
            throw new UsageException($"--channels {c} does not apply to {data.Source}: its images have {data.Channels} channel(s) and only image folders are converted; leave --channels out.");
    }

    public static void WarnThreads(CliOutput cli, int threads, TrainingCheckpoint? checkpoint)
    {
        int cores = Environment.ProcessorCount;
        if (threads > cores)
            cli.Error.WriteLine($"warning: --threads {threads} is more than the {cores} cores of this machine; the extra threads only compete for them.");
        int effective = threads > 0 ? threads : cores;
        if (checkpoint?.Threads is int saved && saved != effective)
            cli.Error.WriteLine($"warning: the checkpoint was made with {saved} threads, this run uses {effective}: the thread count changes the order of sums, so the result will differ slightly from an uninterrupted run (resume with --threads {saved} to match it).");
    }
}
