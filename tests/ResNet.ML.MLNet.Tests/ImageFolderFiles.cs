using SkiaSharp;

namespace ResNet.ML.MLNet.Tests;

/// <summary>
/// A folder of PNG and JPEG files of mixed sizes, written by the test through SkiaSharp (the encoder behind ML.NET's
/// MLImage), drawn from <see cref="ColorImages"/>' three colour classes. Rows name files relative to the folder, as
/// LoadImages and LoadRawImageBytes take them.
/// </summary>
internal sealed class ImageFolderFiles : IDisposable
{
    public sealed class Row
    {
        public string Label = "";
        public string ImagePath = "";
    }

    private static readonly (int Width, int Height)[] Sizes = [(12, 12), (16, 12), (14, 20), (24, 24), (9, 13)];

    public string Folder { get; }
    public List<Row> Train { get; } = [];
    public List<Row> Test { get; } = [];

    public ImageFolderFiles(int trainCount, int testCount, int seed)
    {
        Folder = Directory.CreateTempSubdirectory("resnetml-mlnet-images-").FullName;
        var rng = new Random(seed);
        for (int i = 0; i < trainCount + testCount; i++)
        {
            int cls = i % 3;
            var (w, h) = Sizes[i % Sizes.Length];
            bool jpeg = i % 2 == 1;
            string name = $"{ColorImages.Classes[cls]}_{i:D4}{(jpeg ? ".jpg" : ".png")}";
            File.WriteAllBytes(Path.Combine(Folder, name), Encode(ColorImages.Chw(rng, cls, h, w), h, w, jpeg));
            (i < trainCount ? Train : Test).Add(new Row { Label = ColorImages.Classes[cls], ImagePath = name });
        }
    }

    /// <summary>Encodes CHW 0-255 pixels as an opaque 8-bit PNG or a quality-95 JPEG.</summary>
    public static byte[] Encode(float[] chw, int height, int width, bool jpeg)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        int plane = height * width;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x;
                bitmap.SetPixel(x, y, new SKColor((byte)chw[i], (byte)chw[plane + i], (byte)chw[2 * plane + i]));
            }
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(jpeg ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Png, 95);
        return data.ToArray();
    }

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); }
        catch (IOException) { }
    }
}
