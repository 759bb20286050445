using System.Security.Cryptography;
using System.Text;

namespace NaturalGradient.Training.Experiments.Compare;

/// <summary>A stable identifier of a run's full configuration: the folder name of its cache entry.</summary>
public static class RunKey
{
    /// <summary>
    /// First 16 hex digits of SHA-256 over <paramref name="canonicalConfiguration"/> (a text that lists every
    /// resolved setting in a fixed order, e.g. the options records' sorted ToString()).
    /// </summary>
    public static string For(string canonicalConfiguration)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(canonicalConfiguration.Replace("\r\n", "\n")));
        return Convert.ToHexString(hash, 0, 8).ToLowerInvariant();
    }
}
