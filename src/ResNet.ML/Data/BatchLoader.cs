using System.Runtime.ExceptionServices;
using ResNet.ML.Tensors;

namespace ResNet.ML.Data;

/// <summary>Options of a <see cref="BatchLoader"/>.</summary>
public sealed record BatchLoaderOptions
{
    /// <summary>Images per batch.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Shuffle each epoch (training). The order of epoch e depends only on <see cref="Seed"/> and e.</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Drop the last batch when it would be smaller than <see cref="BatchSize"/>.</summary>
    public bool DropLast { get; init; }

    /// <summary>Seeds the shuffle and the augmentation.</summary>
    public ulong Seed { get; init; }

    /// <summary>Training-time augmentation; null for evaluation.</summary>
    public Augmentation? Augmentation { get; init; }

    /// <summary>Maps source pixels to network inputs; default ×1/255.</summary>
    public Normalization Normalization { get; init; } = Normalization.UnitRange;

    /// <summary>
    /// The per-channel value random erasing writes, in output units; null: 0, the dataset mean once normalized. Set when
    /// the output stays in source units (<see cref="Normalization.None"/>) and the consumer normalizes later, so that 0
    /// after its normalization is what the erased pixels become.
    /// </summary>
    internal float[]? ErasingFill { get; init; }

    /// <summary>
    /// Worker threads that decode and augment ahead of the consumer; 0 = do it on the consumer's thread. Batches come out
    /// identical for any value.
    /// </summary>
    public int Workers { get; init; } = 1;

    /// <summary>Batches each worker may have ready ahead of the consumer (the bounded queue per worker).</summary>
    public int Prefetch { get; init; } = 3;
}

/// <summary>
/// Yields an epoch of a dataset as batches, decoding and augmenting on worker threads ahead of the consumer.
/// </summary>
/// <remarks>
/// Deterministic: the sample order of epoch e is a function of (seed, e), and the augmentation of batch b of epoch e uses
/// a <see cref="Rng"/> derived from (seed, e, b) — so output does not depend on the number of workers or thread timing,
/// and a run resumed at (epoch, batch) sees exactly what the uninterrupted run saw. Worker w prepares batches
/// w, w + W, w + 2W, …, each into a fixed ring of <see cref="BatchLoaderOptions.Prefetch"/> buffers, and the consumer
/// takes them round-robin: memory is bounded by Workers × Prefetch batches, and no batch buffer is allocated after the
/// first epoch. Breaking out of the loop or cancelling stops the workers.
/// </remarks>
public sealed class BatchLoader
{
    private readonly ImageDataset _dataset;
    private readonly BatchLoaderOptions _options;
    private Lane[]? _lanes;

