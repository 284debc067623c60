namespace ResNet.ML.Tensors;

/// <summary>
/// A dense float32 tensor of shape [N, C, H, W] in row-major NCHW order, the layout PyTorch and ONNX use.
/// Vectors and matrices are tensors with trailing ones (a Linear layer's output is [N, classes, 1, 1]).
/// </summary>
public sealed class Tensor
{
    public int N { get; }
    public int C { get; }
    public int H { get; }
    public int W { get; }

    /// <summary>The elements; exactly <see cref="Length"/> long.</summary>
    public float[] Data { get; }

    public Tensor(int n, int c, int h, int w)
        : this(new float[CheckedLength(n, c, h, w)], n, c, h, w) { }

    /// <summary>Wraps <paramref name="data"/> (not copied) as a tensor of the given shape.</summary>
    public Tensor(float[] data, int n, int c, int h, int w)
    {
        long length = CheckedLength(n, c, h, w);
        if (data.Length != length)
            throw new ArgumentException($"A tensor of shape [{n}, {c}, {h}, {w}] needs {length} elements, but the array has {data.Length}.", nameof(data));
        (N, C, H, W, Data) = (n, c, h, w, data);
    }

    public int Length => Data.Length;
    public Span<float> Span => Data;
    public int PlaneSize => H * W;
    public int SampleSize => C * H * W;

    public string Shape => $"[{N}, {C}, {H}, {W}]";
    public override string ToString() => $"Tensor{Shape}";

    public bool HasShape(int n, int c, int h, int w) => N == n && C == c && H == h && W == w;
    public bool SameShape(Tensor other) => HasShape(other.N, other.C, other.H, other.W);

    public Tensor Clone() => new((float[])Data.Clone(), N, C, H, W);
    public void Clear() => Array.Clear(Data);

    /// <summary>
    /// Returns <paramref name="buffer"/> when it already has the shape, else a new tensor: layers keep their outputs and
    /// workspaces across steps, and allocate only when the batch shape changes.
    /// </summary>
    public static Tensor Reuse(ref Tensor? buffer, int n, int c, int h, int w)
    {
        if (buffer is null || !buffer.HasShape(n, c, h, w)) buffer = new Tensor(n, c, h, w);
        return buffer;
    }

    private static int CheckedLength(int n, int c, int h, int w)
    {
        if (n < 0 || c < 0 || h < 0 || w < 0)
            throw new ArgumentOutOfRangeException(nameof(n), $"Tensor dimensions must not be negative: [{n}, {c}, {h}, {w}].");
        long length = (long)n * c * h * w;
        if (length > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(n), $"A tensor of shape [{n}, {c}, {h}, {w}] has {length} elements, more than one array holds.");
        return (int)length;
    }
}
