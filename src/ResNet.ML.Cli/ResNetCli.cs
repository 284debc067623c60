using System.CommandLine;
using ResNet.ML.Cli.Commands;
using ResNet.ML.Training;

namespace ResNet.ML.Cli;

/// <summary>
/// The <c>resnet</c> command line: train, evaluate, export, predict, benchmark, info. <see cref="RunAsync"/> is the whole
/// tool behind an entry point that tests call in-process with their own writers.
/// </summary>
public static class ResNetCli
{
    public const int ExitOk = 0, ExitError = 1, ExitUsage = 2, ExitCanceled = 130;

    internal static readonly Option<bool> Verbose = new("--verbose", "-v") { Description = "Show stack traces and more detail on errors.", Recursive = true };
    internal static readonly Option<bool> Plain = new("--plain") { Description = "Plain line output even on a terminal (no live progress).", Recursive = true };

    /// <summary>Runs the tool. <paramref name="interactive"/> null decides from the console: rich output only on a terminal.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, bool? interactive = null, CancellationToken cancellationToken = default)
    {
        var root = new RootCommand("resnet: train ResNet image classifiers in C#, export them to ONNX, score them with ONNX Runtime.");
        root.Add(Verbose);
        root.Add(Plain);
        var context = new CommandContext(output, error, interactive);
        root.Add(TrainCommand.Create(context));
        root.Add(EvaluateCommand.Create(context));
        root.Add(ExportCommand.Create(context));
        root.Add(PredictCommand.Create(context));
        root.Add(BenchmarkCommand.Create(context));
        root.Add(InfoCommand.Create(context));
        var parse = root.Parse(args);
        var config = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
        int code = await parse.InvokeAsync(config, cancellationToken);
        return parse.Errors.Count > 0 ? ExitUsage : code;
    }

    /// <summary>Runs synchronously (tests).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default) =>
        RunAsync(args, output, error, interactive: false, cancellationToken).GetAwaiter().GetResult();
}

/// <summary>What every command's action gets: the writers, and a wrapper that turns failures into one clear sentence.</summary>
internal sealed class CommandContext(TextWriter output, TextWriter error, bool? interactive)
{
    public CliOutput CreateOutput(ParseResult parse)
    {
        bool rich = interactive ?? (ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected);
        return new CliOutput(output, error, rich && !parse.GetValue(ResNetCli.Plain), parse.GetValue(ResNetCli.Verbose));
    }

    /// <summary>Wraps a command body: exit code 0 on success, 1 with one sentence on failure (stack trace with --verbose), 130 when canceled.</summary>
    public Func<ParseResult, CancellationToken, Task<int>> Guard(Func<ParseResult, CliOutput, CancellationToken, int> body) =>
        (parse, ct) => Task.Run(() =>
        {
            var cli = CreateOutput(parse);
            try
            {
                return body(parse, cli, ct);
            }
            catch (Exception e)
            {
                var inner = e is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerException! : e;
                if (inner is TrainingCanceledException { CheckpointPath: string path })
                    cli.Error.WriteLine($"canceled: {OneSentence(inner)} Run the same command with --resume {path} to continue.");
                else if (inner is OperationCanceledException)
                    cli.Error.WriteLine($"canceled: {OneSentence(inner)}");
                else
                    cli.Error.WriteLine($"error: {OneSentence(inner)}");
                if (cli.Verbose) cli.Error.WriteLine(inner.ToString());
                return inner is OperationCanceledException ? ResNetCli.ExitCanceled : ResNetCli.ExitError;
            }
        }, CancellationToken.None);

    private static string OneSentence(Exception e)
    {
        string message = e.Message.Split('\n')[0].Trim();
        // ArgumentException appends " (Parameter 'x')": the message already names the thing at fault.
        int p = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        if (p > 0) message = message[..p];
        return e switch
        {
            OutOfMemoryException => "out of memory: use a smaller --batch-size or image size.",
            _ => message,
        };
    }
}

/// <summary>A mistake in what the user asked for (wrong file kind, missing option): reported as is.</summary>
internal sealed class UsageException(string message) : Exception(message);
