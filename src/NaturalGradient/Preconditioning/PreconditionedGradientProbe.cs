using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;

namespace NaturalGradient.Preconditioning;

/// <summary>
/// Tells whether the covered parameters' .grad still holds what the last <see cref="NaturalGradientPreconditioner.Precondition"/>
/// wrote, i.e. no backward pass ran since: preconditioning it again would give (F + λI)⁻² g. It keeps a copy of the
/// written .grad of the smallest covered tensors, at least <see cref="MinimumEntries"/> entries in all, and calls a
/// later .grad the same gradient when it is bitwise equal to that copy and the copy is not all zero (preconditioning a
/// zero gradient again changes nothing). A new backward pass gives new values, whether it accumulates into .grad,
/// after zero_grad, or into a fresh tensor.
/// </summary>
/// <remarks>Cost: a copy of <see cref="MinimumEntries"/> entries (the leading ones of each tensor taken) per write and
/// one host read per check.</remarks>
internal sealed class PreconditionedGradientProbe : IDisposable
{
    /// <summary>Entries compared at least (fewer only when the model's covered tensors have fewer in all).</summary>
    public const int MinimumEntries = 64;

    private readonly Parameter[] _bySize;
    private (Parameter Parameter, Tensor Written)[] _written = Array.Empty<(Parameter, Tensor)>();

    /// <param name="covered">The covered (trainable) tensors.</param>
    public PreconditionedGradientProbe(IEnumerable<Parameter> covered) =>
        _bySize = covered.OrderBy(p => p.numel()).ToArray();

    /// <summary>Copies the .grad just written into the smallest tensors that have one.</summary>
    public void Remember()
    {
        Forget();
        var written = new List<(Parameter, Tensor)>();
        long entries = 0;
        foreach (var p in _bySize)
        {
            if (entries >= MinimumEntries) break;
            if (p.grad is not { } grad) continue;
            using var scope = NewDisposeScope();
            var leading = Leading(grad, MinimumEntries - entries);
            written.Add((p, leading.clone().DetachFromDisposeScope()));
            entries += leading.numel();
        }
        _written = written.ToArray();
    }

    /// <summary>Drops the copy: the next check answers false.</summary>
    public void Forget()
    {
        foreach (var (_, t) in _written) t.Dispose();
        _written = Array.Empty<(Parameter, Tensor)>();
    }

    /// <summary>True when every remembered tensor's .grad is bitwise what was written and not all of it is zero (one host read).</summary>
    public bool Unchanged()
    {
        if (_written.Length == 0) return false;
        using var scope = NewDisposeScope();
        var same = new List<Tensor>(_written.Length);
        var nonzero = new List<Tensor>(_written.Length);
        foreach (var (p, written) in _written)
        {
            if (p.grad is not { } grad || grad.dtype != written.dtype || grad.numel() < written.numel()) return false;
            same.Add(Leading(grad, written.numel()).eq(written).all());
            nonzero.Add(written.ne(0).any());
        }
        return stack(same).all().logical_and(stack(nonzero).any()).item<bool>();
    }

    /// <summary>The first <paramref name="count"/> entries of <paramref name="grad"/> in row-major order (a view when it is contiguous).</summary>
    private static Tensor Leading(Tensor grad, long count) =>
        grad.detach().reshape(-1).narrow(0, 0, Math.Min(count, grad.numel()));

    public void Dispose() => Forget();
}
