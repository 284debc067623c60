using System.Runtime.ExceptionServices;

namespace ResNet.ML.Tensors;

/// <summary>
/// The compute engine's parallel loop and scratch. Work is split into <see cref="Threads"/> contiguous parts that do not
/// depend on timing, and reductions are summed in part order, so the same thread count gives bit-identical results.
/// </summary>
/// <remarks>
/// The thread count belongs to the calling thread, not the process (<see cref="UseThreads"/>): two trainings in one
/// process, each on its own thread with its own count, partition their work independently. The engine's workers take
/// the count of the thread whose region they run, so nested regions partition as the caller would.
/// </remarks>
public static class Engine
{
    [ThreadStatic] private static int t_threads;

    /// <summary>How many threads kernels called from this thread use: the innermost <see cref="UseThreads"/> scope's count, else all cores.</summary>
    public static int Threads => t_threads > 0 ? t_threads : Environment.ProcessorCount;

    /// <summary>
    /// Runs the kernels called from this thread on <paramref name="threads"/> threads until the returned scope is disposed
    /// (scopes nest; disposing restores the count before). Changing the count changes the order of some sums, so results
    /// are bit-identical only between runs with the same value. The trainer opens one per run with
    /// <c>ResNetTrainerOptions.Threads</c>.
    /// </summary>
    public static ThreadsScope UseThreads(int threads)
    {
        if (threads < 1 || threads > 1024) throw new ArgumentOutOfRangeException(nameof(threads), $"The engine's thread count must be between 1 and 1024, not {threads}.");
        var scope = new ThreadsScope(t_threads);
        t_threads = threads;
        return scope;
    }

    /// <summary>Restores the thread count that was in force before <see cref="UseThreads"/>; dispose it on the thread that opened it.</summary>
    public readonly struct ThreadsScope : IDisposable
    {
        private readonly int _previous;
        internal ThreadsScope(int previous) => _previous = previous;
        public void Dispose() => t_threads = _previous;
    }

    /// <summary>
    /// Runs <paramref name="body"/>(part, begin, end) over <c>min(Threads, count)</c> contiguous ranges of [0, count):
    /// part 0 on the calling thread, the others on the engine's worker threads. Rethrows the first exception.
    /// </summary>
    internal static void ParallelFor(int count, Action<int, int, int> body) => ParallelFor(count, Threads, body);

