using ResNet.ML.Layers;
using ResNet.ML.Tensors;

namespace ResNet.ML.Tests.Engine;

/// <summary>A double-precision activation: shape [N, C, H, W] and values.</summary>
internal sealed record Activation(double[] Data, int N, int C, int H, int W)
{
    public double this[int n, int c, int h, int w] => Data[((n * C + c) * H + h) * W + w];
    public static Activation From(Tensor t) => new(t.Data.Select(v => (double)v).ToArray(), t.N, t.C, t.H, t.W);
}

/// <summary>
/// A plain, loop-by-loop float64 evaluation of the engine's layers, written from PyTorch's definitions and sharing no
/// code with the engine: the oracle for forward outputs and, by central differences, for gradients. Parameter values
/// come from a dictionary so a test can perturb one element at a time.
/// </summary>
internal static class ReferenceModel
{
    public static Activation Forward(Layer layer, Activation x, IReadOnlyDictionary<Parameter, double[]> p, bool training) => layer switch
    {
        Conv2d conv => Conv(conv, x, p[conv.Weight], conv.Bias is null ? null : p[conv.Bias]),
        BatchNorm2d bn => BatchNorm(bn, x, p[bn.Weight], p[bn.Bias], training),
        ReLU => Relu(x),
        MaxPool2d pool => MaxPool(pool, x),
        GlobalAvgPool2d => GlobalAvgPool(x),
        Linear linear => Linear(linear, x, p[linear.Weight], linear.Bias is null ? null : p[linear.Bias]),
        ZeroPadShortcut zp => ZeroPad(zp, x),
        ProjectionShortcut proj => Forward(proj.Bn, Forward(proj.Conv, x, p, training), p, training),
        ResidualBlock block => Block(block, x, p, training),
        _ => throw new NotSupportedException(layer.GetType().Name),
    };

    public static Activation Forward(Network network, Activation x, IReadOnlyDictionary<Parameter, double[]> p, bool training)
    {
        foreach (var layer in network.Layers) x = Forward(layer, x, p, training);
        return x;
    }

