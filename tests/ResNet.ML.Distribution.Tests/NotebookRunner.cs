using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Documents.Jupyter;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;
using Microsoft.DotNet.Interactive.PackageManagement;

namespace ResNet.ML.Distribution.Tests;

/// <summary>
/// Runs a .ipynb's C# cells in order on .NET Interactive's own C# kernel, in this process, as Polyglot Notebooks would:
/// `#r "nuget: ..."` restores through the kernel's package manager, `display(...)` and a trailing expression are
/// formatted by the kernel. Returns the outputs per code cell, in Jupyter's format, and can write them into the file.
/// </summary>
internal sealed class NotebookRunner
{
    /// <summary>One code cell's outputs as Jupyter output objects (stream, display_data, execute_result).</summary>
    public sealed record CellRun(int Index, string Code, JsonArray Outputs, TimeSpan Elapsed);

    private static readonly KernelInfoCollection Kernels = new() { new Microsoft.DotNet.Interactive.Documents.KernelInfo("csharp", "C#", ["c#", "C#"]) };

    /// <summary>The code cells of a notebook, read by .NET Interactive's own document model.</summary>
    public static IReadOnlyList<string> CodeCells(string notebookPath)
    {
        var document = Notebook.Parse(File.ReadAllText(notebookPath), Kernels);
        return document.Elements.Where(e => e.KernelName is "csharp" or "C#").Select(e => e.Contents).ToList();
    }

