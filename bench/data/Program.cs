// Measures how many images per second the BatchLoader produces, with a consumer that does nothing, so the number is
// the ceiling the data pipeline puts on training. Usage:
//   dotnet run -c Release --project bench/data [-- --images N --epochs E --workers W --batch B]
// Image folders: --folder DIR [--size S] adds a decode run over DIR; --make-folder DIR [--count N] first writes N
// synthetic ImageNet-sized JPEGs (the folder the decoder benchmark in BENCHMARKS.md uses) and exits.
using System.Diagnostics;
using ResNet.ML.Data;
using ResNet.ML.Tensors;
using SkiaSharp;

int makeArg = Array.IndexOf(args, "--make-folder");
if (makeArg >= 0)
{
    MakeFolder(args[makeArg + 1], Arg("--count", 500));
    return;
}

int images = Arg("--images", 50_000), epochs = Arg("--epochs", 3), workers = Arg("--workers", 1), batch = Arg("--batch", 128);

// CIFAR-10-sized synthetic set: 3x32x32 bytes (the values do not matter to the cost).
var rng = new Rng(1);
var pixels = new byte[images * 3072];
for (int i = 0; i < pixels.Length; i += 8) BitConverter.TryWriteBytes(pixels.AsSpan(i), rng.NextULong());
var labels = Enumerable.Range(0, images).Select(i => i % 10).ToArray();
var cifar = ImageDataset.FromBytes(pixels, labels, 3, 32, 32, Cifar.Cifar10ClassNames, "synthetic CIFAR");
var norm = Normalization.Compute(cifar, maxImages: 5000);

Run("CIFAR 3x32x32, pad4+crop+flip+normalize", cifar, new BatchLoaderOptions { BatchSize = batch, Workers = workers, Augmentation = Augmentation.CifarPaper, Normalization = norm });
Run("CIFAR 3x32x32, pad4+crop+flip+normalize, on the consumer thread (Workers = 0)", cifar, new BatchLoaderOptions { BatchSize = batch, Workers = 0, Augmentation = Augmentation.CifarPaper, Normalization = norm });
Run("CIFAR 3x32x32, random-resized-crop+flip+normalize", cifar, new BatchLoaderOptions { BatchSize = batch, Workers = workers, Augmentation = Augmentation.ImageNet, Normalization = norm });

string subset = Path.Combine(FindRepoRoot(), FashionMnist.SubsetDirectory);
var fashion = FashionMnist.LoadIdx(subset);
Run("Fashion-MNIST subset 1x28x28, pad4+crop+flip", fashion, new BatchLoaderOptions { BatchSize = batch, Workers = workers, Augmentation = Augmentation.CifarPaper, Normalization = Normalization.Compute(fashion) });

// Optional: a folder of PNG/JPEG images (torchvision ImageFolder layout), decoded and augmented on the fly.
int folderArg = Array.IndexOf(args, "--folder");
if (folderArg >= 0)
{
    int size = Arg("--size", 224);
    var folder = ImageFolder.Open(args[folderArg + 1], new ImageFolderOptions { Height = size, Width = size });
    Run($"folder {args[folderArg + 1]} ({folder.Count} images) decoded to 3x{size}x{size}, random-resized-crop+flip+ImageNet normalization", folder,
        new BatchLoaderOptions { BatchSize = Math.Min(batch, 64), Workers = workers, Augmentation = Augmentation.ImageNet, Normalization = Normalization.ImageNet });
}

void Run(string name, ImageDataset ds, BatchLoaderOptions options)
{
    var loader = new BatchLoader(ds, options);
    foreach (var _ in loader.ReadEpoch(0)) { }   // warm-up: JIT, buffers
    long gcBefore = GC.GetAllocatedBytesForCurrentThread();
    long totalBefore = GC.GetTotalAllocatedBytes(true);
    var process = Process.GetCurrentProcess();
    var cpuBefore = process.TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    long served = 0;
    double checksum = 0;
    for (int e = 1; e <= epochs; e++)
        foreach (var b in loader.ReadEpoch(e)) { served += b.Count; checksum += b.Pixels[0]; }
    sw.Stop();
    process.Refresh();
    double cpuSeconds = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
    long allocated = GC.GetTotalAllocatedBytes(true) - totalBefore;
    // Wall-clock rate, and the rate per CPU-second of the whole process (robust when other jobs share the cores).
    Console.WriteLine($"{name}: {served / sw.Elapsed.TotalSeconds:N0} images/s wall, {served / cpuSeconds:N0} images per CPU-second ({served} images in {sw.Elapsed.TotalSeconds:F2} s, " +
        $"workers {options.Workers}, batch {options.BatchSize}, allocated {allocated / 1024.0 / loader.BatchesPerEpoch / epochs:F1} KB per batch) [checksum {checksum:F1}]");
}

// ImageNet-like files: 10 classes, sizes around ImageNet's typical 500x375 and 500x333 (both orientations), quality 90,
// 4:2:0. The content mixes smooth gradients, shapes and pixel noise so the entropy decoder has photo-like work; the
// sizes make the 224 target use a full-scale decode (the reduced 1/2 image would not cover 224), the common ImageNet case.
void MakeFolder(string root, int count)
{
    var r = new Rng(7);
    for (int i = 0; i < count; i++)
    {
        bool portrait = r.NextInt(4) == 0;
        int w = 400 + r.NextInt(101), h = 300 + r.NextInt(76);
        if (portrait) (w, h) = (h, w);
        using var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var px = new byte[w * h * 4];
        int cx = r.NextInt(w), cy = r.NextInt(h), radius = 40 + r.NextInt(120);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int o = 4 * (y * w + x), noise = r.NextInt(48) - 24;
                bool inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < radius * radius;
                px[o] = (byte)Math.Clamp(x * 255 / w + noise, 0, 255);
                px[o + 1] = (byte)Math.Clamp((inside ? 220 : y * 255 / h) + noise, 0, 255);
                px[o + 2] = (byte)Math.Clamp(128 + (int)(90 * Math.Sin((x + 2 * y) / 23.0)) + noise, 0, 255);
                px[o + 3] = 255;
            }
        System.Runtime.InteropServices.Marshal.Copy(px, 0, bitmap.GetPixels(), px.Length);
        string dir = Path.Combine(root, $"class{i % 10}");
        Directory.CreateDirectory(dir);
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
        File.WriteAllBytes(Path.Combine(dir, $"img{i:D5}.jpg"), data.ToArray());
    }
    Console.WriteLine($"wrote {count} JPEGs under {root}");
}

int Arg(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
}

static string FindRepoRoot()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "ResNet.ML.sln"))) return d.FullName;
    throw new InvalidOperationException("ResNet.ML.sln not found above the benchmark.");
}
