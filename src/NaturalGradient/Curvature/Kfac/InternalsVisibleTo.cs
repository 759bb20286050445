using System.Runtime.CompilerServices;

// EkfacBlock.UseKroneckerScaling is an analysis hook for the EKFAC ⇔ K-FAC identity test.
[assembly: InternalsVisibleTo("NaturalGradient.Tests")]
