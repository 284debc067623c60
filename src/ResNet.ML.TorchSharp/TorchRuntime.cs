using System.Runtime.InteropServices;
using TorchSharp;

namespace ResNet.ML.TorchSharp;

/// <summary>libtorch could not be loaded; the message is one sentence with the loader's own reason.</summary>
public sealed class TorchUnavailableException(string message, Exception? inner = null) : InvalidOperationException(message, inner);

/// <summary>
/// Loads libtorch once per process and, when that fails, says why in one sentence. TorchSharp's own message blames a
/// missing package reference even when the package is there and the real cause is the dynamic loader's (on Debian 12:
/// <c>GLIBCXX_3.4.32 not found</c>), so on failure this loads <c>libLibTorchSharp</c> itself to get the loader's text.
/// Call <see cref="EnsureLoaded"/> before the first use of <c>torch.*</c> in an app: torch's static constructor loads
/// libtorch, and the OpenMP setting made here must come first.
/// </summary>
public static class TorchRuntime
{
    private static readonly Lazy<string?> Failure = new(TryLoad, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Null when libtorch is loaded; else why not.</summary>
    public static string? FailureReason => Failure.Value;

    /// <summary>Whether libtorch loads in this process.</summary>
    public static bool IsAvailable => Failure.Value is null;

    /// <summary>Throws <see cref="TorchUnavailableException"/> (with the loader's reason) unless libtorch is loaded.</summary>
    public static void EnsureLoaded()
    {
        if (Failure.Value is { } reason) throw new TorchUnavailableException(reason);
    }

    /// <summary>Whether a CUDA libtorch is loaded and sees at least one device.</summary>
    public static bool CudaAvailable
    {
        get
        {
            if (!IsAvailable) return false;
            try { return torch.cuda.is_available(); }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or InvalidOperationException or NotSupportedException) { return false; }
        }
    }

    /// <summary>The OpenMP wait policy libtorch's threads get when the environment sets none (see <see cref="TryLoad"/>).</summary>
    public const string DefaultOmpWaitPolicy = "PASSIVE";

    private static string? TryLoad()
    {
        try
        {
            // libtorch's OpenMP threads spin after each parallel region by default. When the cores are shared (the data
            // loader's threads, other processes) the spinning starves the work: on 2 busy cores a tiny ResNet's step took
            // 1,580 ms spinning and 59 ms passive. libgomp reads the variable once, when it loads, and .NET's
            // Environment.SetEnvironmentVariable does not reach the C environment on Unix, hence setenv; an explicit
            // OMP_WAIT_POLICY from the user is kept.
            if (!OperatingSystem.IsWindows() && Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null)
                _ = SetEnv("OMP_WAIT_POLICY", DefaultOmpWaitPolicy, 0);
            MallocTuning = TuneMalloc();
            torch.InitializeDeviceType(DeviceType.CPU);
            return null;
        }
        catch (Exception e) when (e is NotSupportedException or DllNotFoundException or TypeInitializationException or BadImageFormatException or EntryPointNotFoundException)
        {
            return Explain(e, AppContext.BaseDirectory);
        }
    }

    /// <summary>The allocator thresholds set for libtorch's tensors (see <see cref="TuneMalloc"/>), or why none were.</summary>
    public static string MallocTuning { get; private set; } = "not loaded";

    /// <summary>glibc's mmap threshold fixed at its 32 MB ceiling, so tensors below it come from the heap (see <see cref="TuneMalloc"/>).</summary>
    public const int MmapThresholdBytes = 32 << 20;

    /// <summary>glibc's trim threshold: freed heap memory up to this much stays in the process for the next step's tensors.</summary>
    public const int TrimThresholdBytes = 1 << 30;

