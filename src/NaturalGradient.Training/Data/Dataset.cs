using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training.Data;

/// <summary>Regression (Gaussian likelihood) or classification (categorical likelihood).</summary>
public enum TaskKind
{
    /// <summary>Real-valued targets, m × o.</summary>
    Regression,

    /// <summary>Class-index targets (int64), m.</summary>
    Classification,
}

/// <summary>
/// A train/test split held as tensors. Features are float (m × d for tables, float64; m × c × h × w for
/// images, float32); regression targets are float m × o; classification targets are int64 class indices m.
/// The dataset owns its four tensors: <see cref="Dispose"/> frees them.
/// </summary>
public sealed class Dataset : IDisposable
{
    /// <summary>Wraps tensors that the new dataset takes ownership of.</summary>
    public Dataset(string name, TaskKind task, Tensor trainX, Tensor trainY, Tensor testX, Tensor testY,
        IReadOnlyList<string>? classNames = null, string? provenance = null)
    {
        Name = name;
        Task = task;
        TrainX = trainX;
        TrainY = trainY;
        TestX = testX;
        TestY = testY;
        ClassNames = classNames;
        Provenance = provenance;
    }

    /// <summary>Short name (catalog name or file name without extension).</summary>
    public string Name { get; }

    /// <summary>Regression or classification.</summary>
    public TaskKind Task { get; }

    /// <summary>Training features, first dimension = examples.</summary>
    public Tensor TrainX { get; }

    /// <summary>Training targets: m × o floats (regression) or m int64 class indices (classification).</summary>
    public Tensor TrainY { get; }

    /// <summary>Test features, first dimension = examples.</summary>
    public Tensor TestX { get; }

    /// <summary>Test targets, like <see cref="TrainY"/>.</summary>
    public Tensor TestY { get; }

    /// <summary>Class names in class-index order (classification only).</summary>
    public IReadOnlyList<string>? ClassNames { get; }

    /// <summary>One line saying where the data came from.</summary>
    public string? Provenance { get; }

    /// <summary>Names of the feature columns in feature order (tables only).</summary>
    public IReadOnlyList<string>? FeatureNames { get; init; }

    /// <summary>Names of the target columns (regression tables) or the label column (classification tables).</summary>
    public IReadOnlyList<string>? TargetNames { get; init; }

    /// <summary>The standardisation applied to the features (fitted on the training split), or null if none.</summary>
    public ColumnScaling? FeatureScaling { get; init; }

    /// <summary>The standardisation applied to regression targets (fitted on the training split), or null if none.
    /// <see cref="ColumnScaling.Unapply"/> turns predictions back into the data's units.</summary>
    public ColumnScaling? TargetScaling { get; init; }

    /// <summary>Input shape of one example (without the batch dimension).</summary>
    public long[] InputShape => TrainX.shape.Skip(1).ToArray();

    /// <summary>Network outputs needed: number of classes, or regression target columns.</summary>
    public long OutputCount => Task == TaskKind.Classification ? ClassNames!.Count : TrainY.shape[1];

    /// <summary>Training examples.</summary>
    public long TrainCount => TrainX.shape[0];

    /// <summary>Test examples.</summary>
    public long TestCount => TestX.shape[0];

    /// <summary>Converts features (and regression targets) to <paramref name="dtype"/>; the copy owns new tensors.</summary>
    public Dataset To(ScalarType dtype) => new(Name, Task, TrainX.to_type(dtype),
        Task == TaskKind.Regression ? TrainY.to_type(dtype) : TrainY.alias(), TestX.to_type(dtype),
        Task == TaskKind.Regression ? TestY.to_type(dtype) : TestY.alias(), ClassNames, Provenance)
    {
        FeatureNames = FeatureNames,
        TargetNames = TargetNames,
        FeatureScaling = FeatureScaling,
        TargetScaling = TargetScaling,
    };

    /// <summary>Frees the four tensors.</summary>
    public void Dispose()
    {
        TrainX.Dispose(); TrainY.Dispose(); TestX.Dispose(); TestY.Dispose();
    }
}
