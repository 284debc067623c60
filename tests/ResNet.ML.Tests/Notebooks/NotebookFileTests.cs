using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ResNet.ML.Layers;
using ResNet.ML.Tests.Data;

namespace ResNet.ML.Tests.Notebooks;

/// <summary>
/// Static checks of the notebooks in notebooks/: that Polyglot Notebooks opens them as C# (.NET Interactive metadata),
/// that their references, namespaces and relative paths still point at things that exist, and that their stored
/// outputs are there. Compiling and running the cells is notebooks/run_notebook.py's job (about a minute per notebook
/// on 2 shared cores, too slow for the suite).
/// </summary>
[TestClass]
public sealed class NotebookFileTests
{
    private static readonly Regex ReferenceDirective = new(@"^\s*#r\s+""([^""]+)""", RegexOptions.Multiline);
    private static readonly Regex ResNetUsing = new(@"^\s*using\s+(ResNet\.ML(\.\w+)*)\s*;", RegexOptions.Multiline);
    private static readonly Regex RelativePathLiteral = new(@"""(\.\./[^""]+)""");

    private static string NotebookFolder => Path.Combine(IdxTests.RepoRoot(), "notebooks");

    private static IEnumerable<(string Name, JsonObject Notebook)> Notebooks()
    {
        var files = Directory.GetFiles(NotebookFolder, "*.ipynb");
        Assert.IsNotEmpty(files, $"no notebooks in {NotebookFolder}");
        foreach (var file in files.Order(StringComparer.Ordinal))
            yield return (Path.GetFileName(file), JsonNode.Parse(File.ReadAllText(file))!.AsObject());
    }

    private static IEnumerable<(int Index, string Source, JsonObject Cell)> CodeCells(JsonObject notebook) =>
        notebook["cells"]!.AsArray().Select((c, i) => (i, c!.AsObject()))
            .Where(x => (string?)x.Item2["cell_type"] == "code")
            .Select(x => (x.i, Source(x.Item2["source"]), x.Item2));

    private static string Source(JsonNode? source) =>
        source is JsonArray lines ? string.Concat(lines.Select(l => (string?)l)) : (string?)source ?? "";

    [TestMethod]
    public void NotebooksCarryPolyglotCSharpMetadata()
    {
        foreach (var (name, nb) in Notebooks())
        {
            Assert.AreEqual(4, (int?)nb["nbformat"], $"{name}: nbformat");
            Assert.AreEqual(".net-csharp", (string?)nb["metadata"]?["kernelspec"]?["name"], $"{name}: kernelspec.name");
            Assert.AreEqual("C#", (string?)nb["metadata"]?["language_info"]?["name"], $"{name}: language_info.name");
            var cells = CodeCells(nb).ToList();
            Assert.IsNotEmpty(cells, $"{name} has no code cells");
            foreach (var (index, _, cell) in cells)
                Assert.AreEqual("csharp", (string?)cell["metadata"]?["dotnet_interactive"]?["language"], $"{name} cell {index}: metadata.dotnet_interactive.language");
        }
    }

    [TestMethod]
    public void ReferencedLibraryIsThisBuildsOutput()
    {
        string tfm = "net" + Environment.Version.ToString(2);
        bool release = typeof(Network).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration == "Release";
        foreach (var (name, nb) in Notebooks())
        {
            var dlls = CodeCells(nb).SelectMany(c => ReferenceDirective.Matches(c.Source)).Select(m => m.Groups[1].Value)
                .Where(r => !r.StartsWith("nuget:", StringComparison.Ordinal)).ToList();
            Assert.Contains("../src/ResNet.ML/bin/Release/" + tfm + "/ResNet.ML.dll", dlls, $"{name} references the library's Release build for {tfm}");
            foreach (string dll in dlls)
            {
                string full = Path.GetFullPath(Path.Combine(NotebookFolder, dll));
                // The suite is built with -c Release, which writes the library's Release output the notebooks use.
                if (release) Assert.IsTrue(File.Exists(full), $"{name}: #r \"{dll}\" does not exist after a Release build ({full})");
            }
        }
    }

    [TestMethod]
    public void NuGetReferencesUseTheRepositorysPinnedVersions()
    {
        var pinned = System.Xml.Linq.XDocument.Load(Path.Combine(IdxTests.RepoRoot(), "Directory.Packages.props"))
            .Descendants("PackageVersion").ToDictionary(e => (string)e.Attribute("Include")!, e => (string)e.Attribute("Version")!);
        var nuget = new Regex(@"^nuget:\s*([^,\s]+)\s*,\s*(\S+)$");
        foreach (var (name, nb) in Notebooks())
        {
            foreach (var (index, source, _) in CodeCells(nb))
            {
                foreach (Match r in ReferenceDirective.Matches(source))
                {
                    var m = nuget.Match(r.Groups[1].Value);
                    if (!m.Success || m.Groups[1].Value == "ResNet.ML") continue;
                    Assert.IsTrue(pinned.TryGetValue(m.Groups[1].Value, out var version), $"{name} cell {index}: {m.Groups[1].Value} is not pinned in Directory.Packages.props");
                    Assert.AreEqual(version, m.Groups[2].Value, $"{name} cell {index}: {m.Groups[1].Value} version (the library is built against {version})");
                }
            }
        }
    }

    [TestMethod]
    public void NamespacesAndRelativePathsExist()
    {
        var namespaces = typeof(Network).Assembly.GetTypes().Select(t => t.Namespace).OfType<string>().ToHashSet();
        foreach (var (name, nb) in Notebooks())
        {
            foreach (var (index, source, _) in CodeCells(nb))
            {
                foreach (Match m in ResNetUsing.Matches(source))
                    Assert.Contains(m.Groups[1].Value, namespaces, $"{name} cell {index}: using {m.Groups[1].Value}");
                foreach (Match m in RelativePathLiteral.Matches(source))
                {
                    if (m.Groups[1].Value.EndsWith(".dll", StringComparison.Ordinal)) continue;
                    string full = Path.GetFullPath(Path.Combine(NotebookFolder, m.Groups[1].Value));
                    Assert.IsTrue(File.Exists(full) || Directory.Exists(full), $"{name} cell {index}: \"{m.Groups[1].Value}\" does not exist ({full})");
                }
            }
        }
    }

    [TestMethod]
    public void PrintingCellsHaveStoredOutputs()
    {
        foreach (var (name, nb) in Notebooks())
        {
            Assert.IsNotNull(nb["metadata"]?["resnet_ml"]?["outputs_produced_by"], $"{name}: says how its outputs were produced");
            foreach (var (index, source, cell) in CodeCells(nb))
            {
                if (!source.Contains("Console.Write", StringComparison.Ordinal)) continue;
                string text = string.Concat(cell["outputs"]!.AsArray()
                    .Where(o => (string?)o!["output_type"] == "stream").Select(o => Source(o!["text"])));
                Assert.IsFalse(string.IsNullOrWhiteSpace(text), $"{name} cell {index} prints but has no stored output (run notebooks/run_notebook.py --write-outputs)");
            }
        }
    }
}
