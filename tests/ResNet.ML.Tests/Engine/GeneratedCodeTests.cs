using ResNet.ML.Codegen;

namespace ResNet.ML.Tests.Engine;

/// <summary>Generated code stays what its generator writes: a hand edit of the file, or of the generator alone, fails here.</summary>
[TestClass]
public sealed class GeneratedCodeTests
{
    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ResNet.ML.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"No ResNet.ML.sln above {AppContext.BaseDirectory}.");
    }

    [TestMethod]
    public void DirectConv_outer_kernels_equal_the_generators_output()
    {
        string path = Path.Combine(RepoRoot(), OuterKernels.RelativePath);
        string expected = OuterKernels.File();
        if (Environment.GetEnvironmentVariable("RESNETML_REGENERATE") == "1")
        {
            string temp = path + ".tmp";
            File.WriteAllText(temp, expected);
            File.Move(temp, path, overwrite: true);
        }
        string actual = File.ReadAllText(path).ReplaceLineEndings("\n");
        Assert.AreEqual(expected, actual, $"{OuterKernels.RelativePath} is not the output of tools/codegen/OuterKernels.cs; regenerate it (see its header).");
        StringAssert.Contains(actual, "private static void Outer4x6(");
        StringAssert.Contains(actual, "private static void Outer1x12(");
    }
}
