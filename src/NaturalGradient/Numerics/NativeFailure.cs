using System.Runtime.InteropServices;

namespace NaturalGradient.Numerics;

/// <summary>
/// A libtorch operation failed (it raised a native error such as "linalg.eigh: The algorithm failed to converge" or
/// "value cannot be converted to type float without overflow"). The message is one line: what failed, libtorch's own
/// first line, and what to do. The native error is kept as <see cref="Exception.InnerException"/>.
/// </summary>
public sealed class NativeOperationException : Exception
{
    public NativeOperationException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Reads libtorch's error text (TorchSharp raises it as <see cref="ExternalException"/> with a C++ backtrace).</summary>
public static class NativeMessage
{
    /// <summary>The first non-empty line of a native error message, without libtorch's backtrace.</summary>
    public static string FirstLine(Exception e)
    {
        foreach (var line in e.Message.Split('\n'))
        {
            var t = line.Trim();
            if (t.Length > 0) return t.Length > 300 ? t[..300] + "…" : t;
        }
        return e.GetType().Name;
    }
}

/// <summary>
/// Runs library code that calls into libtorch and turns a native failure into a one-line
/// <see cref="NativeOperationException"/>: <c>"{what} failed in libtorch: {first line}; {advice}"</c>.
/// </summary>
public static class NativeCall
{
    /// <summary>The advice for libtorch's dtype mismatches (an integer batch into a Linear layer, mixed float types).</summary>
    public const string DtypeAdvice =
        "the tensors' dtypes differ: inputs of Linear and Conv2d layers must have the model's floating-point dtype (integer indices go to Embedding layers)";

    /// <summary><see cref="DtypeAdvice"/> for libtorch's dtype-mismatch messages when the caller gave the default advice, which would mislead there.</summary>
    private static string AdviceFor(string firstLine, string advice) =>
        advice == DefaultAdvice && (firstLine.Contains("must have the same dtype", StringComparison.Ordinal)
                                    || firstLine.Contains("expected scalar type", StringComparison.OrdinalIgnoreCase))
            ? DtypeAdvice
            : advice;

    /// <summary>The advice given when the caller has nothing more specific.</summary>
    public const string DefaultAdvice =
        "check the batch and the options for non-finite or out-of-range values (inputs, targets, damping, learning rate), or use a float64 model";

    public static T Run<T>(string what, Func<T> body, string advice = DefaultAdvice)
    {
        try
        {
            return body();
        }
        catch (ExternalException e)
        {
            string first = NativeMessage.FirstLine(e);
            throw new NativeOperationException($"{what} failed in libtorch: {first}; {AdviceFor(first, advice)}", e);
        }
    }

    public static void Run(string what, Action body, string advice = DefaultAdvice) =>
        Run<bool>(what, () => { body(); return true; }, advice);
}
