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
            torch.InitializeDeviceType(DeviceType.CPU);
            return null;
        }
        catch (Exception e) when (e is NotSupportedException or DllNotFoundException or TypeInitializationException or BadImageFormatException or EntryPointNotFoundException)
        {
            return Explain(e);
        }
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    private static string Explain(Exception torchSharpError)
    {
        string lib = OperatingSystem.IsWindows() ? "LibTorchSharp.dll" : OperatingSystem.IsMacOS() ? "libLibTorchSharp.dylib" : "libLibTorchSharp.so";
        string rid = RuntimeInformation.RuntimeIdentifier;
        var candidates = new[]
        {
            Path.Combine(AppContext.BaseDirectory, lib),
            Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", lib),
            Path.Combine(AppContext.BaseDirectory, "runtimes", $"{(OperatingSystem.IsLinux() ? "linux" : OperatingSystem.IsMacOS() ? "osx" : "win")}-{RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}", "native", lib),
        };
        string? path = candidates.FirstOrDefault(File.Exists);
        if (path is null)
            return $"libtorch could not be loaded: {lib} is not beside the app ({AppContext.BaseDirectory}); the app must reference a libtorch package (libtorch-cpu-linux-x64 for CPU, a libtorch-cuda-* package for CUDA) beside TorchSharp.";
        bool libtorchThere = Directory.EnumerateFiles(Path.GetDirectoryName(path)!, OperatingSystem.IsWindows() ? "torch_cpu.dll" : "libtorch_cpu.*").Any()
            || Directory.EnumerateFiles(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "torch_cpu.dll" : "libtorch_cpu.*", SearchOption.AllDirectories).Any();
        if (!libtorchThere)
            return $"libtorch could not be loaded: {lib} is present but libtorch_cpu is not; the app must reference a libtorch package (libtorch-cpu-linux-x64 for CPU, a libtorch-cuda-* package for CUDA).";
        try
        {
            var handle = NativeLibrary.Load(path);
            NativeLibrary.Free(handle);
        }
        catch (DllNotFoundException e)
        {
            // The runtime's message ends with the dynamic loader's own text (dlerror), which names the missing library or symbol version.
            string text = e.Message.ReplaceLineEndings(" ").Trim();
            string hint = text.Contains("GLIBCXX_", StringComparison.Ordinal)
                ? " The system libstdc++ is older than the one libtorch was built with; build through ResNet.ML.TorchSharp's targets, which mark that version requirement weak in the output copy."
                : "";
            return $"libtorch could not be loaded: the dynamic loader says: {text}{hint}";
        }
        return $"libtorch could not be loaded although {lib} itself loads: {torchSharpError.GetType().Name}: {torchSharpError.Message.ReplaceLineEndings(" ").Trim()}";
    }
}
