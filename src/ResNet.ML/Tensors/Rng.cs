namespace ResNet.ML.Tensors;

/// <summary>
/// A small seeded random generator (xoshiro256**, seeded by SplitMix64) whose whole state can be saved in a checkpoint
/// and restored, so a resumed run draws the same numbers as an uninterrupted one. Not thread-safe: give each thread its own.
/// </summary>
public sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;
    private double? _spareGaussian;

    public Rng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    private Rng() { }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextULong()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3; _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    public float NextFloat() => (float)NextDouble();

    /// <summary>Uniform integer in [0, maxExclusive).</summary>
    public int NextInt(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive));
        return (int)((NextULong() >> 32) * (ulong)maxExclusive >> 32);
    }

    /// <summary>Standard normal (Box-Muller, the second value kept for the next call).</summary>
    public double NextGaussian()
    {
        if (_spareGaussian is double spare) { _spareGaussian = null; return spare; }
        double u1, u2;
        do u1 = NextDouble(); while (u1 <= double.Epsilon);
        u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        _spareGaussian = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A new generator whose stream is independent of this one's (for worker threads), derived deterministically.</summary>
    public Rng Fork() => new(NextULong());

    /// <summary>The whole state, for checkpoints.</summary>
    public ulong[] SaveState() => [_s0, _s1, _s2, _s3, _spareGaussian is double g ? BitConverter.DoubleToUInt64Bits(g) : 0, _spareGaussian.HasValue ? 1UL : 0UL];

    public static Rng FromState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 6) throw new ArgumentException($"An Rng state has 6 words, not {state.Length}.", nameof(state));
        return new Rng
        {
            _s0 = state[0], _s1 = state[1], _s2 = state[2], _s3 = state[3],
            _spareGaussian = state[5] != 0 ? BitConverter.UInt64BitsToDouble(state[4]) : null,
        };
    }
}
