using SkiaSharp;

namespace ResNet.ML.Distribution.Tests;

/// <summary>
/// A small labelled image folder (one subfolder per class) of PNG and JPEG files of mixed sizes: class red, green or
/// blue names the bright channel, the others are dark, every pixel carries noise.
/// </summary>
internal static class ImageFiles
{
    public static readonly string[] Classes = ["blue", "green", "red"];
    private static readonly (int W, int H)[] Sizes = [(32, 32), (40, 30), (24, 36), (48, 48)];

    public static string Write(string root, int perClass, int seed)
    {
        var rng = new Random(seed);
        foreach (string name in Classes)
        {
            string dir = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
            int bright = name == "red" ? 0 : name == "green" ? 1 : 2;
            for (int i = 0; i < perClass; i++)
            {
                var (w, h) = Sizes[i % Sizes.Length];
                using var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
                int level = rng.Next(150, 231);
                int[] dark = [rng.Next(20, 91), rng.Next(20, 91), rng.Next(20, 91)];
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        byte C(int c) => (byte)Math.Clamp((c == bright ? level : dark[c]) + rng.Next(-25, 26), 0, 255);
                        bitmap.SetPixel(x, y, new SKColor(C(0), C(1), C(2)));
                    }
                bool jpeg = i % 2 == 1;
                using var image = SKImage.FromBitmap(bitmap);
                using var data = image.Encode(jpeg ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Png, 95);
                File.WriteAllBytes(Path.Combine(dir, $"{name}_{i:D3}{(jpeg ? ".jpg" : ".png")}"), data.ToArray());
            }
        }
        return root;
    }
}
