using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Ksd;

/// <summary>
/// An orthonormal basis V (r × p, rows) of the Krylov space K_k(A, g) = span{g, A g, …, A^(k−1) g}, optionally with
/// extra directions, by Arnoldi with full re-orthogonalisation (modified Gram–Schmidt, twice), and the projected matrix
/// V A Vᵀ (r × r) from the same products. Directions that add less than 10⁻¹⁰ of their norm are dropped (the space is
/// exhausted), so r ≤ k + extras.
/// </summary>
public static class KrylovBasis
{
    /// <summary>Builds the basis: one product A v per basis vector (it serves both the next Krylov vector and V A Vᵀ).</summary>
    /// <param name="apply">v ↦ A v (A symmetric), flat vectors of length p.</param>
    /// <param name="g">Start vector (length p).</param>
    /// <param name="dimension">k ≥ 1.</param>
    /// <param name="extra">Directions appended after the Krylov vectors (e.g. the previous step); may be empty.</param>
    /// <returns>V (r × p, orthonormal rows, float64) and V A Vᵀ (r × r, symmetrised, float64).</returns>
    public static (Tensor Basis, Tensor Projected) Build(Func<Tensor, Tensor> apply, Tensor g, int dimension, IReadOnlyList<Tensor> extra)
    {
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "dimension must be ≥ 1");
        using var scope = NewDisposeScope();
        var rows = new List<Tensor>();
        var products = new List<Tensor>();
        var next = g.detach().to_type(ScalarType.Float64);
        for (int j = 0; j < dimension; j++)
        {
            if (!TryAppend(rows, next)) break;
            var av = apply(rows[^1].to_type(g.dtype)).detach().to_type(ScalarType.Float64);
            products.Add(av);
            next = av;
        }
        foreach (var e in extra)
            if (TryAppend(rows, e.detach().to_type(ScalarType.Float64)))
                products.Add(apply(rows[^1].to_type(g.dtype)).detach().to_type(ScalarType.Float64));
        if (rows.Count == 0)
            return (scope.MoveToOuter(zeros(0, g.size(0), dtype: ScalarType.Float64)), scope.MoveToOuter(zeros(0, 0, dtype: ScalarType.Float64)));
        var v = stack(rows.ToArray());
        var av2 = stack(products.ToArray());
        var projected = v.mm(av2.t());
        projected = (projected + projected.t()) * 0.5;
        return (scope.MoveToOuter(v), scope.MoveToOuter(projected));
    }

    private static bool TryAppend(List<Tensor> rows, Tensor candidate)
    {
        double original = candidate.norm().ToDouble();
        if (!(original > 0) || !double.IsFinite(original)) return false;
        var w = candidate.clone();
        for (int pass = 0; pass < 2; pass++)
            foreach (var q in rows) w.sub_(q * q.dot(w));
        double norm = w.norm().ToDouble();
        if (!(norm > 1e-10 * original)) return false;
        rows.Add(w / norm);
        return true;
    }
}
