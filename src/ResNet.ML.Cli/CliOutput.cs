using Spectre.Console;

namespace ResNet.ML.Cli;

/// <summary>
/// Where the tool writes: rich output (live progress, tables) on a terminal, plain lines when redirected or when the
/// caller passes its own writers (tests).
/// </summary>
public sealed class CliOutput
{
    public CliOutput(TextWriter output, TextWriter error, bool interactive, bool verbose)
    {
        (Out, Error, Interactive, Verbose) = (output, error, interactive, verbose);
        if (interactive)
        {
            Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        }
    }

    public TextWriter Out { get; }
    public TextWriter Error { get; }
    public bool Interactive { get; }
    public bool Verbose { get; }

    /// <summary>The Spectre console when <see cref="Interactive"/>.</summary>
    public IAnsiConsole? Console { get; }

    public void Line(string text = "") => Out.WriteLine(text);

    /// <summary>A line with Spectre markup on a terminal, the plain text otherwise.</summary>
    public void Markup(string markup)
    {
        if (Console is not null) Console.MarkupLine(markup);
        else Out.WriteLine(Spectre.Console.Markup.Remove(markup));
    }

    public void Table(string[] headers, IEnumerable<string[]> rows)
    {
        var list = rows.ToList();
        if (Console is not null)
        {
            var table = new Table().Border(TableBorder.Rounded);
            foreach (var h in headers) table.AddColumn(new TableColumn(Spectre.Console.Markup.Escape(h)).RightAligned());
            foreach (var r in list) table.AddRow(r.Select(Spectre.Console.Markup.Escape).ToArray());
            Console.Write(table);
            return;
        }
        var widths = headers.Select((h, i) => Math.Max(h.Length, list.Count == 0 ? 0 : list.Max(r => r[i].Length))).ToArray();
        Out.WriteLine(string.Join("  ", headers.Select((h, i) => h.PadLeft(widths[i]))));
        foreach (var r in list) Out.WriteLine(string.Join("  ", r.Select((c, i) => c.PadLeft(widths[i]))));
    }
}
