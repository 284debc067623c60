using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ResNet.ML.Data;
using ResNet.ML.Training;

namespace ResNet.ML.Cli.Commands;

/// <summary><c>resnet train</c>: trains on --data (or the embedded Fashion-MNIST subset), writes model.onnx and model.safetensors.</summary>
internal static class TrainCommand
{
    public static Command Create(CommandContext context)
    {
        var data = new Option<string?>("--data") { Description = "Training images: an IDX folder (MNIST/Fashion-MNIST), a CIFAR-10 binary folder, or an image folder with one subfolder per class. Default: the embedded Fashion-MNIST subset." };
        var validationData = new Option<string?>("--validation-data") { Description = "Validation images in the same forms; default: a stratified split of --data (see --validation-fraction)." };
        // Settings a recipe makes have no default of their own here: unset, they are the recipe's (or the library's).
        var recipe = new Option<string>("--recipe") { Description = "Named settings to start from (options given beside it win): " + string.Join(" ", TrainingRecipes.All.Select(r => $"{r.Name} ({r.Summary})")), DefaultValueFactory = _ => TrainingRecipes.Quick.Name };
        recipe.AcceptOnlyFromAmong([.. TrainingRecipes.All.Select(r => r.Name)]);
        var arch = new Option<string?>("--arch") { Description = "Preset (resnet20, resnet56, resnet18, resnet50, ...) or a spec such as 'resnet20 widths=8,16,32'. Default: the recipe's (resnet20)." };
        var epochs = new Option<int?>("--epochs") { Description = "Passes over the training data. Default: the recipe's (quick: 4)." };
        var batchSize = new Option<int?>("--batch-size") { Description = "Images per step. Default: the recipe's (quick: 64)." };
        var optimizer = new Option<OptimizerKind?>("--optimizer") { Description = "SgdMomentum, Adam or AdamW. Default: the recipe's (SgdMomentum); another optimizer than the recipe's also takes its own default --lr and --weight-decay." };
        var lr = new Option<float?>("--lr") { Description = $"Peak learning rate. Default: the recipe's, else the optimizer's ({ResNetTrainerOptions.DefaultLearningRate(OptimizerKind.SgdMomentum)} for SGD, {ResNetTrainerOptions.DefaultLearningRate(OptimizerKind.SgdMomentum, pretrained: true)} for SGD with --pretrained, {ResNetTrainerOptions.DefaultLearningRate(OptimizerKind.Adam)} for Adam/AdamW)." };
        var momentum = new Option<float?>("--momentum") { Description = "SGD momentum. Default: the recipe's (0.9)." };
        var nesterov = new Option<bool>("--nesterov") { Description = "Nesterov momentum (--nesterov false turns a recipe's off)." };
        var weightDecay = new Option<float?>("--weight-decay") { Description = $"Weight decay. Default: the recipe's, else the optimizer's ({ResNetTrainerOptions.DefaultWeightDecay(OptimizerKind.SgdMomentum)} for SGD, {ResNetTrainerOptions.DefaultWeightDecay(OptimizerKind.AdamW)} for AdamW, 0 for Adam)." };
        var schedule = new Option<ScheduleKind?>("--schedule") { Description = "Constant, Step (divide by 10 at 50% and 75%), Cosine, OneCycle. Default: the recipe's (OneCycle)." };
        var warmup = new Option<double?>("--warmup") { Description = "Warm-up fraction of the run (OneCycle: 0 means 30%). Default: the recipe's (0)." };
        var smoothing = new Option<float?>("--label-smoothing") { Description = "Label smoothing in [0, 1). Default: the recipe's (quick: 0)." };
        var augment = new Option<string?>("--augment") { Description = "none, flip, cifar (pad 4 + random crop + flip, the paper's recipe) or imagenet (random resized crop + flip). Default: the recipe's (quick: none)." };
        augment.AcceptOnlyFromAmong("none", "flip", "cifar", "imagenet");
        var cropPadding = new Option<int?>("--crop-padding") { Description = "With a pad + random crop augmentation (--augment cifar, or the recipe's): pixels of zero padding before the crop (default 4; 2 suits 28x28 images)." };
        var erasing = new Option<double>("--random-erasing") { Description = "Probability of erasing a random rectangle of each training image (0: off; 0.5 is usual).", DefaultValueFactory = _ => 0.0 };
        var valFraction = new Option<double>("--validation-fraction") { Description = "Fraction of --data held out for validation when no --validation-data.", DefaultValueFactory = _ => 0.1 };
        var patience = new Option<int>("--early-stopping") { Description = "Stop after this many epochs without validation-accuracy improvement, keeping the best epoch's weights (0: off).", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "Seeds initialization, split, shuffling and augmentation.", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "Engine threads (0: all cores).", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--output", "-o") { Description = "Folder for model.onnx, model.safetensors, metrics.json, training-curves.svg and checkpoints/.", DefaultValueFactory = _ => "resnet-output" };
        var resume = new Option<string?>("--resume") { Description = "Continue from a checkpoint (run the same command with it added)." };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Also checkpoint every N steps (0: at epoch ends and on Ctrl-C only).", DefaultValueFactory = _ => 0 };
        var imageSize = new Option<int?>("--image-size") { Description = "Resize images to SxS (required for folders of mixed sizes; IDX and CIFAR images are resampled as read)." };
        var channels = new Option<int?>("--channels") { Description = "Decode folder images as 1 (grayscale) or 3 (RGB) channels." };
        var initialWeights = new Option<string?>("--initial-weights") { Description = "Pretrained safetensors weights (torchvision names) to start from; the head is replaced." };
        var freeze = new Option<int>("--freeze-backbone-epochs") { Description = "With --initial-weights or --pretrained: train only the head for the first N epochs (the backbone's batch norms on their running statistics).", DefaultValueFactory = _ => 0 };
        var pretrained = new Option<string?>("--pretrained") { Description = "Start from pretrained ImageNet weights: dnn-resnet18 (NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1); sets the architecture and preprocessing, replaces the head. Images of at least 32x32." };
        var fineTuneFactor = new Option<float?>("--fine-tune-lr-factor") { Description = "Learning-rate multiplier once the backbone trains (default 0.1 with --pretrained, else 1)." };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N training images (quick trials)." };
        var backend = new Option<TrainingBackend>("--backend") { Description = "managed (this library's engine) or torchsharp (libtorch).", DefaultValueFactory = _ => TrainingBackend.Managed };
        var device = new Option<TrainingDevice>("--device") { Description = "auto (CUDA through TorchSharp when present, else --backend on the CPU), cpu or cuda.", DefaultValueFactory = _ => TrainingDevice.Auto };
        var skipBad = new Option<bool>("--skip-bad-images") { Description = "Leave out folder images that fail to decode (and say how many) instead of stopping." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Start a new run in an --output folder that holds an earlier run's checkpoint, deleting that run's files." };

        var ttaFlip = new Option<bool>("--tta-flip") { Description = "Export model.onnx with test-time flips inside the graph: each image's logits averaged with its mirror image's (twice the inference cost). Default: the recipe's (fast: on; --tta-flip false turns it off)." };
        var ttaTranslate = new Option<bool>("--tta-translate") { Description = "Export model.onnx that also averages each image with its one-pixel shifts up-left and down-right (weights 1/2, 1/4, 1/4; with --tta-flip six views, six times the inference cost). Default: the recipe's (--tta-translate false turns it off)." };
        var command = new Command("train", "Train a ResNet and export it to ONNX.")
        {
            data, validationData, recipe, arch, epochs, batchSize, optimizer, lr, momentum, nesterov, weightDecay, schedule, warmup, smoothing,
            augment, cropPadding, erasing, valFraction, patience, seed, threads, output, resume, checkpointEvery, imageSize, channels, initialWeights, freeze, pretrained, fineTuneFactor, limit, skipBad, overwrite, ttaFlip, ttaTranslate,
            backend, device,
        };
        command.SetAction(context.Guard((p, cli, ct) =>
        {
            string outputFolder = Path.GetFullPath(p.GetValue(output)!);
            OutputFolder.EnsureWritable(outputFolder);
            using var folderLock = OutputFolder.Lock(outputFolder);
            string? resumeFrom = p.GetValue(resume);
            bool replaceEarlierRun = OutputFolder.CheckPreviousRun(outputFolder, resumeFrom, p.GetValue(overwrite));
            var chosen = TrainingRecipes.Get(p.GetValue(recipe)!);
            var options = chosen.ApplyTo(new ResNetTrainerOptions());
            if (p.GetValue(arch) is string architecture) options.Architecture = architecture;
            if (p.GetValue(epochs) is int epochCount) options.Epochs = epochCount;
            if (p.GetValue(batchSize) is int batch) options.BatchSize = batch;
            if (p.GetValue(optimizer) is OptimizerKind kind && kind != options.Optimizer)
            {
                // The recipe's rate and decay were chosen for its optimizer; another one starts from its own defaults.
                options.Optimizer = kind;
                options.LearningRate = null;
                options.WeightDecay = null;
            }
            if (p.GetValue(lr) is float rate) options.LearningRate = rate;
            if (p.GetValue(momentum) is float mu) options.Momentum = mu;
            if (p.GetResult(nesterov) is { Implicit: false }) options.Nesterov = p.GetValue(nesterov);
            if (p.GetValue(weightDecay) is float decay) options.WeightDecay = decay;
            if (p.GetValue(schedule) is ScheduleKind kindOfSchedule) options.Schedule = kindOfSchedule;
            if (p.GetValue(warmup) is double warm) options.WarmupFraction = warm;
            if (p.GetValue(smoothing) is float smooth) options.LabelSmoothing = smooth;
            options.Augmentation = WithErasing(Augment(p.GetValue(augment), p.GetValue(cropPadding), options.Augmentation), p.GetValue(erasing));
            options.ValidationFraction = p.GetValue(valFraction);
            options.EarlyStopping = p.GetValue(patience) > 0 ? new EarlyStoppingOptions(Patience: p.GetValue(patience)) : null;
            options.Seed = p.GetValue(seed);
            options.Threads = p.GetValue(threads);
            options.CheckpointFolder = Path.Combine(outputFolder, "checkpoints");
            options.CheckpointIntervalSteps = p.GetValue(checkpointEvery);
            options.InitialWeights = p.GetValue(initialWeights);
            options.FreezeBackboneEpochs = p.GetValue(freeze);
            options.Backend = p.GetValue(backend);
            options.Device = p.GetValue(device);
            options.Pretrained = p.GetValue(pretrained);
            if (options.Pretrained is not null)
            {
                // The pretrained network is its own architecture, and a recipe's rate was chosen for training from scratch
                // (a new head on pretrained features diverged at SGD's 0.1): unless given here, both come from Pretrained.
                if (p.GetValue(arch) is null) options.Architecture = new ResNetTrainerOptions().Architecture;
                if (p.GetValue(lr) is null) options.LearningRate = null;
            }
            options.FineTuneLearningRateFactor = p.GetValue(fineTuneFactor);
            bool testTimeFlip = p.GetResult(ttaFlip) is { Implicit: false } ? p.GetValue(ttaFlip) : chosen.TestTimeFlip;
            bool testTimeTranslate = p.GetResult(ttaTranslate) is { Implicit: false } ? p.GetValue(ttaTranslate) : chosen.TestTimeTranslate;
            // Everything that can be checked without the data is checked before loading it. The model files are written
            // before the final checkpoint (BeforeFinalCheckpoint): on a nearly full disk the model must be safe first.
            TrainedModel? finished = null;
            var trainer = new ImageClassifierTrainer(options) { BeforeFinalCheckpoint = m => { OutputFolder.WriteDeliverables(outputFolder, m, testTimeFlip, testTimeTranslate); finished = m; } };
            TrainChecks.BeforeLoading(p.GetValue(imageSize), p.GetValue(channels));
            var checkpoint = resumeFrom is null ? null : TrainingCheckpoint.Load(resumeFrom);
            TrainChecks.WarnThreads(cli, options.Threads, checkpoint);
            var load = new DataRequest(p.GetValue(imageSize), p.GetValue(channels), p.GetValue(skipBad), cli.Error);
            string? dataPath = p.GetValue(data);
            var train = dataPath is null ? DataLocator.EmbeddedDefault() : DataLocator.Load(dataPath, DataSplit.Train, load);
            TrainChecks.RequestUsed(train, load.ImageSize, load.Channels);
            if (p.GetValue(limit) is int n) train = DataLocator.Limit(train, n);
            var validation = p.GetValue(validationData) is string v ? DataLocator.Load(v, DataSplit.Test, load) : null;
            if (validation is not null) TrainChecks.RequestUsed(validation, load.ImageSize, load.Channels);

            string what = options.Pretrained is null ? options.Architecture : $"{options.Pretrained} ({trainer.Options.Architecture})";
            cli.Markup($"Training [bold]{Markup(what)}[/] on {Markup(train.Source)}: {train.Count} images of [[{train.Channels}, {train.Height}, {train.Width}]], {train.ClassCount} classes" +
                       (validation is null ? (options.ValidationFraction > 0 ? $", {options.ValidationFraction:P0} held out for validation" : "") : $", validating on {validation.Count} images of {Markup(validation.Source)}") + ".");
            cli.Line($"Recipe {chosen.Name}: {options.Epochs} epochs, batch {options.BatchSize}, {options.Optimizer} lr {options.ResolvedLearningRate.ToString(CultureInfo.InvariantCulture)}, weight decay {options.ResolvedWeightDecay.ToString(CultureInfo.InvariantCulture)}, {options.Schedule} schedule, seed {options.Seed}, {(options.Threads == 0 ? Environment.ProcessorCount : options.Threads)} threads{(testTimeFlip ? ", test-time flips in model.onnx" : "")}{(testTimeTranslate ? ", test-time shifts in model.onnx" : "")}.");

            var (resolvedBackend, resolvedDevice, _) = TrainingRunners.Resolve(options);
            cli.Line($"Backend: {resolvedBackend} on {resolvedDevice}.");
            OutputFolder.StartRun(outputFolder, replaceEarlierRun);
            var started = DateTime.UtcNow;
            TrainedModel model;
            bool checkpointWritten = true;
            using (var reporter = TrainingReporter.Create(cli))
            {
                try
                {
                    model = reporter.Run(progress => checkpoint is null
                        ? trainer.Fit(train, validation, progress, ct)
                        : trainer.Resume(checkpoint, train, validation, progress, ct));
                }
                catch (IOException e) when (finished is not null)
                {
                    cli.Error.WriteLine($"warning: the model files are complete, but the final checkpoint was not written: {e.Message}");
                    (model, checkpointWritten) = (finished, false);
                }
            }
            var elapsed = DateTime.UtcNow - started;
            OutputFolder.WriteManifest(outputFolder, checkpointWritten);

            string onnxPath = Path.Combine(outputFolder, "model.onnx");
            string weightsPath = Path.Combine(outputFolder, "model.safetensors");

            TrainingReporter.PrintHistory(cli, model.History);
            var last = model.History.LastOrDefault();
            string accuracy = last?.ValidationAccuracy is double a ? $", validation accuracy {a:P2}" : "";
            cli.Markup($"Trained in {elapsed.TotalMinutes:F1} min{accuracy}.");
            cli.Markup($"ONNX model: [bold]{Markup(onnxPath)}[/] (takes raw 0-255 pixels, [[batch, {model.Channels}, {model.Height}, {model.Width}]]; outputs logits, probabilities, predicted_label)");
            cli.Markup($"Weights:    {Markup(weightsPath)}");
            cli.Markup($"Score with: resnet predict --model {Markup(Quote(onnxPath))} IMAGE_OR_FOLDER --top 3");
            cli.Markup($"Evaluate:   resnet evaluate --model {Markup(Quote(onnxPath))} --data PATH");
            return ResNetCli.ExitOk;
        }));
        return command;
    }

    // --augment replaces the recipe's augmentation; --crop-padding sets the padding of whichever pad + crop is in force.
    private static Augmentation? Augment(string? name, int? padding, Augmentation? recipe)
    {
        var augmentation = name switch
        {
            null => recipe,
            "flip" => Augmentation.FlipOnly,
            "cifar" => Augmentation.CifarPaper,
            "imagenet" => Augmentation.ImageNet,
            _ => null,
        };
        if (padding is not int pad) return augmentation;
        if (augmentation is not { Padding: > 0 })
            throw new UsageException("--crop-padding needs a pad + random crop augmentation: add --augment cifar.");
        return augmentation with { Padding = pad };
    }

    /// <summary>Adds random erasing with probability <paramref name="probability"/> (0: unchanged) to any augmentation.</summary>
    private static Augmentation? WithErasing(Augmentation? augmentation, double probability)
    {
        if (probability == 0) return augmentation;
        if (!(probability > 0 && probability <= 1))
            throw new ArgumentException($"--random-erasing must be a probability in [0, 1], not {probability}.");
        return (augmentation ?? new Augmentation()) with { RandomErasing = new RandomErasing(probability) };
    }

    internal static string Markup(string text) => Spectre.Console.Markup.Escape(text);
    internal static string Quote(string path) => path.Contains(' ') ? $"\"{path}\"" : path;
}
