using ResNet.ML.Layers;
using ResNet.ML.Tensors;

namespace ResNet.ML.Training;

/// <summary>Which engine runs the forward and backward passes.</summary>
public enum TrainingBackend
{
    /// <summary>The managed engine of this library (CPU).</summary>
    Managed,

    /// <summary>libtorch through TorchSharp (CPU or CUDA); needs the ResNet.ML.TorchSharp package and a libtorch native package in the app.</summary>
    TorchSharp,
}

/// <summary>Where training runs.</summary>
public enum TrainingDevice
{
    /// <summary>CUDA through TorchSharp when the app carries ResNet.ML.TorchSharp with a CUDA libtorch and a device is present; else the chosen backend on the CPU.</summary>
    Auto,

    /// <summary>The CPU.</summary>
    Cpu,

    /// <summary>The first CUDA device, through TorchSharp (refused when there is none).</summary>
    Cuda,
}

/// <summary>
/// One network being trained on one engine: the seam between the trainer's loop (data, schedules, augmentation, label
/// smoothing, early stopping, progress, cancellation, checkpoints) and the engine that runs steps. The loop owns the
/// managed <see cref="Network"/>, which describes the architecture and holds the host copy of the state; a runner
/// that keeps its own copy (on a GPU, say) syncs it with <see cref="PullState"/> and <see cref="PushState"/>, so
/// checkpoints, weights files and ONNX export read the same tensors whichever engine trained them.
/// </summary>
public interface ITrainingRunner : IDisposable
{
    /// <summary>The network this runner trains; its tensors are current after <see cref="PullState"/>.</summary>
    Network Network { get; }

    /// <summary>The engine and device, for logs (e.g. <c>managed engine (CPU)</c>, <c>TorchSharp (cuda:0)</c>).</summary>
    string Description { get; }

    /// <summary>
    /// Forward in training mode, softmax cross-entropy (with the options' label smoothing), backward, and one update by
    /// the options' optimizer at <paramref name="learningRate"/> on a normalized batch. Frozen parameters
    /// (<see cref="Parameter.Trainable"/> false in <see cref="Network"/>) are not updated. Returns the mean loss and
    /// the number of correct top-1 predictions; <paramref name="step"/> only names the step when the loss is not finite.
    /// </summary>
    (double Loss, int Correct) TrainStep(Tensor input, int[] labels, float learningRate, long step);

    /// <summary>Logits [N, classes, 1, 1] in inference mode (running BN statistics); valid until the next call.</summary>
    Tensor Infer(Tensor input);

    /// <summary>Copies the engine's weights and BN statistics into <see cref="Network"/>.</summary>
    void PullState();

    /// <summary>Copies <see cref="Network"/>'s weights and BN statistics into the engine (after they were loaded there).</summary>
    void PushState();

    /// <summary>The optimizer's step count and buffers in the managed optimizers' names (<c>{parameter}.momentum_buffer</c>, ...).</summary>
    OptimizerState ExportOptimizerState();

    /// <summary>Restores a state exported by <see cref="ExportOptimizerState"/> (of either engine).</summary>
    void ImportOptimizerState(OptimizerState state);
}

/// <summary>Makes runners of one backend; the TorchSharp package provides one (found by name, see <see cref="TrainingRunners"/>).</summary>
public interface ITrainingRunnerFactory
{
    TrainingBackend Backend { get; }

    /// <summary>Whether <paramref name="device"/> (<see cref="TrainingDevice.Cpu"/> or <see cref="TrainingDevice.Cuda"/>) can be used, and why not.</summary>
    bool IsAvailable(TrainingDevice device, out string? reason);

    /// <summary>A runner for <paramref name="network"/> (built and initialized by the caller) with the options' optimizer, loss and threads.</summary>
    ITrainingRunner Create(Network network, ResNetTrainerOptions options, TrainingDevice device);
}

/// <summary>The managed engine behind the seam: <see cref="TrainingSession"/>, whose state is the network itself.</summary>
public sealed class ManagedTrainingRunner : ITrainingRunner
{
    private readonly TrainingSession _session;

    public ManagedTrainingRunner(Network network, ResNetTrainerOptions options) => _session = TrainingSession.ForNetwork(network, options);

    public Network Network => _session.Network;
    public string Description => "managed engine (CPU)";
    public Optimizer Optimizer => _session.Optimizer;

    public (double Loss, int Correct) TrainStep(Tensor input, int[] labels, float learningRate, long step) =>
        _session.TrainStep(input, labels, learningRate, step);

