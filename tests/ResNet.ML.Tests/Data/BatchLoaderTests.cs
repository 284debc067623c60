using ResNet.ML.Data;

namespace ResNet.ML.Tests.Data;

[TestClass]
public class BatchLoaderTests
{
    // 50 images 3x6x5 whose pixels encode (image, position), 5 classes of 10.
    private static InMemoryImageDataset Numbered(int count = 50)
    {
        const int size = 3 * 6 * 5;
        var bytes = new byte[count * size];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)((i / size * 17 + i % size) % 251);
        var labels = Enumerable.Range(0, count).Select(i => i % 5).ToArray();
        return ImageDataset.FromBytes(bytes, labels, 3, 6, 5, ImageDataset.NumberedClassNames(5));
    }

    private static List<(float[] Images, int[] Labels, int[] Indices)> Collect(BatchLoader loader, int epoch, int start = 0) =>
        loader.ReadEpoch(epoch, start).Select(b => ((float[])b.Pixels.Clone(), (int[])b.Labels.Clone(), (int[])b.Indices!.Clone())).ToList();

    [TestMethod]
    public void An_epoch_serves_every_image_once_with_its_label_and_normalized_pixels()
    {
        var ds = Numbered();
        var loader = new BatchLoader(ds, new BatchLoaderOptions { BatchSize = 16, Seed = 5 });
        var batches = Collect(loader, 0);
        Assert.AreEqual(4, batches.Count);
        CollectionAssert.AreEqual(new[] { 16, 16, 16, 2 }, batches.Select(b => b.Labels.Length).ToArray());
        var seen = batches.SelectMany(b => b.Indices).ToArray();
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 50).ToArray(), seen);
        CollectionAssert.AreNotEqual(Enumerable.Range(0, 50).ToArray(), seen, "shuffled");
        CollectionAssert.AreEqual(loader.EpochOrder(0), seen);
        var px = new float[ds.SampleSize];
        foreach (var (images, labels, indices) in batches)
            for (int i = 0; i < labels.Length; i++)
            {
                Assert.AreEqual(ds.GetLabel(indices[i]), labels[i]);
                ds.ReadPixels(indices[i], px);
                for (int k = 0; k < px.Length; k++) Assert.AreEqual(px[k] / 255f, images[i * px.Length + k], 1e-6f);
            }
    }

    [TestMethod]
    public void Order_depends_on_seed_and_epoch_only()
    {
        var ds = Numbered();
        var a = new BatchLoader(ds, new BatchLoaderOptions { Seed = 1 });
        var b = new BatchLoader(ds, new BatchLoaderOptions { Seed = 1 });
        var c = new BatchLoader(ds, new BatchLoaderOptions { Seed = 2 });
        CollectionAssert.AreEqual(a.EpochOrder(3), b.EpochOrder(3));
        CollectionAssert.AreNotEqual(a.EpochOrder(3), a.EpochOrder(4));
        CollectionAssert.AreNotEqual(a.EpochOrder(3), c.EpochOrder(3));
        var plain = new BatchLoader(ds, new BatchLoaderOptions { Shuffle = false });
        CollectionAssert.AreEqual(Enumerable.Range(0, 50).ToArray(), plain.EpochOrder(7));
    }

    [TestMethod]
    public void Augmented_batches_are_identical_for_any_worker_count_and_when_resumed()
    {
        var ds = Numbered();
        var options = new BatchLoaderOptions { BatchSize = 8, Seed = 42, Augmentation = Augmentation.CifarPaper with { Padding = 2 }, Normalization = Normalization.Compute(ds) };
        var inline = Collect(new BatchLoader(ds, options with { Workers = 0 }), 2);
        var one = Collect(new BatchLoader(ds, options with { Workers = 1, Prefetch = 1 }), 2);
        var three = Collect(new BatchLoader(ds, options with { Workers = 3, Prefetch = 2 }), 2);
        var resumed = Collect(new BatchLoader(ds, options with { Workers = 2 }), 2, start: 4);
        Assert.AreEqual(7, inline.Count);
        for (int b = 0; b < inline.Count; b++)
        {
            CollectionAssert.AreEqual(inline[b].Images, one[b].Images, $"batch {b}, 1 worker");
            CollectionAssert.AreEqual(inline[b].Images, three[b].Images, $"batch {b}, 3 workers");
            CollectionAssert.AreEqual(inline[b].Labels, three[b].Labels);
            if (b >= 4) CollectionAssert.AreEqual(inline[b].Images, resumed[b - 4].Images, $"batch {b}, resumed");
        }
        var otherEpoch = Collect(new BatchLoader(ds, options), 3);
        CollectionAssert.AreNotEqual(inline[0].Images, otherEpoch[0].Images);
    }

    [TestMethod]
    public void Buffers_are_reused_across_batches_and_epochs()
    {
        var loader = new BatchLoader(Numbered(48), new BatchLoaderOptions { BatchSize = 8, Workers = 1, Prefetch = 2 });
        var first = loader.ReadEpoch(0).Select(b => b.Pixels).ToList();
        var second = loader.ReadEpoch(1).Select(b => b.Pixels).ToList();
        Assert.AreEqual(2, first.Distinct().Count(), "two ring slots serve six batches");
        CollectionAssert.AreEquivalent(first.Distinct().ToList(), second.Distinct().ToList());
    }

    [TestMethod]
    public void DropLast_and_a_short_last_batch()
    {
        var ds = Numbered();
        var drop = new BatchLoader(ds, new BatchLoaderOptions { BatchSize = 16, DropLast = true });
        Assert.AreEqual(3, drop.BatchesPerEpoch);
        Assert.IsTrue(drop.ReadEpoch(0).All(b => b.Count == 16 && b.Pixels.Length == 16 * b.SampleSize));
        var keep = new BatchLoader(ds, new BatchLoaderOptions { BatchSize = 16, Workers = 2 });
        var last = keep.ReadEpoch(0).Last();
        Assert.AreEqual((2, 3), (last.Count, last.Index));
    }

    [TestMethod]
    public void Cancellation_and_breaking_out_stop_the_workers()
    {
        var loader = new BatchLoader(Numbered(), new BatchLoaderOptions { BatchSize = 4, Workers = 2, Prefetch = 1 });
        using var cts = new CancellationTokenSource();
        int seen = 0;
        Assert.ThrowsExactly<OperationCanceledException>(() =>
        {
            foreach (var _ in loader.ReadEpoch(0, cancellationToken: cts.Token))
                if (++seen == 3) cts.Cancel();
        });
        Assert.AreEqual(3, seen);
        Assert.AreEqual(4, loader.ReadEpoch(1).Take(4).Count(), "a broken-off enumeration leaves the loader usable");
        Assert.AreEqual(13, loader.ReadEpoch(1).Count());
    }

    [TestMethod]
    public void A_failing_image_surfaces_at_its_batch_with_the_original_message()
    {
        var loader = new BatchLoader(new FailingDataset(failAt: 30), new BatchLoaderOptions { BatchSize = 10, Shuffle = false, Workers = 2 });
        int served = 0;
        var e = Assert.ThrowsExactly<InvalidDataException>(() => { foreach (var _ in loader.ReadEpoch(0)) served++; });
        Assert.AreEqual("broken.png cannot be decoded", e.Message);
        Assert.AreEqual(3, served);
    }

    [TestMethod]
    public void Bad_options_are_refused_naming_the_option()
    {
        var ds = Numbered();
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new BatchLoader(ds, new BatchLoaderOptions { BatchSize = 0 })).Message, "BatchSize");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new BatchLoader(ds, new BatchLoaderOptions { Normalization = new Normalization(1, [0, 0], [1, 1]) })).Message, "2 channel statistics");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new BatchLoader(ds, new BatchLoaderOptions { Augmentation = new Augmentation { Padding = -1 } })).Message, "padding");
    }

    private sealed class FailingDataset(int failAt) : ImageDataset(1, 2, 2, ["a", "b"], "failing")
    {
        public override int Count => 40;
        public override int GetLabel(int index) => index % 2;
        public override void ReadPixels(int index, Span<float> destination)
        {
            if (index == failAt) throw new InvalidDataException("broken.png cannot be decoded");
            destination[..4].Fill(index);
        }
    }
}
