using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature;

/// <summary>
/// Exact NGD: one dense metric over all covered parameters, M = w JᵀJ with J = [J_1 … J_L] (n × p), and the
/// damped solve (M + λI)⁻¹ g (seed 000 eq 36–37). Cost O(n p² + p³) per step, memory O(p²): small models only.
/// </summary>
public sealed class ExactCurvature : ICurvature
{
    private readonly MetricForm _form;
    private Tensor? _matrix;

    /// <param name="maxParameters">Refuse models with more covered parameters than this (default 20 000: a 3.2 GB float64 matrix).</param>
    /// <param name="form">Uncentred Fisher or centred covariance.</param>
    public ExactCurvature(long maxParameters = 20_000, MetricForm form = MetricForm.Uncentered)
    {
        if (maxParameters < 1) throw new ArgumentOutOfRangeException(nameof(maxParameters), maxParameters, "maxParameters must be ≥ 1");
        MaxParameters = maxParameters;
        _form = form;
    }

    public long MaxParameters { get; }

    /// <summary>Throws if the layers hold more parameters than <see cref="MaxParameters"/>.</summary>
    public void CheckSize(IEnumerable<ILayerAdapter> layers)
    {
        long p = layers.Sum(l => l.ParameterCount);
        if (p > MaxParameters)
            throw new ModelNotSupportedException(
                $"exact NGD needs a dense {p}×{p} Fisher ({p} covered parameters > the limit of {MaxParameters}); " +
                "use block, tengrad, kfac or hf, or raise the limit (--max-exact-params / MaxExactParameters)");
    }

    public void Update(CurvatureBatch batch)
    {
        CheckSize(batch.Layers.Select(s => s.Adapter));
        var j = cat(batch.Layers.Select(s => GradientSamples.Jacobian(s, _form)).ToArray(), 1);
        _matrix = j.t().mm(j).mul(batch.Layers[0].Weight);
    }

    private Tensor Matrix => _matrix ?? throw new InvalidOperationException("no statistics yet: call Update first");

    /// <summary>The dense metric (p × p), layers in order, each W̄ row-major.</summary>
    public Tensor ToDense() => Matrix.clone();

    public IReadOnlyList<Tensor> Precondition(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients, double damping)
    {
        var m = Matrix;
        var g = cat(gradients.Select(t => t.flatten().to_type(m.dtype)).ToArray());
        var x = SafeCholesky.Solve(m + damping * eye(m.size(0), dtype: m.dtype, device: m.device), g);
        return Split(x, gradients);
    }

    public IReadOnlyList<Tensor> Multiply(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors)
    {
        var v = cat(vectors.Select(t => t.flatten().to_type(Matrix.dtype)).ToArray());
        return Split(Matrix.mv(v), vectors);
    }

    private static IReadOnlyList<Tensor> Split(Tensor flat, IReadOnlyList<Tensor> like)
    {
        var result = new List<Tensor>(like.Count);
        long offset = 0;
        foreach (var t in like)
        {
            long n = t.numel();
            result.Add(flat.narrow(0, offset, n).reshape(t.Sizes()).to_type(t.dtype));
            offset += n;
        }
        return result;
    }

    public void Dispose() => _matrix = null;
}

/// <summary>The model is outside what the chosen curvature method can handle (the message says why and what to use instead).</summary>
public sealed class ModelNotSupportedException : InvalidOperationException
{
    public ModelNotSupportedException(string message) : base(message) { }
}
