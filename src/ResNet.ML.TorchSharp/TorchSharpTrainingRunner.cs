using ResNet.ML.Layers;
using ResNet.ML.Training;
using TorchSharp;
using static TorchSharp.torch;
using ManagedTensor = ResNet.ML.Tensors.Tensor;
using TorchTensor = TorchSharp.torch.Tensor;

namespace ResNet.ML.TorchSharp;

/// <summary>
/// The TorchSharp backend's factory. <see cref="TrainingRunners"/> finds it by name, so an app gets the backend by
/// referencing this package (and a libtorch native package); nothing needs registering.
/// </summary>
public sealed class TorchSharpRunnerFactory : ITrainingRunnerFactory
{
    public TrainingBackend Backend => TrainingBackend.TorchSharp;

    public bool IsAvailable(TrainingDevice device, out string? reason)
    {
        // Probing for CUDA must not load a 600 MB CPU libtorch on every managed run with Device = Auto: without a
        // CUDA build of libtorch beside the app there is no CUDA, whatever the machine has.
        if (device == TrainingDevice.Cuda && !CudaLibtorchPresent())
        {
            reason = "the app carries no CUDA build of libtorch (reference a libtorch-cuda-* package instead of libtorch-cpu-*).";
            return false;
        }
        if (!TorchRuntime.IsAvailable) { reason = TorchRuntime.FailureReason; return false; }
        if (device == TrainingDevice.Cuda && !TorchRuntime.CudaAvailable)
        {
            reason = "libtorch sees no CUDA device (torch.cuda.is_available() is false).";
            return false;
        }
        reason = null;
        return true;
    }

    public ITrainingRunner Create(Network network, ResNetTrainerOptions options, TrainingDevice device) =>
        new TorchSharpTrainingRunner(network, options, device);

    private static bool CudaLibtorchPresent()
    {
        string pattern = OperatingSystem.IsWindows() ? "torch_cuda*.dll" : "libtorch_cuda*";
        try { return Directory.EnumerateFiles(AppContext.BaseDirectory, pattern, SearchOption.AllDirectories).Any(); }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}

/// <summary>
/// Trains a <see cref="TorchResNet"/> with the managed optimizers' exact update rules (written over the parameters in
/// <c>no_grad</c>, not torch.optim, so weight decay placement, the first momentum step and the exclusion of biases and
/// BN parameters from decay are the engine's), PyTorch's cross-entropy with label smoothing, and one dispose scope per
/// step so no tensor outlives it but the parameters, BN buffers and optimizer buffers.
/// </summary>
public sealed class TorchSharpTrainingRunner : ITrainingRunner
{
    private readonly TorchResNet _model;
    private readonly Device _device;
    private readonly ResNetTrainerOptions _options;
    private readonly List<(string Name, TorchTensor Value, Parameter Managed)> _parameters = [];
    private readonly Dictionary<string, TorchTensor>[] _buffers;
    private long _steps;
    private TorchTensor? _hostInput, _hostLabels;
    private ManagedTensor? _logits;

    /// <summary>A runner on the CPU or the first CUDA device.</summary>
    public TorchSharpTrainingRunner(Network network, ResNetTrainerOptions options, TrainingDevice device = TrainingDevice.Cpu)
        : this(network, options, DeviceFor(device)) { }

    // torch's static constructor loads libtorch, so TorchRuntime (which prepares the environment first) goes before any torch.* member.
    private static Device DeviceFor(TrainingDevice device)
    {
        TorchRuntime.EnsureLoaded();
        return device == TrainingDevice.Cuda ? CUDA : CPU;
    }

    /// <summary>A runner on <paramref name="device"/> (call <see cref="TorchRuntime.EnsureLoaded"/> before touching <c>torch</c>, see there).</summary>
    public TorchSharpTrainingRunner(Network network, ResNetTrainerOptions options, Device device)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(options);
        TorchRuntime.EnsureLoaded();
        Network = network;
        _options = options;
        _device = device;
        if (options.Threads > 0) set_num_threads(options.Threads);
        else set_num_threads(Environment.ProcessorCount);
        _model = TorchResNet.Build(network);
        _model.CopyFrom(network);
        _model.to(device);
        _model.train();
        var managed = network.Parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
        foreach (var (name, p) in _model.named_parameters()) _parameters.Add((name, p, managed[name]));
        _buffers = _parameters.Select(_ => new Dictionary<string, TorchTensor>(StringComparer.Ordinal)).ToArray();
    }

