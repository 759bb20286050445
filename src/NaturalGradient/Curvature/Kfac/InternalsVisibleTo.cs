using System.Runtime.CompilerServices;

// EkfacBlock.UseKroneckerScaling is an analysis hook for the EKFAC ⇔ K-FAC identity test; the benchmark times
// RunningAverage.AccumulateSymmetricGram against one addmm (perf --part kernels).
[assembly: InternalsVisibleTo("NaturalGradient.Tests")]
[assembly: InternalsVisibleTo("NaturalGradient.Bench")]
// GeneratorState (checked generator restores) is shared with the trainer.
[assembly: InternalsVisibleTo("NaturalGradient.Training")]
