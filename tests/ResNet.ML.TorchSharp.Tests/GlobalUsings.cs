global using Microsoft.VisualStudio.TestTools.UnitTesting;

// libtorch's intra-op threads and the managed engine's workers share two cores: one test class at a time keeps timings sane.
[assembly: Parallelize(Workers = 1, Scope = ExecutionScope.ClassLevel)]

namespace ResNet.ML.TorchSharp.Tests
{
    [TestClass]
    public static class AssemblySetup
    {
        // Before any test touches torch.*: TorchRuntime sets libtorch's OpenMP wait policy before libtorch loads.
        [AssemblyInitialize]
        public static void LoadLibtorch(TestContext _) => ResNet.ML.TorchSharp.TorchRuntime.EnsureLoaded();
    }
}
