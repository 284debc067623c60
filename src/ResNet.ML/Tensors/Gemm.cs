using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ResNet.ML.Tensors;

/// <summary>
/// Single-precision matrix multiply on row-major matrices: C[m×n] = op(A)·op(B) (+ C when accumulating), where op(A)
/// is A[m×k] or, transposed, A stored as [k×m]; likewise op(B) is B[k×n] or B stored as [n×k].
/// A packed, blocked GEMM in the BLIS manner: op(B) is packed into k×16·<see cref="NrVectors"/> column panels, op(A)
/// into k×<see cref="Mr"/> row panels, and a register-blocked micro-kernel (AVX-512, else AVX2, else scalar) computes
/// one Mr×Nr tile of C at a time. Single-threaded: callers parallelize over independent work (samples, channels), which
/// keeps every sum in a fixed order. Packing buffers are the calling thread's scratch (slots 4 and 5).
/// </summary>
internal static unsafe class Gemm
{
    public const int Mr = 8;
    private const int NrVectors = 2;
    private const int KcMax = 256, McMax = 128, NcMax = 1024;

    private static readonly int Width = Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 4;
    private static int Nr => Width * NrVectors;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate)
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) for (int i = 0; i < m; i++) c.Slice(i * ldc, n).Clear();
            return;
        }
        // Bounds, once, so the pointer code below cannot run off the spans.
        long needA = transA ? (long)(k - 1) * lda + m : (long)(m - 1) * lda + k;
        long needB = transB ? (long)(n - 1) * ldb + k : (long)(k - 1) * ldb + n;
        long needC = (long)(m - 1) * ldc + n;
        if (needA > a.Length || needB > b.Length || needC > c.Length)
            throw new ArgumentException($"GEMM {m}x{n}x{k}: an operand is shorter than its shape ({a.Length}/{needA}, {b.Length}/{needB}, {c.Length}/{needC}).");

        int nr = Nr;
        int kBlocks = (k + KcMax - 1) / KcMax, kcStep = (k + kBlocks - 1) / kBlocks;
        int ncMax = Math.Min(NcMax, RoundUp(n, nr));
        float[] packB = Engine.Scratch(ScratchSlot.GemmPackedB, kcStep * ncMax);
        float[] packA = Engine.Scratch(ScratchSlot.GemmPackedA, kcStep * Math.Min(McMax, RoundUp(m, Mr)));
        fixed (float* pa = a, pb = b, pc = c, bp = packB, ap = packA)
        {
            for (int jc = 0; jc < n; jc += NcMax)
            {
                int nc = Math.Min(NcMax, n - jc);
                for (int pcol = 0; pcol < k; pcol += kcStep)
                {
                    int kc = Math.Min(kcStep, k - pcol);
                    bool add = accumulate || pcol > 0;
                    PackB(transB, pb, ldb, pcol, jc, kc, nc, nr, bp);
                    for (int ic = 0; ic < m; ic += McMax)
                    {
                        int mc = Math.Min(McMax, m - ic);
                        PackA(transA, pa, lda, ic, pcol, mc, kc, ap);
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int nn = Math.Min(nr, nc - jr);
                            float* bpanel = bp + (long)jr * kc;
                            for (int ir = 0; ir < mc; ir += Mr)
                            {
                                int mm = Math.Min(Mr, mc - ir);
                                float* cTile = pc + (long)(ic + ir) * ldc + jc + jr;
                                Tile(kc, ap + (long)ir * kc, bpanel, cTile, ldc, mm, nn, add);
                            }
                        }
                    }
                }
            }
        }
    }

    internal static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    /// <summary>The panel width of packed B (columns per micro-tile).</summary>
    internal static int PanelWidth => Nr;

    /// <summary>Floats <see cref="PackWholeA"/> writes for an m×k operand.</summary>
    internal static int PackedALength(int m, int k) => RoundUp(m, Mr) * k;

    /// <summary>
    /// Packs all of op(A) [m×k] into Mr-row panels over the whole k: panel i at i·k·Mr, element (p, r) at p·Mr + r, so
    /// the panel block for k-range [p0, p0+kc) starts at panel + p0·Mr. Used for convolution weights, packed once per call.
    /// </summary>
    internal static void PackWholeA(bool transA, ReadOnlySpan<float> a, int lda, int m, int k, Span<float> dst)
    {
        fixed (float* pa = a, pd = dst) PackA(transA, pa, lda, 0, 0, m, k, pd);
    }

    /// <summary>
    /// C[m×nc] (+)= A·B for one k-block: <paramref name="aPanels"/> from <see cref="PackWholeA"/> (offset to the k-block,
    /// panels <paramref name="aPanelStride"/> apart), <paramref name="bPanels"/> nc columns packed kc×<see cref="PanelWidth"/>.
    /// </summary>
    internal static void MultiplyPanels(int m, int nc, int kc, float* aPanels, int aPanelStride, float* bPanels, float* c, int ldc, bool add)
    {
        int nr = Nr;
        for (int jr = 0; jr < nc; jr += nr)
        {
            int nn = Math.Min(nr, nc - jr);
            float* bpanel = bPanels + (long)jr * kc;
            for (int ir = 0; ir < m; ir += Mr)
                Tile(kc, aPanels + (long)(ir / Mr) * aPanelStride, bpanel, c + (long)ir * ldc + jr, ldc, Math.Min(Mr, m - ir), nn, add);
        }
    }

    /// <summary>Packs op(B)[p0..p0+kc, j0..j0+nc] into panels of nr columns: panel[p][0..nr], zero-padded.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void PackB(bool transB, float* b, int ldb, int p0, int j0, int kc, int nc, int nr, float* dst)
    {
        for (int jr = 0; jr < nc; jr += nr)
        {
            int nn = Math.Min(nr, nc - jr);
            float* panel = dst + (long)jr * kc;
            if (!transB)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(p0 + p) * ldb + j0 + jr;
                    float* d = panel + p * nr;
                    if (nn == nr) Copy(src, d, nr);
                    else { int j = 0; for (; j < nn; j++) d[j] = src[j]; for (; j < nr; j++) d[j] = 0; }
                }
            }
            else
            {
                for (int j = 0; j < nn; j++)
                {
                    float* src = b + (long)(j0 + jr + j) * ldb + p0;
                    for (int p = 0; p < kc; p++) panel[p * nr + j] = src[p];
                }
                for (int j = nn; j < nr; j++)
                    for (int p = 0; p < kc; p++) panel[p * nr + j] = 0;
            }
        }
    }

    /// <summary>Packs op(A)[i0..i0+mc, p0..p0+kc] into panels of Mr rows: panel[p][0..Mr], zero-padded.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void PackA(bool transA, float* a, int lda, int i0, int p0, int mc, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += Mr)
        {
            int mm = Math.Min(Mr, mc - ir);
            float* panel = dst + (long)ir * kc;
            if (transA)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(p0 + p) * lda + i0 + ir;
                    float* d = panel + p * Mr;
                    int r = 0;
                    for (; r < mm; r++) d[r] = src[r];
                    for (; r < Mr; r++) d[r] = 0;
                }
            }
            else
            {
                for (int r = 0; r < mm; r++)
                {
                    float* src = a + (long)(i0 + ir + r) * lda + p0;
                    for (int p = 0; p < kc; p++) panel[p * Mr + r] = src[p];
                }
                for (int r = mm; r < Mr; r++)
                    for (int p = 0; p < kc; p++) panel[p * Mr + r] = 0;
            }
        }
    }

    private static void Copy(float* src, float* dst, int count)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= count - 16; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
        for (; i < count; i++) dst[i] = src[i];
    }

    /// <summary>One Mr×Nr tile; partial tiles (mm &lt; Mr or nn &lt; Nr) go through a local buffer.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void Tile(int kc, float* a, float* b, float* c, int ldc, int mm, int nn, bool add)
    {
        int nr = Nr;
        if (mm == Mr && nn == nr)
        {
            Kernel(kc, a, b, c, ldc, add);
            return;
        }
        float* tile = stackalloc float[Mr * 64];
        for (int r = 0; r < mm; r++)
            for (int j = 0; j < nn; j++) tile[r * nr + j] = add ? c[(long)r * ldc + j] : 0f;
        Kernel(kc, a, b, tile, nr, add: true);
        for (int r = 0; r < mm; r++)
            for (int j = 0; j < nn; j++) c[(long)r * ldc + j] = tile[r * nr + j];
    }

    private static void Kernel(int kc, float* a, float* b, float* c, int ldc, bool add)
    {
        if (Vector512.IsHardwareAccelerated) Kernel512(kc, a, b, c, ldc, add);
        else if (Vector256.IsHardwareAccelerated) Kernel256(kc, a, b, c, ldc, add);
        else KernelScalar(kc, a, b, c, ldc, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512(int kc, float* a, float* b, float* c, int ldc, bool add)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            c00 = Vector512.FusedMultiplyAdd(Vector512.Create(a[0]), b0, c00); c01 = Vector512.FusedMultiplyAdd(Vector512.Create(a[0]), b1, c01);
            c10 = Vector512.FusedMultiplyAdd(Vector512.Create(a[1]), b0, c10); c11 = Vector512.FusedMultiplyAdd(Vector512.Create(a[1]), b1, c11);
            c20 = Vector512.FusedMultiplyAdd(Vector512.Create(a[2]), b0, c20); c21 = Vector512.FusedMultiplyAdd(Vector512.Create(a[2]), b1, c21);
            c30 = Vector512.FusedMultiplyAdd(Vector512.Create(a[3]), b0, c30); c31 = Vector512.FusedMultiplyAdd(Vector512.Create(a[3]), b1, c31);
            c40 = Vector512.FusedMultiplyAdd(Vector512.Create(a[4]), b0, c40); c41 = Vector512.FusedMultiplyAdd(Vector512.Create(a[4]), b1, c41);
            c50 = Vector512.FusedMultiplyAdd(Vector512.Create(a[5]), b0, c50); c51 = Vector512.FusedMultiplyAdd(Vector512.Create(a[5]), b1, c51);
            c60 = Vector512.FusedMultiplyAdd(Vector512.Create(a[6]), b0, c60); c61 = Vector512.FusedMultiplyAdd(Vector512.Create(a[6]), b1, c61);
            c70 = Vector512.FusedMultiplyAdd(Vector512.Create(a[7]), b0, c70); c71 = Vector512.FusedMultiplyAdd(Vector512.Create(a[7]), b1, c71);
            a += Mr;
            b += 32;
        }
        Store512(c, c00, c01, add); c += ldc;
        Store512(c, c10, c11, add); c += ldc;
        Store512(c, c20, c21, add); c += ldc;
        Store512(c, c30, c31, add); c += ldc;
        Store512(c, c40, c41, add); c += ldc;
        Store512(c, c50, c51, add); c += ldc;
        Store512(c, c60, c61, add); c += ldc;
        Store512(c, c70, c71, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, Vector512<float> v0, Vector512<float> v1, bool add)
    {
        if (add) { v0 += Vector512.Load(c); v1 += Vector512.Load(c + 16); }
        Vector512.Store(v0, c);
        Vector512.Store(v1, c + 16);
    }

    /// <summary>
    /// The Mr×16 tile as two passes of 4 rows: AVX2 has 16 vector registers, and an 8×16 tile's 16 accumulators plus the
    /// two B vectors and a broadcast need 19, so some would live on the stack. 4×16 needs 11; each pass reads the B
    /// panel again, from L1 (bench/BENCHMARKS.md, "AVX2").
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(int kc, float* a, float* b, float* c, int ldc, bool add)
    {
        Kernel256Rows4(kc, a, b, c, ldc, add);
        Kernel256Rows4(kc, a + 4, b, c + 4L * ldc, ldc, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256Rows4(int kc, float* a, float* b, float* c, int ldc, bool add)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var a0 = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(a0, b0, c00); c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
            var a1 = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(a1, b0, c10); c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
            var a2 = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(a2, b0, c20); c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
            var a3 = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(a3, b0, c30); c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
            a += Mr;
            b += 16;
        }
        Store256(c, c00, c01, add); c += ldc;
        Store256(c, c10, c11, add); c += ldc;
        Store256(c, c20, c21, add); c += ldc;
        Store256(c, c30, c31, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* c, Vector256<float> v0, Vector256<float> v1, bool add)
    {
        if (add) { v0 += Vector256.Load(c); v1 += Vector256.Load(c + 8); }
        Vector256.Store(v0, c);
        Vector256.Store(v1, c + 8);
    }

    private static void KernelScalar(int kc, float* a, float* b, float* c, int ldc, bool add)
    {
        int nr = Nr;
        float* acc = stackalloc float[Mr * 64];
        for (int i = 0; i < Mr * nr; i++) acc[i] = 0;
        for (int p = 0; p < kc; p++, a += Mr, b += nr)
            for (int r = 0; r < Mr; r++)
                for (int j = 0; j < nr; j++) acc[r * nr + j] = MathF.FusedMultiplyAdd(a[r], b[j], acc[r * nr + j]);
        for (int r = 0; r < Mr; r++)
            for (int j = 0; j < nr; j++) c[(long)r * ldc + j] = add ? c[(long)r * ldc + j] + acc[r * nr + j] : acc[r * nr + j];
    }
}
