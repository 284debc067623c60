using ResNet.ML.Models;

namespace ResNet.ML.Tests.Models;

[TestClass]
public class ResNetSpecTests
{
    [TestMethod]
    public void PresetsAreThePapersAndTorchvisionsArchitectures()
    {
        var r50 = ResNetPresets.Get("ResNet50");
        Assert.AreEqual(new ResNetSpec(BlockKind.Bottleneck, [3, 4, 6, 3], [64, 128, 256, 512], StemKind.ImageNet, 64, ShortcutKind.Projection), r50);
        Assert.AreEqual(50, r50.Depth);
        Assert.AreEqual(2048, r50.OutputWidth);
        var r110 = ResNetPresets.Get("resnet110");
        Assert.AreEqual(new ResNetSpec(BlockKind.Basic, [18, 18, 18], [16, 32, 64], StemKind.Cifar, 16, ShortcutKind.ZeroPad), r110);
        Assert.AreEqual(110, r110.Depth);
        Assert.AreEqual(ShortcutKind.Projection, ResNetPresets.Get("resnet110-b").Shortcut);
        Assert.IsTrue(ResNetPresets.Get("plain-resnet34").Plain);
        Assert.AreEqual(ShortcutKind.Conv3x3Projection, ResNetPresets.Get("seed-resnet").Shortcut);
        foreach (int d in new[] { 18, 34, 50, 101, 152, 20, 32, 44, 56, 110, 1202 })
        {
            Assert.AreEqual(d, ResNetPresets.Get($"resnet{d}").Depth, $"resnet{d}");
            Assert.AreEqual(d, ResNetPresets.Get($"plain-resnet{d}").Depth, $"plain-resnet{d}");
        }
        Assert.IsFalse(ResNetPresets.TryGet("resnet21", out _));
    }

    [TestMethod]
    public void TextFormRoundTrips()
    {
        foreach (string name in ResNetPresets.Names.Concat(["plain-resnet50", "plain-seed-resnet"]))
        {
            var spec = ResNetPresets.Get(name);
            Assert.AreEqual(spec, ResNetSpec.Parse(spec.ToString()), name);
            Assert.AreEqual(spec, ResNetSpec.Parse(spec.ToJson()), name);
        }
        Assert.AreEqual("block=basic blocks=3,3,3 widths=16,32,64 stem=cifar stem-width=16 shortcut=A", ResNetPresets.Get("resnet20").ToString());
        Assert.AreEqual("block=bottleneck blocks=3,4,6,3 widths=64,128,256,512 stem=imagenet stem-width=64 shortcut=B plain=true",
            ResNetPresets.Get("plain-resnet50").ToString());
    }

    [TestMethod]
    public void PresetFieldsCanBeOverridden()
    {
        var wide = ResNetSpec.Parse("resnet18 widths=32,64,128,256 stem-width=32");
        Assert.AreEqual(ResNetPresets.Get("resnet18") with { Widths = [32, 64, 128, 256], StemWidth = 32 }, wide);
        var deep = ResNetSpec.Parse("resnet20; blocks=5,5,5; shortcut=seed; plain=false");
        Assert.AreEqual(ResNetPresets.Get("resnet32") with { Shortcut = ShortcutKind.Conv3x3Projection }, deep);
        var defaults = ResNetSpec.Parse("block=basic blocks=2,2,2,2 widths=64,128,256,512");
        Assert.AreEqual(ResNetPresets.Get("resnet18"), defaults, "four stages default to the ImageNet stem with projections");
    }

    [TestMethod]
    [DataRow("block=basic widths=16,32,64", "'blocks'")]
    [DataRow("block=basic blocks=3,3 widths=16,32,64", "'widths'")]
    [DataRow("block=basic blocks=3,0,3 widths=16,32,64", "stage 2")]
    [DataRow("block=wide blocks=3,3,3 widths=16,32,64", "'block'")]
    [DataRow("resnet20 shortcut=C", "'shortcut'")]
    [DataRow("resnet20 stem=huge", "'stem'")]
    [DataRow("resnet20 depth=3", "'depth'")]
    [DataRow("resnet20 blocks=3,x,3", "'blocks'")]
    [DataRow("resnet20 widths=64,32,16", "narrows")]
    [DataRow("resnet20 stem-width=16 stem-width=8", "twice")]
    [DataRow("{\"block\":\"basic\",\"blocks\":\"3\",\"widths\":[16,32,64]}", "'blocks'")]
    [DataRow("{\"block\":\"basic\",\"blocks\":[3],\"widths\":[16],\"colour\":1}", "'colour'")]
    [DataRow("{not json", "JSON")]
    [DataRow("simplecnn widths=8,16", "not a ResNet")]
    public void BadSpecsNameTheFieldAtFault(string text, string expected)
    {
        Assert.IsFalse(ResNetSpec.TryParse(text, out var spec, out string? error), text);
        Assert.IsNull(spec);
        StringAssert.Contains(error, expected);
    }

    [TestMethod]
    public void UnknownPresetInSpecListsKnownNames()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => ResNetSpec.Parse("resnet99 widths=1,2,3"));
        StringAssert.Contains(e.Message, "resnet99");
        StringAssert.Contains(e.Message, "resnet1202");
    }
}
