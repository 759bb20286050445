using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training.Data;

/// <summary>
/// Turns parsed table rows into a <see cref="Dataset"/>: seeded train/test split, optional cap on training rows,
/// standardisation fitted on the training rows only, float64 feature and regression-target tensors, int64 class indices.
/// </summary>
public static class TabularDatasetBuilder
{
    /// <summary>Builds a dataset; the row arrays are standardised in place.</summary>
    /// <param name="name">Dataset name.</param>
    /// <param name="features">One array of d features per row.</param>
    /// <param name="featureNames">The d feature names.</param>
    /// <param name="targetName">The target (or label) column name.</param>
    /// <param name="regressionTargets">One target per row for regression, else null.</param>
    /// <param name="classIndices">One class index per row for classification, else null.</param>
    /// <param name="classNames">Class names for classification.</param>
    /// <param name="options">Split, seed, row cap and standardisation switches.</param>
    /// <param name="provenance">One line saying where the data came from.</param>
    public static Dataset Build(string name, IReadOnlyList<double[]> features, IReadOnlyList<string> featureNames,
        string targetName, IReadOnlyList<double>? regressionTargets, IReadOnlyList<long>? classIndices,
        IReadOnlyList<string>? classNames, DataOptions options, string? provenance)
    {
        bool regression = regressionTargets is not null;
        if (regression == (classIndices is not null))
            throw new ArgumentException("give exactly one of regression targets and class indices");
        int m = features.Count;
        if ((regressionTargets?.Count ?? classIndices!.Count) != m)
            throw new ArgumentException("features and targets have different row counts");

        var split = TrainTestSplit.Create(m, options.TestFraction, options.Seed, options.MaxTrainExamples);
        var trainRows = split.TrainRows.Select(i => features[i]).ToList();
        var testRows = split.TestRows.Select(i => features[i]).ToList();

        ColumnScaling? featureScaling = null;
        if (options.StandardizeFeatures)
        {
            featureScaling = ColumnScaling.Fit(trainRows);
            featureScaling.ApplyInPlace(trainRows);
            featureScaling.ApplyInPlace(testRows);
        }

        int d = featureNames.Count;
        var trainX = Matrix(trainRows, d);
        var testX = Matrix(testRows, d);
        Tensor trainY, testY;
        ColumnScaling? targetScaling = null;
        if (regression)
        {
            var trainT = split.TrainRows.Select(i => new[] { regressionTargets![i] }).ToList();
            var testT = split.TestRows.Select(i => new[] { regressionTargets![i] }).ToList();
            if (options.StandardizeTargets)
            {
                targetScaling = ColumnScaling.Fit(trainT);
                targetScaling.ApplyInPlace(trainT);
                targetScaling.ApplyInPlace(testT);
            }
            trainY = Matrix(trainT, 1);
            testY = Matrix(testT, 1);
        }
        else
        {
            trainY = tensor(split.TrainRows.Select(i => classIndices![i]).ToArray(), dtype: ScalarType.Int64);
            testY = tensor(split.TestRows.Select(i => classIndices![i]).ToArray(), dtype: ScalarType.Int64);
        }

        return new Dataset(name, regression ? TaskKind.Regression : TaskKind.Classification,
            trainX, trainY, testX, testY, regression ? null : classNames, provenance)
        {
            FeatureNames = featureNames.ToArray(),
            TargetNames = new[] { targetName },
            FeatureScaling = featureScaling,
            TargetScaling = targetScaling,
        };
    }

    private static Tensor Matrix(IReadOnlyList<double[]> rows, int columns)
    {
        var flat = new double[rows.Count * columns];
        for (int i = 0; i < rows.Count; i++) Array.Copy(rows[i], 0, flat, i * columns, columns);
        return tensor(flat, new long[] { rows.Count, columns }, dtype: ScalarType.Float64);
    }
}
