using ResNet.ML.Data;

namespace ResNet.ML.Training;

/// <summary>
/// A named set of training settings on top of <see cref="ResNetTrainerOptions"/>' defaults: what a recipe does not
/// name keeps the default, and whatever the caller sets after <see cref="ApplyTo"/> wins.
/// </summary>
public sealed class TrainingRecipe
{
    private readonly Action<ResNetTrainerOptions> _apply;

    internal TrainingRecipe(string name, string summary, bool testTimeFlip, Action<ResNetTrainerOptions> apply, bool testTimeTranslate = false)
    {
        Name = name;
        Summary = summary;
        TestTimeFlip = testTimeFlip;
        TestTimeTranslate = testTimeTranslate;
        _apply = apply;
    }

    /// <summary>The name the CLI's <c>--recipe</c> and <see cref="TrainingRecipes.Get"/> take.</summary>
    public string Name { get; }

    /// <summary>One line: what the recipe sets and what it is for.</summary>
    public string Summary { get; }

    /// <summary>Whether the recipe's model is exported with test-time flips in its ONNX graph (an export setting, not a training one).</summary>
    public bool TestTimeFlip { get; }

    /// <summary>Whether the recipe's model is exported with test-time one-pixel shifts in its ONNX graph (an export setting).</summary>
    public bool TestTimeTranslate { get; }

    /// <summary>Sets the recipe's settings on <paramref name="options"/> and returns it.</summary>
    public T ApplyTo<T>(T options) where T : ResNetTrainerOptions
    {
        ArgumentNullException.ThrowIfNull(options);
        _apply(options);
        return options;
    }

    public override string ToString() => $"{Name}: {Summary}";
}

/// <summary>The named recipes: the one place the CLI's quick start and the time-to-accuracy recipe are written down.</summary>
public static class TrainingRecipes
{
    /// <summary>
    /// A bare <c>resnet train</c>: ResNet-20, 4 epochs, batch 64, one-cycle schedule, SGD momentum at the optimizer's
    /// default rate and decay. Reaches the README's accuracy on the embedded Fashion-MNIST subset in a few minutes on 2 cores.
    /// </summary>
    public static TrainingRecipe Quick { get; } = new("quick",
        "resnet20, 4 epochs, batch 64, SGD momentum 0.9, one-cycle to the default rate 0.1, weight decay 5e-4; a few minutes on 2 cores.",
        testTimeFlip: false,
        o =>
        {
            o.Architecture = "resnet20";
            o.Epochs = 4;
            o.BatchSize = 64;
            o.Schedule = ScheduleKind.OneCycle;
        });

    /// <summary>
    /// The time-to-accuracy recipe of <c>bench/time_to_94.sh</c> (Fashion-MNIST, 60k images, 2 cores): ResNet-14, 8 epochs,
    /// batch 128, Nesterov SGD one-cycle to 0.2, weight decay 5e-4, label smoothing 0.1, 2-pixel random crop + flip, and
    /// test-time flips in the exported graph. Suits small images whose classes survive a mirror (clothes, products).
    /// Chosen on held-out training images (bench/BENCHMARKS.md, "Time to 94 %"): ResNet-14 matched ResNet-20's validation
    /// accuracy at 0.73x its cost per epoch, and test-time shifts added nothing to the flips. 8 epochs leave room in the
    /// 600 s for a slower hour (three runs took 484–528 s; 9 epochs took 65 s each at 925 img/s, too close to the limit).
    /// </summary>
    public static TrainingRecipe Fast { get; } = new("fast",
        "resnet14, 8 epochs, batch 128, Nesterov SGD one-cycle to 0.2, weight decay 5e-4, label smoothing 0.1, pad-2 crop + flip, test-time flips in the ONNX graph.",
        testTimeFlip: true,
        o =>
        {
            o.Architecture = "resnet14";
            o.Epochs = 8;
            o.BatchSize = 128;
            o.Optimizer = OptimizerKind.SgdMomentum;
            o.LearningRate = 0.2f;
            o.Momentum = 0.9f;
            o.Nesterov = true;
            o.WeightDecay = 5e-4f;
            o.Schedule = ScheduleKind.OneCycle;
            o.LabelSmoothing = 0.1f;
            o.Augmentation = Augmentation.CifarPaper with { Padding = 2 };
        });

    /// <summary>Every recipe, by name.</summary>
    public static IReadOnlyList<TrainingRecipe> All { get; } = [Quick, Fast];

    /// <summary>The recipe named <paramref name="name"/> (case-insensitive); an unknown name is refused, listing the known ones.</summary>
    public static TrainingRecipe Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"Recipe '{name}' is not known; the recipes are: {string.Join(", ", All.Select(r => r.Name))}.", nameof(name));
    }
}
