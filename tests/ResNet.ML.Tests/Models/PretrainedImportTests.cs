using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ResNet.ML.Layers;
using ResNet.ML.Models;
using ResNet.ML.Onnx;
using ResNet.ML.Onnx.Proto;
using ResNet.ML.Tensors;
using Tensor = ResNet.ML.Tensors.Tensor;

namespace ResNet.ML.Tests.Models;

/// <summary>
/// The ResNet-18 of the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18, which this test project references (its
/// build .props copies DnnImageModels/ to the output folder): imported by our reader, run by our engine, beside ONNX
/// Runtime running the package's own graphs.
/// </summary>
[TestClass]
public sealed class PretrainedImportTests
{
    private static PretrainedBackbone Backbone() => PretrainedBackbone.Load(PretrainedBackbone.DnnResNet18);

    /// <summary>A smooth RGB picture in 0-255 with edges, so every filter sees some structure.</summary>
    private static float[] Picture(int size, int seed)
    {
        var rng = new Rng((ulong)seed);
        var pixels = new float[3 * size * size];
        double fx = 0.05 + rng.NextDouble() * 0.1, fy = 0.05 + rng.NextDouble() * 0.1;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    double v = 128 + 90 * Math.Sin(fx * x * (c + 1) + fy * y) + (x > size / 2 && y < size / 3 ? 40 : 0) + rng.NextGaussian() * 8;
                    pixels[(c * size + y) * size + x] = (float)Math.Clamp(v, 0, 255);
                }
        return pixels;
    }

    private static float[] Run(InferenceSession session, string input, float[] data, int[] dims)
    {
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(input, new DenseTensor<float>(data, dims))]);
        return results.First().AsEnumerable<float>().ToArray();
    }

    /// <summary>Our network with a 512-class identity head: its logits are the pooled features.</summary>
    private static Network FeatureNetwork(PretrainedBackbone backbone, int size)
    {
        var network = backbone.Build(3, backbone.FeatureCount, size, size);
        var fc = (Linear)network.Layers[^1];
        fc.Weight.Value.Clear();
        fc.Bias!.Value.Clear();
        for (int i = 0; i < backbone.FeatureCount; i++) fc.Weight.Value.Data[i * backbone.FeatureCount + i] = 1f;
        return network;
    }

    [TestMethod]
    public void Import_MapsEveryTensorOntoResNet18WithAThreeBlockFourthStage()
    {
        var backbone = Backbone();
        Assert.AreEqual(ResNetSpec.Parse("resnet18 blocks=2,2,2,3"), backbone.Spec);
        Assert.AreEqual(224, backbone.Imported.InputHeight);
        var network = backbone.Build(3, 10, 224, 224);
        var backboneState = network.State.Where(e => !e.Name.StartsWith("fc.", StringComparison.Ordinal)).Select(e => e.Name).ToList();
        CollectionAssert.AreEquivalent(backboneState, backbone.Imported.Tensors.Select(t => t.Name).ToList());
        // 110 ONNX initializers (conv weights and four vectors per BN), plus one counter per BN that ONNX does not store.
        Assert.AreEqual(110, backbone.Imported.Tensors.Count(t => t.Dtype == "F32"));
        long parameters = network.Parameters.Where(p => !p.Name.StartsWith("fc.", StringComparison.Ordinal)).Sum(p => (long)p.Value.Length);
        Assert.AreEqual(15.9e6, parameters, 0.05e6);
        // Real ImageNet statistics, not a fresh BN: means away from 0 and variances away from 1.
        var bn = network.AllLayers.OfType<BatchNorm2d>().First(b => b.Name == "layer3.1.bn1");
        Assert.IsGreaterThan(0.01, bn.RunningMean.Data.Select(Math.Abs).Average());
        Assert.IsGreaterThan(0.01, bn.RunningVar.Data.Select(v => Math.Abs(v - 1)).Average());
    }

    [TestMethod]
    public void PooledFeatures_MatchOnnxRuntimeOnTheSamePreprocessedInput()
    {
        OnnxRuntimeNative.EnsureAvailable();
        var backbone = Backbone();
        const int size = 224;
        float[] raw = Picture(size, seed: 5);
        using var prep = new InferenceSession(backbone.PreprocessPath);
        using var featurizer = new InferenceSession(backbone.ModelPath);
        // The package's preprocessing (BGR, minus its mean image) gives the featurizer's input...
        float[] preprocessed = Run(prep, prep.InputMetadata.Keys.Single(), raw, [1, 3, size, size]);
        float[] expected = Run(featurizer, backbone.Imported.InputName, preprocessed, [1, 3, size, size]);
        Assert.HasCount(512, expected);

        // ...which our network, whose stem takes RGB, reads in RGB order.
        var input = new Tensor(1, 3, size, size);
        int plane = size * size;
        for (int c = 0; c < 3; c++) preprocessed.AsSpan((2 - c) * plane, plane).CopyTo(input.Data.AsSpan(c * plane, plane));
        float[] actual = FeatureNetwork(backbone, size).Forward(input, training: false).Data;

        double worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Console.WriteLine($"dnn-resnet18 pooled features, ours vs ONNX Runtime: largest difference {worst:E2}, mean feature {expected.Average():F4}");
        Assert.IsLessThanOrEqualTo(1e-4, worst, $"largest difference of the 512 pooled features: {worst:E2}");
        Assert.IsGreaterThan(0.1, expected.Average(), "the features are not all near zero, so the comparison means something");
    }

    [TestMethod]
    public void Normalization_IsTheChannelSwapAndMeanOfThePackagesPreprocessing()
    {
        OnnxRuntimeNative.EnsureAvailable();
        var backbone = Backbone();
        const int size = 224;
        // A constant image per channel: preprocessed by the package, its per-channel average must be our x - mean
        // (the mean image varies over the picture; its channel averages are what applies at any size).
        float[] raw = new float[3 * size * size];
        float[] rgb = [200f, 100f, 30f];
        for (int c = 0; c < 3; c++) raw.AsSpan(c * size * size, size * size).Fill(rgb[c]);
        using var prep = new InferenceSession(backbone.PreprocessPath);
        float[] theirs = Run(prep, prep.InputMetadata.Keys.Single(), raw, [1, 3, size, size]);
        var ours = new Tensor(1, 3, size, size);
        raw.CopyTo(ours.Data, 0);
        var normalization = backbone.Normalization(3);
        normalization.Apply(ours);
        for (int c = 0; c < 3; c++)
        {
            double theirChannel = theirs.AsSpan((2 - c) * size * size, size * size).ToArray().Average(v => (double)v);
            Assert.AreEqual(theirChannel, ours.Data[c * size * size], 1e-3, $"RGB channel {c}");
        }
        Assert.AreEqual(1, backbone.Normalization(1).Mean.Length);
        Assert.AreEqual(backbone.Normalization(3).Mean.Average(), backbone.Normalization(1).Mean[0], 1e-4);
    }

    /// <summary>The package's graph with one change, written to a temporary file and imported.</summary>
    private static string ImportBroken(Action<ModelProto> change)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Backbone().ModelPath));
        change(model);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => OnnxResNetImporter.Import(model, "broken.onnx"));
        return e.Message;
    }

    [TestMethod]
    public void UnexpectedGraphs_AreRefusedNamingTheOnnxNode()
    {
        // A BN with another epsilon computes something else.
        string message = ImportBroken(m =>
        {
            var bn = m.Graph.Node.First(n => n.OpType == "BatchNormalization" && n.Name == "BatchNormalization287");
            bn.Attribute.First(a => a.Name == "epsilon").F = 1e-3f;
        });
        StringAssert.Contains(message, "BatchNormalization287");
        StringAssert.Contains(message, "epsilon");

        // A weight of the wrong shape.
        message = ImportBroken(m =>
        {
            var conv = m.Graph.Node.First(n => n.Name == "Convolution323");
            var w = m.Graph.Initializer.First(t => t.Name == conv.Input[1]);
            w.Dims[1] = 128;
            var kept = w.FloatData.Take(256 * 128 * 9).ToArray();
            w.FloatData.Clear();
            w.FloatData.Add(kept);
        });
        StringAssert.Contains(message, "Convolution323");
        StringAssert.Contains(message, "[256, 128, 3, 3]");

        // An initializer no node reads.
        message = ImportBroken(m =>
        {
            var extra = new TensorProto { Name = "Stray", DataType = (int)TensorProto.Types.DataType.Float };
            extra.Dims.Add(1);
            extra.FloatData.Add(1f);
            m.Graph.Initializer.Add(extra);
        });
        StringAssert.Contains(message, "Stray");

        // A block without its shortcut add: the Relu reads the BN directly.
        message = ImportBroken(m =>
        {
            var add = m.Graph.Node.First(n => n.Name == "Plus345");
            var relu = m.Graph.Node.First(n => n.Input.Contains(add.Output[0]));
            relu.Input[0] = add.Input[0];
            m.Graph.Node.Remove(add);
        });
        StringAssert.Contains(message, "ReLU333_Output_0");
        StringAssert.Contains(message, "Convolution335");

        // Padding that no symmetric padding reproduces.
        message = ImportBroken(m => m.Graph.Node.First(n => n.Name == "Convolution285").Attribute.First(a => a.Name == "pads").Ints[0] = 0);
        StringAssert.Contains(message, "Convolution285");
    }

    [TestMethod]
    public void GrayscaleInput_SumsTheRgbStemFilters()
    {
        var backbone = Backbone();
        var rgb = backbone.Build(3, 4, 32, 32);
        var gray = backbone.Build(1, 4, 32, 32);
        var w3 = ((Conv2d)rgb.Layers[0]).Weight.Value;
        var w1 = ((Conv2d)gray.Layers[0]).Weight.Value;
        Assert.AreEqual(1, w1.C);
        int plane = 49;
        for (int o = 0; o < 64; o += 7)
            for (int i = 0; i < plane; i += 5)
                Assert.AreEqual(w3.Data[(o * 3 + 0) * plane + i] + w3.Data[(o * 3 + 1) * plane + i] + w3.Data[(o * 3 + 2) * plane + i], w1.Data[o * plane + i], 1e-6);
        Assert.ThrowsExactly<ArgumentException>(() => backbone.Build(3, 4, 28, 28));
    }

    [TestMethod]
    public void MissingPackage_SaysWhichPackageToAdd()
    {
        string? saved = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        string empty = Directory.CreateTempSubdirectory("resnetml-no-dnn-").FullName;
        try
        {
            // AppContext.BaseDirectory has the package's files here, so search an empty folder only by hiding them.
            var folders = PretrainedBackbone.SearchFolders();
            Assert.IsTrue(folders.Any(f => f.StartsWith(AppContext.BaseDirectory, StringComparison.Ordinal)));
            Environment.SetEnvironmentVariable("NUGET_PACKAGES", empty);
            var e = Assert.ThrowsExactly<FileNotFoundException>(() => PretrainedBackbone.Locate(Path.Combine(empty, "app")));
            StringAssert.Contains(e.Message, "Microsoft.ML.DnnImageFeaturizer.ResNet18");
            StringAssert.Contains(e.Message, "0.23.1");
            StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => PretrainedBackbone.Load("resnet-imagenet")).Message, "dnn-resnet18");
        }
        finally
        {
            Environment.SetEnvironmentVariable("NUGET_PACKAGES", saved);
            Directory.Delete(empty, true);
        }
    }

    [TestMethod]
    public void PackageRestoredOutsideTheNuGetCache_IsFoundThroughItsAssembly()
    {
        // A notebook kernel's #r "nuget:" may restore the package into a fallback packages folder (or one of its own)
        // rather than $NUGET_PACKAGES or ~/.nuget/packages, and copies nothing next to the app: the package's folder
        // is where its lib/<framework>/ assembly was loaded from.
        string root = Directory.CreateTempSubdirectory("resnetml-dnn-fallback-").FullName;
        string? saved = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        try
        {
            string package = Path.Combine(root, "fallback", "microsoft.ml.dnnimagefeaturizer.resnet18", "0.23.1");
            string dll = Path.Combine(package, "lib", "netstandard2.0", "Microsoft.ML.DnnImageFeaturizer.ResNet18.dll");
            string models = Path.Combine(package, "tools", "DnnImageModels");
            string model = Path.Combine(models, "ResNet18Onnx", "ResNet18.onnx"), preprocess = Path.Combine(models, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
            foreach (string file in new[] { dll, model, preprocess })
            {
                Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                File.WriteAllBytes(file, []);
            }
            Assert.AreEqual(models, PretrainedBackbone.PackageModelsFolder(dll));
            // An app's output folder is not a package's lib folder: there the .props copied the models next to the app.
            Assert.IsNull(PretrainedBackbone.PackageModelsFolder(Path.Combine(root, "app", "bin", "Release", "net10.0", "Microsoft.ML.DnnImageFeaturizer.ResNet18.dll")));
            Assert.IsNull(PretrainedBackbone.PackageModelsFolder(""));

            Environment.SetEnvironmentVariable("NUGET_PACKAGES", Directory.CreateDirectory(Path.Combine(root, "cache")).FullName);
            string app = Directory.CreateDirectory(Path.Combine(root, "app")).FullName;
            Assert.ThrowsExactly<FileNotFoundException>(() => PretrainedBackbone.Locate(PretrainedBackbone.SearchFolders(app, [])));
            var folders = PretrainedBackbone.SearchFolders(app, [dll]);
            Assert.IsLessThan(folders.ToList().IndexOf(models), folders.ToList().IndexOf(Path.Combine(app, "DnnImageModels")), "next to the app first");
            Assert.AreEqual((model, preprocess), PretrainedBackbone.Locate(folders));
        }
        finally
        {
            Environment.SetEnvironmentVariable("NUGET_PACKAGES", saved);
            Directory.Delete(root, true);
        }
    }
}
