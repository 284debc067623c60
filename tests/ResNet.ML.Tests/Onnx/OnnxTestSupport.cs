namespace ResNet.ML.Tests.Onnx;

internal static class OnnxTestSupport
{
    public static string Fixture(string file) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx", file);

    /// <summary>
    /// "Equal within <paramref name="relative"/> relative": every value of an image's row is within
    /// relative x (the largest magnitude in that row of <paramref name="expected"/>) of its expected value, so
    /// small logits next to large ones are not held to a tighter bound than float arithmetic gives.
    /// </summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, int rowLength, double relative, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: lengths differ");
        Assert.IsTrue(expected.Length > 0 && expected.Length % rowLength == 0, $"{what}: {expected.Length} values are not whole rows of {rowLength}");
        double worst = 0;
        for (int row = 0; row < expected.Length; row += rowLength)
        {
            double scale = 0;
            for (int i = 0; i < rowLength; i++) scale = Math.Max(scale, Math.Abs(expected[row + i]));
            scale = Math.Max(scale, 1e-6);
            for (int i = 0; i < rowLength; i++)
            {
                Assert.IsTrue(float.IsFinite(actual[row + i]), $"{what}: value {row + i} is {actual[row + i]}");
                double err = Math.Abs(expected[row + i] - actual[row + i]) / scale;
                worst = Math.Max(worst, err);
                if (err > relative)
                    Assert.Fail($"{what}: value {i} of image {row / rowLength} is {actual[row + i]}, expected {expected[row + i]} (relative error {err:E2} > {relative:E0})");
            }
        }
    }
}
