using System.Diagnostics;
using System.Text;

namespace ResNet.ML.Distribution.Tests;

/// <summary>
/// Packs ResNet.ML's packages once per test run into a temporary feed, and gives every restore a NuGet packages folder
/// of its own, so what the sample, the tool and the notebooks get of ResNet.ML can only come from that feed. The
/// machine's packages folder serves as a read-only fallback for third-party packages (ML.NET, ONNX Runtime, ...), so
/// nothing is downloaded twice; ResNet.ML's own packages never enter it (every restore here uses the folder below).
/// </summary>
[TestClass]
public static class LocalFeed
{
    public const string Version = "0.1.0";

    public static string RepoRoot { get; private set; } = "";
    public static string Work { get; private set; } = "";
    public static string Feed { get; private set; } = "";
    public static string Packages { get; private set; } = "";

    /// <summary>The machine's NuGet packages folder: a read-only fallback for third-party packages.</summary>
    public static string MachinePackages { get; private set; } = "";

    /// <summary>A folder whose nuget.config adds the feed and the fallback folder; run restores from inside it.</summary>
    public static string ConfiguredFolder { get; private set; } = "";

    [AssemblyInitialize]
    public static void Pack(TestContext _)
    {
        RepoRoot = FindRepoRoot();
        Work = Directory.CreateTempSubdirectory("resnetml-dist-").FullName;
        Feed = Directory.CreateDirectory(Path.Combine(Work, "feed")).FullName;
        Packages = Directory.CreateDirectory(Path.Combine(Work, "nuget-packages")).FullName;
        ConfiguredFolder = Directory.CreateDirectory(Path.Combine(Work, "user")).FullName;
        string fallback = MachinePackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(Path.Combine(ConfiguredFolder, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="resnet-ml-test-feed" value="{Feed}" />
              </packageSources>
              <fallbackPackageFolders>
                <add key="machine" value="{fallback}" />
              </fallbackPackageFolders>
            </configuration>
            """);
        // RESNETML_TEST_FEED names a folder that already holds this build's packages (for a quicker edit-run loop).
        if (Environment.GetEnvironmentVariable("RESNETML_TEST_FEED") is { Length: > 0 } prebuilt)
        {
            foreach (string package in Directory.GetFiles(prebuilt, "*.nupkg")) File.Copy(package, Path.Combine(Feed, Path.GetFileName(package)));
            return;
        }
        // Packed from a copy of the sources: `dotnet test` builds the other test projects while this one already runs,
        // and a restore or build of src/ here would rewrite their obj/ folders under them.
        string source = Path.Combine(Work, "source");
        foreach (string file in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
            File.Copy(Path.Combine(RepoRoot, file), Path.Combine(Directory.CreateDirectory(source).FullName, file));
        CopyTree(Path.Combine(RepoRoot, "src"), Path.Combine(source, "src"));
        CopyTree(Path.Combine(RepoRoot, "data"), Path.Combine(source, "data"));
        foreach (string project in new[] { "src/ResNet.ML", "src/ResNet.ML.MLNet", "src/ResNet.ML.Cli" })
            Run("dotnet", ["pack", Path.Combine(source, project), "-c", "Release", "-o", Feed, "-nodeReuse:false"], source, TimeSpan.FromMinutes(8));
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (string dir in Directory.GetDirectories(from))
            if (Path.GetFileName(dir) is not ("bin" or "obj")) CopyTree(dir, Path.Combine(to, Path.GetFileName(dir)));
    }

    [AssemblyCleanup]
    public static void Cleanup()
    {
        try { if (Work.Length > 0) Directory.Delete(Work, recursive: true); }
        catch (IOException) { }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ResNet.ML.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"No ResNet.ML.sln above {AppContext.BaseDirectory}.");
    }

    /// <summary>Runs a command with the test's own NuGet packages folder; fails the test, with its output, on a non-zero exit.</summary>
    public static string Run(string file, IEnumerable<string> args, string workingDirectory, TimeSpan timeout, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) start.ArgumentList.Add(a);
        start.Environment["NUGET_PACKAGES"] = Packages;
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)} did not finish in {timeout.TotalMinutes:F0} min:\n{output}");
        }
        process.WaitForExit();
        string text;
        lock (output) text = output.ToString();
        if (process.ExitCode != 0) Assert.Fail($"{file} {string.Join(' ', args)} exited {process.ExitCode}:\n{text}");
        return text;
    }
}