    public Tensor Infer(Tensor input) => Network.Forward(input, training: false);
    public void PullState() { }
    public void PushState() { }
    public OptimizerState ExportOptimizerState() => _session.Optimizer.ExportState();
    public void ImportOptimizerState(OptimizerState state) => _session.Optimizer.ImportState(state);
    public void Dispose() { }
}

/// <summary>
/// Chooses the runner for <see cref="ResNetTrainerOptions.Backend"/> and <see cref="ResNetTrainerOptions.Device"/>.
/// The TorchSharp factory is found by its type name in the ResNet.ML.TorchSharp assembly, so this library does not
/// depend on TorchSharp and an app opts in by referencing that package: no registration call and no process-wide
/// registry to forget or to race on.
/// </summary>
public static class TrainingRunners
{
    internal const string TorchSharpFactoryType = "ResNet.ML.TorchSharp.TorchSharpRunnerFactory, ResNet.ML.TorchSharp";

    /// <summary>The TorchSharp factory when the app carries ResNet.ML.TorchSharp, else null and the reason.</summary>
    public static ITrainingRunnerFactory? FindTorchSharp(out string? reason)
    {
        Type? type;
        try { type = Type.GetType(TorchSharpFactoryType, throwOnError: false); }
        catch (Exception e) when (e is IOException or BadImageFormatException) { reason = $"the ResNet.ML.TorchSharp assembly does not load ({e.Message})."; return null; }
        if (type is null)
        {
            reason = "the app does not reference the ResNet.ML.TorchSharp package (and a libtorch native package such as libtorch-cpu-linux-x64).";
            return null;
        }
        reason = null;
        return (ITrainingRunnerFactory)Activator.CreateInstance(type)!;
    }

    /// <summary>The backend and device <paramref name="options"/> resolve to on this machine (Auto resolved), or an exception naming the option at fault.</summary>
    public static (TrainingBackend Backend, TrainingDevice Device, ITrainingRunnerFactory? Factory) Resolve(ResNetTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        switch (options.Device)
        {
            case TrainingDevice.Cuda:
            {
                if (options.Backend == TrainingBackend.Managed)
                    throw new ArgumentException("Option Device: Cuda runs through TorchSharp; the managed engine runs on the CPU only (set Backend to TorchSharp).");
                var f = FindTorchSharp(out string? why) ?? throw new ArgumentException($"Option Device: Cuda needs the TorchSharp backend, but {why}");
                if (!f.IsAvailable(TrainingDevice.Cuda, out why)) throw new ArgumentException($"Option Device: Cuda is not available: {why}");
                return (TrainingBackend.TorchSharp, TrainingDevice.Cuda, f);
            }
            case TrainingDevice.Auto:
            {
                var f = FindTorchSharp(out _);
                if (f is not null && f.IsAvailable(TrainingDevice.Cuda, out _)) return (TrainingBackend.TorchSharp, TrainingDevice.Cuda, f);
                return CpuOf(options.Backend, f);
            }
            case TrainingDevice.Cpu:
                return CpuOf(options.Backend, options.Backend == TrainingBackend.TorchSharp ? FindTorchSharp(out _) : null);
            default:
                throw new ArgumentException($"Option Device: unknown device {options.Device}.");
        }
    }

    private static (TrainingBackend, TrainingDevice, ITrainingRunnerFactory?) CpuOf(TrainingBackend backend, ITrainingRunnerFactory? factory)
    {
        if (backend == TrainingBackend.Managed) return (TrainingBackend.Managed, TrainingDevice.Cpu, null);
        if (backend != TrainingBackend.TorchSharp) throw new ArgumentException($"Option Backend: unknown backend {backend}.");
        string? why = null;
        var f = factory ?? FindTorchSharp(out why) ?? throw new ArgumentException($"Option Backend: TorchSharp is not available: {why}");
        if (!f.IsAvailable(TrainingDevice.Cpu, out why)) throw new ArgumentException($"Option Backend: TorchSharp is not available: {why}");
        return (TrainingBackend.TorchSharp, TrainingDevice.Cpu, f);
    }

    /// <summary>A runner for <paramref name="network"/> as <paramref name="options"/> ask.</summary>
    public static ITrainingRunner Create(Network network, ResNetTrainerOptions options)
    {
        var (_, device, factory) = Resolve(options);
        return factory is null ? new ManagedTrainingRunner(network, options) : factory.Create(network, options, device);
    }
}
