namespace ResNet.ML.Cli;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        // The first Ctrl-C asks training to stop after the current step and leave a checkpoint; a second one kills.
        Console.CancelKeyPress += (_, e) =>
        {
            if (cancel.IsCancellationRequested) return;
            e.Cancel = true;
            Console.Error.WriteLine("Stopping after the current step (Ctrl-C again to abort)...");
            cancel.Cancel();
        };
        return await ResNetCli.RunAsync(args, Console.Out, Console.Error, interactive: null, cancel.Token);
    }
}
