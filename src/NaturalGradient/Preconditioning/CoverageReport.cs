using System.Globalization;
using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Preconditioning;

/// <summary>How one parameter tensor is treated by the preconditioner.</summary>
/// <param name="Parameter">Dotted parameter name, e.g. "encoder.fc1.weight".</param>
/// <param name="Shape">The tensor's shape.</param>
/// <param name="Layer">The owning module's dotted path ("" for the model itself).</param>
/// <param name="Kind">The owning module's type name, e.g. "Linear".</param>
/// <param name="Covered">True when the tensor gets the natural-gradient solve.</param>
/// <param name="Treatment">The block structure and Fisher it gets, or why it keeps its plain gradient (or never moves).</param>
public sealed record ParameterCoverage(string Parameter, long[] Shape, string Layer, string Kind, bool Covered, string Treatment)
{
    /// <summary>Number of entries.</summary>
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// The registration report: every parameter tensor of the model, the layer kind, and the structure and Fisher it gets
/// — or why it is left to the plain gradient (frozen, excluded, a module type without adapter, shared across layers).
/// </summary>
public sealed class CoverageReport
{
    private CoverageReport(IReadOnlyList<ParameterCoverage> entries) => Entries = entries;

    /// <summary>One entry per parameter tensor, in the model's parameter order.</summary>
    public IReadOnlyList<ParameterCoverage> Entries { get; }

    /// <summary>Entries of covered tensors that take the natural-gradient step.</summary>
    public IEnumerable<ParameterCoverage> Covered => Entries.Where(e => e.Covered);

    /// <summary>Entries left to the plain gradient or frozen.</summary>
    public IEnumerable<ParameterCoverage> Uncovered => Entries.Where(e => !e.Covered);

    /// <summary>True when every trainable tensor is covered.</summary>
    public bool CoversEveryTrainableTensor => Entries.All(e => e.Covered || e.Treatment.StartsWith("frozen", StringComparison.Ordinal));

