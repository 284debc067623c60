using ResNet.ML.Data;

namespace ResNet.ML.Tests.Data;

[TestClass]
public class CifarTests
{
    [TestMethod]
    public void Cifar10_records_keep_chw_planes_and_labels_across_batches()
    {
        byte[] a = DataFixtures.CifarRecords([[3], [9]]);
        byte[] b = DataFixtures.CifarRecords([[0]]);
        var ds = Cifar.ReadCifar10([(new MemoryStream(a), "data_batch_1.bin"), (new MemoryStream(b), "data_batch_2.bin")]);
        Assert.AreEqual(3, ds.Count);
        CollectionAssert.AreEqual(new[] { 3, 9, 0 }, ds.GetLabels());
        Assert.AreEqual("cat", ds.ClassNames[3]);
        Assert.AreEqual((3, 32, 32), (ds.Channels, ds.Height, ds.Width));
        var px = new float[3072];
        ds.ReadPixels(1, px);
        // the file's plane order is the tensor's: green pixel (row 2, col 5) is byte 1024 + 2*32 + 5
        Assert.AreEqual(DataFixtures.CifarPixel(1, 1024 + 69), (byte)px[1024 + 69]);
        ds.ReadPixels(2, px);
        Assert.AreEqual(DataFixtures.CifarPixel(0, 3000), (byte)px[3000], "the second file starts again at its own record 0");
    }

    [TestMethod]
    public void Cifar100_picks_fine_or_coarse_labels()
    {
        byte[] data = DataFixtures.CifarRecords([[4, 77], [19, 2]]);
        var fine = Cifar.ReadCifar100([(new MemoryStream(data), "train.bin")]);
        var coarse = Cifar.ReadCifar100([(new MemoryStream(data), "train.bin")], Cifar100Labels.Coarse);
        CollectionAssert.AreEqual(new[] { 77, 2 }, fine.GetLabels());
        CollectionAssert.AreEqual(new[] { 4, 19 }, coarse.GetLabels());
        Assert.AreEqual(100, fine.ClassCount);
        Assert.AreEqual(20, coarse.ClassCount);
    }

    [TestMethod]
    public void Truncated_record_and_bad_label_name_the_file()
    {
        byte[] data = DataFixtures.CifarRecords([[1], [2]]);
        var cut = Assert.ThrowsExactly<InvalidDataException>(() => Cifar.ReadCifar10([(new MemoryStream(data[..^100]), "data_batch_3.bin")]));
        StringAssert.Contains(cut.Message, "data_batch_3.bin is truncated");
        StringAssert.Contains(cut.Message, "record 1");
        data[0] = 12;
        var label = Assert.ThrowsExactly<InvalidDataException>(() => Cifar.ReadCifar10([(new MemoryStream(data), "data_batch_4.bin")]));
        StringAssert.Contains(label.Message, "data_batch_4.bin");
        StringAssert.Contains(label.Message, "label 12");
        var empty = Assert.ThrowsExactly<InvalidDataException>(() => Cifar.ReadCifar10([(new MemoryStream([]), "test_batch.bin")]));
        StringAssert.Contains(empty.Message, "test_batch.bin holds no images");
    }

    [TestMethod]
    public void Folder_load_reads_the_five_batches_and_the_class_name_file()
    {
        string dir = DataFixtures.TempDirectory();
        try
        {
            for (int i = 1; i <= 5; i++) File.WriteAllBytes(Path.Combine(dir, $"data_batch_{i}.bin"), DataFixtures.CifarRecords([[i], [0]]));
            File.WriteAllBytes(Path.Combine(dir, "test_batch.bin"), DataFixtures.CifarRecords([[7]]));
            File.WriteAllLines(Path.Combine(dir, "batches.meta.txt"), ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", ""]);
            var train = Cifar.LoadCifar10(dir);
            var test = Cifar.LoadCifar10(dir, test: true);
            CollectionAssert.AreEqual(new[] { 1, 0, 2, 0, 3, 0, 4, 0, 5, 0 }, train.GetLabels());
            Assert.AreEqual("c7", test.ClassNames[test.GetLabel(0)]);
            File.Delete(Path.Combine(dir, "data_batch_4.bin"));
            var missing = Assert.ThrowsExactly<FileNotFoundException>(() => Cifar.LoadCifar10(dir));
            StringAssert.Contains(missing.Message, "data_batch_4.bin");
        }
        finally { Directory.Delete(dir, true); }
    }
}
