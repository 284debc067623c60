namespace ResNet.ML.TorchSharp.Tests;

/// <summary>Loading libtorch fixes glibc's mmap and trim thresholds (tensors stop page-faulting every step), unless the user set malloc options.</summary>
[TestClass]
public sealed class MallocTuningTests
{
    [TestMethod]
    public void LoadingLibtorch_FixesGlibcsThresholds_UnlessTheEnvironmentSetsThem()
    {
        TorchRuntime.EnsureLoaded();
        bool userSet = (Environment.GetEnvironmentVariable("GLIBC_TUNABLES")?.Contains("glibc.malloc.", StringComparison.Ordinal) ?? false)
            || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null
            || Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is not null;
        if (!OperatingSystem.IsLinux()) Assert.AreEqual("left alone (not Linux)", TorchRuntime.MallocTuning);
        else if (userSet) Assert.AreEqual("left alone (the environment sets malloc options)", TorchRuntime.MallocTuning);
        else Assert.AreEqual($"mmap threshold 32 MB, trim threshold 1024 MB", TorchRuntime.MallocTuning, "glibc accepted both mallopt calls");
    }
}
