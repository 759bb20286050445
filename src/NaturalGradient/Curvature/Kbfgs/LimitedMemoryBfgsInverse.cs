using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kbfgs;

/// <summary>
/// The L-BFGS inverse approximation (Nocedal &amp; Wright, algorithm 7.4, the two-loop recursion): H is the BFGS update
/// of H₀ = h₀ I by the last <c>memory</c> pairs, never formed. Memory O(memory · d); H M costs O(memory · d · k) for a
/// d × k matrix M. With memory ≥ the number of pairs it equals <see cref="DenseBfgsInverse"/> from the same H₀.
/// </summary>
public sealed class LimitedMemoryBfgsInverse : IInverseFactor
{
    private readonly int _memory;
    private readonly double _initialScale;
    private readonly ScalarType _dtype;
    private readonly LinkedList<(Tensor S, Tensor Y, double Rho)> _pairs = new();

    /// <param name="dimension">d ≥ 1.</param>
    /// <param name="memory">Pairs kept, ≥ 1.</param>
    /// <param name="initialScale">h₀ &gt; 0 in H₀ = h₀ I.</param>
    /// <param name="dtype">Element type of the stored pairs.</param>
    public LimitedMemoryBfgsInverse(long dimension, int memory, double initialScale, ScalarType dtype)
    {
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "dimension must be ≥ 1");
        if (memory < 1) throw new ArgumentOutOfRangeException(nameof(memory), memory, "memory must be ≥ 1");
        if (!(initialScale > 0) || double.IsInfinity(initialScale))
            throw new ArgumentOutOfRangeException(nameof(initialScale), initialScale, "initialScale must be a finite number > 0");
        Dimension = dimension;
        _memory = memory;
        _initialScale = initialScale;
        _dtype = dtype;
    }

    public long Dimension { get; }

    /// <summary>Pairs currently kept.</summary>
    public int Count => _pairs.Count;

    /// <summary>h₀ of H₀ = h₀ I.</summary>
    internal double InitialScale => _initialScale;

    /// <summary>The kept pairs, oldest first (the tensors themselves: for saving the state).</summary>
    internal IEnumerable<(Tensor S, Tensor Y, double Rho)> Pairs => _pairs;

    /// <summary>Appends a saved pair with its stored ρ (no recomputation, so a restored H applies bit for bit as before).</summary>
    internal void Restore(Tensor s, Tensor y, double rho)
    {
        if (_pairs.Count == _memory) throw new InvalidOperationException($"the L-BFGS memory holds {_memory} pairs");
        _pairs.AddLast((s.to_type(_dtype).flatten().clone().DetachFromDisposeScope(), y.to_type(_dtype).flatten().clone().DetachFromDisposeScope(), rho));
    }

    public Tensor Apply(Tensor m)
    {
        using var scope = NewDisposeScope();
        var q = m.to_type(_dtype).clone();
        var alphas = new Stack<Tensor>();
        for (var node = _pairs.Last; node is not null; node = node.Previous)          // newest to oldest
        {
            var (s, y, rho) = node.Value;
            var alpha = s.unsqueeze(0).mm(q).mul_(rho);                               // 1 × k
            q.sub_(y.unsqueeze(1).mm(alpha));
            alphas.Push(alpha);
        }
        var r = q.mul_(_initialScale);
        for (var node = _pairs.First; node is not null; node = node.Next)              // oldest to newest
        {
            var (s, y, rho) = node.Value;
            var beta = y.unsqueeze(0).mm(r).mul_(rho);
            r.add_(s.unsqueeze(1).mm(alphas.Pop() - beta));
        }
        return scope.MoveToOuter(r.to_type(m.dtype));
    }

    public void Update(Tensor s, Tensor y)
    {
        using var scope = NewDisposeScope();
        var sf = s.to_type(_dtype).flatten().clone();
        var yf = y.to_type(_dtype).flatten().clone();
        double rho = 1.0 / sf.dot(yf).ToDouble();
        _pairs.AddLast((sf.DetachFromDisposeScope(), yf.DetachFromDisposeScope(), rho));
        if (_pairs.Count > _memory)
        {
            var oldest = _pairs.First!.Value;
            oldest.S.Dispose();
            oldest.Y.Dispose();
            _pairs.RemoveFirst();
        }
    }

    public Tensor ToDense() => Apply(eye(Dimension, dtype: _dtype));

    public void Dispose()
    {
        foreach (var (s, y, _) in _pairs) { s.Dispose(); y.Dispose(); }
        _pairs.Clear();
    }
}
