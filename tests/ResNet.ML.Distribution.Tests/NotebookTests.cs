using System.Globalization;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace ResNet.ML.Distribution.Tests;

/// <summary>
/// Every notebook in notebooks/, run cell by cell on the real .NET Interactive C# kernel, taking ResNet.ML through the
/// line a user types, <c>#r "nuget: ResNet.ML.MLNet, version"</c>, from the local feed. A cell error fails the test.
/// With RESNETML_WRITE_NOTEBOOKS=1 the kernel's outputs are written back into the .ipynb files.
/// </summary>
[TestClass]
public sealed class NotebookTests
{
    // A guard against a hung kernel, not a speed check: transfer-learning's training cell (two ResNet-18s, 6 epochs each)
    // takes about 4 minutes on a quiet 2-core machine and went past 6 with another process training beside it.
    private static readonly TimeSpan CellTimeout = TimeSpan.FromMinutes(10);
    private static string s_notebooks = "";
    private static string s_previousDirectory = "";
    private static readonly Dictionary<string, string?> s_previousEnvironment = [];

    [ClassInitialize]
    public static void Setup(TestContext _)
    {
        s_notebooks = Path.Combine(LocalFeed.RepoRoot, "notebooks");
        // The kernel's package manager restores under $HOME/.packagemanagement with the user's NuGet settings: give it a
        // home of its own whose NuGet.Config keeps the machine's sources and reads third-party packages from the
        // machine's packages folder, and the test's own packages folder, where ResNet.ML can only come from the feed.
        string home = Directory.CreateDirectory(Path.Combine(LocalFeed.Work, "kernel-home")).FullName;
        string userConfig = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "NuGet", "NuGet.Config");
        var config = File.Exists(userConfig) ? XDocument.Load(userConfig) : new XDocument(new XElement("configuration"));
        var configuration = config.Root!;
        configuration.Element("fallbackPackageFolders")?.Remove();
        configuration.Add(new XElement("fallbackPackageFolders",
            new XElement("add", new XAttribute("key", "machine"), new XAttribute("value", LocalFeed.MachinePackages))));
        string nugetFolder = Directory.CreateDirectory(Path.Combine(home, ".nuget", "NuGet")).FullName;
        config.Save(Path.Combine(nugetFolder, "NuGet.Config"));

