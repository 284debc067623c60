using ResNet.ML.Tensors;

namespace ResNet.ML.Training;

/// <summary>Applies the chosen training augmentation to a batch of raw images in place, drawing from the run's RNG.</summary>
internal static class Augmenter
{
    public static void Apply(AugmentationKind kind, Tensor batch, Rng rng)
    {
        if (kind == AugmentationKind.None) return;
        int c = batch.C, h = batch.H, w = batch.W, sample = c * h * w;
        var scratch = new float[sample];
        for (int n = 0; n < batch.N; n++)
        {
            var image = batch.Data.AsSpan(n * sample, sample);
            int dy = 0, dx = 0;
            if (kind == AugmentationKind.PadCropFlip) { dy = rng.NextInt(9) - 4; dx = rng.NextInt(9) - 4; }
            bool flip = rng.NextInt(2) == 1;
            if (dy == 0 && dx == 0 && !flip) continue;
            image.CopyTo(scratch);
            for (int ch = 0; ch < c; ch++)
            {
                for (int y = 0; y < h; y++)
                {
                    int sy = y + dy;
                    for (int x = 0; x < w; x++)
                    {
                        int sx = (flip ? w - 1 - x : x) + dx;
                        // Zero padding of 4 around the image, then a crop offset by (dy, dx).
                        image[(ch * h + y) * w + x] = (uint)sy < (uint)h && (uint)sx < (uint)w ? scratch[(ch * h + sy) * w + sx] : 0f;
                    }
                }
            }
        }
    }
}
