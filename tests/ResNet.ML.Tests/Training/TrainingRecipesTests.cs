using ResNet.ML.Data;
using ResNet.ML.Training;

namespace ResNet.ML.Tests.Training;

/// <summary>One set of defaults: the options decide the rate and decay per optimizer; recipes are named settings on top.</summary>
[TestClass]
public sealed class TrainingRecipesTests
{
    [TestMethod]
    public void RateAndDecay_LeftUnset_AreTheOptimizersOwn_AndASetValueWins()
    {
        var o = new ResNetTrainerOptions();
        Assert.AreEqual(0.1f, o.ResolvedLearningRate);
        Assert.AreEqual(5e-4f, o.ResolvedWeightDecay);
        o.Optimizer = OptimizerKind.Adam;
        Assert.AreEqual(0.001f, o.ResolvedLearningRate);
        Assert.AreEqual(0f, o.ResolvedWeightDecay);
        o.Optimizer = OptimizerKind.AdamW;
        Assert.AreEqual(0.01f, o.ResolvedWeightDecay);
        var pretrained = new ResNetTrainerOptions { Pretrained = "dnn-resnet18" };
        Assert.AreEqual(0.01f, pretrained.ResolvedLearningRate, "a new head on pretrained features diverged at SGD's 0.1");
        o.LearningRate = 0.3f;
        o.WeightDecay = 0f;
        Assert.AreEqual(0.3f, o.ResolvedLearningRate);
        Assert.AreEqual(0f, o.ResolvedWeightDecay);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new ResNetTrainerOptions { LearningRate = -1 }.Validate());
        StringAssert.Contains(ex.Message, "LearningRate");
    }

    [TestMethod]
    public void ARecipe_SetsOnlyItsOwnSettings_AndIsFoundByName()
    {
        var o = new ResNetTrainerOptions { Seed = 7, ValidationFraction = 0.2 };
        Assert.AreSame(o, TrainingRecipes.Get("FAST").ApplyTo(o));
        Assert.AreEqual(8, o.Epochs);
        Assert.AreEqual("resnet14", o.Architecture);
        Assert.AreEqual(0.2f, o.LearningRate);
        Assert.IsTrue(o.Nesterov);
        Assert.AreEqual(0.1f, o.LabelSmoothing);
        Assert.AreEqual(ScheduleKind.OneCycle, o.Schedule);
        Assert.AreEqual(Augmentation.CifarPaper with { Padding = 2 }, o.Augmentation);
        Assert.IsTrue(TrainingRecipes.Fast.TestTimeFlip);
        Assert.AreEqual(7, o.Seed, "what the recipe does not name is left alone");
        Assert.AreEqual(0.2, o.ValidationFraction);

        var quick = TrainingRecipes.Quick.ApplyTo(new ResNetTrainerOptions());
        Assert.AreEqual((4, 64, ScheduleKind.OneCycle), (quick.Epochs, quick.BatchSize, quick.Schedule));
        Assert.IsNull(quick.LearningRate, "the quick recipe runs at the optimizer's default rate");
        Assert.IsFalse(TrainingRecipes.Quick.TestTimeFlip);

        var unknown = Assert.ThrowsExactly<ArgumentException>(() => TrainingRecipes.Get("slow"));
        StringAssert.Contains(unknown.Message, "'slow'");
        StringAssert.Contains(unknown.Message, "quick, fast");
    }
}