    public BatchLoader(ImageDataset dataset, BatchLoaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        options ??= new BatchLoaderOptions();
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), $"BatchSize must be positive, not {options.BatchSize}.");
        if (options.Workers < 0) throw new ArgumentOutOfRangeException(nameof(options), $"Workers must be 0 or more, not {options.Workers}.");
        if (options.Prefetch < 1) throw new ArgumentOutOfRangeException(nameof(options), $"Prefetch must be at least 1, not {options.Prefetch}.");
        ArgumentNullException.ThrowIfNull(options.Normalization);
        options.Normalization.CheckChannels(dataset.Channels);
        options.Augmentation?.Validate(dataset.Height, dataset.Width);
        if (dataset.Count == 0) throw new ArgumentException($"{dataset.Source}: the dataset is empty.", nameof(dataset));
        (_dataset, _options) = (dataset, options);
    }

    public ImageDataset Dataset => _dataset;
    public BatchLoaderOptions Options => _options;

    /// <summary>Batches in one epoch.</summary>
    public int BatchesPerEpoch => _options.DropLast
        ? _dataset.Count / _options.BatchSize
        : (_dataset.Count + _options.BatchSize - 1) / _options.BatchSize;

    /// <summary>The dataset indices of epoch <paramref name="epoch"/> in the order they are served.</summary>
    public int[] EpochOrder(int epoch)
    {
        var order = new int[_dataset.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (_options.Shuffle) new Rng(Derive(_options.Seed, 0x5348_5546_464C_45UL, (ulong)epoch)).Shuffle<int>(order);
        return order;
    }

    /// <summary>
    /// The batches of epoch <paramref name="epoch"/>, from batch <paramref name="startBatch"/> (to resume mid-epoch).
    /// Each yielded <see cref="ImageBatch"/> is reused once the enumeration moves on. Exceptions from reading or decoding an
    /// image surface here, at the batch that needed it.
    /// </summary>
    public IEnumerable<ImageBatch> ReadEpoch(int epoch, int startBatch = 0, CancellationToken cancellationToken = default)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), $"Epoch must be 0 or more, not {epoch}.");
        if (startBatch < 0 || startBatch > BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(startBatch), $"Start batch {startBatch} is outside the {BatchesPerEpoch} batches of an epoch.");
        return _options.Workers == 0 ? ReadInline(epoch, startBatch, cancellationToken) : ReadWithWorkers(epoch, startBatch, cancellationToken);
    }

    private IEnumerable<ImageBatch> ReadInline(int epoch, int startBatch, CancellationToken ct)
    {
        var lane = LanesFor(1)[0];
        int[] order = EpochOrder(epoch);
        for (int b = startBatch; b < BatchesPerEpoch; b++)
        {
            ct.ThrowIfCancellationRequested();
            var batch = lane.BufferFor(0, BatchLength(b));
            Fill(batch, lane.Transform, order, epoch, b);
            yield return batch;
        }
    }

    private IEnumerable<ImageBatch> ReadWithWorkers(int epoch, int startBatch, CancellationToken ct)
    {
        int workers = Math.Min(_options.Workers, Math.Max(1, BatchesPerEpoch - startBatch));
        var lanes = LanesFor(workers);
        int[] order = EpochOrder(epoch);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var tasks = new Task[workers];
        for (int w = 0; w < workers; w++)
        {
            var lane = lanes[w];
            lane.Reset();
            int first = startBatch + w;
            tasks[w] = Task.Factory.StartNew(() => Produce(lane, order, epoch, first, workers, stop.Token),
                stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        try
        {
            int consumed = 0;
            for (int b = startBatch; b < BatchesPerEpoch; b++, consumed++)
            {
                var lane = lanes[(b - startBatch) % workers];
                lane.Ready.Wait(ct);
                var (batch, error) = lane.Take();
                error?.Throw();
                yield return batch!;
                lane.Space.Release();   // the consumer is done with that buffer
            }
        }
        finally
        {
            stop.Cancel();
            try { Task.WaitAll(tasks); }
            catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException)) { }
        }
    }

    private void Produce(Lane lane, int[] order, int epoch, int first, int stride, CancellationToken ct)
    {
        try
        {
            for (int b = first; b < BatchesPerEpoch; b += stride)
            {
                lane.Space.Wait(ct);
                var batch = lane.BufferFor(lane.WriteSlot, BatchLength(b));
                try
                {
                    Fill(batch, lane.Transform, order, epoch, b);
                    lane.Put(batch, null);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    lane.Put(null, ExceptionDispatchInfo.Capture(e));
                    lane.Ready.Release();
                    return;
                }
                lane.Ready.Release();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    private void Fill(ImageBatch batch, SampleTransform transform, int[] order, int epoch, int b)
    {
        int start = b * _options.BatchSize;
        var rng = _options.Augmentation is null ? null : new Rng(Derive(_options.Seed, (ulong)epoch, (ulong)b));
        int size = _dataset.SampleSize;
        var data = batch.Pixels;
        var indices = batch.Indices!;
        for (int i = 0; i < batch.Count; i++)
        {
            int index = order[start + i];
            indices[i] = index;
            batch.Labels[i] = _dataset.GetLabel(index);
            transform.Apply(index, data.AsSpan(i * size, size), rng);
        }
        batch.Epoch = epoch;
        batch.Index = b;
    }

    private static ImageBatch NewBatch(int length, ImageDataset d) =>
        new(new float[(long)length * d.SampleSize], new int[length], d.Channels, d.Height, d.Width) { Indices = new int[length] };

    private int BatchLength(int b) => Math.Min(_options.BatchSize, _dataset.Count - b * _options.BatchSize);

    private Lane[] LanesFor(int count)
    {
        if (_lanes is null || _lanes.Length < count)
        {
            var lanes = new Lane[count];
            for (int i = 0; i < count; i++)
                lanes[i] = _lanes is not null && i < _lanes.Length ? _lanes[i] : new Lane(this, _options.Prefetch);
            _lanes = lanes;
        }
        return _lanes;
    }

    // Mixes a seed with two integers (SplitMix64 finalizer per step) into a seed for an independent Rng stream.
    private static ulong Derive(ulong seed, ulong a, ulong b)
    {
        static ulong Mix(ulong z)
        {
            z += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
        return Mix(Mix(Mix(seed) ^ a) ^ b);
    }

    /// <summary>One worker's ring of batch buffers (single producer, single consumer) and its transform scratch.</summary>
    private sealed class Lane
    {
        private readonly BatchLoader _owner;
        private readonly ImageBatch?[] _full, _partial;
        private readonly (ImageBatch? Batch, ExceptionDispatchInfo? Error)[] _ring;
        private int _readSlot;

        public Lane(BatchLoader owner, int capacity)
        {
            _owner = owner;
            _full = new ImageBatch?[capacity];
            _partial = new ImageBatch?[capacity];
            _ring = new (ImageBatch?, ExceptionDispatchInfo?)[capacity];
            Transform = new SampleTransform(owner._dataset, owner._options.Augmentation, owner._options.Normalization, owner._options.ErasingFill);
            Space = new SemaphoreSlim(capacity, capacity);
        }

        public SampleTransform Transform { get; }
        public SemaphoreSlim Ready { get; private set; } = new(0);
        public SemaphoreSlim Space { get; private set; }
        public int WriteSlot { get; private set; }

        public void Reset()
        {
            Ready = new SemaphoreSlim(0);
            Space = new SemaphoreSlim(_ring.Length, _ring.Length);
            WriteSlot = 0;
            _readSlot = 0;
            Array.Clear(_ring);
        }

        /// <summary>The buffer of a slot for a batch of <paramref name="length"/> images (the short last batch has its own).</summary>
        public ImageBatch BufferFor(int slot, int length)
        {
            var shelf = length == _owner._options.BatchSize ? _full : _partial;
            var d = _owner._dataset;
            if (shelf[slot] is not { } batch || batch.Count != length)
                shelf[slot] = batch = NewBatch(length, d);
            return batch;
        }

        public void Put(ImageBatch? batch, ExceptionDispatchInfo? error)
        {
            _ring[WriteSlot] = (batch, error);
            WriteSlot = (WriteSlot + 1) % _ring.Length;
        }

        public (ImageBatch? Batch, ExceptionDispatchInfo? Error) Take()
        {
            var item = _ring[_readSlot];
            _ring[_readSlot] = default;
            _readSlot = (_readSlot + 1) % _ring.Length;
            return item;
        }
    }
}
