using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Blocks;

/// <summary>
/// One layer's dense metric block M_l = w J_lᵀ J_l (p_l × p_l) and the damped solve (M_l + λI)⁻¹ g_l
/// (block-diagonal NGD, seed 000 eq 38–39). Cost: O(n p_l²) to form, O(p_l³) to solve; memory O(p_l²).
/// </summary>
public sealed class DenseBlock : ICurvatureBlock
{
    private readonly MetricForm _form;
    private Tensor? _matrix;

    public DenseBlock(MetricForm form = MetricForm.Uncentered) => _form = form;

    public void Update(LayerStatistics statistics, long step)
    {
        var j = GradientSamples.Jacobian(statistics, _form);
        _matrix = j.t().mm(j).mul(statistics.Weight);
    }

    private Tensor Matrix => _matrix ?? throw new InvalidOperationException("the block has no statistics yet: call Update first");

    public Tensor Precondition(Tensor gradient, double damping)
    {
        var m = Matrix;
        var damped = m + damping * eye(m.size(0), dtype: m.dtype, device: m.device);
        return SafeCholesky.Solve(damped, gradient.flatten().to_type(m.dtype)).reshape(gradient.Sizes()).to_type(gradient.dtype);
    }

    public Tensor Multiply(Tensor v) => Matrix.mv(v.flatten().to_type(Matrix.dtype)).reshape(v.Sizes()).to_type(v.dtype);

    public Tensor ToDense() => Matrix.clone();

    public double MeanCurvature() => Matrix.diagonal().mean().ToDouble();

    public void Dispose() => _matrix = null;
}
