using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Lifecycle;

/// <summary>Saving and reloading an optimiser's state dict, and the check that a resumed run takes the uninterrupted steps.</summary>
internal static class ResumeCheck
{
    public static byte[] Save(NaturalGradientStateDict state)
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) state.save(w);
        return stream.ToArray();
    }

    public static NaturalGradientStateDict Load(byte[] bytes)
    {
        using var r = new BinaryReader(new MemoryStream(bytes));
        return NaturalGradientStateDict.load(r);
    }

    /// <summary>
    /// Trains <paramref name="model"/>(3) for <paramref name="steps"/> steps straight; trains another <paramref name="model"/>(3)
    /// for <paramref name="stopAfter"/> steps, saves the state dict (handed to <paramref name="inspect"/>), copies the weights
    /// into <paramref name="model"/>(99), loads the state into a fresh optimiser and takes the remaining steps; asserts that
    /// every parameter equals the straight run's bit for bit.
    /// </summary>
    public static void AssertResumedRunEqualsStraightRun<TModel>(Func<long, TModel> model, ILikelihood likelihood, NaturalGradientOptions options,
        Action<NaturalGradientDescent, int, int> run, int steps, int stopAfter, string label, Action<NaturalGradientStateDict>? inspect = null)
        where TModel : nn.Module<Tensor, Tensor>
    {
        var straight = model(3);
        using (var ngd = new NaturalGradientDescent(straight, likelihood, options)) run(ngd, 0, steps);

        var first = model(3);
        byte[] bytes;
        using (var ngd = new NaturalGradientDescent(first, likelihood, options))
        {
            run(ngd, 0, stopAfter);
            using var state = ngd.state_dict();
            inspect?.Invoke(state);
            bytes = Save(state);
        }
        var resumed = model(99);
        using (no_grad())
            foreach (var ((_, to), (_, from)) in resumed.named_parameters().Zip(first.named_parameters())) to.copy_(from);
        using (var ngd = new NaturalGradientDescent(resumed, likelihood, options))
        {
            using (var state = Load(bytes)) ngd.load_state_dict(state);
            run(ngd, stopAfter, steps);
        }
        foreach (var ((name, a), (_, b)) in resumed.named_parameters().Zip(straight.named_parameters()))
            Assert.True(a.eq(b).all().item<bool>(), $"{label}parameter {name} differs after resume");
    }
}