    private static Activation Conv(Conv2d conv, Activation x, double[] w, double[]? b)
    {
        int k = conv.KernelSize, s = conv.Stride, pad = conv.Padding, o = conv.OutChannels;
        int oh = (x.H + 2 * pad - k) / s + 1, ow = (x.W + 2 * pad - k) / s + 1;
        var y = new double[x.N * o * oh * ow];
        for (int n = 0; n < x.N; n++)
        for (int oc = 0; oc < o; oc++)
        for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++)
        {
            double sum = b?[oc] ?? 0;
            for (int c = 0; c < x.C; c++)
            for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
            {
                int iy = i * s - pad + ky, ix = j * s - pad + kx;
                if (iy < 0 || iy >= x.H || ix < 0 || ix >= x.W) continue;
                sum += w[((oc * x.C + c) * k + ky) * k + kx] * x[n, c, iy, ix];
            }
            y[((n * o + oc) * oh + i) * ow + j] = sum;
        }
        return new(y, x.N, o, oh, ow);
    }

    private static Activation BatchNorm(BatchNorm2d bn, Activation x, double[] gamma, double[] beta, bool training)
    {
        var y = new double[x.Data.Length];
        int m = x.N * x.H * x.W;
        for (int c = 0; c < x.C; c++)
        {
            double mean, variance;
            if (training)
            {
                mean = 0;
                for (int n = 0; n < x.N; n++) for (int i = 0; i < x.H; i++) for (int j = 0; j < x.W; j++) mean += x[n, c, i, j];
                mean /= m;
                variance = 0;
                for (int n = 0; n < x.N; n++) for (int i = 0; i < x.H; i++) for (int j = 0; j < x.W; j++) variance += Math.Pow(x[n, c, i, j] - mean, 2);
                variance /= m;   // biased variance normalizes
            }
            else { mean = bn.RunningMean.Data[c]; variance = bn.RunningVar.Data[c]; }
            for (int n = 0; n < x.N; n++) for (int i = 0; i < x.H; i++) for (int j = 0; j < x.W; j++)
            {
                int at = ((n * x.C + c) * x.H + i) * x.W + j;
                y[at] = (x.Data[at] - mean) / Math.Sqrt(variance + bn.Eps) * gamma[c] + beta[c];
            }
        }
        return x with { Data = y };
    }

    private static Activation Relu(Activation x) => x with { Data = x.Data.Select(v => Math.Max(v, 0)).ToArray() };

    private static Activation MaxPool(MaxPool2d pool, Activation x)
    {
        int k = pool.KernelSize, s = pool.Stride, pad = pool.Padding;
        int oh = (x.H + 2 * pad - k) / s + 1, ow = (x.W + 2 * pad - k) / s + 1;
        var y = new double[x.N * x.C * oh * ow];
        for (int n = 0; n < x.N; n++) for (int c = 0; c < x.C; c++) for (int i = 0; i < oh; i++) for (int j = 0; j < ow; j++)
        {
            double best = double.NegativeInfinity;
            for (int ky = 0; ky < k; ky++) for (int kx = 0; kx < k; kx++)
            {
                int iy = i * s - pad + ky, ix = j * s - pad + kx;
                if (iy >= 0 && iy < x.H && ix >= 0 && ix < x.W) best = Math.Max(best, x[n, c, iy, ix]);
            }
            y[((n * x.C + c) * oh + i) * ow + j] = best;
        }
        return new(y, x.N, x.C, oh, ow);
    }

    private static Activation GlobalAvgPool(Activation x)
    {
        var y = new double[x.N * x.C];
        for (int n = 0; n < x.N; n++) for (int c = 0; c < x.C; c++)
        {
            double sum = 0;
            for (int i = 0; i < x.H; i++) for (int j = 0; j < x.W; j++) sum += x[n, c, i, j];
            y[n * x.C + c] = sum / (x.H * x.W);
        }
        return new(y, x.N, x.C, 1, 1);
    }

    private static Activation Linear(Linear linear, Activation x, double[] w, double[]? b)
    {
        int f = x.C * x.H * x.W, o = linear.OutFeatures;
        var y = new double[x.N * o];
        for (int n = 0; n < x.N; n++) for (int j = 0; j < o; j++)
        {
            double sum = b?[j] ?? 0;
            for (int i = 0; i < f; i++) sum += w[j * f + i] * x.Data[n * f + i];
            y[n * o + j] = sum;
        }
        return new(y, x.N, o, 1, 1);
    }

    private static Activation ZeroPad(ZeroPadShortcut zp, Activation x)
    {
        int s = zp.Stride, oh = (x.H + s - 1) / s, ow = (x.W + s - 1) / s, o = zp.OutChannels;
        var y = new double[x.N * o * oh * ow];
        for (int n = 0; n < x.N; n++) for (int c = 0; c < x.C; c++) for (int i = 0; i < oh; i++) for (int j = 0; j < ow; j++)
            y[((n * o + c + zp.PadBefore) * oh + i) * ow + j] = x[n, c, i * s, j * s];
        return new(y, x.N, o, oh, ow);
    }

    private static Activation Block(ResidualBlock block, Activation x, IReadOnlyDictionary<Parameter, double[]> p, bool training)
    {
        var h = x;
        for (int i = 0; i < block.Branch.Count; i++)
        {
            h = Forward(block.Branch[i].Bn, Forward(block.Branch[i].Conv, h, p, training), p, training);
            if (i < block.Branch.Count - 1) h = Relu(h);
        }
        if (block.Plain) return Relu(h);
        var shortcut = block.Shortcut is null ? x : Forward(block.Shortcut, x, p, training);
        return Relu(h with { Data = h.Data.Zip(shortcut.Data, (a, b) => a + b).ToArray() });
    }
}
