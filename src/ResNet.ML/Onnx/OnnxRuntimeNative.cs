using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace ResNet.ML.Onnx;

/// <summary>
/// Checks, before the first <see cref="InferenceSession"/> is made, that ONNX Runtime's native library can be loaded,
/// so a missing library fails with a message that says how to get it instead of a bare DllNotFoundException.
/// </summary>
public static class OnnxRuntimeNative
{
    private static readonly object Gate = new();
    private static bool _loaded;

    /// <summary>The file name of the native library on this operating system.</summary>
    public static string LibraryFileName =>
        OperatingSystem.IsWindows() ? "onnxruntime.dll" :
        OperatingSystem.IsMacOS() ? "libonnxruntime.dylib" : "libonnxruntime.so";

    /// <summary>Loads the native library from the folder of the ONNX Runtime assembly or the usual search paths.</summary>
    /// <exception cref="OnnxRuntimeUnavailableException">When it cannot be found or loaded.</exception>
    public static void EnsureAvailable()
    {
        if (_loaded) return;
        lock (Gate)
        {
            if (_loaded) return;
            var assembly = typeof(InferenceSession).Assembly;
            string folder = Path.GetDirectoryName(assembly.Location) ?? AppContext.BaseDirectory;
            EnsureAvailable(folder, assembly);
            _loaded = true;
        }
    }

    /// <summary>Loads the native library, looking first in <paramref name="folder"/>.</summary>
    internal static void EnsureAvailable(string folder, Assembly? resolver)
    {
        string candidate = Path.Combine(folder, LibraryFileName);
        if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out _)) return;
        if (resolver is not null && NativeLibrary.TryLoad("onnxruntime", resolver, DllImportSearchPath.SafeDirectories | DllImportSearchPath.AssemblyDirectory, out _)) return;
        throw new OnnxRuntimeUnavailableException(
            $"ONNX Runtime's native library '{LibraryFileName}' was not found in '{folder}' nor on the library search path. " +
            "The app that runs must reference the NuGet package Microsoft.ML.OnnxRuntime (CPU) or Microsoft.ML.OnnxRuntime.Gpu (CUDA), " +
            "which carry it; a library needs only Microsoft.ML.OnnxRuntime.Managed.");
    }
}

/// <summary>ONNX Runtime's native library is missing or cannot be loaded.</summary>
public sealed class OnnxRuntimeUnavailableException(string message) : Exception(message);
