using System.Runtime.InteropServices;

namespace ResNet.ML.Data;

/*
 * Why native decoders and not managed ones: libjpeg-turbo and libpng are the reference decoders of their formats. They
 * handle every variant real image folders contain (progressive and arithmetic-coded JPEG, restart markers, 4:2:2/4:4:0
 * subsampling, palette/16-bit/interlaced/tRNS PNG, gamma), are SIMD-accelerated (JPEG decoding is the cost of a folder
 * pipeline), and have been fuzzed for a decade against malformed input. A managed JPEG decoder of that quality is a
 * project of its own, and Debian ships both libraries (libturbojpeg0, libpng16-16) on every desktop and most servers.
 * We use only their small stable C APIs (TurboJPEG; libpng's "simplified" png_image API), loaded on first use through
 * NativeLibrary + function pointers: no assembly-wide DllImport resolver (ONNX Runtime's loader owns that), and a missing
 * library fails with a message naming the package to install.
 */

/// <summary>Loads a native library by its usual file names, or fails naming the package that provides it.</summary>
internal static class NativeLibraryLoader
{
    public static nint Load(string what, string[] candidates, string debianPackage)
    {
        foreach (string name in candidates)
            if (NativeLibrary.TryLoad(name, typeof(NativeLibraryLoader).Assembly, DllImportSearchPath.SafeDirectories, out nint handle))
                return handle;
        throw new DllNotFoundException(
            $"{what} needs the native library {candidates[0]}, which could not be loaded (tried {string.Join(", ", candidates)}). " +
            $"On Debian/Ubuntu install it with: sudo apt-get install {debianPackage}");
    }
}

/// <summary>libjpeg-turbo's TurboJPEG API (libturbojpeg.so.0, Debian package libturbojpeg0).</summary>
internal static unsafe class TurboJpeg
{
    public const int PixelFormatRgb = 0;            // TJPF_RGB
    public const int FlagAccurateDct = 4096;        // TJFLAG_ACCURATEDCT: libjpeg's default islow IDCT, as PIL uses
    public const int FlagLimitScans = 32768;        // TJFLAG_LIMITSCANS: refuse progressive JPEGs with absurd scan counts
    public const int ErrorFatal = 1;                // TJERR_FATAL (0 is TJERR_WARNING)
    public const int ColorspaceCmyk = 3, ColorspaceYcck = 4;

    private static readonly Lazy<Api> Functions = new(() =>
    {
        nint lib = NativeLibraryLoader.Load("Decoding JPEG images",
            ["libturbojpeg.so.0", "libturbojpeg.so", "libturbojpeg.0.dylib", "libturbojpeg.dylib", "turbojpeg.dll", "turbojpeg"], "libturbojpeg0");
        return new Api
        {
            InitDecompress = (delegate* unmanaged<nint>)NativeLibrary.GetExport(lib, "tjInitDecompress"),
            DecompressHeader3 = (delegate* unmanaged<nint, byte*, CULong, int*, int*, int*, int*, int>)NativeLibrary.GetExport(lib, "tjDecompressHeader3"),
            Decompress2 = (delegate* unmanaged<nint, byte*, CULong, byte*, int, int, int, int, int, int>)NativeLibrary.GetExport(lib, "tjDecompress2"),
            GetErrorStr2 = (delegate* unmanaged<nint, byte*>)NativeLibrary.GetExport(lib, "tjGetErrorStr2"),
            GetErrorCode = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(lib, "tjGetErrorCode"),
            Destroy = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(lib, "tjDestroy"),
        };
    });

    public static Api Get() => Functions.Value;

    public sealed class Api
    {
        public delegate* unmanaged<nint> InitDecompress;
        public delegate* unmanaged<nint, byte*, CULong, int*, int*, int*, int*, int> DecompressHeader3;
        public delegate* unmanaged<nint, byte*, CULong, byte*, int, int, int, int, int, int> Decompress2;
        public delegate* unmanaged<nint, byte*> GetErrorStr2;
        public delegate* unmanaged<nint, int> GetErrorCode;
        public delegate* unmanaged<nint, int> Destroy;

        public string ErrorText(nint handle) => Marshal.PtrToStringUTF8((nint)GetErrorStr2(handle)) ?? "unknown TurboJPEG error";
    }
}

/// <summary>libpng's simplified read API (libpng16.so.16, Debian package libpng16-16).</summary>
internal static unsafe class LibPng
{
    public const uint ImageVersion = 1;             // PNG_IMAGE_VERSION
    public const uint FormatRgba = 3;               // PNG_FORMAT_RGBA: 8-bit sRGB, alpha not premultiplied
    public const uint FormatFlagLinear = 4;         // PNG_FORMAT_FLAG_LINEAR: 16-bit linear samples, alpha premultiplied
    public const uint WarningOrErrorMask = 3;
    public const uint Error = 2;                    // PNG_IMAGE_ERROR

    /// <summary>png_image, field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PngImage
    {
        public nint Opaque;
        public uint Version;
        public uint Width;
        public uint Height;
        public uint Format;
        public uint Flags;
        public uint ColormapEntries;
        public uint WarningOrError;
        public fixed byte Message[64];

        public readonly string MessageText()
        {
            fixed (byte* m = Message) return Marshal.PtrToStringUTF8((nint)m) ?? "";
        }
    }

    private static readonly Lazy<Api> Functions = new(() =>
    {
        nint lib = NativeLibraryLoader.Load("Decoding PNG images",
            ["libpng16.so.16", "libpng16.so", "libpng16.16.dylib", "libpng16.dylib", "libpng16.dll", "libpng16-16.dll", "png16"], "libpng16-16");
        return new Api
        {
            BeginReadFromMemory = (delegate* unmanaged<PngImage*, byte*, nuint, int>)NativeLibrary.GetExport(lib, "png_image_begin_read_from_memory"),
            FinishRead = (delegate* unmanaged<PngImage*, void*, void*, int, void*, int>)NativeLibrary.GetExport(lib, "png_image_finish_read"),
            Free = (delegate* unmanaged<PngImage*, void>)NativeLibrary.GetExport(lib, "png_image_free"),
        };
    });

    public static Api Get() => Functions.Value;

    public sealed class Api
    {
        public delegate* unmanaged<PngImage*, byte*, nuint, int> BeginReadFromMemory;
        public delegate* unmanaged<PngImage*, void*, void*, int, void*, int> FinishRead;
        public delegate* unmanaged<PngImage*, void> Free;
    }
}
