using System.Diagnostics;
using System.Runtime.InteropServices;
using ResNet.ML.Training;
using static ResNet.ML.Tests.Reliability.CliHarness;

namespace ResNet.ML.Tests.Reliability;

/// <summary>
/// Issue 15, case 4 (and the crash half of case 3): the real <c>resnet</c> process, stopped by a signal as timeout,
/// docker stop and schedulers stop it.
/// </summary>
[TestClass]
public sealed partial class SignalTests
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    private static Process Start(params string[] args)
    {
        string apphost = Path.Combine(AppContext.BaseDirectory, "resnet");
        var info = File.Exists(apphost) ? new ProcessStartInfo(apphost) : new ProcessStartInfo("dotnet") { ArgumentList = { Path.Combine(AppContext.BaseDirectory, "resnet.dll") } };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.RedirectStandardOutput = info.RedirectStandardError = true;
        return Process.Start(info)!;
    }

    /// <summary>Reads the child's stdout until a line containing <paramref name="marker"/>; the rest is collected in the background.</summary>
    private static void WaitFor(Process process, string marker)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (process.StandardOutput.ReadLine() is string line)
        {
            if (line.Contains(marker, StringComparison.Ordinal)) return;
            if (DateTime.UtcNow > deadline) break;
        }
        Assert.Fail($"the child never printed '{marker}': {process.StandardError.ReadToEnd()}");
    }

    [TestMethod]
    [DataRow(15, 143)]
    [DataRow(1, 129)]
    public void Sigterm_AndSighup_CheckpointAfterTheStep_PrintTheResumeCommand(int signal, int exitCode)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) Assert.Inconclusive("POSIX signals");
        string data = IdxFolder(), output = Training.TrainingTestData.TempFolder();
        using var child = Start(TrainArgs(data, output, "--epochs", "500"));
        WaitFor(child, "epoch 1/500:");
        Assert.AreEqual(0, kill(child.Id, signal));
        var stdout = child.StandardOutput.ReadToEndAsync();
        string stderr = child.StandardError.ReadToEnd();
        Assert.IsTrue(child.WaitForExit(60_000));
        _ = stdout.Result;
        Assert.AreEqual(exitCode, child.ExitCode, stderr);
        string checkpoint = Path.Combine(output, "checkpoints", TrainingCheckpoint.FileName);
        StringAssert.Contains(stderr, "--resume " + checkpoint);
        var saved = TrainingCheckpoint.Load(checkpoint);
        Assert.IsTrue(saved.GlobalStep > 0 && saved.Epoch < 500, $"epoch {saved.Epoch}");
        Assert.IsFalse(File.Exists(Path.Combine(output, "model.onnx")));
    }

    [TestMethod]
    public void AKilledRun_LeavesNoStuckLock()
    {
        string data = IdxFolder(), output = Training.TrainingTestData.TempFolder();
        string[] args = TrainArgs(data, output, "--epochs", "500");
        using (var child = Start(args))
        {
            WaitFor(child, "epoch 2/500:");
            child.Kill();   // SIGKILL: no handler runs, the lock file stays behind, still open only in a dead process
            child.WaitForExit();
        }
        Assert.IsTrue(File.Exists(Path.Combine(output, ".resnet-train.lock")));
        var next = Run(TrainArgs(data, output, "--epochs", "1", "--overwrite"));
        Assert.AreEqual(0, next.Code, next.Err);
    }
}
