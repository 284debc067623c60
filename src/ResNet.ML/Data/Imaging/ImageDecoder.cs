using System.Buffers;
using System.Runtime.InteropServices;

namespace ResNet.ML.Data;

/// <summary>Encoded image formats the decoder reads (recognized by their first bytes, not by file name).</summary>
public enum ImageFormat { Unknown, Png, Jpeg }

/// <summary>How an image is brought to the model's input size.</summary>
public enum ResizeMode
{
    /// <summary>Scale so the image covers the target, then cut the centre: torchvision's Resize(S) + CenterCrop(S). Keeps proportions.</summary>
    ShorterSideCenterCrop,

    /// <summary>Scale each axis to the target independently. Keeps the whole image, distorts proportions.</summary>
    Stretch,
}

/// <summary>An image that could not be decoded; <see cref="ImageSource"/> names it (a file path, say).</summary>
public sealed class ImageDecodeException : IOException
{
    public ImageDecodeException(string imageSource, string reason, Exception? inner = null)
        : base($"{imageSource}: {reason}", inner) => ImageSource = imageSource;

    public string ImageSource { get; }
}

/// <summary>A decoded image, HWC interleaved bytes (RGB, or one gray channel).</summary>
public sealed record DecodedImage(byte[] Pixels, int Height, int Width, int Channels);

/// <summary>
/// Decodes PNG and JPEG bytes (libpng and libjpeg-turbo, see NativeCodecs.cs for why) to RGB or grayscale, and resizes to
/// a model's input size with antialiased bilinear filtering. Alpha is dropped (as PIL's convert("RGB") does); gray is
/// ITU-R 601 luma, computed as PIL does. Thread-safe. Pixel values come out in 0..255.
/// </summary>
public static class ImageDecoder
{
    /// <summary>Images larger than this many pixels are refused rather than allocated (a decompression bomb guard).</summary>
    public const long MaxPixels = 1L << 28;

    [ThreadStatic] private static Resampler? t_resampler;

    public static ImageFormat DetectFormat(ReadOnlySpan<byte> encoded)
    {
        if (encoded.Length >= 8 && encoded[..8].SequenceEqual((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])) return ImageFormat.Png;
        if (encoded.Length >= 3 && encoded[0] == 0xFF && encoded[1] == 0xD8 && encoded[2] == 0xFF) return ImageFormat.Jpeg;
        return ImageFormat.Unknown;
    }

    /// <summary>Decodes to HWC bytes at the image's own size with <paramref name="channels"/> = 1 (gray) or 3 (RGB).</summary>
    public static DecodedImage Decode(ReadOnlySpan<byte> encoded, int channels, string source = "the image")
    {
        CheckChannels(channels);
        byte[] rgb = DecodeInterleaved(encoded, source, 0, 0, out int h, out int w, out int bpp);
        try
        {
            var pixels = new byte[(long)h * w * channels];
            int n = h * w;
            if (channels == 3)
                for (int i = 0; i < n; i++) { pixels[3 * i] = rgb[bpp * i]; pixels[3 * i + 1] = rgb[bpp * i + 1]; pixels[3 * i + 2] = rgb[bpp * i + 2]; }
            else
                for (int i = 0; i < n; i++) pixels[i] = Luma(rgb[bpp * i], rgb[bpp * i + 1], rgb[bpp * i + 2]);
            return new DecodedImage(pixels, h, w, channels);
        }
        finally { ArrayPool<byte>.Shared.Return(rgb); }
    }

    /// <summary>
    /// Decodes <paramref name="encoded"/> to a new CHW float array of [<paramref name="channels"/>, <paramref name="height"/>,
    /// <paramref name="width"/>], values 0..255. <paramref name="source"/> names the image in error messages.
    /// </summary>
    public static float[] DecodeToChw(ReadOnlySpan<byte> encoded, int channels, int height, int width,
        ResizeMode resize = ResizeMode.ShorterSideCenterCrop, string source = "the image")
    {
        var result = new float[checked(channels * height * width)];
        DecodeToChw(encoded, result, channels, height, width, resize, source);
        return result;
    }

