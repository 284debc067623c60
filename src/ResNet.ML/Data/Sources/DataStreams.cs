using System.IO.Compression;

namespace ResNet.ML.Data;

/// <summary>Stream helpers shared by the binary sources: transparent gzip, exact reads that name the file when it runs short.</summary>
internal static class DataStreams
{
    /// <summary>
    /// Returns a stream of the decompressed content when <paramref name="input"/> starts with the gzip magic bytes, else a
    /// stream of the raw content: IDX files come both ways, and the file name is not a reliable guide.
    /// </summary>
    public static Stream MaybeGunzip(Stream input)
    {
        Span<byte> head = stackalloc byte[2];
        int got = 0;
        while (got < 2)
        {
            int n = input.Read(head[got..]);
            if (n == 0) break;
            got += n;
        }
        var prefixed = new PrefixedStream(head[..got].ToArray(), input);
        return got == 2 && head[0] == 0x1F && head[1] == 0x8B ? new GZipStream(prefixed, CompressionMode.Decompress) : prefixed;
    }

    /// <summary>Fills <paramref name="buffer"/> or throws naming <paramref name="source"/> and what was being read.</summary>
    public static void ReadExactly(Stream input, Span<byte> buffer, string source, string what)
    {
        int total = ReadUpTo(input, buffer, source, what);
        if (total < buffer.Length)
            throw new InvalidDataException($"{source} is truncated: {what} needs {buffer.Length} bytes, the file ends after {total}.");
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the stream ends; returns how many bytes came. A corrupt
    /// compressed stream throws naming <paramref name="source"/> and what was being read.</summary>
    public static int ReadUpTo(Stream input, Span<byte> buffer, string source, string what)
    {
        int total = 0;
        try
        {
            while (total < buffer.Length)
            {
                int n = input.Read(buffer[total..]);
                if (n == 0) break;
                total += n;
            }
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{source} is corrupt (reading {what}): {e.Message}", e);
        }
        return total;
    }

    /// <summary>True when the stream has no byte left (a decompression error counts as corrupt, naming the source).</summary>
    public static bool AtEnd(Stream input, string source)
    {
        try
        {
            Span<byte> one = stackalloc byte[1];
            return input.Read(one) == 0;
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{source} is corrupt: {e.Message}", e);
        }
    }

    /// <summary>A read-only stream that yields a few already-read bytes, then the rest of the inner stream.</summary>
    private sealed class PrefixedStream(byte[] prefix, Stream inner) : Stream
    {
        private int _prefixPos;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_prefixPos < prefix.Length)
            {
                int n = Math.Min(buffer.Length, prefix.Length - _prefixPos);
                prefix.AsSpan(_prefixPos, n).CopyTo(buffer);
                _prefixPos += n;
                return n;
            }
            return inner.Read(buffer);
        }
    }
}