    /// <summary>Builds the report for <paramref name="model"/> as <paramref name="capture"/> covers it under <paramref name="options"/>.</summary>
    public static CoverageReport Build(Module model, LayerCapture capture, PreconditionerOptions options)
    {
        var covered = new Dictionary<string, ILayerAdapter>();
        foreach (var l in capture.Layers)
            foreach (var p in l.Adapter.Parameters)
                covered[TensorIdentity.Key(p)] = l.Adapter;
        var modules = model.named_modules().ToDictionary(nm => nm.name, nm => nm.module);
        var entries = new List<ParameterCoverage>();
        var seen = new HashSet<string>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!seen.Add(TensorIdentity.Key(p))) continue;   // a tied tensor listed under a second module: one entry
            string owner = name.Contains('.') ? name[..name.LastIndexOf('.')] : "";
            var module = modules.TryGetValue(owner, out var mod) ? mod : model;
            string kind = module.GetType().Name;
            if (covered.TryGetValue(TensorIdentity.Key(p), out var adapter))
            {
                string treatment = Structure(options, adapter) + SolvePrecision(options, adapter, p.dtype) + ", " + FisherText(options);
                if (adapter is TiedLayerAdapter tied) treatment += "; " + TiedText(tied);
                if (module is NormBase norm && BatchNormAdapter.CouplesExamples(norm))
                    treatment += "; NOTE: in training mode now, refused at the first step unless put in eval mode";
                entries.Add(new ParameterCoverage(name, p.Sizes(), owner, kind, true, treatment));
                continue;
            }
            entries.Add(new ParameterCoverage(name, p.Sizes(), owner, kind, false, Reason(p, owner, module, capture)));
        }
        return new CoverageReport(entries);
    }

    private static string Reason(Parameter p, string owner, Module module, LayerCapture capture)
    {
        if (!p.requires_grad) return "frozen (requires_grad = false): never updated";
        if (capture.UncoveredTies.TryGetValue(TensorIdentity.Key(p), out var why))
            return "plain gradient: " + why;
        if (capture.Include is { } include && capture.Registry.Supports(module) && !include(owner))
            return "plain gradient: excluded by IncludeLayer";
        if (capture.UnsupportedLayers.TryGetValue(owner, out var unsupported))
            return "plain gradient: " + unsupported;
        if (!capture.Registry.Supports(module))
            return $"plain gradient: no curvature adapter for {module.GetType().Name} (supported: {string.Join(", ", capture.Registry.SupportedKinds)})";
        return "plain gradient: not covered";
    }

    private static string Structure(PreconditionerOptions o, ILayerAdapter a) => o.Structure switch
    {
        CurvatureStructure.Exact => "exact (one dense matrix over all covered tensors)",
        CurvatureStructure.BlockDiagonal => "dense per-layer block",
        CurvatureStructure.Tengrad => "TENGraD per-layer block",
        CurvatureStructure.Diagonal => "diagonal",
        CurvatureStructure.Kfac or CurvatureStructure.Ekfac when !a.IsKronecker => "dense per-layer block (not Kronecker-factored)",
        CurvatureStructure.Kfac when a is TiedLayerAdapter { KroneckerFactored: false } =>
            "K-FAC (sum of the uses' Kronecker terms G₁ ⊗ A₁ + G₂ ⊗ A₂, diagonal G₂ from token counts, solved exactly)",
        CurvatureStructure.Kfac or CurvatureStructure.Ekfac =>
            (o.Structure == CurvatureStructure.Kfac ? "K-FAC" : "EKFAC") +
            (a is ITokenLayerAdapter or TiedLayerAdapter { IsIndexLayer: true } ? " (diagonal A from token counts)"
                : o.Kfac.WeightSharing == KfacWeightSharing.Reduce ? " (reduce)" : " (expand)"),
        CurvatureStructure.HessianFree => "Hessian-free (joint matrix-free GGN)",
        _ => o.Structure.ToString(),
    };

    /// <summary>
    /// Where <see cref="KfacOptions.InversePrecision"/> asks for bfloat16, what a Kronecker-factored K-FAC/EKFAC layer's
    /// solve runs in: ", solve in bfloat16" (marked as emulated on a CPU without bfloat16 instructions,
    /// <see cref="Numerics.Bfloat16Support"/>), or the precision it keeps and why (float64 tensors; the exact solve of a
    /// tied Kronecker sum). Empty where the option is not set or the structure does not read it.
    /// </summary>
    private static string SolvePrecision(PreconditionerOptions o, ILayerAdapter a, ScalarType dtype)
    {
        if (o.Kfac.InversePrecision != KfacInversePrecision.Bfloat16 || o.Structure is not (CurvatureStructure.Kfac or CurvatureStructure.Ekfac)
            || !a.IsKronecker)
            return "";
        string own = dtype.ToString().ToLowerInvariant();
        if (o.Structure == CurvatureStructure.Kfac && a is TiedLayerAdapter { KroneckerFactored: false })
            return $", solve in {own} (InversePrecision Bfloat16 does not apply to a Kronecker sum)";
        if (dtype != ScalarType.Float32) return $", solve in {own} (InversePrecision Bfloat16 applies to float32 models)";
        if (Numerics.OneDnnIsaCap.Applied is { } cap)
            return $", solve in bfloat16 (emulated: oneDNN is capped at {cap} for this model's Conv2d layers, so it may be slower than float32)";
        return Numerics.Bfloat16Support.Native == false
            ? ", solve in bfloat16 (emulated: this CPU has no bfloat16 instructions, so it may be slower than float32)"
            : ", solve in bfloat16";
    }

    /// <summary>What a tied tensor gets: one block over its uses, per-example gradients summed over them.</summary>
    private static string TiedText(TiedLayerAdapter tied) =>
        $"tied across layers {string.Join(" and ", tied.Uses.Select(u => $"'{u.Name}' ({u.KindName})"))}: one block, " +
        "per-example gradient summed over the uses";

    private static string FisherText(PreconditionerOptions o) => o.Structure == CurvatureStructure.HessianFree
        ? "exact Fisher (GGN)"
        : o.Fisher switch
        {
            FisherKind.Empirical => "empirical Fisher",
            FisherKind.MonteCarlo => string.Create(CultureInfo.InvariantCulture, $"Monte-Carlo Fisher (k = {o.MonteCarloSamples})"),
            FisherKind.Exact => "exact Fisher (GGN)",
            _ => o.Fisher.ToString(),
        };

    /// <summary>A few lines for a console: totals, then one line per uncovered tensor and one per covered layer.</summary>
    public IReadOnlyList<string> SummaryLines()
    {
        var lines = new List<string>();
        long cov = Covered.Sum(e => e.Count), all = Entries.Sum(e => e.Count);
        lines.Add(string.Create(CultureInfo.InvariantCulture,
            $"natural gradient covers {Covered.Count()} of {Entries.Count} parameter tensors ({cov:N0} of {all:N0} parameters)"));
        foreach (var group in Covered.GroupBy(e => (e.Layer, e.Kind, e.Treatment)))
            lines.Add($"  {group.Key.Layer} ({group.Key.Kind}: {string.Join(", ", group.Select(e => e.Parameter[(e.Parameter.LastIndexOf('.') + 1)..]))}): {group.Key.Treatment}");
        foreach (var e in Uncovered)
            lines.Add($"  {e.Parameter} ({e.Kind}): {e.Treatment}");
        return lines;
    }

    /// <summary>One line per parameter tensor: name, shape, kind, treatment.</summary>
    public override string ToString() => string.Join(Environment.NewLine, Entries.Select(e =>
        $"{e.Parameter} [{string.Join("×", e.Shape)}] {e.Kind}: {(e.Covered ? "" : "NOT COVERED, ")}{e.Treatment}"));
}