    /// <summary>As <see cref="DecodeToChw(ReadOnlySpan{byte}, int, int, int, ResizeMode, string)"/>, into a caller's buffer (no allocation).</summary>
    public static void DecodeToChw(ReadOnlySpan<byte> encoded, Span<float> destination, int channels, int height, int width,
        ResizeMode resize = ResizeMode.ShorterSideCenterCrop, string source = "the image")
    {
        CheckChannels(channels);
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"Target size {height}x{width} must be positive.");
        if (destination.Length < channels * height * width)
            throw new ArgumentException($"A [{channels}, {height}, {width}] image needs {channels * height * width} floats; the destination has {destination.Length}.", nameof(destination));
        byte[] rgb = DecodeInterleaved(encoded, source, height, width, out int h, out int w, out int bpp);
        float[]? planes = null;
        try
        {
            int n = h * w;
            bool direct = h == height && w == width;
            planes = direct ? null : ArrayPool<float>.Shared.Rent(channels * n);
            Span<float> target = direct ? destination : planes.AsSpan(0, channels * n);
            ToPlanes(rgb, bpp, n, channels, target);
            if (direct) return;
            var (bx, by, bw, bh) = resize == ResizeMode.Stretch ? (0.0, 0.0, (double)w, (double)h) : CenterBox(h, w, height, width);
            (t_resampler ??= new Resampler()).Resample(target, channels, h, w, bx, by, bw, bh, destination, height, width);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rgb);
            if (planes is not null) ArrayPool<float>.Shared.Return(planes);
        }
    }

    // Interleaved RGB(A) bytes to float planes (or one luma plane): runs over every decoded pixel, so no bounds checks.
    private static unsafe void ToPlanes(byte[] rgb, int bpp, int n, int channels, Span<float> target)
    {
        fixed (byte* p = rgb)
        fixed (float* t = target)
        {
            if (channels == 3)
            {
                float* r = t, g = t + n, b = t + 2 * n;
                for (int i = 0; i < n; i++) { byte* px = p + (long)bpp * i; r[i] = px[0]; g[i] = px[1]; b[i] = px[2]; }
            }
            else
            {
                for (int i = 0; i < n; i++) { byte* px = p + (long)bpp * i; t[i] = Luma(px[0], px[1], px[2]); }
            }
        }
    }

    /// <summary>The source box that, scaled to cover <paramref name="height"/> x <paramref name="width"/>, is the centre crop.</summary>
    internal static (double X, double Y, double W, double H) CenterBox(int h, int w, int height, int width)
    {
        double scale = Math.Max((double)height / h, (double)width / w);
        double bw = width / scale, bh = height / scale;
        return ((w - bw) / 2, (h - bh) / 2, bw, bh);
    }

    // PIL's ITU-R 601-2 luma in 16-bit fixed point: L = R*299/1000 + G*587/1000 + B*114/1000, rounded.
    private static byte Luma(byte r, byte g, byte b) => (byte)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);

    private static void CheckChannels(int channels)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), $"Images decode to 1 (gray) or 3 (RGB) channels, not {channels}.");
    }

    /// <summary>
    /// Decodes to interleaved RGB (3 bytes per pixel) or RGBA (4) in a buffer rented from the shared pool (caller returns it).
    /// With a target size, large JPEGs decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, as PIL's draft mode) when
    /// the reduced image still covers the target: much faster, and the resize then filters at most 2x.
    /// </summary>
    private static byte[] DecodeInterleaved(ReadOnlySpan<byte> encoded, string source, int targetH, int targetW, out int h, out int w, out int bytesPerPixel)
    {
        switch (DetectFormat(encoded))
        {
            case ImageFormat.Png:
                bytesPerPixel = 4;
                return DecodePng(encoded, source, out h, out w);
            case ImageFormat.Jpeg:
                bytesPerPixel = 3;
                return DecodeJpeg(encoded, source, targetH, targetW, out h, out w);
            default:
                string head = Convert.ToHexString(encoded[..Math.Min(8, encoded.Length)]);
                throw new ImageDecodeException(source, encoded.Length == 0 ? "the file is empty." : $"not a PNG or JPEG image (starts with bytes {head}).");
        }
    }

    private static unsafe byte[] DecodePng(ReadOnlySpan<byte> encoded, string source, out int h, out int w)
    {
        var api = LibPng.Get();
        LibPng.PngImage image = default;
        image.Version = LibPng.ImageVersion;
        fixed (byte* input = encoded)
        {
            try
            {
                if (api.BeginReadFromMemory(&image, input, (nuint)encoded.Length) == 0)
                    throw new ImageDecodeException(source, $"PNG header cannot be read: {image.MessageText()}.");
                (h, w) = ((int)Math.Min(image.Height, int.MaxValue), (int)Math.Min(image.Width, int.MaxValue));
                CheckSize(source, h, w);
                // 16-bit files: libpng's simplified API takes 16-bit samples without a gAMA/sRGB chunk as linear light and
                // would brighten them on the way to 8-bit sRGB. Users of 16-bit PNGs (scans, depth maps) expect the
                // stored values scaled to 8 bits, so read them linear (untouched) and scale here.
                bool sixteen = (image.Format & LibPng.FormatFlagLinear) != 0;
                image.Format = sixteen ? LibPng.FormatRgba | LibPng.FormatFlagLinear : LibPng.FormatRgba;
                byte[] buffer = ArrayPool<byte>.Shared.Rent(h * w * (sixteen ? 8 : 4));
                bool ok = false;
                try
                {
                    fixed (byte* output = buffer)
                    {
                        ok = api.FinishRead(&image, null, output, 0, null) != 0;
                        if (!ok) throw new ImageDecodeException(source, $"PNG data cannot be decoded: {image.MessageText()}.");
                        if (sixteen) SixteenToEight((ushort*)output, output, h * w);
                    }
                    return buffer;
                }
                finally { if (!ok) ArrayPool<byte>.Shared.Return(buffer); }
            }
            finally { api.Free(&image); }
        }
    }

    // Premultiplied 16-bit RGBA (libpng's linear format) to straight 8-bit RGBA, in place (output trails input).
    private static unsafe void SixteenToEight(ushort* input, byte* output, int pixels)
    {
        for (int i = 0; i < pixels; i++)
        {
            ushort* p = input + 4 * i;
            uint a = p[3];
            for (int c = 0; c < 3; c++)
            {
                uint v = a == 0 ? 0 : a == 65535 ? p[c] : Math.Min(65535u, ((uint)p[c] * 65535u + a / 2) / a);
                output[4 * i + c] = (byte)((v * 255 + 32767) / 65535);
            }
            output[4 * i + 3] = (byte)((a * 255 + 32767) / 65535);
        }
    }

    private static unsafe byte[] DecodeJpeg(ReadOnlySpan<byte> encoded, string source, int targetH, int targetW, out int h, out int w)
    {
        var api = TurboJpeg.Get();
        nint handle = api.InitDecompress();
        if (handle == 0) throw new ImageDecodeException(source, "TurboJPEG could not create a decompressor.");
        try
        {
            fixed (byte* input = encoded)
            {
                int fullW, fullH, subsampling, colorspace;
                if (api.DecompressHeader3(handle, input, new CULong((nuint)encoded.Length), &fullW, &fullH, &subsampling, &colorspace) != 0
                    && !IsBenignWarning(api, handle))
                    throw new ImageDecodeException(source, $"JPEG header cannot be read: {api.ErrorText(handle)}.");
                if (fullW <= 0 || fullH <= 0)   // a file cut before its frame header can "succeed" with no dimensions
                    throw new ImageDecodeException(source, "JPEG header cannot be read: the file ends before the image dimensions.");
                if (colorspace is TurboJpeg.ColorspaceCmyk or TurboJpeg.ColorspaceYcck)
                    throw new ImageDecodeException(source, "CMYK JPEGs are not supported; convert the image to RGB.");
                CheckSize(source, fullH, fullW);
                int denominator = 1;
                if (targetH > 0)
                    foreach (int d in new[] { 8, 4, 2 })
                        if (Scaled(fullH, d) >= targetH && Scaled(fullW, d) >= targetW) { denominator = d; break; }
                (h, w) = (Scaled(fullH, denominator), Scaled(fullW, denominator));
                byte[] buffer = ArrayPool<byte>.Shared.Rent(h * w * 3);
                bool ok = false;
                try
                {
                    fixed (byte* output = buffer)
                        ok = api.Decompress2(handle, input, new CULong((nuint)encoded.Length), output, w, 0, h, TurboJpeg.PixelFormatRgb,
                            TurboJpeg.FlagAccurateDct | TurboJpeg.FlagLimitScans) == 0;
                    if (!ok && IsBenignWarning(api, handle)) ok = true;
                    if (!ok) throw new ImageDecodeException(source, $"JPEG data cannot be decoded: {api.ErrorText(handle)}.");
                    return buffer;
                }
                finally { if (!ok) ArrayPool<byte>.Shared.Return(buffer); }
            }
        }
        finally { api.Destroy(handle); }

        static int Scaled(int size, int d) => (size + d - 1) / d;

        // libjpeg reports a truncated file as a warning and fills the rest with gray: that is a broken image, refused.
        // "Extraneous bytes before marker" is the one warning that loses no pixel (PIL accepts it too).
        static bool IsBenignWarning(TurboJpeg.Api api, nint handle) =>
            api.GetErrorCode(handle) != TurboJpeg.ErrorFatal && api.ErrorText(handle).Contains("extraneous bytes", StringComparison.OrdinalIgnoreCase);
    }

    private static void CheckSize(string source, int h, int w)
    {
        if (h <= 0 || w <= 0 || (long)h * w > MaxPixels)
            throw new ImageDecodeException(source, $"image size {w}x{h} is outside what the decoder accepts (1 to {MaxPixels} pixels).");
    }
}
