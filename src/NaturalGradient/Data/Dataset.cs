using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Data;

/// <summary>Regression (Gaussian likelihood) or classification (categorical likelihood).</summary>
public enum TaskKind { Regression, Classification }

/// <summary>
/// A train/test split held as tensors. Features are float (m × d, or m × c × h × w for images); regression
/// targets are float m × o; classification targets are int64 class indices m.
/// </summary>
public sealed class Dataset : IDisposable
{
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

    public string Name { get; }
    public TaskKind Task { get; }
    public Tensor TrainX { get; }
    public Tensor TrainY { get; }
    public Tensor TestX { get; }
    public Tensor TestY { get; }
    public IReadOnlyList<string>? ClassNames { get; }
    public string? Provenance { get; }

    /// <summary>Input shape of one example (without the batch dimension).</summary>
    public long[] InputShape => TrainX.shape.Skip(1).ToArray();

    /// <summary>Network outputs needed: number of classes, or regression target columns.</summary>
    public long OutputCount => Task == TaskKind.Classification ? ClassNames!.Count : TrainY.shape[1];

    public long TrainCount => TrainX.shape[0];
    public long TestCount => TestX.shape[0];

    /// <summary>Converts features (and regression targets) to <paramref name="dtype"/>.</summary>
    public Dataset To(ScalarType dtype) => new(Name, Task, TrainX.to_type(dtype),
        Task == TaskKind.Regression ? TrainY.to_type(dtype) : TrainY, TestX.to_type(dtype),
        Task == TaskKind.Regression ? TestY.to_type(dtype) : TestY, ClassNames, Provenance);

    public void Dispose()
    {
        TrainX.Dispose(); TrainY.Dispose(); TestX.Dispose(); TestY.Dispose();
    }
}

/// <summary>Bad input data: the message names the file, line and column where known.</summary>
public sealed class DataFormatException : Exception
{
    public DataFormatException(string message) : base(message) { }
}
