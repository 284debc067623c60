using System.Text;
using ResNet.ML.Reporting;
using System.CommandLine;
using System.Globalization;
using ResNet.ML.Training;

namespace ResNet.ML.Cli.Commands;

/// <summary><c>resnet evaluate</c>: loss, top-1/top-5, per-class precision/recall and the confusion matrix of a model on --data.</summary>
internal static class EvaluateCommand
{
    public static Command Create(CommandContext context)
    {
        var model = new Option<string>("--model") { Description = "model.onnx (scored by ONNX Runtime) or model.safetensors (scored by the engine).", Required = true };
        var data = new Option<string>("--data") { Description = "Labelled images (IDX, CIFAR or class-per-subfolder folder); an IDX/CIFAR folder's test split when it has one.", Required = true };
        var batchSize = new Option<int>("--batch-size") { Description = "Images per scoring batch.", DefaultValueFactory = _ => 256 };
        var threads = new Option<int>("--threads") { Description = "Threads (0: all cores).", DefaultValueFactory = _ => 0 };
        var split = new Option<DataSplit>("--split") { Description = "Train or Test split of an IDX/CIFAR folder.", DefaultValueFactory = _ => DataSplit.Test };
        var matrixImage = new Option<string?>("--confusion-matrix") { Description = "Also write the confusion matrix as an SVG image to this file." };

        var command = new Command("evaluate", "Score a model on labelled images.") { model, data, batchSize, threads, split, matrixImage };
        command.SetAction(context.Guard((p, cli, ct) =>
        {
            string modelPath = p.GetValue(model)!;
            int batch = p.GetValue(batchSize);
            if (batch <= 0) throw new UsageException($"--batch-size must be positive, not {batch}.");
            var kind = ModelFiles.Detect(modelPath);
            EvaluationResult result;
            if (kind == ModelFileKind.Onnx)
            {
                using var predictor = ModelFiles.LoadOnnx(modelPath, p.GetValue(threads));
                var dataset = DataLocator.Load(p.GetValue(data)!, p.GetValue(split), new DataRequest(predictor.Height, predictor.Channels));
                if (dataset.Channels != predictor.Channels || dataset.Height != predictor.Height || dataset.Width != predictor.Width)
                    throw new UsageException($"The model takes [{predictor.Channels}, {predictor.Height}, {predictor.Width}] images, but {dataset.Source} holds [{dataset.Channels}, {dataset.Height}, {dataset.Width}].");
                // By name: a folder with only some of the model's classes numbers them from 0 in its own order.
                var map = ClassMap.ByName(dataset.ClassNames, predictor.ClassNames, dataset.Source);
                var accumulator = new EvaluationAccumulator(predictor.ClassNames);
                var source = ClassMap.Relabel(new ImageDatasetSource(dataset), map, predictor.ClassNames);
                foreach (var b in source.ReadEpoch(0, 0, batch, training: false, seed: 0))
                {
                    ct.ThrowIfCancellationRequested();
                    var scores = predictor.Score(b.Pixels);
                    accumulator.Add(scores.Logits, b.Labels);
                }
                result = accumulator.Result();
            }
            else
            {
                using var engineThreads = ML.Tensors.Engine.UseThreads(p.GetValue(threads) > 0 ? p.GetValue(threads) : Environment.ProcessorCount);
                var trained = ModelFiles.LoadTrained(modelPath);
                var dataset = DataLocator.Load(p.GetValue(data)!, p.GetValue(split), new DataRequest(trained.Height, trained.Channels));
                result = trained.Evaluate(new ImageDatasetSource(dataset), batch);
            }
            Print(cli, result);
            if (p.GetValue(matrixImage) is { } imagePath)
            {
                AtomicFile.Write(imagePath, s => s.Write(Encoding.UTF8.GetBytes(TrainingCharts.ConfusionMatrixSvg(result.ClassNames, result.ConfusionMatrix,
                    $"Confusion matrix: {Path.GetFileName(modelPath)} on {result.Count} images"))));
                cli.Line($"Confusion matrix image: {imagePath}");
            }
            return ResNetCli.ExitOk;
        }));
        return command;
    }

    internal static void Print(CliOutput cli, EvaluationResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        cli.Markup($"[bold]{r.Count} images: top-1 accuracy {r.Top1Accuracy.ToString("P2", inv)}, top-5 {r.Top5Accuracy.ToString("P2", inv)}, loss {r.Loss.ToString("F4", inv)}[/]");
        cli.Table(["class", "precision", "recall", "images"],
            r.ClassNames.Select((name, c) => new[]
            {
                name, double.IsNaN(r.Precision[c]) ? "-" : r.Precision[c].ToString("P1", inv), double.IsNaN(r.Recall[c]) ? "-" : r.Recall[c].ToString("P1", inv),
                Enumerable.Range(0, r.ClassNames.Count).Sum(j => r.ConfusionMatrix[c, j]).ToString(inv),
            }));
        int k = r.ClassNames.Count;
        if (k > 20) return;
        cli.Line("confusion matrix (rows: actual, columns: predicted):");
        cli.Table([" ", .. Enumerable.Range(0, k).Select(i => i.ToString(inv))],
            Enumerable.Range(0, k).Select(i => new[] { $"{i} {r.ClassNames[i]}" }.Concat(Enumerable.Range(0, k).Select(j => r.ConfusionMatrix[i, j].ToString(inv))).ToArray()));
    }
}
