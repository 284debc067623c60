using System.Buffers;
using SkiaSharp;

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

/*
 * Why SkiaSharp: it is the decoder of the .NET ML ecosystem (ML.NET's MLImage decodes with it, so files are read by the
 * same libraries as in an ML.NET pipeline, and the product adds no second image stack), and its NuGet native assets
 * (the NoDependencies build) carry libjpeg-turbo and libpng inside, so a machine with only the .NET SDK decodes images
 * with no system package to install. Those two libraries are the reference decoders of their formats, handle every
 * variant real folders contain (progressive JPEG, palette/16-bit/interlaced/tRNS PNG) and are long fuzzed against
 * malformed input, which no managed decoder matches. The price: the libjpeg-turbo inside SkiaSharp's Linux build shows
 * no trace of its x86 SIMD code, so a JPEG costs about 1.5x the CPU of Debian's own libjpeg-turbo build
 * (bench/BENCHMARKS.md). Version 2.88.x, because ML.NET 5 calls SkiaSharp 2.x APIs that 3.x removed.
 */

/// <summary>
/// Decodes PNG and JPEG bytes (with SkiaSharp, see above for why) to RGB or grayscale, and resizes to
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
    /// Decodes to straight (unpremultiplied) RGBA, 4 bytes per pixel, in a buffer rented from the shared pool (caller
    /// returns it). With a target size, large JPEGs decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, as PIL's draft
    /// mode) when the reduced image still covers the target: much faster, and the resize then filters at most 2x.
    /// </summary>
    private static unsafe byte[] DecodeInterleaved(ReadOnlySpan<byte> encoded, string source, int targetH, int targetW, out int h, out int w, out int bytesPerPixel)
    {
        ImageFormat format = DetectFormat(encoded);
        if (format == ImageFormat.Unknown)
        {
            string head = Convert.ToHexString(encoded[..Math.Min(8, encoded.Length)]);
            throw new ImageDecodeException(source, encoded.Length == 0 ? "the file is empty." : $"not a PNG or JPEG image (starts with bytes {head}).");
        }
        string kind = format == ImageFormat.Png ? "PNG" : "JPEG";
        if (format == ImageFormat.Jpeg && IsCmykJpeg(encoded))
            throw new ImageDecodeException(source, "CMYK JPEGs are not supported; convert the image to RGB.");
        bytesPerPixel = 4;
        fixed (byte* input = encoded)
        {
            // Wraps the caller's bytes without a copy: the codec (and with it the data) is gone before the span is unpinned.
            using var data = SKData.Create((nint)input, encoded.Length);
            using var stream = new SKMemoryStream(data);
            using var codec = SKCodec.Create(stream, out SKCodecResult opened);
            if (codec is null)
                throw new ImageDecodeException(source, $"{kind} header cannot be read ({Describe(opened)}).");
            // Skia takes the format from the same magic bytes; anything else (a GIF behind a PNG signature) is not ours to decode.
            if (codec.EncodedFormat != (format == ImageFormat.Png ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg))
                throw new ImageDecodeException(source, $"{kind} header cannot be read (Skia reads it as {codec.EncodedFormat}).");
            var (fullW, fullH) = (codec.Info.Width, codec.Info.Height);
            CheckSize(source, fullH, fullW);
            (h, w) = (fullH, fullW);
            if (format == ImageFormat.Jpeg && targetH > 0)
                foreach (int d in new[] { 8, 4, 2 })
                {
                    SKSizeI scaled = codec.GetScaledDimensions(1f / d);
                    if (scaled.Height >= targetH && scaled.Width >= targetW && scaled.Height < fullH) { (h, w) = (scaled.Height, scaled.Width); break; }
                }
            // No colour space: the stored values come out as they are, with no gamma or ICC conversion (as PIL decodes).
            // Unpremultiplied: alpha is dropped afterwards, and premultiplying first would darken translucent pixels.
            // 16-bit PNGs: Skia keeps the high byte of each stored sample (no gamma change), within one level of rounding.
            // Half-float output would keep 16-bit RGB(A) precision, but Skia cuts 16-bit gray to 8 bits even then: one
            // rule for every 16-bit file is worth more than the last level.
            var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(checked(h * w * 4));
            bool ok = false;
            try
            {
                SKCodecResult result;
                fixed (byte* output = buffer)
                    result = codec.GetPixels(info, (nint)output, info.RowBytes, new SKCodecOptions(SKZeroInitialized.No));
                // IncompleteInput is a truncated file whose missing rows Skia fills in: a broken image, refused.
                if (result != SKCodecResult.Success)
                    throw new ImageDecodeException(source, $"{kind} data cannot be decoded ({Describe(result)}).");
                ok = true;
                return buffer;
            }
            finally { if (!ok) ArrayPool<byte>.Shared.Return(buffer); }
        }

        static string Describe(SKCodecResult r) => r switch
        {
            SKCodecResult.IncompleteInput => "the file ends before the image does",
            SKCodecResult.ErrorInInput => "the file is corrupt",
            SKCodecResult.InvalidInput => "not a readable image",
            SKCodecResult.Unimplemented => "a variant the decoder does not support",
            _ => $"Skia: {r}",
        };
    }

    /// <summary>
    /// Whether a JPEG's frame has four components (CMYK or YCCK). Skia would turn those into RGB by a fixed formula,
    /// without the ink profile that gives CMYK values their colours, so they are refused, as before, with a message that
    /// says what to do, rather than decoded to plausible but wrong colours.
    /// </summary>
    internal static bool IsCmykJpeg(ReadOnlySpan<byte> jpeg)
    {
        int i = 2;
        while (i + 4 <= jpeg.Length)
        {
            if (jpeg[i] != 0xFF) { i++; continue; }   // stray bytes between segments: libjpeg skips them too
            byte marker = jpeg[i + 1];
            if (marker == 0xFF) { i++; continue; }    // fill bytes
            if (marker is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7)) { i += 2; continue; }
            if (marker is 0xDA or 0xD9) return false; // scan data or end before any frame header
            int length = (jpeg[i + 2] << 8) | jpeg[i + 3];
            bool frame = marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC);
            if (frame) return i + 9 < jpeg.Length && jpeg[i + 9] == 4;   // FF Cn, length(2), precision, height(2), width(2), Nf
            i += 2 + length;
        }
        return false;
    }

    private static void CheckSize(string source, int h, int w)
    {
        if (h <= 0 || w <= 0 || (long)h * w > MaxPixels)
            throw new ImageDecodeException(source, $"image size {w}x{h} is outside what the decoder accepts (1 to {MaxPixels} pixels).");
    }
}
