using System.Collections;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// The covered layers' gradients as W̄ matrices (<see cref="ILayerAdapter.GradientMatrix"/>), each formed on its first
/// access: a step whose blocks all form Δ from the statistics (the mean-gradient route) never assembles them.
/// </summary>
/// <remarks>
/// An entry is formed (from .grad, or from the step's statistics) when it is first accessed, so .grad must not change while the list is in use. The list owns the
/// matrices it forms (they belong to no dispose scope, so an entry first read inside a nested scope outlives it) and
/// disposes them with itself.
/// </remarks>
internal sealed class GradientMatrixList : IReadOnlyList<Tensor>, IDisposable
{
    private readonly Func<int, Tensor> _form;
    private readonly Tensor?[] _matrices;

    /// <param name="count">How many entries.</param>
    /// <param name="form">Forms entry i (a fresh tensor; the list takes it).</param>
    public GradientMatrixList(int count, Func<int, Tensor> form)
    {
        _form = form;
        _matrices = new Tensor?[count];
    }

    public int Count => _matrices.Length;

    /// <summary>Layer <paramref name="index"/>'s gradient as W̄ (out × in'), formed on the first access.</summary>
    public Tensor this[int index]
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_matrices[index] is { } formed) return formed;
            Interlocked.Increment(ref _formedInProcess);
            return _matrices[index] = _form(index).DetachFromDisposeScope();
        }
    }

    private static long _formedInProcess;

    /// <summary>How many entries lists of this kind have formed in this process (for tests of what a step reads).</summary>
    internal static long FormedInProcess => Interlocked.Read(ref _formedInProcess);

    public IEnumerator<Tensor> GetEnumerator()
    {
        for (int i = 0; i < Count; i++) yield return this[i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var m in _matrices) m?.Dispose();
    }
}
