namespace ResNet.ML.Cli;

internal static class OutputFolder
{
    /// <summary>Creates <paramref name="folder"/> and proves it writable before hours of training, naming it when it is not.</summary>
    public static void EnsureWritable(string folder)
    {
        try
        {
            Directory.CreateDirectory(folder);
            string probe = Path.Combine(folder, $".write-test-{Guid.NewGuid():N}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"The output folder '{folder}' is not writable ({e.Message.TrimEnd('.')}); choose another with --output.", e);
        }
    }
}
