using ResNet.ML.Data;

namespace ResNet.ML.MLNet;

/// <summary>Encoded image bytes to the network's input pixels: one call for training and scoring alike.</summary>
internal static class EncodedImages
{
    /// <summary>Decodes PNG or JPEG bytes and resizes them to <paramref name="shape"/>: planar CHW floats, 0-255.</summary>
    public static float[] Decode(ReadOnlySpan<byte> encoded, ImageShape shape, ResizeMode resize, string source = "an image in the feature column")
    {
        if (encoded.IsEmpty) throw new ImageDecodeException(source, "the image bytes are empty.");
        return ImageDecoder.DecodeToChw(encoded, shape.Channels, shape.Height, shape.Width, resize, source);
    }
}
