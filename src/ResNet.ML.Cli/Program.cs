using System.Runtime.InteropServices;

namespace ResNet.ML.Cli;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        int? signal = null;
        // The first Ctrl-C asks training to stop after the current step and leave a checkpoint; a second one kills.
        Console.CancelKeyPress += (_, e) =>
        {
            if (cancel.IsCancellationRequested) return;
            e.Cancel = true;
            Console.Error.WriteLine("Stopping after the current step (Ctrl-C again to abort)...");
            cancel.Cancel();
        };
        // timeout, docker stop, systemd and batch schedulers stop a run with SIGTERM (a closed terminal sends SIGHUP):
        // treated like Ctrl-C, so the run leaves a checkpoint instead of losing the epoch. A second signal kills.
        void OnSignal(PosixSignalContext context, int number)
        {
            if (cancel.IsCancellationRequested) return;
            context.Cancel = true;
            signal = number;
            Console.Error.WriteLine($"{context.Signal}: stopping after the current step (send it again to abort)...");
            cancel.Cancel();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => OnSignal(c, 15));
        using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => OnSignal(c, 1));
        int code = await ResNetCli.RunAsync(args, Console.Out, Console.Error, interactive: null, cancel.Token);
        // 128 + the signal number, as a shell reports a process ended by it (143 for SIGTERM, 129 for SIGHUP).
        return code == ResNetCli.ExitCanceled && signal is int n ? 128 + n : code;
    }
}
