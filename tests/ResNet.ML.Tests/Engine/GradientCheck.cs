using ResNet.ML.Layers;
using ResNet.ML.Layers.Reference;
using ResNet.ML.Tensors;

namespace ResNet.ML.Tests.Engine;

/// <summary>
/// Checks a layer's float32 forward and its input and parameter gradients, every element, against the library's float64
/// scalar reference (<see cref="ReferencePass"/>), and the reference's own analytic gradients against central
/// differences of its forward, so that the oracle is checked too. The scalar differentiated is Σ y·r for a random r, so
/// every output element contributes. Criterion: ‖actual − expected‖₂ ≤ tol·‖expected‖₂ (norm-relative).
/// </summary>
internal static class GradientCheck
{
    private const double Step = 1e-6;

    public static void Run(Layer layer, int n, int c, int h, int w, bool training = true, ulong seed = 1,
        int maxChecksPerTensor = 40, double tolerance = 1e-5)
    {
        var rng = new Rng(seed);
        var x = RandomTensor(rng, n, c, h, w, 1.0);
        var parameters = Collect(layer);
        foreach (var p in parameters)
        {
            bool bnWeight = p.Name.EndsWith(".weight") && p.Value.N == 1 && p.Value.H == 1 && IsBnAffine(layer, p);
            var d = p.Value.Data;
            for (int i = 0; i < d.Length; i++) d[i] = bnWeight ? (float)(1 + 0.3 * rng.NextGaussian()) : (float)(0.4 * rng.NextGaussian());
        }
        foreach (var bn in AllLayers(layer).OfType<BatchNorm2d>())
            for (int i = 0; i < bn.Channels; i++)
            {
                bn.RunningMean.Data[i] = (float)(0.2 * rng.NextGaussian());
                bn.RunningVar.Data[i] = (float)(0.5 + rng.NextDouble());
            }

        var values = parameters.ToDictionary(p => p, p => p.Value.Data.Select(v => (double)v).ToArray());
        // The reference reads BN running stats; a training forward of the engine would move them first, so evaluate the
        // reference before the engine runs.
        var reference = ReferencePass.Forward(layer, Activation.From(x), training, values);
        var expected = reference.Output;

        var y = layer.Forward(x, training);
        Assert.AreEqual((expected.N, expected.C, expected.H, expected.W), (y.N, y.C, y.H, y.W), $"{layer} output shape");
        AssertClose(y.Data.Select(v => (double)v).ToArray(), expected.Data, 1e-5, $"{layer} forward");

        var r = RandomTensor(rng, y.N, y.C, y.H, y.W, 1.0);
        var rd = r.Data.Select(v => (double)v).ToArray();
        foreach (var p in parameters) p.Grad.Clear();
        var dx = layer.Backward(r);
        Assert.IsTrue(dx.SameShape(x), $"{layer}: input gradient {dx.Shape} vs input {x.Shape}");

        // The engine against the reference's backward, every element.
        var referenceDx = reference.Backward(rd);
        AssertClose(ToDouble(dx.Data), referenceDx, EngineTolerance, $"{layer} d/dinput against the reference");
        foreach (var p in parameters)
            AssertClose(ToDouble(p.Grad.Data), reference.Gradient(p), EngineTolerance, $"{layer} d/d{p.Name} against the reference");

        // The reference's backward against central differences of its forward. Running stats must not move between the
        // reference evaluations below: the reference never updates them.
        var xd = x.Data.Select(v => (double)v).ToArray();
        double Objective()
        {
            var yy = ReferencePass.Forward(layer, new Activation(xd, n, c, h, w), training, values).Output;
            double s = 0;
            for (int i = 0; i < yy.Data.Length; i++) s += yy.Data[i] * rd[i];
            return s;
        }

        CheckTensor($"reference {layer} d/dinput", xd, referenceDx, Objective, rng, maxChecksPerTensor, tolerance);
        foreach (var p in parameters)
            CheckTensor($"reference {layer} d/d{p.Name}", values[p], reference.Gradient(p), Objective, rng, maxChecksPerTensor, tolerance);
    }

    /// <summary>Float32 accumulation against float64: the engine's gradients agree with the reference to about this, norm-relative.</summary>
    internal const double EngineTolerance = 1e-4;

    public static double[] ToDouble(float[] values) => values.Select(v => (double)v).ToArray();

    private static bool IsBnAffine(Layer root, Parameter p) => AllLayers(root).OfType<BatchNorm2d>().Any(b => b.Weight == p);

    public static IEnumerable<Layer> AllLayers(Layer layer) => layer.Children.SelectMany(AllLayers).Prepend(layer);

    private static List<Parameter> Collect(Layer layer) => layer.Parameters.ToList();

    public static void CheckTensor(string what, double[] values, double[] analytic, Func<double> objective, Rng rng, int maxChecks, double tolerance)
    {
        var indices = Enumerable.Range(0, values.Length).ToArray();
        if (indices.Length > maxChecks) { rng.Shuffle(indices.AsSpan()); indices = indices[..maxChecks]; }
        var numeric = new double[indices.Length];
        var got = new double[indices.Length];
        for (int t = 0; t < indices.Length; t++)
        {
            int i = indices[t];
            double saved = values[i];
            values[i] = saved + Step; double plus = objective();
            values[i] = saved - Step; double minus = objective();
            values[i] = saved;
            numeric[t] = (plus - minus) / (2 * Step);
            got[t] = analytic[i];
        }
        AssertClose(got, numeric, tolerance, what);
    }

    public static void AssertClose(double[] actual, double[] expected, double tolerance, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, what);
        double diff = 0, norm = 0, worst = 0; int worstAt = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = actual[i] - expected[i];
            diff += d * d; norm += expected[i] * expected[i];
            if (Math.Abs(d) > worst) { worst = Math.Abs(d); worstAt = i; }
        }
        double rel = Math.Sqrt(diff) / Math.Max(Math.Sqrt(norm), 1e-12);
        Assert.IsTrue(rel <= tolerance,
            $"{what}: norm-relative error {rel:E2} > {tolerance:E1} (worst at {worstAt}: {(worstAt >= 0 ? actual[worstAt] : 0)} vs {(worstAt >= 0 ? expected[worstAt] : 0)})");
    }

    public static Tensor RandomTensor(Rng rng, int n, int c, int h, int w, double scale)
    {
        var t = new Tensor(n, c, h, w);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(scale * rng.NextGaussian());
        return t;
    }
}