        foreach (var (name, value) in new[] { ("HOME", home), ("NUGET_PACKAGES", LocalFeed.Packages), ("DOTNET_CLI_TELEMETRY_OPTOUT", "1"), ("DOTNET_NOLOGO", "1") })
        {
            s_previousEnvironment[name] = Environment.GetEnvironmentVariable(name);
            Environment.SetEnvironmentVariable(name, value);
        }
        // Notebooks use paths relative to their folder, the kernel's working directory in Polyglot Notebooks.
        s_previousDirectory = Environment.CurrentDirectory;
        Environment.CurrentDirectory = s_notebooks;
    }

    [ClassCleanup]
    public static void Restore()
    {
        foreach (var (name, value) in s_previousEnvironment) Environment.SetEnvironmentVariable(name, value);
        if (s_previousDirectory.Length > 0) Environment.CurrentDirectory = s_previousDirectory;
    }

    private static async Task<List<NotebookRunner.CellRun>> Run(string name)
    {
        string path = Path.Combine(s_notebooks, name);
        var runs = await NotebookRunner.RunAsync(path, $"#i \"nuget: {LocalFeed.Feed}\"", CellTimeout);
        Console.WriteLine($"{name}: {runs.Count} code cells, {runs.Sum(r => r.Elapsed.TotalSeconds):F0} s ({string.Join(", ", runs.Select(r => r.Elapsed.TotalSeconds.ToString("F0", CultureInfo.InvariantCulture)))})");
        if (Environment.GetEnvironmentVariable("RESNETML_WRITE_NOTEBOOKS") == "1")
            NotebookRunner.WriteOutputs(path, runs, "the .NET Interactive C# kernel (Microsoft.DotNet.Interactive.CSharp), run by tests/ResNet.ML.Distribution.Tests/NotebookTests.cs");
        return runs;
    }

    [TestMethod]
    public void Every_notebook_has_a_test_and_references_the_package_version_being_built()
    {
        var tested = typeof(NotebookTests).GetMethods().Select(m => m.Name).ToList();
        foreach (string path in Directory.GetFiles(Path.Combine(LocalFeed.RepoRoot, "notebooks"), "*.ipynb"))
        {
            string stem = Path.GetFileNameWithoutExtension(path).Replace("-", "_", StringComparison.Ordinal);
            Assert.IsTrue(tested.Any(t => t.StartsWith(stem + "_", StringComparison.OrdinalIgnoreCase)), $"{Path.GetFileName(path)} has no test in NotebookTests");
            var cells = NotebookRunner.CodeCells(path);
            Assert.AreEqual($"#r \"nuget: ResNet.ML.MLNet, {LocalFeed.Version}\"", cells[0].Trim(), $"{Path.GetFileName(path)}'s first cell takes the package being built");
            Assert.IsFalse(cells.Any(c => c.Contains("#r \"../", StringComparison.Ordinal) || c.Contains(".dll\"", StringComparison.Ordinal)), $"{Path.GetFileName(path)} references a build output instead of the package");
            // The stored outputs are the kernel's (RESNETML_WRITE_NOTEBOOKS=1): every cell that prints or displays has some.
            var notebook = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
            StringAssert.Contains((string?)notebook["metadata"]?["resnet_ml"]?["outputs_produced_by"] ?? "", ".NET Interactive C# kernel", Path.GetFileName(path));
            var codeCells = notebook["cells"]!.AsArray().Where(c => (string?)c!["cell_type"] == "code").ToList();
            for (int i = 0; i < codeCells.Count; i++)
                if (Regex.IsMatch(cells[i], @"Console\.Write|display\("))
                    Assert.IsNotEmpty(codeCells[i]!["outputs"]!.AsArray(), $"{Path.GetFileName(path)} code cell {i} prints but has no stored output");
        }
    }

    [TestMethod]
    [Timeout(10 * 60 * 1000, CooperativeCancellation = true)]
    public async Task Quickstart_trains_charts_evaluates_exports_and_scores_with_onnx_runtime()
    {
        var runs = await Run("quickstart.ipynb");
        string all = string.Concat(runs.Select(NotebookRunner.Stdout));
        StringAssert.Contains(all, "CPUExecutionProvider");
        var charts = runs.SelectMany(NotebookRunner.Charts).ToList();
        Assert.HasCount(2, charts, "the training curves and the confusion matrix");
        var agreement = Regex.Match(all, @"on (\d+) test images: same top-1 for (\d+), max \|Δprobability\| ([0-9.E+-]+); ONNX top-1 accuracy ([0-9.]+) ?%");
        Assert.IsTrue(agreement.Success, all);
        int count = int.Parse(agreement.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.AreEqual(count, int.Parse(agreement.Groups[2].Value, CultureInfo.InvariantCulture), "ONNX Runtime and the engine agree on every image");
        Assert.IsLessThan(1e-3, double.Parse(agreement.Groups[3].Value, CultureInfo.InvariantCulture));
        Assert.IsGreaterThan(60.0, double.Parse(agreement.Groups[4].Value, CultureInfo.InvariantCulture), "two short epochs already classify most test images");
    }

    [TestMethod]
    [Timeout(10 * 60 * 1000, CooperativeCancellation = true)]
    public async Task Mlnet_pipeline_trains_on_image_files_evaluates_saves_loads_and_predicts()
    {
        var runs = await Run("mlnet-pipeline.ipynb");
        string all = string.Concat(runs.Select(NotebookRunner.Stdout));
        StringAssert.Contains(all, "1000 training and 300 test PNGs in 10 class folders");
        var accuracy = Regex.Match(all, @"test: micro-accuracy ([0-9.]+) ?%");
        Assert.IsTrue(accuracy.Success, all);
        Assert.IsGreaterThan(50.0, double.Parse(accuracy.Groups[1].Value, CultureInfo.InvariantCulture), all);
        Assert.HasCount(1, runs.SelectMany(NotebookRunner.Charts).ToList(), "the confusion matrix");
        Assert.AreEqual(6, Regex.Matches(all, @" predicted .+? +\([0-9.]+ ?%\), labelled ").Count, all);
    }

    [TestMethod]
    [Timeout(10 * 60 * 1000, CooperativeCancellation = true)]
    public async Task Degradation_trains_four_networks_and_charts_their_curves()
    {
        var runs = await Run("degradation.ipynb");
        string all = string.Concat(runs.Select(NotebookRunner.Stdout));
        foreach (string net in new[] { "plain-20", "resnet-20", "plain-56", "resnet-56" })
            Assert.IsTrue(Regex.IsMatch(all, $@"{net} +126 steps in"), $"{net} trained 126 steps:\n{all}");
        var charts = runs.SelectMany(NotebookRunner.Charts).ToList();
        Assert.HasCount(2, charts, "loss and accuracy curves");
        string labels = string.Join("|", charts[0].Descendants(XName.Get("text", "http://www.w3.org/2000/svg")).Select(t => t.Value));
        foreach (string net in new[] { "plain-20", "resnet-20", "plain-56", "resnet-56" }) StringAssert.Contains(labels, net);
    }

    [TestMethod]
    [Timeout(10 * 60 * 1000, CooperativeCancellation = true)]
    public async Task Seed_experiment_compares_simplecnn_and_seed_resnet_on_the_same_budget()
    {
        var runs = await Run("seed-experiment.ipynb");
        string all = string.Concat(runs.Select(NotebookRunner.Stdout));
        foreach (string arch in new[] { "simplecnn", "seed-resnet" })
        {
            var result = Regex.Match(all, $@"{arch} +held-out top-1 ([0-9.]+) ?%");
            Assert.IsTrue(result.Success, all);
            Assert.IsGreaterThan(50.0, double.Parse(result.Groups[1].Value, CultureInfo.InvariantCulture), $"{arch} learned: {all}");
        }
        Assert.HasCount(1, runs.SelectMany(NotebookRunner.Charts).ToList());
    }

    [TestMethod]
    [Timeout(10 * 60 * 1000, CooperativeCancellation = true)]
    public async Task Transfer_learning_trains_from_scratch_and_from_dnn_resnet18_and_scores_the_export_with_onnx_runtime()
    {
        var runs = await Run("transfer-learning.ipynb");
        string all = string.Concat(runs.Select(NotebookRunner.Stdout));
        // The weights came from the package the notebook references, restored by the kernel (not from a build output).
        StringAssert.Contains(all, "ResNet18Onnx/ResNet18.onnx");
        StringAssert.Contains(all, "training: 500 images (50 per class), held out: 1000, [1, 48, 48]");
        var accuracy = new Dictionary<string, double>();
        foreach (string mode in new[] { "scratch", "pretrained", "ONNX Runtime" })
        {
            var result = Regex.Match(all, $@"^{mode} +held-out top-1 ([0-9.]+) ?%", RegexOptions.Multiline);
            Assert.IsTrue(result.Success, $"{mode}: {all}");
            accuracy[mode] = double.Parse(result.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        // Chance is 10 %: both runs must have learned something, by a clear margin.
        Assert.IsGreaterThan(30.0, accuracy["scratch"], all);
        Assert.IsGreaterThan(30.0, accuracy["pretrained"], all);
        Assert.IsLessThanOrEqualTo(0.5, Math.Abs(accuracy["ONNX Runtime"] - accuracy["pretrained"]), $"the exported model scores as the engine does: {all}");
    }
}