    public Network Network { get; }
    public string Description => $"TorchSharp ({_device})";

    /// <summary>The module tree being trained.</summary>
    public TorchResNet Model => _model;

    public (double Loss, int Correct) TrainStep(ManagedTensor input, int[] labels, float learningRate, long step)
    {
        using var scope = NewDisposeScope();
        var (x, y) = Upload(input, labels);
        _model.train();
        var logits = _model.call(x);
        var loss = nn.functional.cross_entropy(logits, y, label_smoothing: _options.LabelSmoothing);
        _model.zero_grad();
        loss.backward();
        using (no_grad()) Update(learningRate);
        // One host sync per step: the loss and the correct count come back together.
        var stats = stack([loss.detach(), logits.argmax(1).eq(y).sum().to(ScalarType.Float32)]).cpu();
        float lossValue = stats[0].item<float>();
        int correct = (int)stats[1].item<float>();
        if (!float.IsFinite(lossValue))
            throw new NonFiniteException($"Training diverged{(step >= 0 ? $" at step {step}" : "")}: the loss is {lossValue}. Lower the learning rate or check the input data.");
        return (lossValue, correct);
    }

    public ManagedTensor Infer(ManagedTensor input)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (x, _) = Upload(input, null);
        _model.eval();
        var logits = _model.call(x).cpu().contiguous();
        _model.train();
        var result = ManagedTensor.Reuse(ref _logits, input.N, (int)logits.shape[1], 1, 1);
        logits.data<float>().CopyTo(result.Data, 0);
        return result;
    }

    public void PullState() => _model.CopyTo(Network);
    public void PushState() => _model.CopyFrom(Network);

    /// <summary>Copies the gradients of the last step into the managed parameters' <see cref="Parameter.Grad"/> (for comparisons).</summary>
    public void PullGradients()
    {
        foreach (var (_, p, managed) in _parameters)
        {
            if (p.grad is not { } g) { managed.Grad.Clear(); continue; }
            using var host = g.detach().cpu().contiguous();
            host.data<float>().CopyTo(managed.Grad.Data, 0);
        }
    }

    private (TorchTensor X, TorchTensor Y) Upload(ManagedTensor input, int[]? labels)
    {
        long[] shape = [input.N, input.C, input.H, input.W];
        // Host staging tensors are reused while the batch size stays (pinned on CUDA so the copy can overlap). Refilling
        // them cannot race the previous step's asynchronous copy: every step and every inference ends in a host sync.
        if (_hostInput is null || !_hostInput.shape.SequenceEqual(shape))
        {
            _hostInput?.Dispose();
            _hostInput = empty(shape, ScalarType.Float32);
            if (_device.type == DeviceType.CUDA) _hostInput = _hostInput.pin_memory();
            _hostInput.DetachFromDisposeScope();
        }
        _hostInput.data<float>().CopyFrom(input.Data);
        var x = _device.type == DeviceType.CPU ? _hostInput.alias() : _hostInput.to(_device, non_blocking: true);
        if (labels is null) return (x, x);
        if (_hostLabels is null || _hostLabels.shape[0] != labels.Length)
        {
            _hostLabels?.Dispose();
            _hostLabels = empty([labels.Length], ScalarType.Int64);
            if (_device.type == DeviceType.CUDA) _hostLabels = _hostLabels.pin_memory();
            _hostLabels.DetachFromDisposeScope();
        }
        var view = _hostLabels.data<long>();
        for (int i = 0; i < labels.Length; i++) view[i] = labels[i];
        var y = _device.type == DeviceType.CPU ? _hostLabels.alias() : _hostLabels.to(_device, non_blocking: true);
        return (x, y);
    }

    // The managed optimizers' rules (Training/Optimizers): weight decay on conv and linear weights only, L2 for SGD
    // and Adam, decoupled for AdamW; SGD's buffer starts as the first step's gradient; Adam's bias corrections in double.
    private void Update(float learningRate)
    {
        _steps++;
        float wd = _options.ResolvedWeightDecay;
        for (int i = 0; i < _parameters.Count; i++)
        {
            var (name, w, managed) = _parameters[i];
            if (!managed.Trainable || w.grad is not { } g) continue;
            float decay = managed.IsWeight ? wd : 0f;
            switch (_options.Optimizer)
            {
                case OptimizerKind.SgdMomentum: Sgd(i, w, g, learningRate, decay); break;
                case OptimizerKind.Adam: Adam(i, w, g, learningRate, decay, decoupled: false); break;
                case OptimizerKind.AdamW: Adam(i, w, g, learningRate, decay, decoupled: true); break;
                default: throw new ArgumentException($"Option Optimizer: unknown optimizer {_options.Optimizer}.");
            }
        }
    }

    private void Sgd(int i, TorchTensor w, TorchTensor g, float lr, float decay)
    {
        float mu = _options.Momentum;
        // Out of place: the gradient stays what backward made (PullGradients reads it), the temporaries die with the step's scope.
        var d = decay != 0 ? g.add(w, alpha: decay) : g;
        if (mu == 0) { w.add_(d, alpha: -lr); return; }
        if (!_buffers[i].TryGetValue("momentum_buffer", out var buf))
        {
            buf = d.clone().DetachFromDisposeScope();
            _buffers[i]["momentum_buffer"] = buf;
        }
        else buf.mul_(mu).add_(d);
        if (_options.Nesterov) w.add_(d.add(buf, alpha: mu), alpha: -lr);
        else w.add_(buf, alpha: -lr);
    }

    private void Adam(int i, TorchTensor w, TorchTensor g, float lr, float decay, bool decoupled)
    {
        const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
        if (decoupled && decay != 0) w.mul_(1f - lr * decay);
        if (!decoupled && decay != 0) g = g.add(w, alpha: decay);
        var m = Buffer(i, "exp_avg", w);
        var v = Buffer(i, "exp_avg_sq", w);
        m.mul_(beta1).add_(g, alpha: 1 - beta1);
        v.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
        double correction1 = 1 - Math.Pow(beta1, _steps), correction2 = 1 - Math.Pow(beta2, _steps);
        var denom = v.sqrt().div_(Math.Sqrt(correction2)).add_(eps);
        w.addcdiv_(m, denom, value: -(lr / correction1));
    }

    private TorchTensor Buffer(int i, string name, TorchTensor like)
    {
        if (!_buffers[i].TryGetValue(name, out var buffer))
        {
            buffer = zeros_like(like).DetachFromDisposeScope();
            _buffers[i][name] = buffer;
        }
        return buffer;
    }

    private string Kind => _options.Optimizer switch
    {
        OptimizerKind.SgdMomentum => "SGD",
        OptimizerKind.Adam => "Adam",
        _ => "AdamW",
    };

    public OptimizerState ExportOptimizerState()
    {
        var buffers = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int i = 0; i < _parameters.Count; i++)
            foreach (var (name, t) in _buffers[i])
            {
                using var host = t.detach().cpu().contiguous();
                buffers[$"{_parameters[i].Name}.{name}"] = host.data<float>().ToArray();
            }
        return new OptimizerState(Kind, _steps, buffers);
    }

    public void ImportOptimizerState(OptimizerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        // The managed optimizer checks kind, names and sizes with the engine's messages; its accepted state is then copied.
        var check = ManagedTrainingRunnerFor(state);
        var restored = _parameters.Select(_ => new Dictionary<string, TorchTensor>(StringComparer.Ordinal)).ToArray();
        var names = BufferNames();
        for (int i = 0; i < _parameters.Count; i++)
            foreach (var name in names)
            {
                if (!check.Buffers.TryGetValue($"{_parameters[i].Name}.{name}", out var values)) continue;
                using var host = tensor(values, _parameters[i].Value.shape);
                restored[i][name] = host.to(_device).DetachFromDisposeScope();
            }
        foreach (var d in _buffers) { foreach (var t in d.Values) t.Dispose(); d.Clear(); }
        for (int i = 0; i < _parameters.Count; i++) foreach (var (k, v) in restored[i]) _buffers[i][k] = v;
        _steps = check.Step;
    }

    private string[] BufferNames() => _options.Optimizer == OptimizerKind.SgdMomentum ? ["momentum_buffer"] : ["exp_avg", "exp_avg_sq"];

    private OptimizerState ManagedTrainingRunnerFor(OptimizerState state)
    {
        var managed = new ManagedTrainingRunner(Network, _options);
        managed.ImportOptimizerState(state);
        return managed.ExportOptimizerState();
    }

    public void Dispose()
    {
        foreach (var d in _buffers) foreach (var t in d.Values) t.Dispose();
        _hostInput?.Dispose();
        _hostLabels?.Dispose();
        _model.Dispose();
    }
}
