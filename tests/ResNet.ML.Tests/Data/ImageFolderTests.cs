using ResNet.ML.Data;

namespace ResNet.ML.Tests.Data;

[TestClass]
public class ImageFolderTests
{
    private static readonly ImageFolderOptions Small = new() { Channels = 3, Height = 8, Width = 8 };

    // root/zebra/{z1.png, sub/z2.jpg, notes.txt}, root/ant/{a1.JPG, a2.png}
    private static string MakeFolder()
    {
        string root = DataFixtures.TempDirectory();
        Directory.CreateDirectory(Path.Combine(root, "zebra", "sub"));
        Directory.CreateDirectory(Path.Combine(root, "ant"));
        var rng = new ResNet.ML.Tensors.Rng(8);
        byte[] Png(int w, int h) { var px = new byte[w * h * 3]; for (int i = 0; i < px.Length; i++) px[i] = (byte)rng.NextInt(256); return TestPng.Encode(px, w, h, 3); }
        File.WriteAllBytes(Path.Combine(root, "zebra", "z1.png"), Png(12, 9));
        File.Copy(ImageDecoderTests.Fixture("photo.jpg"), Path.Combine(root, "zebra", "sub", "z2.jpg"));
        File.WriteAllText(Path.Combine(root, "zebra", "notes.txt"), "not an image");
        File.Copy(ImageDecoderTests.Fixture("gray.jpg"), Path.Combine(root, "ant", "a1.JPG"));
        File.WriteAllBytes(Path.Combine(root, "ant", "a2.png"), Png(8, 8));
        File.WriteAllText(Path.Combine(root, "stray.png"), "files at the root belong to no class");
        return root;
    }

    [TestMethod]
    public void Classes_are_sorted_subfolders_and_images_decode_at_the_requested_size()
    {
        string root = MakeFolder();
        try
        {
            var ds = ImageFolder.Open(root, Small);
            CollectionAssert.AreEqual(new[] { "ant", "zebra" }, ds.ClassNames.ToArray());
            Assert.AreEqual(4, ds.Count);
            CollectionAssert.AreEqual(new[] { 0, 0, 1, 1 }, ds.GetLabels());
            CollectionAssert.AreEqual(new[] { "ant/a1.JPG", "ant/a2.png", "zebra/sub/z2.jpg", "zebra/z1.png" },
                ds.ImageNames.Select(n => Path.GetRelativePath(root, n).Replace('\\', '/')).ToArray());
            var px = new float[ds.SampleSize];
            for (int i = 0; i < ds.Count; i++)
            {
                ds.ReadPixels(i, px);
                CollectionAssert.AreEqual(ImageDecoder.DecodeToChw(File.ReadAllBytes(ds.ImageNames[i]), 3, 8, 8), px, $"image {i}");
            }
            var loaded = ImageFolder.Load(root, Small);
            Assert.AreEqual(0, loaded.SkippedCount);
            CollectionAssert.AreEqual(ds.GetLabels(), loaded.Dataset.GetLabels());
            var stored = new float[ds.SampleSize];
            for (int i = 0; i < ds.Count; i++)
            {
                ds.ReadPixels(i, px);
                loaded.Dataset.ReadPixels(i, stored);
                for (int k = 0; k < px.Length; k++) Assert.AreEqual(Math.Clamp(MathF.Round(px[k]), 0, 255), stored[k]);
            }
            // a batch loader over the streaming folder
            var batches = new BatchLoader(ds, new BatchLoaderOptions { BatchSize = 3, Augmentation = Augmentation.ImageNet, Workers = 2 }).ReadEpoch(0).Select(b => b.Count).ToArray();
            CollectionAssert.AreEqual(new[] { 3, 1 }, batches);
        }
        finally { Directory.Delete(root, true); }
    }

