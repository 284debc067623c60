namespace ResNet.ML.Layers.Reference;

/// <summary>
/// The engine's layers as plain float64 loops, written from PyTorch's definitions and sharing no code with the fast
/// kernels: each layer kind an explicit forward and backward over buffers passed as arguments (the llm.c way). This is
/// the oracle the engine is tested against (<see cref="ReferencePass"/> runs a whole network description through it);
/// it is slow on purpose, one multiply-add at a time, so that it can be read against the formulas.
/// </summary>
/// <remarks>
/// Layouts are NCHW, weights as PyTorch's (<c>[out, in, k, k]</c>, a linear layer's <c>[out, in]</c>). Backward
/// functions write the input gradient (when one is asked for) and add into the parameter gradients, as autograd does.
/// </remarks>
public static class ReferenceKernels
{
    /// <summary>y[n, o, i, j] = b[o] + Σ_c,ky,kx w[o, c, ky, kx] · x[n, c, i·s − p + ky, j·s − p + kx] (zero outside the image).</summary>
    public static void Conv2dForward(double[] y, double[] x, double[] w, double[]? b,
        int n, int c, int h, int wd, int o, int k, int s, int p, int oh, int ow)
    {
        for (int ni = 0; ni < n; ni++)
        for (int oc = 0; oc < o; oc++)
        for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++)
        {
            double sum = b?[oc] ?? 0;
            for (int ci = 0; ci < c; ci++)
            for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
            {
                int iy = i * s - p + ky, ix = j * s - p + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                sum += w[((oc * c + ci) * k + ky) * k + kx] * x[((ni * c + ci) * h + iy) * wd + ix];
            }
            y[((ni * o + oc) * oh + i) * ow + j] = sum;
        }
    }

    /// <summary>The forward's sum read backwards: each output gradient flows to the weight and input element it multiplied.</summary>
    public static void Conv2dBackward(double[]? dx, double[] dw, double[]? db, double[] dy, double[] x, double[] w,
        int n, int c, int h, int wd, int o, int k, int s, int p, int oh, int ow)
    {
        if (dx is not null) Array.Clear(dx);
        for (int ni = 0; ni < n; ni++)
        for (int oc = 0; oc < o; oc++)
        for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++)
        {
            double g = dy[((ni * o + oc) * oh + i) * ow + j];
            if (db is not null) db[oc] += g;
            for (int ci = 0; ci < c; ci++)
            for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
            {
                int iy = i * s - p + ky, ix = j * s - p + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                int wi = ((oc * c + ci) * k + ky) * k + kx, xi = ((ni * c + ci) * h + iy) * wd + ix;
                dw[wi] += g * x[xi];
                if (dx is not null) dx[xi] += g * w[wi];
            }
        }
    }

    /// <summary>
    /// y = (x − mean) · invStd · γ + β per channel. Training takes the batch's mean and biased variance (and leaves the
    /// running statistics alone: the reference is a pure function); inference takes <paramref name="runningMean"/> and
    /// <paramref name="runningVar"/>. <paramref name="mean"/> and <paramref name="invStd"/> receive what was used, for the backward.
    /// </summary>
    public static void BatchNormForward(double[] y, double[] mean, double[] invStd, double[] x, double[] gamma, double[] beta,
        double[] runningMean, double[] runningVar, int n, int c, int plane, double eps, bool training)
    {
        int m = n * plane;
        for (int ci = 0; ci < c; ci++)
        {
            double mu, variance;
            if (training)
            {
                mu = 0;
                for (int ni = 0; ni < n; ni++) for (int q = 0; q < plane; q++) mu += x[(ni * c + ci) * plane + q];
                mu /= m;
                variance = 0;
                for (int ni = 0; ni < n; ni++) for (int q = 0; q < plane; q++) variance += Math.Pow(x[(ni * c + ci) * plane + q] - mu, 2);
                variance /= m;   // biased: what normalizes (the running average takes the unbiased one)
            }
            else { mu = runningMean[ci]; variance = runningVar[ci]; }
            mean[ci] = mu;
            invStd[ci] = 1 / Math.Sqrt(variance + eps);
            for (int ni = 0; ni < n; ni++) for (int q = 0; q < plane; q++)
            {
                int at = (ni * c + ci) * plane + q;
                y[at] = (x[at] - mu) * invStd[ci] * gamma[ci] + beta[ci];
            }
        }
    }

    /// <summary>
    /// With x̂ = (x − mean)·invStd: dγ += Σ dy·x̂, dβ += Σ dy. In training the mean and variance depend on x, so
    /// dx = invStd/m · (m·dx̂ − Σ dx̂ − x̂ · Σ dx̂·x̂) with dx̂ = dy·γ; in inference dx = dy·γ·invStd.
    /// </summary>
    public static void BatchNormBackward(double[] dx, double[] dgamma, double[] dbeta, double[] dy, double[] x,
        double[] mean, double[] invStd, double[] gamma, int n, int c, int plane, bool training)
    {
        int m = n * plane;
        for (int ci = 0; ci < c; ci++)
        {
            double sumDxhat = 0, sumDxhatXhat = 0;
            for (int ni = 0; ni < n; ni++) for (int q = 0; q < plane; q++)
            {
                int at = (ni * c + ci) * plane + q;
                double xhat = (x[at] - mean[ci]) * invStd[ci];
                dgamma[ci] += dy[at] * xhat;
                dbeta[ci] += dy[at];
                sumDxhat += dy[at] * gamma[ci];
                sumDxhatXhat += dy[at] * gamma[ci] * xhat;
            }
            for (int ni = 0; ni < n; ni++) for (int q = 0; q < plane; q++)
            {
                int at = (ni * c + ci) * plane + q;
                double dxhat = dy[at] * gamma[ci];
                double xhat = (x[at] - mean[ci]) * invStd[ci];
                dx[at] = training ? invStd[ci] / m * (m * dxhat - sumDxhat - xhat * sumDxhatXhat) : dxhat * invStd[ci];
            }
        }
    }

    public static void ReluForward(double[] y, double[] x)
    {
        for (int i = 0; i < x.Length; i++) y[i] = Math.Max(x[i], 0);
    }

    /// <summary>dx = dy where the ReLU's input was positive (PyTorch's choice at 0: no gradient).</summary>
    public static void ReluBackward(double[] dx, double[] dy, double[] x)
    {
        for (int i = 0; i < x.Length; i++) dx[i] = x[i] > 0 ? dy[i] : 0;
    }

    /// <summary>Max over each window (padding counts as −∞); <paramref name="argmax"/> gets the input index of the first maximum, as PyTorch takes.</summary>
    public static void MaxPoolForward(double[] y, int[] argmax, double[] x, int n, int c, int h, int w, int k, int s, int p, int oh, int ow)
    {
        for (int plane = 0; plane < n * c; plane++)
        for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++)
        {
            double best = double.NegativeInfinity; int at = -1;
            for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
            {
                int iy = i * s - p + ky, ix = j * s - p + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                int xi = (plane * h + iy) * w + ix;
                if (x[xi] > best) { best = x[xi]; at = xi; }
            }
            y[(plane * oh + i) * ow + j] = best;
            argmax[(plane * oh + i) * ow + j] = at;
        }
    }

    /// <summary>Each output gradient goes to the input element that was the window's maximum.</summary>
    public static void MaxPoolBackward(double[] dx, double[] dy, int[] argmax)
    {
        Array.Clear(dx);
        for (int i = 0; i < dy.Length; i++) dx[argmax[i]] += dy[i];
    }

    /// <summary>y[n, c] = mean over the plane.</summary>
    public static void GlobalAvgPoolForward(double[] y, double[] x, int n, int c, int plane)
    {
        for (int nc = 0; nc < n * c; nc++)
        {
            double sum = 0;
            for (int q = 0; q < plane; q++) sum += x[nc * plane + q];
            y[nc] = sum / plane;
        }
    }

    public static void GlobalAvgPoolBackward(double[] dx, double[] dy, int n, int c, int plane)
    {
        for (int nc = 0; nc < n * c; nc++)
            for (int q = 0; q < plane; q++) dx[nc * plane + q] = dy[nc] / plane;
    }

    /// <summary>y[n, j] = b[j] + Σ_i w[j, i] · x[n, i], each image flattened to <paramref name="features"/> values.</summary>
    public static void LinearForward(double[] y, double[] x, double[] w, double[]? b, int n, int features, int outputs)
    {
        for (int ni = 0; ni < n; ni++)
        for (int j = 0; j < outputs; j++)
        {
            double sum = b?[j] ?? 0;
            for (int i = 0; i < features; i++) sum += w[j * features + i] * x[ni * features + i];
            y[ni * outputs + j] = sum;
        }
    }

    public static void LinearBackward(double[]? dx, double[] dw, double[]? db, double[] dy, double[] x, double[] w, int n, int features, int outputs)
    {
        if (dx is not null) Array.Clear(dx);
        for (int ni = 0; ni < n; ni++)
        for (int j = 0; j < outputs; j++)
        {
            double g = dy[ni * outputs + j];
            if (db is not null) db[j] += g;
            for (int i = 0; i < features; i++)
            {
                dw[j * features + i] += g * x[ni * features + i];
                if (dx is not null) dx[ni * features + i] += g * w[j * features + i];
            }
        }
    }

    /// <summary>The paper's option A: every s-th pixel, the channels zero-padded to <paramref name="o"/>, <paramref name="padBefore"/> of them in front.</summary>
    public static void ZeroPadForward(double[] y, double[] x, int n, int c, int h, int w, int o, int padBefore, int s, int oh, int ow)
    {
        Array.Clear(y);
        for (int ni = 0; ni < n; ni++) for (int ci = 0; ci < c; ci++) for (int i = 0; i < oh; i++) for (int j = 0; j < ow; j++)
            y[((ni * o + ci + padBefore) * oh + i) * ow + j] = x[((ni * c + ci) * h + i * s) * w + j * s];
    }

    public static void ZeroPadBackward(double[] dx, double[] dy, int n, int c, int h, int w, int o, int padBefore, int s, int oh, int ow)
    {
        Array.Clear(dx);
        for (int ni = 0; ni < n; ni++) for (int ci = 0; ci < c; ci++) for (int i = 0; i < oh; i++) for (int j = 0; j < ow; j++)
            dx[((ni * c + ci) * h + i * s) * w + j * s] = dy[((ni * o + ci + padBefore) * oh + i) * ow + j];
    }

    /// <summary>
    /// Mean cross-entropy of softmax(logits) against targets smoothed by ε (1 − ε on the label plus ε/K on every class,
    /// as PyTorch's <c>label_smoothing</c>); <paramref name="dlogits"/> receives its gradient, (softmax − target) / n.
    /// </summary>
    public static double SoftmaxCrossEntropy(double[] dlogits, double[] logits, int[] labels, int n, int classes, double smoothing = 0)
    {
        double loss = 0;
        for (int ni = 0; ni < n; ni++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < classes; j++) max = Math.Max(max, logits[ni * classes + j]);
            double sum = 0;
            for (int j = 0; j < classes; j++) sum += Math.Exp(logits[ni * classes + j] - max);
            double logSum = Math.Log(sum) + max;
            for (int j = 0; j < classes; j++)
            {
                double target = (j == labels[ni] ? 1 - smoothing : 0) + smoothing / classes;
                loss -= target * (logits[ni * classes + j] - logSum);
                dlogits[ni * classes + j] = (Math.Exp(logits[ni * classes + j] - logSum) - target) / n;
            }
        }
        return loss / n;
    }
}
