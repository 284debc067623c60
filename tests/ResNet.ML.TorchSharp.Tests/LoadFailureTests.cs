namespace ResNet.ML.TorchSharp.Tests;

/// <summary>When libtorch cannot load, the message is one sentence with the real cause, not TorchSharp's guess.</summary>
[TestClass]
public sealed class LoadFailureTests
{
    private static readonly Exception TorchSharpsGuess = new NotSupportedException("The libtorch-cpu-linux-x64 package doesn't contain a reference to libtorch-cpu-linux-x64.");

    [TestMethod]
    public void AnAppWithoutLibtorchIsToldWhichPackageToReference()
    {
        string empty = Path.Combine(Path.GetTempPath(), "resnet-ml-no-libtorch-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(empty);
        string message = TorchRuntime.Explain(TorchSharpsGuess, empty);
        StringAssert.Contains(message, "libtorch-cpu-linux-x64");
        StringAssert.Contains(message, empty);
        Assert.IsTrue(message.EndsWith('.'));
        Assert.IsFalse(message.Contains('\n'));
    }

    [TestMethod]
    public void TheUnpatchedLibraryFailsWithTheLoadersOwnReason()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("The GLIBCXX requirement is a Linux matter.");
        string native = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        string cacheRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string original = Path.Combine(cacheRoot, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(original)) Assert.Inconclusive($"{original} is not there.");
        if (File.ReadAllBytes(original).SequenceEqual(File.ReadAllBytes(Path.Combine(native, "libLibTorchSharp.so"))))
            Assert.Inconclusive("The system libstdc++ has GLIBCXX_3.4.32: the unpatched library loads here, so there is no failure to describe.");
        // Beside libtorch (found through the library's $ORIGIN run path), so the only thing that can fail is the version check.
        string copy = Path.Combine(native, $"libLibTorchSharp-unpatched-{Guid.NewGuid():N}.so");
        File.Copy(original, copy);
        try
        {
            string message = TorchRuntime.Explain(TorchSharpsGuess, AppContext.BaseDirectory, copy);
            Console.WriteLine(message);
            StringAssert.Contains(message, "GLIBCXX_3.4.32");
            StringAssert.Contains(message, "dynamic loader");
            Assert.IsFalse(message.Contains("doesn't contain a reference"), "TorchSharp's misleading guess must not be repeated");
            Assert.IsFalse(message.Contains('\n'));
            Assert.IsTrue(message.EndsWith('.'));
        }
        finally { File.Delete(copy); }
    }
}