    [TestMethod]
    public void A_bad_image_fails_naming_the_file_or_is_skipped_and_counted()
    {
        string root = MakeFolder();
        try
        {
            string bad = Path.Combine(root, "zebra", "broken.png");
            byte[] noise = new byte[20 * 20 * 3];
            new Random(3).NextBytes(noise);
            byte[] png = TestPng.Encode(noise, 20, 20, 3);
            File.WriteAllBytes(bad, png[..(png.Length / 2)]);   // cut inside the image data
            string dangling = Path.Combine(root, "ant", "moved.jpg");   // a link to a file that is gone cannot be read
            File.CreateSymbolicLink(dangling, Path.Combine(root, "gone.jpg"));

            var streaming = ImageFolder.Open(root, Small);
            int badIndex = streaming.ImageNames.ToList().IndexOf(bad);
            var e = Assert.ThrowsExactly<ImageDecodeException>(() => streaming.ReadPixels(badIndex, new float[streaming.SampleSize]));
            Assert.AreEqual(bad, e.ImageSource);
            var viaLoader = Assert.ThrowsExactly<ImageDecodeException>(() => new BatchLoader(streaming, new BatchLoaderOptions { BatchSize = 2, Shuffle = false }).ReadEpoch(0).ToList());
            StringAssert.Contains(viaLoader.Message, dangling, "the first bad image in order (ant/moved.jpg) stops the epoch");

            var load = Assert.ThrowsExactly<ImageDecodeException>(() => ImageFolder.Load(root, Small));
            StringAssert.Contains(load.Message, dangling, "the first bad image in order is reported");

            var skipping = Small with { SkipBadImages = true };
            var opened = ImageFolder.Open(root, skipping);
            var loaded = ImageFolder.Load(root, skipping);
            Assert.AreEqual(4, opened.Count);
            Assert.AreEqual(4, loaded.Dataset.Count);
            CollectionAssert.AreEquivalent(new[] { bad, dangling }, opened.SkippedFiles.ToArray());
            CollectionAssert.AreEquivalent(new[] { bad, dangling }, loaded.SkippedFiles.ToArray());
            var unreadable = Assert.ThrowsExactly<ImageDecodeException>(() => streaming.ReadPixels(streaming.ImageNames.ToList().IndexOf(dangling), new float[streaming.SampleSize]));
            StringAssert.Contains(unreadable.Message, dangling + ": cannot be read");
        }
        finally { Directory.Delete(root, true); }
    }

    [TestMethod]
    public void Folder_problems_name_the_folder()
    {
        string root = MakeFolder();
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "moth"));
            File.WriteAllText(Path.Combine(root, "moth", "readme.md"), "no images here");
            var empty = Assert.ThrowsExactly<InvalidDataException>(() => ImageFolder.Open(root, Small));
            StringAssert.Contains(empty.Message, Path.Combine(root, "moth"));

            Directory.Delete(Path.Combine(root, "moth"), true);
            File.WriteAllBytes(Path.Combine(root, "ant", "a1.JPG"), [1, 2, 3]);
            File.WriteAllBytes(Path.Combine(root, "ant", "a2.png"), [1, 2, 3]);
            var allBad = Assert.ThrowsExactly<InvalidDataException>(() => ImageFolder.Load(root, Small with { SkipBadImages = true }));
            StringAssert.Contains(allBad.Message, Path.Combine(root, "ant"));

            string missing = Path.Combine(root, "nope");
            StringAssert.Contains(Assert.ThrowsExactly<DirectoryNotFoundException>(() => ImageFolder.Open(missing)).Message, missing);
            string file = Path.Combine(root, "stray.png");
            StringAssert.Contains(Assert.ThrowsExactly<IOException>(() => ImageFolder.Open(file)).Message, file + " is a file");
            string flat = DataFixtures.TempDirectory();
            StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => ImageFolder.Open(flat)).Message, "no class subfolders");
            Directory.Delete(flat);
        }
        finally { Directory.Delete(root, true); }
    }

    [TestMethod]
    public void Unreadable_class_folder_names_the_folder()
    {
        if (Environment.UserName == "root" || !OperatingSystem.IsLinux())
        {
            // root reads every folder regardless of permissions; exercise the same wrapping with a folder that vanishes
            Assert.ThrowsExactly<DirectoryNotFoundException>(() => ImageFolder.Open(Path.Combine(Path.GetTempPath(), "resnetml-gone-" + Guid.NewGuid())));
            return;
        }
        string root = MakeFolder();
        string locked = Path.Combine(root, "ant");
        try
        {
            File.SetUnixFileMode(locked, UnixFileMode.None);
            var e = Assert.ThrowsExactly<IOException>(() => ImageFolder.Open(root, Small));
            StringAssert.Contains(e.Message, locked);
        }
        finally
        {
            File.SetUnixFileMode(locked, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(root, true);
        }
    }

    [TestMethod]
    public void Encoded_byte_arrays_decode_like_files()
    {
        byte[] jpeg = ImageDecoderTests.FixtureBytes("photo.jpg");
        var ds = ImageFolder.FromEncoded([jpeg, jpeg[..100]], [1, 0], ["a", "b"], Small with { Channels = 1 }, ["good", "bad row 7"]);
        Assert.AreEqual(1, ds.Channels);
        CollectionAssert.AreEqual(ImageDecoder.DecodeToChw(jpeg, 1, 8, 8), ds.GetImage(0).Data);
        StringAssert.StartsWith(Assert.ThrowsExactly<ImageDecodeException>(() => ds.GetImage(1)).Message, "bad row 7:");
    }
}
