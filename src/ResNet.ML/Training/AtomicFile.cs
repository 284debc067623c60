using System.Text.RegularExpressions;

namespace ResNet.ML.Training;

/// <summary>Writes a file through a temporary name in the same folder and a rename, so readers never see half a file.</summary>
public static partial class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="path"/> through <c>.{name}.{32 hex digits}.tmp</c> beside it. When anything fails (a full
    /// disk, say) the exception names <paramref name="path"/>, the temporary file is removed and a file already at
    /// <paramref name="path"/> is left as it was.
    /// </summary>
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
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
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
        catch (IOException e)
        {
            // The OS names the temporary file (or nothing); the user needs the file that is missing.
            throw new IOException($"Cannot write '{full}' ({e.Message.TrimEnd('.')}); nothing else was changed.", e);
        }
        finally
        {
            try { if (File.Exists(temp)) File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>
    /// Deletes what <see cref="Write"/> leaves behind when its process is killed mid-write: files named like its
    /// temporaries, directly in <paramref name="folder"/>. Only call it while no other writer uses the folder. Returns
    /// how many were removed.
    /// </summary>
    public static int RemoveStaleTemporaries(string folder)
    {
        if (!Directory.Exists(folder)) return 0;
        int removed = 0;
        foreach (var file in Directory.EnumerateFiles(folder, ".*.tmp"))
        {
            if (!TemporaryName().IsMatch(Path.GetFileName(file))) continue;
            try { File.Delete(file); removed++; }
            catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    [GeneratedRegex(@"^\..+\.[0-9a-f]{32}\.tmp$")]
    private static partial Regex TemporaryName();
}