    // libtorch's CPU allocator takes every tensor from malloc. A ResNet step frees and re-allocates the same few-MB
    // activations and gradients hundreds of times; glibc serves blocks above its (dynamic) mmap threshold by mmap, and
    // trims freed heap tops back to the system, so many steps page-fault through fresh zeroed pages: the 1-channel stem
    // convolution at 28x28 took 4.9 ms forward against 0.31 ms with the thresholds fixed, and a ResNet-20 TrainStep
    // 233 ms against 198 (bench/BENCHMARKS.md, "why the TorchSharp backend trails"). mallopt works at any time and
    // touches only thresholds; a malloc setting the user made (GLIBC_TUNABLES, MALLOC_*_) is kept.
    private static string TuneMalloc()
    {
        if (!OperatingSystem.IsLinux()) return "left alone (not Linux)";
        string? tunables = Environment.GetEnvironmentVariable("GLIBC_TUNABLES");
        if ((tunables?.Contains("glibc.malloc.", StringComparison.Ordinal) ?? false)
            || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null
            || Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is not null)
            return "left alone (the environment sets malloc options)";
        const int M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3;
        try
        {
            // mallopt returns 1 on success; musl and others may lack it or ignore it, which costs only the speed-up.
            bool ok = MallOpt(M_MMAP_THRESHOLD, MmapThresholdBytes) == 1 & MallOpt(M_TRIM_THRESHOLD, TrimThresholdBytes) == 1;
            return ok ? $"mmap threshold {MmapThresholdBytes >> 20} MB, trim threshold {TrimThresholdBytes >> 20} MB" : "left alone (mallopt refused)";
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return "left alone (no mallopt)";
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    /// <summary>
    /// Why libtorch did not load from <paramref name="baseDirectory"/>, in one sentence; <paramref name="libraryPath"/>
    /// overrides where libLibTorchSharp is looked for (tests point it at an unpatched copy).
    /// </summary>
    internal static string Explain(Exception torchSharpError, string baseDirectory, string? libraryPath = null)
    {
        string lib = OperatingSystem.IsWindows() ? "LibTorchSharp.dll" : OperatingSystem.IsMacOS() ? "libLibTorchSharp.dylib" : "libLibTorchSharp.so";
        string rid = RuntimeInformation.RuntimeIdentifier;
        var candidates = new[]
        {
            Path.Combine(baseDirectory, lib),
            Path.Combine(baseDirectory, "runtimes", rid, "native", lib),
            Path.Combine(baseDirectory, "runtimes", $"{(OperatingSystem.IsLinux() ? "linux" : OperatingSystem.IsMacOS() ? "osx" : "win")}-{RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}", "native", lib),
        };
        string? path = libraryPath ?? candidates.FirstOrDefault(File.Exists);
        if (path is null)
            return $"libtorch could not be loaded: {lib} is not beside the app ({baseDirectory}); the app must reference a libtorch package (libtorch-cpu-linux-x64 for CPU, a libtorch-cuda-* package for CUDA) beside TorchSharp.";
        bool libtorchThere = Directory.EnumerateFiles(Path.GetDirectoryName(path)!, OperatingSystem.IsWindows() ? "torch_cpu.dll" : "libtorch_cpu.*").Any()
            || Directory.EnumerateFiles(baseDirectory, OperatingSystem.IsWindows() ? "torch_cpu.dll" : "libtorch_cpu.*", SearchOption.AllDirectories).Any();
        if (!libtorchThere)
            return $"libtorch could not be loaded: {lib} is present but libtorch_cpu is not; the app must reference a libtorch package (libtorch-cpu-linux-x64 for CPU, a libtorch-cuda-* package for CUDA).";
        try
        {
            var handle = NativeLibrary.Load(path);
            NativeLibrary.Free(handle);
        }
        catch (DllNotFoundException e)
        {
            // .NET's message wraps the dynamic loader's own text (dlerror) in advice sentences; the loader's text is the cause.
            string text = e.Message.ReplaceLineEndings(" ").Trim();
            const string marker = "LD_DEBUG environment variable:";
            int at = text.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0) text = text[(at + marker.Length)..].Trim();
            string hint = text.Contains("GLIBCXX_", StringComparison.Ordinal)
                ? " (the system libstdc++ is older than the one TorchSharp was built with; ResNet.ML.TorchSharp's build targets mark that version weak in the app's copy of the library, so build the app with them)"
                : "";
            return $"libtorch could not be loaded: the dynamic loader says \"{text.TrimEnd('.')}\"{hint}.";
        }
        return $"libtorch could not be loaded although {lib} itself loads: {torchSharpError.GetType().Name}: {torchSharpError.Message.ReplaceLineEndings(" ").Trim()}";
    }
}
