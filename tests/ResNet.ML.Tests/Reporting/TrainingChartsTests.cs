using System.Globalization;
using System.Xml.Linq;
using ResNet.ML.Reporting;
using ResNet.ML.Training;

namespace ResNet.ML.Tests.Reporting;

[TestClass]
public sealed class TrainingChartsTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static List<EpochMetrics> History(int epochs, bool validation) =>
        Enumerable.Range(1, epochs).Select(e => new EpochMetrics(e, TrainLoss: 2.0 / e, TrainAccuracy: 0.5 + 0.1 * e,
            ValidationLoss: validation ? 2.2 / e : null, ValidationAccuracy: validation ? 0.45 + 0.1 * e : null,
            ValidationTop5: null, LearningRate: 0.1, Seconds: 1, ImagesPerSecond: 100)).ToList();

    // OxyPlot draws each line series as one polyline; the markers are drawn separately.
    private static List<(double X, double Y)[]> Lines(XDocument svg, int points) =>
        svg.Descendants(Svg + "polyline")
            .Select(p => p.Attribute("points")!.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(xy => xy.Split(',')).Select(a => (double.Parse(a[0], CultureInfo.InvariantCulture), double.Parse(a[1], CultureInfo.InvariantCulture))).ToArray())
            .Where(l => l.Length == points).ToList();

    private static string Texts(XDocument svg) => string.Join("|", svg.Descendants(Svg + "text").Select(t => t.Value));

    [TestMethod]
    public void Curves_draw_four_lines_over_the_epochs_in_the_direction_the_values_go()
    {
        var svg = XDocument.Parse(TrainingCharts.CurvesSvg(History(5, validation: true), "run 1"));
        string texts = Texts(svg);
        foreach (string label in new[] { "run 1", "train loss", "val. loss", "train accuracy", "val. accuracy", "epoch" })
            StringAssert.Contains(texts, label);
        var lines = Lines(svg, 5);
        Assert.HasCount(4, lines);
        foreach (var line in lines)
            for (int i = 1; i < line.Length; i++) Assert.IsGreaterThan(line[i - 1].X, line[i].X, "epochs run left to right");
        // Loss falls (screen y grows downwards), accuracy rises: two lines go down the page, two go up.
        Assert.AreEqual(2, lines.Count(l => l[^1].Y > l[0].Y));
        Assert.AreEqual(2, lines.Count(l => l[^1].Y < l[0].Y));
    }

    [TestMethod]
    public void Curves_without_validation_draw_only_the_training_lines()
    {
        var svg = XDocument.Parse(TrainingCharts.CurvesSvg(History(3, validation: false)));
        Assert.HasCount(2, Lines(svg, 3));
        Assert.IsFalse(Texts(svg).Contains("val.", StringComparison.Ordinal));
    }

    [TestMethod]
    public void Bad_series_are_refused_naming_them()
    {
        var bad = History(3, validation: false);
        bad[1] = bad[1] with { TrainLoss = double.NaN };
        var nan = Assert.ThrowsExactly<ArgumentException>(() => TrainingCharts.CurvesSvg(bad));
        StringAssert.Contains(nan.Message, "train loss");
        Assert.ThrowsExactly<ArgumentException>(() => TrainingCharts.CurvesSvg([]));
        var uneven = Assert.ThrowsExactly<ArgumentException>(() => TrainingCharts.CompareSvg("t", "x", "y", [("plain-20", [1, 2, 3], [1, 2])]));
        StringAssert.Contains(uneven.Message, "plain-20");
    }

    [TestMethod]
    public void Compare_draws_one_line_per_run_with_its_label()
    {
        var svg = XDocument.Parse(TrainingCharts.CompareSvg("degradation", "step", "loss",
            [("plain-56", [1, 2, 3, 4], [2, 1.9, 1.8, 1.7]), ("resnet-56", [1, 2, 3, 4], [2, 1.5, 1.2, 1.0])]));
        Assert.HasCount(2, Lines(svg, 4));
        StringAssert.Contains(Texts(svg), "plain-56");
        StringAssert.Contains(Texts(svg), "resnet-56");
    }

    [TestMethod]
    public void Confusion_matrix_shows_every_count_and_class_name()
    {
        string[] names = ["cat", "dog", "fox"];
        long[,] counts = { { 50, 3, 1 }, { 7, 40, 2 }, { 0, 11, 29 } };
        string texts = Texts(XDocument.Parse(TrainingCharts.ConfusionMatrixSvg(names, counts)));
        foreach (long c in counts) StringAssert.Contains(texts, "|" + c.ToString(CultureInfo.InvariantCulture) + "|");
        foreach (string n in names) StringAssert.Contains(texts, n);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => TrainingCharts.ConfusionMatrixSvg(names, new long[2, 2]));
        StringAssert.Contains(ex.Message, "2x2 for 3 class names");
    }
}
