using System.Numerics.Tensors;

namespace ResNet.ML.Tensors;

/// <summary>
/// Single-precision matrix multiply on row-major matrices: C[m×n] = op(A)·op(B) (+ C when accumulating), where op(A)
/// is A[m×k] or, transposed, A stored as [k×m]; likewise op(B) is B[k×n] or B stored as [n×k]. Single-threaded: callers
/// parallelize over independent work (samples, channels).
/// </summary>
internal static class Gemm
{
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate)
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) for (int i = 0; i < m; i++) c.Slice(i * ldc, n).Clear();
            return;
        }
        if (!transB)
        {
            // Row of C += scalar × row of B: contiguous, vectorized.
            for (int i = 0; i < m; i++)
            {
                var row = c.Slice(i * ldc, n);
                if (!accumulate) row.Clear();
                for (int p = 0; p < k; p++)
                {
                    float aip = transA ? a[p * lda + i] : a[i * lda + p];
                    TensorPrimitives.MultiplyAdd(b.Slice(p * ldb, n), aip, row, row);
                }
            }
        }
        else if (!transA)
        {
            for (int i = 0; i < m; i++)
            {
                var ai = a.Slice(i * lda, k);
                for (int j = 0; j < n; j++)
                {
                    float d = TensorPrimitives.Dot(ai, b.Slice(j * ldb, k));
                    c[i * ldc + j] = accumulate ? c[i * ldc + j] + d : d;
                }
            }
        }
        else
        {
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    float d = 0;
                    for (int p = 0; p < k; p++) d += a[p * lda + i] * b[j * ldb + p];
                    c[i * ldc + j] = accumulate ? c[i * ldc + j] + d : d;
                }
        }
    }
}
