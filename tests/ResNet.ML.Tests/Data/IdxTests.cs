using ResNet.ML.Data;

namespace ResNet.ML.Tests.Data;

[TestClass]
public class IdxTests
{
    private static byte Pixel(int n, int p) => (byte)(n * 10 + p);

    [TestMethod]
    public void Raw_and_gzipped_files_read_the_same_pixels_and_labels()
    {
        byte[] images = DataFixtures.IdxImages(3, 2, 3, Pixel);
        byte[] labels = DataFixtures.IdxLabels(2, 0, 1);
        var raw = Idx.Read(new MemoryStream(images), new MemoryStream(labels));
        var gz = Idx.Read(new MemoryStream(DataFixtures.Gzip(images)), new MemoryStream(DataFixtures.Gzip(labels)));
        foreach (var ds in new[] { raw, gz })
        {
            Assert.AreEqual(3, ds.Count);
            Assert.AreEqual((1, 2, 3), (ds.Channels, ds.Height, ds.Width));
            CollectionAssert.AreEqual(new[] { 2, 0, 1 }, ds.GetLabels());
            Assert.AreEqual(3, ds.ClassCount);
            var px = new float[6];
            ds.ReadPixels(2, px);
            CollectionAssert.AreEqual(Enumerable.Range(0, 6).Select(p => (float)Pixel(2, p)).ToArray(), px);
        }
    }

    [TestMethod]
    public void Transpose_swaps_rows_and_columns_for_emnist()
    {
        var ds = Idx.Read(new MemoryStream(DataFixtures.IdxImages(1, 2, 3, Pixel)), new MemoryStream(DataFixtures.IdxLabels(0)), transpose: true);
        Assert.AreEqual((3, 2), (ds.Height, ds.Width));
        var px = new float[6];
        ds.ReadPixels(0, px);
        // source rows [0 1 2] [3 4 5] -> transposed rows [0 3] [1 4] [2 5]
        CollectionAssert.AreEqual(new float[] { 0, 3, 1, 4, 2, 5 }, px);
    }

    [TestMethod]
    public void Label_count_that_disagrees_with_the_images_names_the_labels_file()
    {
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Idx.Read(
            new MemoryStream(DataFixtures.IdxImages(3, 2, 2, Pixel)), new MemoryStream(DataFixtures.IdxLabels(1, 2)),
            imagesSource: "imgs.idx", labelsSource: "labels.idx"));
        StringAssert.Contains(e.Message, "labels.idx");
        StringAssert.Contains(e.Message, "2 labels");
    }

    [TestMethod]
    public void Truncated_images_file_names_the_file()
    {
        byte[] images = DataFixtures.IdxImages(3, 4, 4, Pixel);
        byte[] cut = images[..(images.Length - 5)];
        var e = Assert.ThrowsExactly<InvalidDataException>(() => Idx.Read(new MemoryStream(cut), new MemoryStream(DataFixtures.IdxLabels(0, 1, 2)), imagesSource: "train-images"));
        StringAssert.Contains(e.Message, "train-images is truncated");
        // the same through gzip, cut in the middle of the compressed stream
        byte[] gz = DataFixtures.Gzip(DataFixtures.IdxImages(50, 8, 8, (n, p) => (byte)(n ^ p * 13)));
        var e2 = Assert.ThrowsExactly<InvalidDataException>(() => Idx.Read(new MemoryStream(gz[..(gz.Length / 2)]), new MemoryStream(DataFixtures.IdxLabels(new byte[50])), imagesSource: "half.gz"));
        StringAssert.Contains(e2.Message, "half.gz");
    }

    [TestMethod]
    public void Wrong_magic_and_extra_bytes_are_refused_naming_the_file()
    {
        byte[] labels = DataFixtures.IdxLabels(0);
        var swapped = Assert.ThrowsExactly<InvalidDataException>(() => Idx.Read(new MemoryStream(labels), new MemoryStream(labels), imagesSource: "a.idx"));
        StringAssert.Contains(swapped.Message, "a.idx is an IDX labels file");
        byte[] corrupt = DataFixtures.IdxImages(1, 2, 2, Pixel);
        corrupt[2] = 0x0D;   // float data type
        var magic = Assert.ThrowsExactly<InvalidDataException>(() => Idx.Read(new MemoryStream(corrupt), new MemoryStream(labels), imagesSource: "b.idx"));
        StringAssert.Contains(magic.Message, "b.idx is not an IDX images file");
        byte[] extra = [.. DataFixtures.IdxImages(1, 2, 2, Pixel), 7];
        var tail = Assert.ThrowsExactly<InvalidDataException>(() => Idx.Read(new MemoryStream(extra), new MemoryStream(labels), imagesSource: "c.idx"));
        StringAssert.Contains(tail.Message, "c.idx has bytes after");
    }

    [TestMethod]
    public void Load_names_a_missing_file()
    {
        string dir = DataFixtures.TempDirectory();
        try
        {
            string images = Path.Combine(dir, "i.idx");
            File.WriteAllBytes(images, DataFixtures.IdxImages(1, 2, 2, Pixel));
            var e = Assert.ThrowsExactly<IOException>(() => Idx.Load(images, Path.Combine(dir, "missing-labels.idx")));
            StringAssert.Contains(e.Message, "missing-labels.idx");
        }
        finally { Directory.Delete(dir, true); }
    }

    [TestMethod]
    public void Committed_fashion_mnist_subset_is_a_stratified_training_sample()
    {
        string dir = Path.Combine(RepoRoot(), FashionMnist.SubsetDirectory);
        var ds = FashionMnist.LoadIdx(dir);
        Assert.AreEqual(9000, ds.Count);
        Assert.AreEqual((1, 28, 28), (ds.Channels, ds.Height, ds.Width));
        CollectionAssert.AreEqual(Enumerable.Repeat(900, 10).ToArray(), ds.CountPerClass());
        Assert.AreEqual("Ankle boot", ds.ClassNames[9]);
        var px = new float[784];
        ds.ReadPixels(0, px);
        Assert.IsTrue(px.Any(v => v > 0) && px.All(v => v is >= 0 and <= 255), "real pixels in 0..255");
    }

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ResNet.ML.sln"))) return dir.FullName;
        throw new InvalidOperationException("The repository root (ResNet.ML.sln) is not above the test output folder.");
    }
}
