namespace NaturalGradient.Tests.Packaging;

/// <summary>
/// A fact that runs when <c>NATGRAD_PACKAGE_FEED</c> names a folder holding the packed NaturalGradient and natgrad
/// packages (<c>bash .ci/run</c> packs them and sets it), and is skipped, saying so, otherwise: these checks pack,
/// restore and build fresh projects, which takes minutes.
/// </summary>
public sealed class RequiresPackageFeedFactAttribute : FactAttribute
{
    public const string Variable = "NATGRAD_PACKAGE_FEED";

    public RequiresPackageFeedFactAttribute()
    {
        var feed = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrEmpty(feed))
            Skip = $"{Variable} is not set: run `dotnet pack NaturalGradient.slnx -c Release -o DIR` and set {Variable}=DIR (bash .ci/run does both)";
        else if (!Directory.Exists(feed))
            Skip = $"{Variable}={feed} is not a folder";
    }
}
