using NaturalGradient.Training.Data.Idx;

namespace NaturalGradient.Tests.Data;

/// <summary>A fact that is skipped, with the reason shown, when the Debian package's Fashion-MNIST files are absent.</summary>
public sealed class RequiresFashionMnistFactAttribute : FactAttribute
{
    public RequiresFashionMnistFactAttribute()
    {
        if (!FashionMnist.IsAvailable())
            Skip = $"Fashion-MNIST files absent from {FashionMnist.DefaultDirectory}: apt-get install dataset-fashion-mnist to run this test";
    }
}
