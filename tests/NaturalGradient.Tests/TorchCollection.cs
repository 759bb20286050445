namespace NaturalGradient.Tests;

/// <summary>Tests that touch torch's global RNG run one at a time, so seeded results are reproducible.</summary>
[CollectionDefinition("Torch", DisableParallelization = true)]
public class TorchCollection { }
