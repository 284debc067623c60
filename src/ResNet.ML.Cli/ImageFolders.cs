using ResNet.ML.Data;

namespace ResNet.ML.Cli;

/// <summary>Image folders (one subfolder per class) and single image files, decoded to a model's or the user's size.</summary>
internal static class ImageFolders
{
    /// <summary>
    /// Loads a class-per-subfolder folder into memory. Without --image-size every image must have the same size (it is
    /// taken as the input size); mixed sizes are refused with the two sizes found and the option to pass.
    /// </summary>
    public static ImageDataset Load(string root, DataRequest request)
    {
        int channels = request.Channels ?? 3;
        if (channels is not (1 or 3)) throw new ArgumentException($"--channels must be 1 (grayscale) or 3 (RGB), not {channels}.");
        int height, width;
        if (request.ImageSize is int size)
        {
            if (size <= 0) throw new ArgumentException($"--image-size must be positive, not {size}.");
            (height, width) = (size, size);
        }
        else (height, width) = CommonSize(root, channels, request.SkipBadImages);
        var loaded = ImageFolder.Load(root, new ImageFolderOptions { Channels = channels, Height = height, Width = width, SkipBadImages = request.SkipBadImages });
        if (loaded.SkippedCount > 0)
            request.Warnings?.WriteLine($"warning: skipped {loaded.SkippedCount} image(s) that could not be decoded, e.g. {loaded.SkippedFiles[0]}");
        return loaded.Dataset;
    }

    private static (int Height, int Width) CommonSize(string root, int channels, bool skipBadImages)
    {
        (int H, int W, string File)? first = null;
        foreach (var file in ImageFiles(root, recursive: true))
        {
            DecodedImage image;
            try { image = ImageDecoder.Decode(File.ReadAllBytes(file), channels, file); }
            catch (ImageDecodeException) when (skipBadImages) { continue; }
            if (first is null) first = (image.Height, image.Width, file);
            else if (first.Value.H != image.Height || first.Value.W != image.Width)
                throw new ArgumentException($"The images in '{root}' have mixed sizes ({first.Value.File} is {first.Value.W}x{first.Value.H}, {file} is {image.Width}x{image.Height}); pass --image-size S to resize them all to SxS.");
        }
        if (first is null) throw new ArgumentException($"'{root}' holds no PNG or JPEG images (expected one subfolder of images per class).");
        return (first.Value.H, first.Value.W);
    }

    /// <summary>PNG and JPEG files under <paramref name="path"/> (a file itself, or a folder), sorted.</summary>
    public static IEnumerable<string> ImageFiles(string path, bool recursive)
    {
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path)) throw new FileNotFoundException($"'{path}' does not exist.", path);
        return Directory.EnumerateFiles(path, "*", recursive ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly)
            .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg")
            .Order(StringComparer.Ordinal);
    }
}
