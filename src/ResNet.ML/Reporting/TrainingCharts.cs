using System.Globalization;
using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;
using ResNet.ML.Training;

namespace ResNet.ML.Reporting;

/// <summary>
/// Charts of a training run as SVG text: loss and accuracy per epoch, several runs side by side, and a confusion matrix.
/// SVG because a browser, an editor, a notebook or GitHub shows it as is, and making it needs no font or native library.
/// The caller decides where it goes (a file, a notebook's display); nothing here touches the file system.
/// </summary>
public static class TrainingCharts
{
    private static readonly OxyColor[] Palette =
        [OxyColor.FromRgb(31, 119, 180), OxyColor.FromRgb(255, 127, 14), OxyColor.FromRgb(44, 160, 44), OxyColor.FromRgb(214, 39, 40),
         OxyColor.FromRgb(148, 103, 189), OxyColor.FromRgb(140, 86, 75), OxyColor.FromRgb(227, 119, 194), OxyColor.FromRgb(127, 127, 127)];

    /// <summary>Training and validation loss (left axis) and accuracy (right axis, percent) per epoch.</summary>
    public static string CurvesSvg(IReadOnlyList<EpochMetrics> history, string title = "Training curves", int width = 760, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(history);
        if (history.Count == 0) throw new ArgumentException("The training history has no epochs to chart.", nameof(history));
        var model = NewModel(title);
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Bottom, Title = "epoch", Minimum = 0.5, Maximum = history.Count + 0.5, MajorStep = Math.Max(1, history.Count / 10), MinorStep = 1 });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = "loss", Key = "loss", Minimum = 0, MajorGridlineStyle = LineStyle.Dot });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Right, Title = "accuracy (%)", Key = "accuracy", Minimum = 0, Maximum = 100, AxisTitleDistance = 10 });
        AddLine(model, "train loss", "loss", Palette[0], LineStyle.Solid, history.Select(m => (double)m.Epoch), history.Select(m => m.TrainLoss));
        if (history.All(m => m.ValidationLoss is not null))
            AddLine(model, "val. loss", "loss", Palette[1], LineStyle.Solid, history.Select(m => (double)m.Epoch), history.Select(m => m.ValidationLoss!.Value));
        AddLine(model, "train accuracy", "accuracy", Palette[0], LineStyle.Dash, history.Select(m => (double)m.Epoch), history.Select(m => 100 * m.TrainAccuracy));
        if (history.All(m => m.ValidationAccuracy is not null))
            AddLine(model, "val. accuracy", "accuracy", Palette[1], LineStyle.Dash, history.Select(m => (double)m.Epoch), history.Select(m => 100 * m.ValidationAccuracy!.Value));
        return Export(model, width, height);
    }

    /// <summary>Several runs' values of one quantity (say training loss per step window) on shared axes.</summary>
    public static string CompareSvg(string title, string xTitle, string yTitle, IEnumerable<(string Label, IReadOnlyList<double> X, IReadOnlyList<double> Y)> series,
        int width = 760, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(series);
        var model = NewModel(title);
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Bottom, Title = xTitle });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = yTitle, MajorGridlineStyle = LineStyle.Dot });
        int i = 0;
        foreach (var (label, x, y) in series)
        {
            if (x.Count != y.Count) throw new ArgumentException($"Series '{label}' has {x.Count} x values and {y.Count} y values.", nameof(series));
            AddLine(model, label, null, Palette[i % Palette.Length], i < Palette.Length ? LineStyle.Solid : LineStyle.Dash, x, y);
            i++;
        }
        if (i == 0) throw new ArgumentException("There is no series to chart.", nameof(series));
        return Export(model, width, height);
    }

    /// <summary>Rows are the true classes, columns the predicted ones; cells show counts, shaded by their share of the row.</summary>
    public static string ConfusionMatrixSvg(IReadOnlyList<string> classNames, long[,] counts, string title = "Confusion matrix", int? size = null)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(counts);
        int n = classNames.Count;
        if (n == 0 || counts.GetLength(0) != n || counts.GetLength(1) != n)
            throw new ArgumentException($"The confusion matrix is {counts.GetLength(0)}x{counts.GetLength(1)} for {n} class names.", nameof(counts));
        var model = NewModel(title);
        model.IsLegendVisible = false;
        var share = new double[n, n];
        for (int t = 0; t < n; t++)
        {
            long row = 0;
            for (int p = 0; p < n; p++) row += counts[t, p];
            // HeatMapSeries indexes [x, y]: x is the predicted class, y the true one, drawn top to bottom.
            for (int p = 0; p < n; p++) share[p, n - 1 - t] = row == 0 ? 0 : (double)counts[t, p] / row;
        }
        model.Axes.Add(new LinearColorAxis { Position = AxisPosition.None, Palette = OxyPalette.Interpolate(100, OxyColors.White, OxyColor.FromRgb(31, 119, 180)), Minimum = 0, Maximum = 1 });
        model.Axes.Add(new CategoryAxis { Position = AxisPosition.Bottom, Title = "predicted", ItemsSource = classNames, Angle = n > 6 ? -40 : 0 });
        model.Axes.Add(new CategoryAxis { Position = AxisPosition.Left, Title = "true", ItemsSource = classNames.Reverse().ToArray() });
        model.Series.Add(new HeatMapSeries { X0 = 0, X1 = n - 1, Y0 = 0, Y1 = n - 1, Data = share, CoordinateDefinition = HeatMapCoordinateDefinition.Center, Interpolate = false, RenderMethod = HeatMapRenderMethod.Rectangles, LabelFormatString = "" });
        for (int t = 0; t < n; t++)
            for (int p = 0; p < n; p++)
                model.Annotations.Add(new OxyPlot.Annotations.TextAnnotation
                {
                    Text = counts[t, p].ToString(CultureInfo.InvariantCulture),
                    TextPosition = new DataPoint(p, n - 1 - t),
                    TextHorizontalAlignment = HorizontalAlignment.Center,
                    TextVerticalAlignment = VerticalAlignment.Middle,
                    Stroke = OxyColors.Transparent,
                    FontSize = n > 12 ? 8 : 11,
                    TextColor = share[p, n - 1 - t] > 0.6 ? OxyColors.White : OxyColors.Black,
                });
        int side = size ?? Math.Clamp(120 + 48 * n, 320, 900);
        return Export(model, side + 60, side);
    }

    private static PlotModel NewModel(string title)
    {
        var model = new PlotModel { Title = title, TitleFontSize = 14, DefaultFont = "Helvetica", Background = OxyColors.White };
        model.Legends.Add(new Legend { LegendPosition = LegendPosition.BottomCenter, LegendPlacement = LegendPlacement.Outside, LegendOrientation = LegendOrientation.Horizontal, LegendFontSize = 11, LegendItemSpacing = 36, LegendColumnSpacing = 36, LegendPadding = 24 });
        return model;
    }

    private static void AddLine(PlotModel model, string title, string? axisKey, OxyColor color, LineStyle style, IEnumerable<double> x, IEnumerable<double> y)
    {
        var line = new LineSeries { Title = title, Color = color, LineStyle = style, StrokeThickness = 2, MarkerType = MarkerType.Circle, MarkerSize = 2.5, MarkerFill = color };
        if (axisKey is not null) line.YAxisKey = axisKey;
        foreach (var (px, py) in x.Zip(y))
        {
            if (!double.IsFinite(py)) throw new ArgumentException($"Series '{title}' has a non-finite value {py} at x = {px}.");
            line.Points.Add(new DataPoint(px, py));
        }
        model.Series.Add(line);
    }

    private static string Export(PlotModel model, int width, int height) =>
        SvgExporter.ExportToString(model, width, height, isDocument: true, textMeasurer: null, useVerticalTextAlignmentWorkaround: true);
}
