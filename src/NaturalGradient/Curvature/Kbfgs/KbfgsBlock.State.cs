using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Optim;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kbfgs;

public sealed partial class KbfgsBlock : ICurvatureBlockState
{
    /// <summary>
    /// Writes A, the quasi-Newton inverse H_g (the dense matrix, or the L-BFGS pairs with their ρ and h₀), the mean
    /// eigenvalue of G₀ that set H_g⁰, the λ of the last <see cref="Precondition"/> (μ₂ of the next secant pair) and the
    /// count of secant updates. The "before" record of a secant pair is not written: a step's pair is complete before
    /// the step returns, and the next <see cref="Update"/> records a new one; (A + √λ I)⁻¹ is rebuilt from A.
    /// </summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _a.ExportState(prefix + "activation_factor", state);
        state.Numbers[prefix + "mean_eigenvalue_g"] = _meanEigenvalueG;
        state.Numbers[prefix + "last_damping"] = _lastDamping;
        state.Numbers[prefix + "secant_updates"] = SecantUpdates;
        switch (_h)
        {
            case DenseBfgsInverse dense:
                state.Numbers[prefix + "inverse_kind"] = DenseKind;
                state.SetTensor(prefix + "inverse", dense.Matrix);
                break;
            case LimitedMemoryBfgsInverse limited:
                state.Numbers[prefix + "inverse_kind"] = LimitedKind;
                state.Numbers[prefix + "inverse_initial_scale"] = limited.InitialScale;
                state.Numbers[prefix + "inverse_pairs"] = limited.Count;
                int i = 0;
                foreach (var (s, y, rho) in limited.Pairs)
                {
                    state.SetTensor($"{prefix}inverse_s.{i}", s);
                    state.SetTensor($"{prefix}inverse_y.{i}", y);
                    state.Numbers[$"{prefix}inverse_rho.{i}"] = rho;
                    i++;
                }
                break;
            default:
                state.Numbers[prefix + "inverse_kind"] = NoInverse;
                break;
        }
    }

    /// <inheritdoc/>
    /// <exception cref="InvalidDataException">A key is missing, a tensor has the wrong shape, or the inverse's kind does not
    /// match <see cref="KbfgsOptions.Memory"/> (dense for 0, L-BFGS otherwise, with at most that many pairs).</exception>
    public void ImportState(string prefix, NaturalGradientStateDict state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long inputs = Layer.InputDim, outputs = Layer.OutputDim;
        int kind = checked((int)state.GetNumber(prefix + "inverse_kind"));
        int expected = Options.Memory == 0 ? DenseKind : LimitedKind;
        if (kind != NoInverse && kind != expected)
            throw new InvalidDataException(
                $"the state's K-BFGS inverse for layer '{Layer.Name}' is {(kind == DenseKind ? "dense" : "L-BFGS")}, but this block keeps " +
                (Options.Memory == 0 ? "a dense one (Memory = 0)" : $"an L-BFGS one (Memory = {Options.Memory})"));
        IInverseFactor? h = null;
        try
        {
            if (kind == DenseKind)
            {
                using var matrix = state.GetTensor(prefix + "inverse", new[] { outputs, outputs });
                h = new DenseBfgsInverse(matrix);
            }
            else if (kind == LimitedKind)
            {
                int pairs = checked((int)state.GetNumber(prefix + "inverse_pairs"));
                if (pairs < 0 || pairs > Options.Memory)
                    throw new InvalidDataException($"the state's L-BFGS inverse for layer '{Layer.Name}' holds {pairs} pairs, more than Memory = {Options.Memory}");
                double scale = state.GetNumber(prefix + "inverse_initial_scale");
                if (!(scale > 0) || double.IsInfinity(scale))
                    throw new InvalidDataException($"the state's L-BFGS inverse for layer '{Layer.Name}' has h₀ = {scale}, expected a finite number > 0");
                var dtype = state.Tensors.TryGetValue(prefix + "activation_factor", out var a) ? a.dtype : ScalarType.Float32;
                var limited = new LimitedMemoryBfgsInverse(outputs, Options.Memory, scale, dtype);
                h = limited;
                for (int i = 0; i < pairs; i++)
                {
                    using var s = state.GetTensor($"{prefix}inverse_s.{i}", new[] { outputs });
                    using var y = state.GetTensor($"{prefix}inverse_y.{i}", new[] { outputs });
                    limited.Restore(s, y, state.GetNumber($"{prefix}inverse_rho.{i}"));
                }
            }
            _a.ImportState(prefix + "activation_factor", state, new[] { inputs, inputs });
            _meanEigenvalueG = state.GetNumber(prefix + "mean_eigenvalue_g");
            _lastDamping = state.GetNumber(prefix + "last_damping");
            SecantUpdates = checked((int)state.GetNumber(prefix + "secant_updates"));
        }
        catch
        {
            h?.Dispose();
            throw;
        }
        _h?.Dispose();
        _h = h;
        _meanActivation?.Dispose(); _meanGradient?.Dispose(); _weights?.Dispose(); _aInverse?.Dispose();
        _meanActivation = _meanGradient = _weights = _aInverse = null;
        _aInverseDamping = double.NaN;
        _aChanged = true;
    }

    private const int NoInverse = 0, DenseKind = 1, LimitedKind = 2;
}
