// Run: dotnet run -c Release --project bench/transfer -- [--per-class 50,500] [--size 64] [--epochs 8] [--frozen 2] (more: --help)
// Few labels, from scratch or from dnn-resnet18: Fashion-MNIST with N labelled images per class (the first N of each
// class in the official training split), upscaled, trained for the same epochs both ways, scored on the official
// 10k test split. One line of results per run, as Markdown table rows.
using System.Diagnostics;
using System.Globalization;
using ResNet.ML.Data;
using ResNet.ML.Models;
using ResNet.ML.Training;

string data = "/usr/share/datasets/fashion-mnist";
int[] perClass = [50, 500];
int size = 64, epochs = 8, frozen = 2, threads = 0, seed = 0;
// Each start at its own rate: 0.1 suits a fresh ResNet; a new head on pretrained features (large, unnormalized) diverges at 0.1.
float lrScratch = 0.1f, lrPretrained = 0.01f, fineTune = 0.1f;
string[] modes = ["scratch", "pretrained"];
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
    switch (args[i])
    {
        case "--data": data = Next(); break;
        case "--per-class": perClass = Next().Split(',').Select(int.Parse).ToArray(); break;
        case "--size": size = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--epochs": epochs = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--frozen": frozen = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--threads": threads = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--seed": seed = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--modes": modes = Next().Split(','); break;
        case "--lr-scratch": lrScratch = float.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--lr-pretrained": lrPretrained = float.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--fine-tune-factor": fineTune = float.Parse(Next(), CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine("usage: [--data DIR] [--per-class 50,500] [--size 64] [--epochs 8] [--frozen 2] [--modes scratch,pretrained] [--lr-scratch 0.1] [--lr-pretrained 0.01] [--fine-tune-factor 0.1] [--threads 0] [--seed 0]");
            return 2;
    }
}

var train = FashionMnist.LoadIdx(data, test: false);
var test = ResizedImageDataset.To(FashionMnist.LoadIdx(data, test: true), size, size);
Console.WriteLine($"| labels per class | start | epochs | test top-1 (10k) | train time |");
Console.WriteLine($"|---|---|---|---|---|");
foreach (int n in perClass)
{
    var seen = new int[train.ClassCount];
    var picked = Enumerable.Range(0, train.Count).Where(i => seen[train.GetLabel(i)]++ < n).ToArray();
    var subset = ResizedImageDataset.To(train.Subset(picked), size, size);
    foreach (string mode in modes)
    {
        bool pretrained = mode == "pretrained";
        var options = new ResNetTrainerOptions
        {
            // The same network both ways: the package's ResNet-18 layout, random or pretrained.
            Architecture = PretrainedBackbone.ArchitectureOf(PretrainedBackbone.DnnResNet18),
            Pretrained = pretrained ? PretrainedBackbone.DnnResNet18 : null,
            FreezeBackboneEpochs = pretrained ? frozen : 0,
            FineTuneLearningRateFactor = pretrained ? fineTune : null,
            Epochs = epochs,
            BatchSize = 64,
            LearningRate = pretrained ? lrPretrained : lrScratch,
            WeightDecay = 5e-4f,
            Schedule = ScheduleKind.Cosine,
            Augmentation = Augmentation.FlipOnly,
            ValidationFraction = 0,
            Seed = seed,
            Threads = threads,
        };
        var clock = Stopwatch.StartNew();
        var model = new ImageClassifierTrainer(options).Fit(subset, progress: new Progress(mode, n));
        double minutes = clock.Elapsed.TotalMinutes;
        var result = model.Evaluate(test, batchSize: 200);
        string start = pretrained ? $"dnn-resnet18, lr {lrPretrained}: {frozen} epochs head only, then all at {fineTune}x" : $"from scratch, lr {lrScratch}";
        Console.WriteLine($"| {n} ({picked.Length} images) | {start} | {epochs} | {result.Top1Accuracy:P2} | {minutes:F1} min |");
    }
}
return 0;

sealed class Progress(string mode, int n) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress p)
    {
        if (p.Phase == TrainingPhase.EpochEnd && p.Epoch is { } e)
            Console.Error.WriteLine($"  {mode} {n}/class epoch {e.Epoch}: loss {e.TrainLoss:F3}, train acc {e.TrainAccuracy:P1}, lr {e.LearningRate:G3}, {e.Seconds:F0} s");
    }
}
