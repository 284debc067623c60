using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using ResNet.ML.Layers;
using ResNet.ML.Onnx;
using ResNet.ML.Onnx.Proto;
using ResNet.ML.Tensors;
using static ResNet.ML.Tests.Onnx.OnnxTestNetworks;
using static ResNet.ML.Tests.Onnx.OnnxTestSupport;

namespace ResNet.ML.Tests.Onnx;

/// <summary>What the exporter writes: graph structure, metadata, options, atomic files. ONNX Runtime runs the models.</summary>
[TestClass]
public class OnnxExporterTests
{
    private static OnnxExportOptions Options(int size, bool fold = true) => new() { InputHeight = size, InputWidth = size, FoldBatchNorm = fold };

    private static Dictionary<string, int> OpCounts(ModelProto model) =>
        model.Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());

    [TestMethod]
    public void Cifar_resnet20_option_A_is_standard_ops_with_strided_slice_and_pad_shortcuts()
    {
        var net = Cifar(3, 4, 10, Shortcut.A);
        var model = OnnxExporter.BuildModel(net, Options(32));
        var ops = OpCounts(model);
        Assert.AreEqual(19, ops["Conv"], "ResNet-20: 19 convolutions + 1 fc = 20 weight layers");
        Assert.AreEqual(1, ops["Gemm"]);
        Assert.AreEqual(9, ops["Add"], "one Add per residual block");
        Assert.AreEqual(2, ops["Slice"], "one subsampling per stage that halves the size");
        Assert.AreEqual(2, ops["Pad"], "one zero padding per stage that widens");
        Assert.AreEqual(1 + 9 * 2, ops["Relu"]);
        Assert.IsFalse(ops.ContainsKey("BatchNormalization"), "folding removes every BatchNormalization");
        CollectionAssert.IsSubsetOf(ops.Keys.ToArray(),
            new[] { "Conv", "Relu", "Add", "Slice", "Pad", "GlobalAveragePool", "Flatten", "Gemm", "Identity", "Softmax", "ArgMax" });

        var pad = model.Graph.Node.First(n => n.OpType == "Pad");
        var pads = model.Graph.Initializer.Single(t => t.Name == pad.Input[1]);
        CollectionAssert.AreEqual(new long[] { 0, 2, 0, 0, 0, 2, 0, 0 }, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(pads.RawData.Span).ToArray(),
            "4 -> 8 channels: 2 zero channels before and 2 after, nothing on N, H, W");

        var unfolded = OpCounts(OnnxExporter.BuildModel(net, Options(32, fold: false)));
        Assert.AreEqual(19, unfolded["BatchNormalization"]);
        Assert.AreEqual(19, unfolded["Conv"]);
    }

    // Depth = convolutions on the main path + the fc layer; projections (option B) add one conv per stage that changes shape.
    [TestMethod]
    [DataRow(18, false, 4 - 1)]
    [DataRow(34, false, 4 - 1)]
    [DataRow(50, true, 4)]
    [DataRow(101, true, 4)]
    [DataRow(152, true, 4)]
    public void ImageNet_resnets_have_the_papers_layer_count_and_run_in_onnx_runtime(int depth, bool bottleneck, int projections)
    {
        var net = ImageNet(depth, 3, Shortcut.B, baseWidth: 4);
        Randomize(net, (ulong)depth);
        var model = OnnxExporter.BuildModel(net, Options(64));
        var ops = OpCounts(model);
        Assert.AreEqual(depth - 1 + projections, ops["Conv"], $"resnet{depth}: conv count");
        int blocks = (depth - 2) / (bottleneck ? 3 : 2);
        Assert.AreEqual(blocks, ops["Add"], $"resnet{depth}: one Add per block");
        Assert.AreEqual(1, ops["MaxPool"]);
        Assert.AreEqual(1, ops["GlobalAveragePool"]);

        using var predictor = OnnxPredictor.FromBytes(model.ToByteArray());
        var scores = predictor.Score(RandomInput(2 * 3 * 64 * 64, 7));
        Assert.AreEqual(2, scores.Count);
        Assert.IsTrue(scores.Probabilities.All(float.IsFinite));
        Assert.AreEqual(1.0, scores.ProbabilitiesOf(0).ToArray().Sum(), 1e-5);
    }

    [TestMethod]
    [DataRow(18, 2)]     // ResNet-110: n = 18
    [DataRow(200, 2)]    // ResNet-1202: n = 200
    public void Deep_cifar_resnets_export_every_block(int n, int width)
    {
        var net = Cifar(n, width, 10, Shortcut.A);
        var model = OnnxExporter.BuildModel(net, Options(32));
        var ops = OpCounts(model);
        Assert.AreEqual(6 * n + 1, ops["Conv"], $"ResNet-{6 * n + 2}: convolutions");
        Assert.AreEqual(3 * n, ops["Add"]);
        using var predictor = OnnxPredictor.FromBytes(model.ToByteArray());
        Assert.AreEqual(10, predictor.Score(RandomInput(3 * 32 * 32, 3)).Probabilities.Length);
    }

    [TestMethod]
    public void Plain_twin_has_no_additions_and_no_shortcut_ops()
    {
        var ops = OpCounts(OnnxExporter.BuildModel(Cifar(3, 4, 10, Shortcut.Plain), Options(32)));
        Assert.IsFalse(ops.ContainsKey("Add") || ops.ContainsKey("Slice") || ops.ContainsKey("Pad"));
        Assert.AreEqual(19, ops["Conv"]);
        Assert.AreEqual(19, ops["Relu"]);
    }

    [TestMethod]
    public void Model_declares_opset_ir_version_producer_dynamic_batch_and_outputs()
    {
        var net = Cifar(1, 4, 3, Shortcut.B);
        var model = OnnxExporter.BuildModel(net, Options(32));
        Assert.AreEqual(8L, model.IrVersion);
        Assert.AreEqual(17L, model.OpsetImport.Single().Version);
        Assert.AreEqual("", model.OpsetImport.Single().Domain);
        Assert.AreEqual("ResNet.ML", model.ProducerName);
        Assert.IsFalse(string.IsNullOrEmpty(model.ProducerVersion));
        var input = model.Graph.Input.Single();
        Assert.AreEqual("input", input.Name);
        StringAssert.Contains(input.DocString, "planar CHW");
        var dims = input.Type.TensorType.Shape.Dim;
        Assert.AreEqual("batch", dims[0].DimParam);
        CollectionAssert.AreEqual(new long[] { 3, 32, 32 }, dims.Skip(1).Select(d => d.DimValue).ToArray());
        CollectionAssert.AreEqual(new[] { "logits", "probabilities", "predicted_label" }, model.Graph.Output.Select(o => o.Name).ToArray());
        Assert.AreEqual((int)TensorProto.Types.DataType.Int64, model.Graph.Output[2].Type.TensorType.ElemType);

        // ONNX Runtime sees the same: the batch dimension is symbolic, the label output is int64.
        OnnxRuntimeNative.EnsureAvailable();
        using var session = new InferenceSession(model.ToByteArray());
        Assert.AreEqual(-1, session.InputMetadata["input"].Dimensions[0]);
        Assert.AreEqual(typeof(long), session.OutputMetadata["predicted_label"].ElementType);
        Assert.AreEqual("ResNet.ML", session.ModelMetadata.ProducerName);
    }

    [TestMethod]
    public void Metadata_carries_class_names_input_size_channel_order_normalization_and_architecture()
    {
        var net = Cifar(1, 4, 3, Shortcut.A);
        var options = new OnnxExportOptions
        {
            InputHeight = 32, InputWidth = 32, ClassNames = ["cat", "dog", "bird \"quoted\""],
            PixelScale = 1f / 255, Mean = [0.5f, 0.25f, 0.125f], Std = [0.2f, 0.3f, 0.4f], ChannelOrder = "BGR",
            ExtraMetadata = new Dictionary<string, string> { ["dataset"] = "unit test" },
        };
        OnnxRuntimeNative.EnsureAvailable();
        using var session = new InferenceSession(OnnxExporter.ExportToBytes(net, options));
        var meta = session.ModelMetadata.CustomMetadataMap;
        CollectionAssert.AreEqual(new[] { "cat", "dog", "bird \"quoted\"" }, JsonSerializer.Deserialize<string[]>(meta[OnnxMetadataKeys.ClassNames]));
        Assert.AreEqual("3", meta[OnnxMetadataKeys.InputChannels]);
        Assert.AreEqual("32", meta[OnnxMetadataKeys.InputHeight]);
        Assert.AreEqual("32", meta[OnnxMetadataKeys.InputWidth]);
        Assert.AreEqual("BGR", meta[OnnxMetadataKeys.ChannelOrder]);
        Assert.AreEqual(1f / 255, float.Parse(meta[OnnxMetadataKeys.PixelScale], System.Globalization.CultureInfo.InvariantCulture));
        CollectionAssert.AreEqual(new[] { 0.5f, 0.25f, 0.125f }, JsonSerializer.Deserialize<float[]>(meta[OnnxMetadataKeys.Mean]));
        CollectionAssert.AreEqual(new[] { 0.2f, 0.3f, 0.4f }, JsonSerializer.Deserialize<float[]>(meta[OnnxMetadataKeys.Std]));
        Assert.AreEqual("true", meta[OnnxMetadataKeys.PreprocessingInGraph]);
        Assert.AreEqual(net.Architecture, meta[OnnxMetadataKeys.Architecture]);
        StringAssert.Contains(meta[OnnxMetadataKeys.Architecture], "blocks=1,1,1");
        Assert.AreEqual("unit test", meta["dataset"]);
    }

    [TestMethod]
    public void Preprocessing_in_the_graph_takes_raw_pixels_as_the_normalized_model_takes_normalized_ones()
    {
        var net = Cifar(1, 4, 5, Shortcut.A);
        Randomize(net, 11);
        float[] mean = [0.49f, 0.48f, 0.45f], std = [0.25f, 0.24f, 0.26f];
        var raw = new float[2 * 3 * 32 * 32];
        var rng = new Rng(5);
        for (int i = 0; i < raw.Length; i++) raw[i] = rng.NextInt(256);   // 0..255 as ExtractPixels gives them
        var normalized = new float[raw.Length];
        for (int i = 0; i < raw.Length; i++)
        {
            int c = i / (32 * 32) % 3;
            normalized[i] = (raw[i] * (1f / 255) - mean[c]) / std[c];
        }
        using var withPre = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, new OnnxExportOptions
        { InputHeight = 32, InputWidth = 32, PixelScale = 1f / 255, Mean = mean, Std = std }));
        using var without = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, Options(32)));
        var a = withPre.Score(raw);
        var b = without.Score(normalized);
        AssertClose(b.Logits, a.Logits, 5, 1e-5, "logits of raw pixels through the embedded preprocessing");
        var raw0 = without.Score(raw);   // and the preprocessing really does something
        Assert.IsTrue(raw0.Logits.Zip(b.Logits).Any(p => Math.Abs(p.First - p.Second) > 1e-3));

        using var recordedOnly = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, new OnnxExportOptions
        { InputHeight = 32, InputWidth = 32, PixelScale = 1f / 255, Mean = mean, Std = std, EmbedPreprocessing = false }));
        AssertClose(b.Logits, recordedOnly.Score(normalized).Logits, 5, 1e-6, "EmbedPreprocessing=false leaves the graph unchanged");
        Assert.AreEqual("false", recordedOnly.Metadata[OnnxMetadataKeys.PreprocessingInGraph]);
    }

    [TestMethod]
    [DataRow(13)]
    [DataRow(17)]
    [DataRow(21)]
    public void Test_time_flip_averages_each_images_logits_with_its_mirror_images(int opset)
    {
        var net = Cifar(1, 4, 5, Shortcut.A, inputChannels: 3, size: 12);
        Randomize(net, 21);
        const int n = 3, c = 3, h = 12, w = 12;
        float[] x = RandomInput(n * c * h * w, 17);
        var mirrored = new float[x.Length];
        for (int i = 0; i < n * c * h; i++)
            for (int j = 0; j < w; j++) mirrored[i * w + j] = x[i * w + (w - 1 - j)];
        using var plain = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, new OnnxExportOptions { InputHeight = h, InputWidth = w, Opset = opset }));
        using var tta = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, new OnnxExportOptions { InputHeight = h, InputWidth = w, Opset = opset, TestTimeFlip = true }));
        var a = plain.Score(x).Logits;
        var b = plain.Score(mirrored).Logits;
        var expected = a.Zip(b, (p, q) => (p + q) / 2).ToArray();
        var scored = tta.Score(x);
        AssertClose(expected, scored.Logits, 5, 1e-5, "mean of the logits of the images and of their mirror images");
        Assert.IsTrue(a.Zip(b).Any(p => Math.Abs(p.First - p.Second) > 1e-3), "the random network must tell an image from its mirror image, or the test proves nothing");
        for (int i = 0; i < n; i++)
        {
            var row = expected.AsSpan(i * 5, 5).ToArray();
            var softmax = row.Select(v => Math.Exp(v - row.Max())).ToArray();
            for (int k = 0; k < 5; k++)
                Assert.AreEqual(softmax[k] / softmax.Sum(), scored.Probabilities[i * 5 + k], 1e-5, $"image {i}, class {k}: the probabilities are the softmax of the averaged logits");
        }
        Assert.AreEqual("flip", tta.Metadata[OnnxMetadataKeys.TestTimeAugmentation]);
        Assert.AreEqual("none", plain.Metadata[OnnxMetadataKeys.TestTimeAugmentation]);
    }

    [TestMethod]
    [DataRow(13)]
    [DataRow(17)]
    [DataRow(21)]
    public void Test_time_translate_and_flip_weigh_six_views_as_airbench_does(int opset)
    {
        var net = Cifar(1, 4, 5, Shortcut.A, inputChannels: 3, size: 12);
        Randomize(net, 23);
        const int n = 2, c = 3, h = 12, w = 12;
        float[] x = RandomInput(n * c * h * w, 19);
        // Reflect padding by one, then the crop starting at (dy, dx) of the padded image: a shift by (1 - dy, 1 - dx).
        float[] Shift(float[] v, int dy, int dx)
        {
            static int Reflect(int i, int size) => i < 0 ? -i : i >= size ? 2 * size - 2 - i : i;
            var r = new float[v.Length];
            for (int p = 0; p < n * c; p++)
                for (int y = 0; y < h; y++)
                    for (int q = 0; q < w; q++)
                        r[(p * h + y) * w + q] = v[(p * h + Reflect(y + dy - 1, h)) * w + Reflect(q + dx - 1, w)];
            return r;
        }
        float[] Mirror(float[] v)
        {
            var r = new float[v.Length];
            for (int i = 0; i < n * c * h; i++)
                for (int j = 0; j < w; j++) r[i * w + j] = v[i * w + (w - 1 - j)];
            return r;
        }
        using var plain = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, new OnnxExportOptions { InputHeight = h, InputWidth = w, Opset = opset }));
        float[] L(float[] v) => plain.Score(v).Logits;
        var views = new[] { x, Shift(x, 0, 0), Shift(x, 2, 2) };
        float[] weights = [0.5f, 0.25f, 0.25f];
        var translateOnly = new float[n * 5];
        var both = new float[n * 5];
        for (int v = 0; v < 3; v++)
        {
            var a = L(views[v]);
            var m = L(Mirror(views[v]));
            for (int i = 0; i < a.Length; i++)
            {
                translateOnly[i] += weights[v] * a[i];
                both[i] += weights[v] * (a[i] + m[i]) / 2;
            }
        }
        using var translate = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, new OnnxExportOptions { InputHeight = h, InputWidth = w, Opset = opset, TestTimeTranslate = true }));
        using var six = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, new OnnxExportOptions { InputHeight = h, InputWidth = w, Opset = opset, TestTimeTranslate = true, TestTimeFlip = true }));
        AssertClose(translateOnly, translate.Score(x).Logits, 5, 1e-5, "1/2 the image, 1/4 each shift");
        AssertClose(both, six.Score(x).Logits, 5, 1e-5, "the same with every view mirrored");
        Assert.IsTrue(L(x).Zip(L(Shift(x, 0, 0))).Any(p => Math.Abs(p.First - p.Second) > 1e-3), "the random network must tell an image from its shift, or the test proves nothing");
        Assert.AreEqual("translate", translate.Metadata[OnnxMetadataKeys.TestTimeAugmentation]);
        Assert.AreEqual("flip+translate", six.Metadata[OnnxMetadataKeys.TestTimeAugmentation]);
    }

    [TestMethod]
    [DataRow(13, 7L)]
    [DataRow(17, 8L)]
    [DataRow(21, 10L)]
    public void Every_supported_opset_loads_and_gives_the_same_scores(int opset, long irVersion)
    {
        var net = Cifar(1, 4, 4, Shortcut.A);
        Randomize(net, 3);
        var model = OnnxExporter.BuildModel(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, Opset = opset, FoldBatchNorm = false });
        Assert.AreEqual(irVersion, model.IrVersion);
        float[] x = RandomInput(3 * 32 * 32, 9);
        using var reference = OnnxPredictor.FromBytes(OnnxExporter.ExportToBytes(net, Options(32, fold: false)));
        using var predictor = OnnxPredictor.FromBytes(model.ToByteArray());
        AssertClose(reference.Score(x).Logits, predictor.Score(x).Logits, 4, 1e-6, $"opset {opset}");
    }

    [TestMethod]
    public void Bad_options_fail_with_a_message_naming_the_option()
    {
        var net = Cifar(1, 4, 3, Shortcut.A);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.BuildModel(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, ClassNames = ["a", "b"] })).Message, "ClassNames");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.BuildModel(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, Opset = 11 })).Message, "Opset 11");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.BuildModel(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, Mean = [0.5f] })).Message, "Mean");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.BuildModel(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, Std = [1, 0, 1] })).Message, "Std");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.BuildModel(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, LogitsName = "input" })).Message, "distinct");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.BuildModel(net, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, ExtraMetadata = new Dictionary<string, string> { ["class_names"] = "[]" } })).Message, "class_names");
        // An input size the network does not fit: the network's own shape check names the layer.
        var simple = SimpleCnn(3, 16, 2);
        StringAssert.Contains(Assert.ThrowsExactly<ShapeException>(() => OnnxExporter.BuildModel(simple, Options(32))).Message, "'fc'");
    }

    [TestMethod]
    public void A_layer_the_exporter_does_not_know_is_refused_by_name()
    {
        var net = new Network("custom", 3, 2, [new Conv2d("conv1", 3, 2, 1), new MysteryLayer("odd.one"), new GlobalAvgPool2d("avgpool")]);
        var ex = Assert.ThrowsExactly<NotSupportedException>(() => OnnxExporter.BuildModel(net, Options(8)));
        StringAssert.Contains(ex.Message, "odd.one");
        StringAssert.Contains(ex.Message, nameof(MysteryLayer));
    }

    [TestMethod]
    public void Export_to_a_path_is_atomic_and_leaves_no_temporary_file()
    {
        string folder = Directory.CreateTempSubdirectory("resnetml-onnx-").FullName;
        try
        {
            string path = Path.Combine(folder, "model.onnx");
            var net = Cifar(1, 4, 3, Shortcut.A);
            OnnxExporter.Export(net, path, Options(32));
            var written = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
            Assert.AreEqual("ResNet.ML", written.ProducerName);
            CollectionAssert.AreEqual(new[] { "model.onnx" }, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray());

            // A failing export (here: bad options) leaves the previous file as it was and nothing else behind.
            byte[] before = File.ReadAllBytes(path);
            Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.Export(net, path, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, ClassNames = ["only one"] }));
            CollectionAssert.AreEqual(before, File.ReadAllBytes(path));
            CollectionAssert.AreEqual(new[] { "model.onnx" }, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray());

            // Overwriting replaces the whole file.
            OnnxExporter.Export(net, path, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, ClassNames = ["x", "y", "z"] });
            StringAssert.Contains(ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).MetadataProps.Single(p => p.Key == "class_names").Value, "\"z\"");

            // The stream overload writes the same bytes as the path overload.
            using var ms = new MemoryStream();
            OnnxExporter.Export(net, ms, new OnnxExportOptions { InputHeight = 32, InputWidth = 32, ClassNames = ["x", "y", "z"] });
            CollectionAssert.AreEqual(File.ReadAllBytes(path), ms.ToArray());

            var nested = Path.Combine(folder, "new-folder", "model.onnx");
            OnnxExporter.Export(net, nested, Options(32));
            CollectionAssert.AreEqual(new[] { "model.onnx" }, Directory.GetFiles(Path.GetDirectoryName(nested)!).Select(Path.GetFileName).ToArray());
        }
        finally { Directory.Delete(folder, true); }
    }

    [TestMethod]
    public void Folding_matches_batch_norm_arithmetic_channel_by_channel()
    {
        var conv = new Conv2d("c", 2, 3, 1, bias: true);
        var bn = new BatchNorm2d("b", 3, eps: 1e-3f);
        float[] w = [1, 2, -1, 0.5f, 3, -2], b = [0.1f, -0.2f, 0.3f];
        w.CopyTo(conv.Weight.Value.Data, 0); b.CopyTo(conv.Bias!.Value.Data, 0);
        float[] gamma = [2, 0.5f, -1], beta = [1, 0, -1], mean = [0.5f, -1, 2], variance = [4, 0.25f, 1];
        gamma.CopyTo(bn.Weight.Value.Data, 0); beta.CopyTo(bn.Bias.Value.Data, 0); mean.CopyTo(bn.RunningMean.Data, 0); variance.CopyTo(bn.RunningVar.Data, 0);
        var (fw, fb) = GraphBuilder.Fold(conv, bn);
        for (int c = 0; c < 3; c++)
        {
            double s = gamma[c] / Math.Sqrt(variance[c] + 1e-3);
            // for an input x: bn(conv(x)) = s * (w·x + b - mean) + beta = (s w)·x + (s (b - mean) + beta)
            Assert.AreEqual(w[2 * c] * s, fw[2 * c], 1e-6);
            Assert.AreEqual(w[2 * c + 1] * s, fw[2 * c + 1], 1e-6);
            Assert.AreEqual(s * (b[c] - mean[c]) + beta[c], fb[c], 1e-6);
        }
    }

    private sealed class MysteryLayer(string name) : Layer(name)
    {
        public override (int C, int H, int W) OutputShape(int c, int h, int w) => (c, h, w);
        public override Tensor Forward(Tensor input, bool training) => input;
        public override Tensor Backward(Tensor gradOutput) => gradOutput;
    }
}
