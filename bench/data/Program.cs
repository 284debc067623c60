// Measures how many images per second the BatchLoader produces, with a consumer that does nothing, so the number is
// the ceiling the data pipeline puts on training. Usage:
//   dotnet run -c Release --project bench/data [-- --images N --epochs E --workers W --batch B]
using System.Diagnostics;
using ResNet.ML.Data;
using ResNet.ML.Tensors;

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
        foreach (var b in loader.ReadEpoch(e)) { served += b.Count; checksum += b.Images.Data[0]; }
    sw.Stop();
    process.Refresh();
    double cpuSeconds = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
    long allocated = GC.GetTotalAllocatedBytes(true) - totalBefore;
    // Wall-clock rate, and the rate per CPU-second of the whole process (robust when other jobs share the cores).
    Console.WriteLine($"{name}: {served / sw.Elapsed.TotalSeconds:N0} images/s wall, {served / cpuSeconds:N0} images per CPU-second ({served} images in {sw.Elapsed.TotalSeconds:F2} s, " +
        $"workers {options.Workers}, batch {options.BatchSize}, allocated {allocated / 1024.0 / loader.BatchesPerEpoch / epochs:F1} KB per batch) [checksum {checksum:F1}]");
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
