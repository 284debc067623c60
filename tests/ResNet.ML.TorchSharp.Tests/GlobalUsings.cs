global using Microsoft.VisualStudio.TestTools.UnitTesting;

// libtorch's intra-op threads and the managed engine's workers share two cores: one test class at a time keeps timings sane.
[assembly: Parallelize(Workers = 1, Scope = ExecutionScope.ClassLevel)]
