using System.Text;

namespace ResNet.ML.TorchSharp.Tests;

/// <summary>The build's GLIBCXX fix changes the output copy of libLibTorchSharp.so by one flag and leaves the NuGet cache alone.</summary>
[TestClass]
public sealed class GlibcxxPatchTests
{
    [TestMethod]
    public void OutputCopyDiffersFromThePackagesFileInOneByteExactlyWhereTheSystemLacksTheVersion()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("The fix applies to Linux only.");
        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        string cacheRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string cached = Path.Combine(cacheRoot, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(output) || !File.Exists(cached)) Assert.Inconclusive($"Not both of {output} and {cached} exist.");
        string? libstdcxx = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib64/libstdc++.so.6" }.FirstOrDefault(File.Exists);
        if (libstdcxx is null) Assert.Inconclusive("No system libstdc++.so.6 found.");
        bool systemHasIt = IndexOf(File.ReadAllBytes(libstdcxx), Encoding.ASCII.GetBytes("GLIBCXX_3.4.32\0")) >= 0;

        byte[] a = File.ReadAllBytes(cached), b = File.ReadAllBytes(output);
        Assert.AreEqual(a.Length, b.Length);
        var differing = Enumerable.Range(0, a.Length).Where(i => a[i] != b[i]).ToList();
        if (systemHasIt)
        {
            Assert.IsEmpty(differing, "the system libstdc++ has GLIBCXX_3.4.32, so the copy must be left as it is");
            return;
        }
        Assert.HasCount(1, differing, "only the Vernaux flags of GLIBCXX_3.4.32 may change");
        // VER_FLG_WEAK (0x2) added to the flags, nothing else.
        Assert.AreEqual(a[differing[0]] | 0x2, b[differing[0]]);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }
}
