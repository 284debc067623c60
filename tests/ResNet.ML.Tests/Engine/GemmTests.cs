using ResNet.ML.Tensors;

namespace ResNet.ML.Tests.Engine;

[TestClass]
public class GemmTests
{
    [TestMethod]
    [DataRow(false, false, 16, 1024, 144)]
    [DataRow(true, false, 144, 64, 16)]
    [DataRow(false, true, 16, 144, 1024)]
    [DataRow(true, true, 5, 7, 3)]
    [DataRow(false, false, 1, 1, 1)]
    [DataRow(false, false, 133, 1100, 300)]   // more than one block of M, N and K, ragged edges
    [DataRow(true, true, 9, 33, 257)]
    public void MatchesTheDefinition(bool transA, bool transB, int m, int n, int k)
    {
        var rng = new Rng((ulong)(m * 31 + n * 7 + k));
        int lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 2, ldc = n + 5;
        float[] a = Enumerable.Range(0, (transA ? k : m) * lda).Select(_ => (float)rng.NextGaussian()).ToArray();
        float[] b = Enumerable.Range(0, (transB ? n : k) * ldb).Select(_ => (float)rng.NextGaussian()).ToArray();
        float[] c0 = Enumerable.Range(0, m * ldc).Select(_ => (float)rng.NextGaussian()).ToArray();
        foreach (bool accumulate in new[] { false, true })
        {
            var c = (float[])c0.Clone();
            Gemm.Multiply(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
            double err = 0, norm = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < ldc; j++)
                {
                    if (j >= n) { Assert.AreEqual(c0[i * ldc + j], c[i * ldc + j], "padding columns untouched"); continue; }
                    double s = accumulate ? c0[i * ldc + j] : 0;
                    for (int p = 0; p < k; p++)
                        s += (double)(transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                    err = Math.Max(err, Math.Abs(s - c[i * ldc + j]));
                    norm = Math.Max(norm, Math.Abs(s));
                }
            Assert.IsTrue(err <= 1e-5 * Math.Sqrt(k) * Math.Max(1, norm), $"max error {err} (max |c| {norm}) accumulate={accumulate}");
        }
    }
}
