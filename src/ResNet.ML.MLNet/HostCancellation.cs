using System.Reflection;
using Microsoft.ML.Runtime;

namespace ResNet.ML.MLNet;

/// <summary>
/// Whether MLContext.CancelExecution() was called. ML.NET's own trainers ask with the host's CheckAlive(), which ML.NET
/// keeps internal to its own assemblies; the host classes behind the public IHost expose the same flag as a public
/// IsCanceled property, read here once per step. A host without it is never canceled this way (the token still works).
/// </summary>
internal static class HostCancellation
{
    public static bool IsCanceled(IHost host)
    {
        var property = host.GetType().GetProperty("IsCanceled", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance);
        return property?.GetValue(host) is true;
    }
}
