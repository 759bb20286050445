using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Solvers;

/// <summary>
/// Validation and native-memory handling shared by the solvers: the public <see cref="Solve"/> checks its
/// arguments, opens one dispose scope for the solve (iterations open their own), runs the recurrence under
/// no_grad, and hands X to the caller's scope (the MathNet pattern of a validating public method and a
/// protected core).
/// </summary>
public abstract class IterativeSolverBase : IIterativeSolver
{
    /// <inheritdoc/>
    public SolveReport Solve(Func<Tensor, Tensor> apply, Tensor b, Tensor? x0, SolverOptions options, Func<Tensor, Tensor>? preconditioner = null)
    {
        ArgumentNullException.ThrowIfNull(apply);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (b.dim() != 1)
            throw new ArgumentException($"b must be a flat 1-D tensor, got shape [{string.Join(", ", b.Sizes())}]", nameof(b));
        if (!b.is_floating_point())
            throw new ArgumentException($"b must be floating point, got {b.dtype}", nameof(b));
        if (x0 is not null && !x0.Sizes().SequenceEqual(b.Sizes()))
            throw new ArgumentException($"x0 has shape [{string.Join(", ", x0.Sizes())}] but b has [{b.size(0)}]", nameof(x0));

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var context = new SolveContext(apply, preconditioner, b.size(0));
        var bb = b.detach();
        var start = x0?.detach().to_type(b.dtype).clone();
        if (start is not null && !IsFinite(start)) start = null;
        var report = IsFinite(bb)
            ? SolveCore(context, bb, start, options)
            : new SolveReport(start ?? zeros_like(bb), 0, double.NaN, double.NaN, SolveStatus.NonFinite);
        report.X.MoveToOuterDisposeScope();
        return report;
    }

    /// <summary>The recurrence. Runs inside the solve's dispose scope and under no_grad; b and x0 are finite.</summary>
    protected abstract SolveReport SolveCore(SolveContext context, Tensor b, Tensor? x0, SolverOptions options);

    protected static double Dot(Tensor a, Tensor b) => a.dot(b).ToDouble();

    protected static double Norm(Tensor a) => a.norm().ToDouble();

    protected static bool IsFinite(Tensor a) => a.isfinite().all().item<bool>();

    /// <summary>Disposes the old tensor held in <paramref name="slot"/> and keeps <paramref name="value"/> in the solve's scope.</summary>
    protected static void Keep(ref Tensor slot, Tensor value)
    {
        value.MoveToOuterDisposeScope();
        if (!ReferenceEquals(slot, value)) slot.Dispose();
        slot = value;
    }

    /// <summary>The operator and preconditioner, with the shape checks applied to what they return.</summary>
    protected sealed class SolveContext
    {
        private readonly Func<Tensor, Tensor> _apply;
        private readonly Func<Tensor, Tensor>? _preconditioner;
        private readonly long _n;

        public SolveContext(Func<Tensor, Tensor> apply, Func<Tensor, Tensor>? preconditioner, long n)
        {
            _apply = apply;
            _preconditioner = preconditioner;
            _n = n;
        }

        public bool IsPreconditioned => _preconditioner is not null;

        /// <summary>A v.</summary>
        public Tensor Apply(Tensor v) => Check(_apply(v), v, "apply");

        /// <summary>P r, or a fresh alias of r without a preconditioner.</summary>
        public Tensor Precondition(Tensor r) => _preconditioner is null ? r.alias() : Check(_preconditioner(r), r, "preconditioner");

        private Tensor Check(Tensor result, Tensor like, string what)
        {
            if (result is null || result.dim() != 1 || result.size(0) != _n)
                throw new ArgumentException(
                    $"{what} must return a flat tensor of length {_n}, got shape [{(result is null ? "null" : string.Join(", ", result.Sizes()))}]");
            return result.detach().InDtype(like.dtype);
        }
    }
}
