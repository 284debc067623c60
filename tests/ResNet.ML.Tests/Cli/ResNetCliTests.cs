using System.Text.Json;
using ResNet.ML.Cli;
using ResNet.ML.Tests.Data;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Training.TrainingTestData;

namespace ResNet.ML.Tests.Cli;

/// <summary>The <c>resnet</c> tool, run in-process on tiny models and data written by the test.</summary>
[TestClass]
public sealed class ResNetCliTests
{
    private static string s_idxFolder = "";

    [ClassInitialize]
    public static void WriteData(TestContext _)
    {
        // 8x8 IDX "bars": class c has bright rows 2c and 2c+1 (3 classes, 60 images).
        s_idxFolder = TempFolder();
        var labels = Enumerable.Range(0, 60).Select(i => (byte)(i % 3)).ToArray();
        File.WriteAllBytes(Path.Combine(s_idxFolder, "train-images-idx3-ubyte"),
            DataFixtures.IdxImages(60, 8, 8, (n, p) => (byte)(p / 8 / 2 == labels[n] ? 220 - n % 7 * 5 : 20 + (n * 13 + p * 7) % 40)));
        File.WriteAllBytes(Path.Combine(s_idxFolder, "train-labels-idx1-ubyte"), DataFixtures.IdxLabels(labels));
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => Run(CancellationToken.None, args);

    private static (int Code, string Out, string Err) Run(CancellationToken ct, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = ResNetCli.Run(args, output, error, ct);
        return (code, output.ToString(), error.ToString());
    }

    private static string[] TrainArgs(string output, params string[] more) =>
        ["train", "--data", s_idxFolder, "--arch", TinyArchitecture, "--epochs", "2", "--batch-size", "8", "--threads", "2", "--output", output, .. more];

    [TestMethod]
    public void Train_Evaluate_Info_Predict_EndToEnd()
    {
        string output = TempFolder();
        var train = Run(TrainArgs(output));
        Assert.AreEqual(0, train.Code, train.Err);
        string onnx = Path.Combine(output, "model.onnx");
        Assert.IsTrue(File.Exists(onnx));
        Assert.IsTrue(File.Exists(Path.Combine(output, "model.safetensors")));
        Assert.IsTrue(File.Exists(Path.Combine(output, "checkpoints", TrainingCheckpoint.FileName)));
        StringAssert.Contains(train.Out, "epoch 2/2:");
        StringAssert.Contains(train.Out, $"resnet predict --model {onnx}");
        Assert.HasCount(2, JsonSerializer.Deserialize<List<JsonElement>>(File.ReadAllText(Path.Combine(output, "metrics.json")))!);
        var curves = System.Xml.Linq.XDocument.Load(Path.Combine(output, "training-curves.svg"));
        Assert.AreEqual("svg", curves.Root!.Name.LocalName, "training-curves.svg is an SVG document");
        StringAssert.Contains(curves.ToString(), "val. accuracy");

        // The ONNX model (ONNX Runtime) and the weights (engine) score the same data identically.
        var byOnnx = Run("evaluate", "--model", onnx, "--data", s_idxFolder);
        var byEngine = Run("evaluate", "--model", Path.Combine(output, "model.safetensors"), "--data", s_idxFolder);
        Assert.AreEqual(0, byOnnx.Code, byOnnx.Err);
        Assert.AreEqual(0, byEngine.Code, byEngine.Err);
        StringAssert.StartsWith(byOnnx.Out, "60 images: top-1 accuracy");
        Assert.AreEqual(byOnnx.Out.Split('\n')[0].Split(", loss")[0], byEngine.Out.Split('\n')[0].Split(", loss")[0]);
        StringAssert.Contains(byOnnx.Out, "confusion matrix");
        string matrix = Path.Combine(output, "confusion.svg");
        var withImage = Run("evaluate", "--model", onnx, "--data", s_idxFolder, "--confusion-matrix", matrix);
        Assert.AreEqual(0, withImage.Code, withImage.Err);
        Assert.AreEqual("svg", System.Xml.Linq.XDocument.Load(matrix).Root!.Name.LocalName);

        var info = Run("info", onnx);
        Assert.AreEqual(0, info.Code, info.Err);
        StringAssert.Contains(info.Out, "Architecture:   " + TinyArchitecture);
        StringAssert.Contains(info.Out, "input [batch, 1, 8, 8]");

        // A grayscale PNG of a class-1 bar (rows 2 and 3 bright).
        string images = TempFolder();
        var pixels = Enumerable.Range(0, 64).Select(p => (byte)(p / 8 / 2 == 1 ? 220 : 25)).ToArray();
        File.WriteAllBytes(Path.Combine(images, "bar1.png"), TestPng.Encode(pixels, 8, 8, 1));
        var predict = Run("predict", "--model", onnx, images, "--top", "2");
        Assert.AreEqual(0, predict.Code, predict.Err);
        StringAssert.Contains(predict.Out, "bar1.png: ");
        Assert.AreEqual(2, predict.Out.Split(": ")[1].Split(", ").Length, predict.Out);
    }

    [TestMethod]
    public void CtrlC_MidTraining_LeavesAResumableCheckpoint()
    {
        string output = TempFolder();
        using var cancel = new CancellationTokenSource();
        var stdout = new TriggerWriter("epoch 1/2 step", cancel.Cancel);   // the last step of epoch 1, before validation
        var stderr = new StringWriter();
        int code = ResNetCli.Run(TrainArgs(output), stdout, stderr, cancel.Token);
        Assert.AreEqual(ResNetCli.ExitCanceled, code, stderr.ToString());
        StringAssert.Contains(stderr.ToString(), "resume from");
        Assert.IsFalse(File.Exists(Path.Combine(output, "model.onnx")), "a canceled run wrote a model");
        string checkpoint = Path.Combine(output, "checkpoints", TrainingCheckpoint.FileName);
        Assert.AreEqual(0, TrainingCheckpoint.Load(checkpoint).Epoch);

        var resumed = Run(TrainArgs(output, "--resume", checkpoint));
        Assert.AreEqual(0, resumed.Code, resumed.Err);
        Assert.IsTrue(File.Exists(Path.Combine(output, "model.onnx")));
        StringAssert.Contains(resumed.Out, "epoch 2/2:");

        var mismatched = Run(TrainArgs(output, "--resume", checkpoint, "--seed", "5"));
        Assert.AreEqual(ResNetCli.ExitError, mismatched.Code);
        StringAssert.Contains(mismatched.Err, "Seed was 0, now 5");
    }

    [TestMethod]
    public void Train_WithoutData_UsesTheEmbeddedFashionMnistSubset()
    {
        string output = TempFolder();
        var r = Run("train", "--arch", TinyArchitecture, "--limit", "100", "--epochs", "1", "--batch-size", "25", "--output", output);
        Assert.AreEqual(0, r.Code, r.Err);
        StringAssert.Contains(r.Out, "Fashion-MNIST subset");
        StringAssert.Contains(r.Out, "100 images of [1, 28, 28], 10 classes");
        var model = TrainedModel.LoadWeights(Path.Combine(output, "model.safetensors"));
        Assert.AreEqual("T-shirt/top", model.ClassNames[0]);
        Assert.AreEqual(28, model.Height);
    }

    [TestMethod]
    public void Export_FreshSeededModel_ToOnnxAndSafetensors()
    {
        string folder = TempFolder();
        string onnx = Path.Combine(folder, "fresh.onnx"), weights = Path.Combine(folder, "fresh.safetensors");
        var a = Run("export", "--arch", TinyArchitecture, "--classes", "4", "--channels", "3", "--image-size", "16", "--seed", "3", "--output", onnx);
        Assert.AreEqual(0, a.Code, a.Err);
        var b = Run("export", "--arch", TinyArchitecture, "--classes", "4", "--channels", "3", "--image-size", "16", "--seed", "3", "--output", weights);
        Assert.AreEqual(0, b.Code, b.Err);
        var model = TrainedModel.LoadWeights(weights);
        Assert.AreEqual(4, model.ClassNames.Count);
        CollectionAssert.AreEqual(Weights(TrainedModel.CreateInitialized(TinyArchitecture, 3, ["0", "1", "2", "3"], 16, 16, 3).Network), Weights(model.Network));

        var again = Run("export", "--model", weights, "--output", Path.Combine(folder, "again.onnx"));
        Assert.AreEqual(0, again.Code, again.Err);
        CollectionAssert.AreEqual(File.ReadAllBytes(onnx), File.ReadAllBytes(Path.Combine(folder, "again.onnx")));
    }

    [TestMethod]
    public void Train_Recipe_SetsItsSettings_OptionsBesideItWin_AndAnotherOptimizerTakesItsOwnRate()
    {
        string[] Args(string output, params string[] more) =>
            ["train", "--data", s_idxFolder, "--arch", TinyArchitecture, "--epochs", "1", "--threads", "2", "--validation-fraction", "0", "--output", output, .. more];

        // A bare run is the quick recipe, at the optimizer's default rate and decay.
        var quick = Run(Args(TempFolder()));
        Assert.AreEqual(0, quick.Code, quick.Err);
        StringAssert.Contains(quick.Out, "Recipe quick: 1 epochs, batch 64, SgdMomentum lr 0.1, weight decay 0.0005, OneCycle schedule");

        // The fast recipe: its rate and Nesterov momentum in the run's record, its test-time flips in model.onnx.
        string fastFolder = TempFolder();
        var fast = Run(Args(fastFolder, "--recipe", "fast", "--batch-size", "8"));
        Assert.AreEqual(0, fast.Code, fast.Err);
        StringAssert.Contains(fast.Out, "Recipe fast: 1 epochs, batch 8, SgdMomentum lr 0.2, weight decay 0.0005, OneCycle schedule");
        StringAssert.Contains(fast.Out, "test-time flips in model.onnx");
        using (var predictor = ResNet.ML.Onnx.OnnxPredictor.Load(Path.Combine(fastFolder, "model.onnx")))
            Assert.AreEqual("flip", predictor.Metadata[ResNet.ML.Onnx.OnnxMetadataKeys.TestTimeAugmentation]);

        // Another optimizer than the recipe's starts from its own rate and decay; a recipe's flag can be turned off.
        string adamFolder = TempFolder();
        var adam = Run(Args(adamFolder, "--recipe", "fast", "--batch-size", "8", "--optimizer", "Adam", "--tta-flip", "false"));
        Assert.AreEqual(0, adam.Code, adam.Err);
        StringAssert.Contains(adam.Out, "Adam lr 0.001, weight decay 0, OneCycle schedule");
        Assert.IsFalse(adam.Out.Contains("test-time flips", StringComparison.Ordinal));
        using (var predictor = ResNet.ML.Onnx.OnnxPredictor.Load(Path.Combine(adamFolder, "model.onnx")))
            Assert.AreEqual("none", predictor.Metadata[ResNet.ML.Onnx.OnnxMetadataKeys.TestTimeAugmentation]);

        var unknown = Run(Args(TempFolder(), "--recipe", "slow"));
        Assert.AreNotEqual(0, unknown.Code);
        StringAssert.Contains(unknown.Err, "slow");
    }

    [TestMethod]
    public void IdxClassNames_ComeFromClassesTxt_OrTheLabelFilesContent_NeverFromTheFolderName()
    {
        // The bars data in a folder whose name says "fashion": its classes are still numbered, as the labels are not Fashion-MNIST's.
        string folder = Path.Combine(TempFolder(), "fashion-lookalike");
        Directory.CreateDirectory(folder);
        foreach (var f in Directory.GetFiles(s_idxFolder)) File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        IReadOnlyList<string> Classes(params string[] more)
        {
            string output = TempFolder();
            var r = Run(["train", "--data", folder, "--arch", TinyArchitecture, "--epochs", "1", "--batch-size", "8", "--threads", "2", "--output", output, .. more]);
            Assert.AreEqual(0, r.Code, r.Err);
            using var predictor = ResNet.ML.Onnx.OnnxPredictor.Load(Path.Combine(output, "model.onnx"));
            return predictor.ClassNames;
        }
        CollectionAssert.AreEqual(new[] { "0", "1", "2" }, Classes().ToArray());

        File.WriteAllLines(Path.Combine(folder, "classes.txt"), ["top bars", "middle bars", "", "bottom bars"]);
        CollectionAssert.AreEqual(new[] { "top bars", "middle bars", "bottom bars" }, Classes().ToArray(), "classes.txt names them, blank lines aside");

        File.WriteAllLines(Path.Combine(folder, "classes.txt"), ["a", "a", "b"]);
        var twice = Run(["train", "--data", folder, "--arch", TinyArchitecture, "--epochs", "1", "--output", TempFolder()]);
        Assert.AreNotEqual(0, twice.Code);
        StringAssert.Contains(twice.Err, "classes.txt");

        // The committed Fashion-MNIST subset is recognized by its label file, wherever it is copied.
        string subset = Path.Combine(TempFolder(), "renamed");
        Directory.CreateDirectory(subset);
        string source = Path.Combine(AppContext.BaseDirectory, "fashion-mnist-subset", "train-labels-idx1-ubyte.gz");
        if (!File.Exists(source)) source = Path.Combine(RepoRoot(), "data", "fashion-mnist-subset", "train-labels-idx1-ubyte.gz");
        File.Copy(source, Path.Combine(subset, "train-labels-idx1-ubyte.gz"));
        Assert.IsTrue(ResNet.ML.Data.FashionMnist.IsLabelFile(Path.Combine(subset, "train-labels-idx1-ubyte.gz")));
        Assert.IsFalse(ResNet.ML.Data.FashionMnist.IsLabelFile(Path.Combine(folder, "train-labels-idx1-ubyte")));
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "ResNet.ML.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("ResNet.ML.sln not found above the test output.");
    }

    [TestMethod]
    public void Export_TtaFlip_WritesTheMirrorAveragingGraph_AndIsRefusedForSafetensors()
    {
        string folder = TempFolder();
        string plain = Path.Combine(folder, "plain.onnx"), tta = Path.Combine(folder, "tta.onnx");
        string[] fresh = ["--arch", TinyArchitecture, "--classes", "4", "--channels", "3", "--image-size", "16", "--seed", "3"];
        Assert.AreEqual(0, Run(["export", .. fresh, "--output", plain]).Code);
        var r = Run(["export", .. fresh, "--tta-flip", "--output", tta]);
        Assert.AreEqual(0, r.Code, r.Err);
        using (var predictor = ResNet.ML.Onnx.OnnxPredictor.Load(tta))
            Assert.AreEqual("flip", predictor.Metadata[ResNet.ML.Onnx.OnnxMetadataKeys.TestTimeAugmentation]);
        using (var predictor = ResNet.ML.Onnx.OnnxPredictor.Load(plain))
            Assert.AreEqual("none", predictor.Metadata[ResNet.ML.Onnx.OnnxMetadataKeys.TestTimeAugmentation]);
        string six = Path.Combine(folder, "six.onnx");
        var both = Run(["export", .. fresh, "--tta-flip", "--tta-translate", "--output", six]);
        Assert.AreEqual(0, both.Code, both.Err);
        using (var predictor = ResNet.ML.Onnx.OnnxPredictor.Load(six))
            Assert.AreEqual("flip+translate", predictor.Metadata[ResNet.ML.Onnx.OnnxMetadataKeys.TestTimeAugmentation]);

        string weights = Path.Combine(folder, "w.safetensors");
        var refused = Run(["export", .. fresh, "--tta-flip", "--output", weights]);
        Assert.AreNotEqual(0, refused.Code);
        StringAssert.Contains(refused.Err, "--tta-flip");
        Assert.IsFalse(File.Exists(weights), "nothing is written when the options are refused");
    }

    [TestMethod]
    public void Benchmark_PrintsOneJsonLine()
    {
        var r = Run("benchmark", "--arch", TinyArchitecture, "--batch-size", "4", "--image-size", "8", "--channels", "1", "--steps", "1", "--threads", "1", "--json");
        Assert.AreEqual(0, r.Code, r.Err);
        var json = JsonDocument.Parse(r.Out.Trim()).RootElement;
        Assert.AreEqual(4, json.GetProperty("batch").GetInt32());
        Assert.AreEqual(1, json.GetProperty("threads").GetInt32());
        foreach (var key in new[] { "train_images_per_sec", "infer_images_per_sec", "peak_rss_mb" })
            Assert.IsGreaterThan(0, json.GetProperty(key).GetDouble(), key);
        StringAssert.Contains(json.GetProperty("arch").GetString(), "widths=4,8,16");
    }

    [TestMethod]
    public void Errors_AreOneSentence_WithoutStackTrace_UnlessVerbose()
    {
        string folder = TempFolder();
        string weights = Path.Combine(folder, "w.safetensors");
        Assert.AreEqual(0, Run("export", "--arch", TinyArchitecture, "--classes", "3", "--channels", "1", "--image-size", "8", "--output", weights).Code);

        var wrongKind = Run("predict", "--model", weights, folder);
        Assert.AreEqual(ResNetCli.ExitError, wrongKind.Code);
        StringAssert.StartsWith(wrongKind.Err, "error: ");
        StringAssert.Contains(wrongKind.Err, "not an ONNX model");
        Assert.AreEqual(1, wrongKind.Err.Trim().Split('\n').Length, wrongKind.Err);

        var verbose = Run("predict", "--model", weights, folder, "--verbose");
        StringAssert.Contains(verbose.Err, "   at ");

        var missing = Run("train", "--data", Path.Combine(folder, "nope"), "--output", folder);
        Assert.AreEqual(ResNetCli.ExitError, missing.Code);
        StringAssert.Contains(missing.Err, "does not exist");

        // One class only.
        string single = TempFolder();
        File.WriteAllBytes(Path.Combine(single, "train-images-idx3-ubyte"), DataFixtures.IdxImages(6, 8, 8, (n, p) => (byte)p));
        File.WriteAllBytes(Path.Combine(single, "train-labels-idx1-ubyte"), DataFixtures.IdxLabels(0, 0, 0, 0, 0, 0));
        var oneClass = Run("train", "--data", single, "--arch", TinyArchitecture, "--output", TempFolder());
        Assert.AreEqual(ResNetCli.ExitError, oneClass.Code);
        StringAssert.Contains(oneClass.Err, "one class");

        // Mixed image sizes in a folder without --image-size.
        string mixed = TempFolder();
        Directory.CreateDirectory(Path.Combine(mixed, "a"));
        Directory.CreateDirectory(Path.Combine(mixed, "b"));
        File.WriteAllBytes(Path.Combine(mixed, "a", "1.png"), TestPng.Encode(new byte[64], 8, 8, 1));
        File.WriteAllBytes(Path.Combine(mixed, "b", "2.png"), TestPng.Encode(new byte[120], 12, 10, 1));
        var sizes = Run("train", "--data", mixed, "--arch", TinyArchitecture, "--output", TempFolder());
        Assert.AreEqual(ResNetCli.ExitError, sizes.Code);
        StringAssert.Contains(sizes.Err, "mixed sizes");
        StringAssert.Contains(sizes.Err, "--image-size");

        // An output folder that cannot be written (root ignores permissions, so use a read-only file system then).
        string readOnly = Environment.UserName == "root" && OperatingSystem.IsLinux() ? "/proc/resnet-ml-test" : MakeReadOnlyFolder();
        var unwritable = Run(TrainArgs(readOnly));
        Assert.AreEqual(ResNetCli.ExitError, unwritable.Code);
        StringAssert.Contains(unwritable.Err, "not writable");
        Assert.IsFalse(Directory.Exists(readOnly) && Directory.EnumerateFileSystemEntries(readOnly).Any());
    }

    [TestMethod]
    public void Train_SkipBadImages_LeavesOutTheCorruptFileThatOtherwiseStopsTheRun()
    {
        string folder = TempFolder();
        for (int c = 0; c < 2; c++)
        {
            Directory.CreateDirectory(Path.Combine(folder, $"class{c}"));
            for (int i = 0; i < 4; i++)
                File.WriteAllBytes(Path.Combine(folder, $"class{c}", $"{i}.png"), TestPng.Encode(Enumerable.Repeat((byte)(c * 200 + i), 64).ToArray(), 8, 8, 1));
        }
        string corrupt = Path.Combine(folder, "class1", "broken.png");
        File.WriteAllBytes(corrupt, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        string[] train = ["train", "--data", folder, "--channels", "1", "--arch", TinyArchitecture, "--epochs", "1", "--batch-size", "4", "--validation-fraction", "0"];

        var stopped = Run([.. train, "--output", TempFolder()]);
        Assert.AreEqual(ResNetCli.ExitError, stopped.Code);
        StringAssert.Contains(stopped.Err, "broken.png");

        var skipped = Run([.. train, "--skip-bad-images", "--output", TempFolder()]);
        Assert.AreEqual(0, skipped.Code, skipped.Err);
        StringAssert.Contains(skipped.Err, "skipped 1 image");
        StringAssert.Contains(skipped.Out, "8 images");
    }

    private static string MakeReadOnlyFolder()
    {
        string path = TempFolder();
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        else new DirectoryInfo(path).Attributes |= FileAttributes.ReadOnly;
        return Path.Combine(path, "out");
    }

    /// <summary>A writer that runs an action the first time a line containing a marker is written.</summary>
    private sealed class TriggerWriter(string marker, Action action) : StringWriter
    {
        private bool _fired;

        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (!_fired && value is not null && value.Contains(marker, StringComparison.Ordinal)) { _fired = true; action(); }
        }
    }
}
