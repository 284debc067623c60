namespace ResNet.ML.Training;

/// <summary>Writes a file through a temporary name in the same folder and a rename, so readers never see half a file.</summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        try { Directory.CreateDirectory(folder); }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"Cannot create the folder '{folder}' for '{full}': {e.Message}", e);
        }
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IOException($"Cannot write '{full}': the folder '{folder}' is not writable ({e.Message}).", e);
        }
        finally
        {
            try { if (File.Exists(temp)) File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
