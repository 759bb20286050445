namespace NaturalGradient.Training;

/// <summary>
/// Training methods by name. <see cref="Default"/> holds the first-order baselines (sgd, adam) and the
/// natural-gradient methods registered in <c>OptimizerCatalog.NaturalGradient.cs</c>.
/// </summary>
public sealed partial class OptimizerCatalog
{
    private readonly SortedDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    private sealed record Entry(string Description, Func<OptimizerContext, ITrainingOptimizer> Factory);

    /// <summary>The catalog with every built-in method.</summary>
    public static OptimizerCatalog Default { get; } = CreateDefault();

    /// <summary>Registered names, sorted.</summary>
    public IReadOnlyList<string> Names => _entries.Keys.ToList();

    /// <summary>Whether <paramref name="name"/> (case-insensitive) is registered.</summary>
    public bool Contains(string name) => _entries.ContainsKey(Normalize(name));

    /// <summary>One-line description of a method, for help texts.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Unknown name (the message lists the known ones).</exception>
    public string Describe(string name) => Find(name).Description;

    /// <summary>Registers (or replaces) a method.</summary>
    /// <param name="name">Lower-case name used on the command line (e.g. "kfac").</param>
    /// <param name="description">One line for help texts.</param>
    /// <param name="factory">Creates the method for a run; it may throw <see cref="ArgumentOutOfRangeException"/> for unusable settings.</param>
    /// <returns>This catalog, for chaining.</returns>
    public OptimizerCatalog Register(string name, string description, Func<OptimizerContext, ITrainingOptimizer> factory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(factory);
        _entries[Normalize(name)] = new Entry(description ?? "", factory);
        return this;
    }

    /// <summary>Creates the method named by <c>context.Settings.Name</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Unknown name: "Name must be one of adam, sgd, got 'foo'".</exception>
    public ITrainingOptimizer Create(OptimizerContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Find(context.Settings.Name).Factory(context);
    }

    private Entry Find(string name) =>
        _entries.TryGetValue(Normalize(name), out var entry)
            ? entry
            : throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.Name), name,
                $"{nameof(OptimizerSettings.Name)} must be one of {string.Join(", ", Names)}, got '{name}'");

    private static string Normalize(string name) => (name ?? "").Trim().ToLowerInvariant();

    /// <summary>A catalog with sgd, adam and the natural-gradient methods.</summary>
    public static OptimizerCatalog CreateDefault()
    {
        var catalog = new OptimizerCatalog()
            .Register("sgd", "stochastic gradient descent with momentum and weight decay (torch.optim.SGD)",
                TorchTrainingOptimizer.Sgd)
            .Register("adam", "Adam (torch.optim.Adam): beta1, beta2, eps, weight decay",
                TorchTrainingOptimizer.Adam);
        RegisterNaturalGradient(catalog);
        RegisterMethods(catalog);
        return catalog;
    }
}