    internal static void ParallelFor(int count, int maxParts, Action<int, int, int> body)
    {
        if (t_profile is { } profile)
        {
            // Bench --profile: attribute each parallel region's wall time to the method it runs.
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            t_profile = null;
            try { ParallelFor(count, maxParts, body); }
            finally { t_profile = profile; }
            profile(body, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            return;
        }
        if (count <= 0) return;
        int parts = Math.Min(Math.Min(maxParts, Threads), count);
        if (parts <= 1 || WorkerPool.InsideJob || !WorkerPool.Shared.TryRun(parts, count, body))
        {
            // Nested or concurrent calls run the same partition inline, so results do not depend on who ran them.
            for (int p = 0; p < parts; p++)
            {
                var (b, e) = Range(p, parts, count);
                body(p, b, e);
            }
        }
    }

    /// <summary>The number of parts <see cref="ParallelFor(int, Action{int, int, int})"/> uses for <paramref name="count"/> items.</summary>
    internal static int Parts(int count) => Math.Max(1, Math.Min(Threads, count));

    internal static (int Begin, int End) Range(int part, int parts, int count)
    {
        long b = (long)count * part / parts, e = (long)count * (part + 1) / parts;
        return ((int)b, (int)e);
    }

    [ThreadStatic] private static Action<Delegate, double>? t_profile;

    /// <summary>
    /// Bench only: until the returned scope is disposed, <paramref name="onRegion"/> receives the body and wall time (ms)
    /// of every parallel region this thread starts. Like <see cref="UseThreads"/>, it belongs to the calling thread.
    /// </summary>
    internal static ProfileScope ProfileRegions(Action<Delegate, double> onRegion)
    {
        var scope = new ProfileScope(t_profile);
        t_profile = onRegion;
        return scope;
    }

    /// <summary>Restores the region callback that was in force before <see cref="ProfileRegions"/>.</summary>
    internal readonly struct ProfileScope : IDisposable
    {
        private readonly Action<Delegate, double>? _previous;
        internal ProfileScope(Action<Delegate, double>? previous) => _previous = previous;
        public void Dispose() => t_profile = _previous;
    }

    [ThreadStatic] private static float[]?[]? t_scratch;

    /// <summary>
    /// A scratch array of at least <paramref name="length"/> floats owned by the current thread (grow-only, contents
    /// undefined), for use inside one call: a kernel takes it, fills it and is done with it before it returns. What
    /// must outlive a parallel region (partial sums the caller adds up) is not scratch: it belongs to the plan
    /// (<c>PartialSums</c>).
    /// </summary>
    internal static float[] Scratch(ScratchSlot slot, int length)
    {
        var slots = t_scratch ??= new float[]?[ScratchSlots];
        var s = slots[(int)slot];
        if (s is null || s.Length < length) slots[(int)slot] = s = GC.AllocateUninitializedArray<float>(length, pinned: true);
        return s;
    }

    private static readonly int ScratchSlots = Enum.GetValues<ScratchSlot>().Length;

    /// <summary>
    /// A small pool of background threads that wait for jobs; no allocation per job. Workers and the caller spin briefly
    /// before sleeping: a training step runs a hundred short parallel regions, and waking a sleeping thread for each
    /// would cost more than the regions themselves.
    /// </summary>
    private sealed class WorkerPool
    {
        private const int SpinCount = 2047;   // the most ManualResetEventSlim allows
        public static readonly WorkerPool Shared = new();
        [ThreadStatic] private static bool t_inside;
        public static bool InsideJob => t_inside;

        private readonly object _gate = new();
        private readonly List<ManualResetEventSlim> _start = [];
        private readonly ManualResetEventSlim _done = new(false, SpinCount);
        private Action<int, int, int>? _body;
        private int _parts, _count, _remaining, _threads;
        private ExceptionDispatchInfo? _error;

        public bool TryRun(int parts, int count, Action<int, int, int> body)
        {
            if (!Monitor.TryEnter(_gate)) return false;   // another thread is using the pool: caller runs inline
            try
            {
                while (_start.Count < parts - 1) StartWorker(_start.Count + 1);
                (_body, _parts, _count, _threads, _error) = (body, parts, count, t_threads, null);
                _done.Reset();
                Volatile.Write(ref _remaining, parts - 1);
                for (int p = 1; p < parts; p++) _start[p - 1].Set();
                t_inside = true;
                try { RunPart(0); }
                finally { t_inside = false; }
                _done.Wait();
                _body = null;
                _error?.Throw();
                return true;
            }
            finally { Monitor.Exit(_gate); }
        }

        private void RunPart(int part)
        {
            var (b, e) = Range(part, _parts, _count);
            try { _body!(part, b, e); }
            catch (Exception ex) { Interlocked.CompareExchange(ref _error, ExceptionDispatchInfo.Capture(ex), null); }
        }

        private void StartWorker(int part)
        {
            var start = new ManualResetEventSlim(false, SpinCount);
            _start.Add(start);
            var thread = new Thread(() =>
            {
                t_inside = true;
                while (true)
                {
                    start.Wait();
                    // Reset before signalling completion: the next Set can only come after _done is set.
                    start.Reset();
                    // Nested regions of this part partition with the count of the thread that started the region.
                    t_threads = _threads;
                    RunPart(part);
                    if (Interlocked.Decrement(ref _remaining) == 0) _done.Set();
                }
            })
            { IsBackground = true, Name = $"ResNet.ML engine worker {part}" };
            thread.Start();
        }
    }
}

/// <summary>
/// The engine's per-thread scratch arrays (<see cref="Engine.Scratch"/>), one per use that can be live at the same time
/// as another on one thread. Uses share a slot only when they never nest: the kernels of one convolution call run one
/// after another, and a call's scratch is dead when it returns.
/// </summary>
internal enum ScratchSlot
{
    /// <summary>One image's im2col columns (Conv2d's im2col weight gradient); the 3x3/2 max pooling's column rows, which never runs inside a convolution.</summary>
    Columns,
    /// <summary>One image's column gradient before col2im folds it (Conv2d's GEMM + col2im input gradient), live beside <see cref="Columns"/>.</summary>
    GradientColumns,
    /// <summary>Gemm's packed blocks of A and of B, live inside every GEMM, which may run while the slots above are held.</summary>
    GemmPackedA,
    GemmPackedB,
    /// <summary>The im2col GEMM panels of Conv2d's fallback convolution, which calls the GEMM's panel kernel but not its packing.</summary>
    ConvolutionPanels,
    /// <summary>A direct convolution's zero-padded (or phase-split) copy of its input, read while the next two are written.</summary>
    PaddedInput,
    /// <summary>A direct weight gradient's copy of the output gradient (DirectConv, DirectConvAvx2), or DirectConv's transposed one.</summary>
    GradientCopy,
    /// <summary>A direct convolution's output at the padded row pitch, before it is cropped into the output.</summary>
    VirtualOutput,
    /// <summary>DirectConv's outer-product weight gradient, [taps, channels], before it is transposed into the layer's sum.</summary>
    OuterGradient,
}
