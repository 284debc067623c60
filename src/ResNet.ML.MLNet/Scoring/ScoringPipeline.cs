using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.ML.MLNet.Mappings;
using ResNet.ML.Onnx.Proto;
using Microsoft.ML.Transforms.Image;

namespace ResNet.ML.MLNet.Scoring;

/// <summary>
/// Builds the fitted model from ML.NET's own transforms: ApplyOnnxModel scores the exported network and gives
/// <c>Score</c>; a first-slot CustomMapping and MapValueToKey turn the predicted class into <c>PredictedLabel</c>, a key
/// with the label's key values; encoded images are decoded by a CustomMapping. Every part is saved and loaded by
/// ML.NET itself (CustomMapping records this assembly), so <c>Model.Save</c>/<c>Load</c> need nothing from the user.
/// </summary>
internal static class ScoringPipeline
{
    public const string ScoreColumn = "Score";
    public const string PredictedLabelColumn = "PredictedLabel";
    private const string ResizedImage = "ResNet.ML.ResizedImage";

    /// <summary>The ONNX graph input name the network's pixels come in under, for a feature column of this kind.</summary>
    public static string NetworkInputName(FeatureKind kind, string featureColumn) => kind switch
    {
        FeatureKind.Pixels => featureColumn,
        FeatureKind.Image => ScoringColumns.Pixels,
        _ => ScoringGraph.NetworkInput,
    };

    /// <summary>ML.NET transforms (ImageAnalytics) that turn an MLImage column into the pixel column the network reads.</summary>
    public static IEstimator<ITransformer> ImageToPixels(MLContext ml, string featureColumn, ImageShape shape)
    {
        return ml.Transforms.ResizeImages(ResizedImage, shape.Width, shape.Height, featureColumn)
            .Append(ml.Transforms.ExtractPixels(ScoringColumns.Pixels, ResizedImage,
                colorsToExtract: ImagePixelExtractingEstimator.ColorBits.Rgb,
                orderOfExtraction: ImagePixelExtractingEstimator.ColorsOrder.ARGB))
            .Append(ml.Transforms.DropColumns(ResizedImage));
    }

    public static ITransformer Fit(MLContext ml, IDataView data, string featureColumn, FeatureKind kind, ImageShape shape,
        int resizeMode, KeyValueTable keyValues, ModelProto network, int? gpuDeviceId, bool fallbackToCpu)
    {
        var temporaries = new List<string> { ScoringColumns.PredictedValueVector, ScoringColumns.PredictedValue };
        IEstimator<ITransformer>? front = null;
        string[] onnxInputs;
        switch (kind)
        {
            case FeatureKind.Pixels:
                onnxInputs = [featureColumn];
                break;
            case FeatureKind.EncodedImage:
                var target = new MemoryStream(ScoringGraph.DecodeTargetModel(shape, resizeMode).ToByteArray());
                front = ml.Transforms.CopyColumns(ScoringColumns.ImageBytes, featureColumn)
                    .Append(ml.Transforms.ApplyOnnxModel([ScoringColumns.DecodeTarget], [ScoringColumns.ImageBytes], target))
                    .Append(ml.Transforms.CustomMapping<EncodedImageRow, DecodedImageRow>(DecodeImage.Map, DecodeImage.Contract));
                onnxInputs = [ScoringColumns.Pixels];
                temporaries.AddRange([ScoringColumns.ImageBytes, ScoringColumns.DecodeTarget, ScoringColumns.Pixels]);
                break;
            case FeatureKind.Image:
                front = ImageToPixels(ml, featureColumn, shape);
                onnxInputs = [ScoringColumns.Pixels];
                temporaries.Add(ScoringColumns.Pixels);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }

        var model = new MemoryStream(network.ToByteArray());
        var scorer = ml.Transforms.ApplyOnnxModel([ScoreColumn, ScoringColumns.PredictedValueVector], onnxInputs, model, gpuDeviceId, fallbackToCpu);
        IEstimator<ITransformer> pipeline = front is null ? scorer : front.Append(scorer);
        return pipeline
            .Append(keyValues.PredictedLabel(ml, PredictedLabelColumn))
            .Append(ml.Transforms.DropColumns([.. temporaries]))
            .Fit(data);
    }
}