    /// <summary>
    /// Runs every code cell after <paramref name="setup"/> (submitted first, never stored: the feed a user configures);
    /// stops at the first failing cell with its index, its code and the kernel's message.
    /// </summary>
    public static async Task<List<CellRun>> RunAsync(string notebookPath, string setup, TimeSpan cellTimeout)
    {
        using var kernel = new CSharpKernel().UseKernelHelpers();
        kernel.UseNugetDirective((k, references) =>
        {
            k.AddAssemblyReferences(references.SelectMany(r => r.AssemblyPaths));
            return Task.CompletedTask;
        }, forceRestore: false);

        var setupResult = await kernel.SendAsync(new SubmitCode(setup));
        if (setupResult.Events.OfType<CommandFailed>().FirstOrDefault() is { } setupFailed)
            throw new InvalidOperationException($"Kernel setup failed: {setupFailed.Message}");

        var runs = new List<CellRun>();
        var cells = CodeCells(notebookPath);
        for (int i = 0; i < cells.Count; i++)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var submit = kernel.SendAsync(new SubmitCode(cells[i]));
            if (await Task.WhenAny(submit, Task.Delay(cellTimeout)) != submit)
                throw new TimeoutException($"{Path.GetFileName(notebookPath)} code cell {i} did not finish in {cellTimeout.TotalSeconds:F0} s:\n{cells[i]}");
            var result = await submit;
            if (result.Events.OfType<CommandFailed>().FirstOrDefault() is { } failed)
                throw new InvalidOperationException($"{Path.GetFileName(notebookPath)} code cell {i} failed: {failed.Message}\n--- cell ---\n{cells[i]}");
            runs.Add(new CellRun(i, cells[i], Outputs(result.Events, i + 1), watch.Elapsed));
        }
        return runs;
    }

    private static JsonArray Outputs(IEnumerable<KernelEvent> events, int executionCount)
    {
        var outputs = new JsonArray();
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        void Flush()
        {
            if (stdout.Length > 0) outputs.Add(Stream("stdout", stdout.ToString()));
            if (stderr.Length > 0) outputs.Add(Stream("stderr", stderr.ToString()));
            stdout.Clear();
            stderr.Clear();
        }
        foreach (var e in events)
        {
            switch (e)
            {
                case StandardOutputValueProduced o:
                    stdout.Append(o.FormattedValues.FirstOrDefault(v => v.MimeType == PlainTextFormatter.MimeType)?.Value);
                    break;
                case StandardErrorValueProduced o:
                    stderr.Append(o.FormattedValues.FirstOrDefault(v => v.MimeType == PlainTextFormatter.MimeType)?.Value);
                    break;
                case ReturnValueProduced r:
                    Flush();
                    outputs.Add(new JsonObject { ["output_type"] = "execute_result", ["execution_count"] = executionCount, ["data"] = Bundle(r.FormattedValues), ["metadata"] = new JsonObject() });
                    break;
                case DisplayedValueProduced d when !IsRestoreReport(d):
                    Flush();
                    outputs.Add(new JsonObject { ["output_type"] = "display_data", ["data"] = Bundle(d.FormattedValues), ["metadata"] = new JsonObject() });
                    break;
            }
        }
        Flush();
        return outputs;
    }

    // The package manager's "Restore sources / Installed packages" table names this machine's temporary folders.
    private static bool IsRestoreReport(DisplayedValueProduced d) =>
        d.FormattedValues.Any(v => v.Value.Contains("Restore sources", StringComparison.Ordinal) || v.Value.Contains("Installed Packages", StringComparison.OrdinalIgnoreCase));

    private static JsonObject Stream(string name, string text) =>
        new() { ["output_type"] = "stream", ["name"] = name, ["text"] = Lines(text) };

    private static JsonObject Bundle(IEnumerable<FormattedValue> values)
    {
        var data = new JsonObject();
        foreach (var v in values) data[v.MimeType] = Lines(v.Value);
        return data;
    }

    // Jupyter stores multi-line text as a list of lines, each but the last ending in "\n".
    private static JsonArray Lines(string text)
    {
        var lines = new JsonArray();
        int start = 0;
        for (int i = 0; i < text.Length; i++)
            if (text[i] == '\n') { lines.Add(text[start..(i + 1)]); start = i + 1; }
        if (start < text.Length) lines.Add(text[start..]);
        return lines;
    }

    /// <summary>Writes <paramref name="runs"/> as the stored outputs of the notebook's code cells (temporary file, then rename).</summary>
    public static void WriteOutputs(string notebookPath, IReadOnlyList<CellRun> runs, string producedBy)
    {
        var notebook = JsonNode.Parse(File.ReadAllText(notebookPath))!.AsObject();
        var codeCells = notebook["cells"]!.AsArray().Select(c => c!.AsObject()).Where(c => (string?)c["cell_type"] == "code").ToList();
        if (codeCells.Count != runs.Count) throw new InvalidOperationException($"{notebookPath} has {codeCells.Count} code cells, but {runs.Count} ran.");
        for (int i = 0; i < runs.Count; i++)
        {
            codeCells[i]["outputs"] = runs[i].Outputs.DeepClone();
            codeCells[i]["execution_count"] = i + 1;
        }
        var metadata = notebook["metadata"]!.AsObject();
        metadata["resnet_ml"] = new JsonObject { ["outputs_produced_by"] = producedBy };
        string temp = notebookPath + ".tmp";
        File.WriteAllText(temp, notebook.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
        File.Move(temp, notebookPath, overwrite: true);
    }

    /// <summary>The SVG charts among a cell's outputs (displayed as HTML), parsed.</summary>
    public static IEnumerable<XDocument> Charts(CellRun run) =>
        run.Outputs.Select(o => o!["data"]?["text/html"]).OfType<JsonArray>()
            .Select(lines => string.Concat(lines.Select(l => (string?)l)))
            .Where(html => html.Contains("<svg", StringComparison.Ordinal))
            .Select(html => XDocument.Parse(html[html.IndexOf("<svg", StringComparison.Ordinal)..(html.LastIndexOf("</svg>", StringComparison.Ordinal) + 6)]));

    /// <summary>All text a cell printed to standard output.</summary>
    public static string Stdout(CellRun run) =>
        string.Concat(run.Outputs.Where(o => (string?)o!["name"] == "stdout").SelectMany(o => o!["text"]!.AsArray().Select(l => (string?)l)));
}
