using NaturalGradient.Training.Data;
using NaturalGradient.Training.Data.Csv;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Data;

public class CsvLoaderTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>A table whose column "id" numbers the rows 1…m, with a varying feature and a target.</summary>
    private string RowTable(int m)
    {
        var lines = new List<string> { "id,x,y" };
        for (int i = 1; i <= m; i++) lines.Add($"{i},{i * i % 17},{2.5 * i}");
        return _folder.Write("rows.csv", string.Join("\n", lines) + "\n");
    }

    private static double[] Column(Tensor t, int j) => t[TensorIndex.Colon, j].data<double>().ToArray();

    [Fact]
    public void Split_IsDisjoint_CoversAllRows_AndHasTheRequestedTestSize()
    {
        var path = RowTable(50);
        using var d = CsvDatasetLoader.Load(path, new DataOptions { TargetColumn = "y", StandardizeFeatures = false, TestFraction = 0.2 });
        Assert.Equal(40, d.TrainCount);
        Assert.Equal(10, d.TestCount);
        var ids = Column(d.TrainX, 0).Concat(Column(d.TestX, 0)).Select(v => (int)v).Order().ToArray();
        Assert.Equal(Enumerable.Range(1, 50), ids);
    }

    [Fact]
    public void Split_IsDeterministicForASeed_AndDiffersAcrossSeeds()
    {
        var path = RowTable(60);
        DataOptions Options(long seed) => new() { TargetColumn = "y", StandardizeFeatures = false, Seed = seed };
        using var a = CsvDatasetLoader.Load(path, Options(7));
        using var b = CsvDatasetLoader.Load(path, Options(7));
        using var c = CsvDatasetLoader.Load(path, Options(8));
        Assert.Equal(Column(a.TestX, 0), Column(b.TestX, 0));
        Assert.Equal(Column(a.TrainX, 0), Column(b.TrainX, 0));
        Assert.NotEqual(Column(a.TestX, 0).Order(), Column(c.TestX, 0).Order());
    }

    [Fact]
    public void Targets_FollowTheirRowsThroughTheSplit()
    {
        var path = RowTable(30);
        using var d = CsvDatasetLoader.Load(path, new DataOptions { TargetColumn = "y", StandardizeFeatures = false, StandardizeTargets = false });
        Assert.Equal(new long[] { d.TrainCount, 1 }, d.TrainY.shape);
        Assert.Equal(Column(d.TrainX, 0).Select(i => 2.5 * i), Column(d.TrainY, 0));
        Assert.Equal(Column(d.TestX, 0).Select(i => 2.5 * i), Column(d.TestY, 0));
        Assert.Equal(ScalarType.Float64, d.TrainX.dtype);
        Assert.Equal(ScalarType.Float64, d.TrainY.dtype);
    }

    [Fact]
    public void Standardisation_UsesTrainingStatisticsOnly()
    {
        using var raw = DatasetCatalog.Load("boston", new DataOptions { StandardizeFeatures = false, StandardizeTargets = false, Seed = 3 });
        using var std = DatasetCatalog.Load("boston", new DataOptions { Seed = 3 });
        using var scope = NewDisposeScope();

        var trainMean = raw.TrainX.mean(new long[] { 0 });
        var trainStd = raw.TrainX.std(0, unbiased: false);
        TensorAssert.Close((raw.TrainX - trainMean) / trainStd, std.TrainX, rtol: 1e-12, label: "train features");
        TensorAssert.Close((raw.TestX - trainMean) / trainStd, std.TestX, rtol: 1e-12, label: "test features use train statistics");
        TensorAssert.Close(zeros(12, dtype: ScalarType.Float64), std.TrainX.mean(new long[] { 0 }), atol: 1e-12, label: "train mean");
        TensorAssert.Close(ones(12, dtype: ScalarType.Float64), std.TrainX.std(0, unbiased: false), rtol: 1e-12, label: "train std");
        Assert.True(std.TestX.mean(new long[] { 0 }).abs().max().item<double>() > 1e-3, "the test mean is not forced to 0");

        var yMean = raw.TrainY.mean().item<double>();
        var yStd = raw.TrainY.std(unbiased: false).item<double>();
        TensorAssert.Close((raw.TestY - yMean) / yStd, std.TestY, rtol: 1e-12, label: "test targets use train statistics");
        Assert.Equal(yMean, std.TargetScaling!.Mean[0], 12);
        TensorAssert.Close(raw.TestY, std.TargetScaling.Unapply(std.TestY), rtol: 1e-12, label: "unapply");
        Assert.Null(raw.FeatureScaling);
    }

    [Fact]
    public void ConstantColumn_IsCentredNotDividedByZero()
    {
        var path = _folder.Write("c.csv", "k,x,y\n5,1,1\n5,2,2\n5,3,3\n5,4,4\n5,5,5\n");
        using var d = CsvDatasetLoader.Load(path, new DataOptions { TargetColumn = "y" });
        Assert.Equal(1.0, d.FeatureScaling!.Scale[0]);
        Assert.All(Column(d.TrainX, 0).Concat(Column(d.TestX, 0)), v => Assert.Equal(0.0, v));
        Assert.False(d.TrainX.isnan().any().item<bool>());
    }

    [Fact]
    public void MaxTrainExamples_CapsTrainingRows_LeavesTestRowsAlone()
    {
        var path = RowTable(50);
        var options = new DataOptions { TargetColumn = "y", StandardizeFeatures = false, Seed = 4 };
        using var all = CsvDatasetLoader.Load(path, options);
        using var few = CsvDatasetLoader.Load(path, options with { MaxTrainExamples = 7 });
        Assert.Equal(7, few.TrainCount);
        Assert.Equal(Column(all.TestX, 0), Column(few.TestX, 0));
        Assert.Subset(Column(all.TrainX, 0).ToHashSet(), Column(few.TrainX, 0).ToHashSet());
    }

    [Fact]
    public void StringLabels_MapToSortedClassIndices()
    {
        var path = _folder.Write("s.csv", "x,animal\n1,emu\n2,cat\n3,dog\n4,cat\n5,emu\n6,dog\n7,cat\n8,emu\n9,dog\n10,cat\n");
        using var d = CsvDatasetLoader.Load(path, new DataOptions { TargetColumn = "animal", StandardizeFeatures = false, TestFraction = 0.3 });
        Assert.Equal(TaskKind.Classification, d.Task);
        Assert.Equal(new[] { "cat", "dog", "emu" }, d.ClassNames);
        Assert.Equal(3, d.OutputCount);
        Assert.Equal(ScalarType.Int64, d.TrainY.dtype);
        Assert.Equal(new long[] { d.TrainCount }, d.TrainY.shape);
        string[] byX = { "", "emu", "cat", "dog", "cat", "emu", "dog", "cat", "emu", "dog", "cat" };
        var x = Column(d.TrainX, 0).Concat(Column(d.TestX, 0)).ToArray();
        var y = d.TrainY.data<long>().Concat(d.TestY.data<long>()).ToArray();
        for (int i = 0; i < x.Length; i++) Assert.Equal(byX[(int)x[i]], d.ClassNames![(int)y[i]]);
    }

    [Fact]
    public void IntegerLabels_SortNumerically_WhenClassificationIsAsked()
    {
        var path = _folder.Write("i.csv", "x,label\n1,10\n2,2\n3,1\n4,10\n5,2\n6,1\n7,2.0\n");
        using var inferred = CsvDatasetLoader.Load(path, new DataOptions { TargetColumn = "label" });
        Assert.Equal(TaskKind.Regression, inferred.Task);

        using var d = CsvDatasetLoader.Load(path, new DataOptions { TargetColumn = "label", Task = TaskKind.Classification, StandardizeFeatures = false, TestFraction = 0 });
        Assert.Equal(new[] { "1", "2", "10" }, d.ClassNames);
        var x = Column(d.TrainX, 0);
        var y = d.TrainY.data<long>().ToArray();
        long[] byX = { -1, 2, 1, 0, 2, 1, 0, 1 };
        for (int i = 0; i < x.Length; i++) Assert.Equal(byX[(int)x[i]], y[i]);
    }

    [Fact]
    public void QuotedFields_HoldDelimitersQuotesAndNewlines()
    {
        var path = _folder.Write("q.csv", "\"the x\",note,label\n1,\"a, b\",\"say \"\"hi\"\"\"\n2,\"line\r\nbreak\",plain\n3, spaced ,\"say \"\"hi\"\"\"\n");
        using var d = CsvDatasetLoader.Load(path, new DataOptions { TargetColumn = "label", IgnoreColumns = new[] { "note" }, TestFraction = 0 });
        Assert.Equal(new[] { "plain", "say \"hi\"" }, d.ClassNames);
        Assert.Equal(new[] { "the x" }, d.FeatureNames);
        Assert.Equal(3, d.TrainCount);
    }

    [Fact]
    public void WhitespaceDelimited_HeaderlessFile_WithColumnNames()
    {
        const string ecoliLike =
            "AAT_ECOLI   0.49  0.29  0.48  0.50  0.56  0.24  0.35  cp\n" +
            "ACEA_ECOLI  0.07  0.40  0.48  0.50  0.54  0.35  0.44  cp\n" +
            "  ACEK_ECOLI\t0.56  0.40  0.48  0.50  0.49  0.37  0.46  im  \n" +
            "\n" +
            "ACKA_ECOLI  0.59  0.49  0.48  0.50  0.52  0.45  0.36  pp\n" +
            "ADI_ECOLI   0.23  0.32  0.48  0.50  0.55  0.25  0.35  im\n";
        var path = _folder.Write("ecoli.data", ecoliLike);
        var names = new[] { "name", "mcg", "gvh", "lip", "chg", "aac", "alm1", "alm2", "class" };
        var options = new DataOptions
        {
            Delimiter = ' ', HasHeader = false, ColumnNames = names, TargetColumn = "class",
            IgnoreColumns = new[] { "name" }, TestFraction = 0, StandardizeFeatures = false,
        };
        using var d = CsvDatasetLoader.Load(path, options);
        Assert.Equal(5, d.TrainCount);
        Assert.Equal(new long[] { 5, 7 }, d.TrainX.shape);
        Assert.Equal(new[] { "cp", "im", "pp" }, d.ClassNames);
        Assert.Equal(names[1..8], d.FeatureNames);
        Assert.Contains(0.56, Column(d.TrainX, 0));

        using var unnamed = CsvDatasetLoader.Load(path, options with { ColumnNames = null, TargetColumn = "column9", IgnoreColumns = new[] { "column1" } });
        Assert.Equal("column2", unnamed.FeatureNames![0]);

        var bad = _folder.Write("bad.data", ecoliLike.Replace("0.59  0.49", "0.59"));
        DataErrorAssert.At(() => CsvDatasetLoader.Load(bad, options).Dispose(), bad, 5, 9, "(class)", "too few fields");
    }

    [Fact]
    public void TabDelimited_KeepsEmptyFieldsAsMissing()
    {
        var path = _folder.Write("t.tsv", "a\tb\ty\n1\t2\t3\n4\t\t6\n");
        DataErrorAssert.At(() => CsvDatasetLoader.Load(path, new DataOptions { TargetColumn = "y", Delimiter = '\t' }).Dispose(), path, 3, 2, "(b)", "missing value");
    }

    [Fact]
    public void ConvertingDtype_KeepsMetadata_AndOwnsItsTensors()
    {
        var path = RowTable(10);
        using var d = CsvDatasetLoader.Load(path, new DataOptions { TargetColumn = "y" });
        using (var f = d.To(ScalarType.Float32))
        {
            Assert.Equal(ScalarType.Float32, f.TrainX.dtype);
            Assert.Same(d.FeatureScaling, f.FeatureScaling);
            Assert.Equal(d.FeatureNames, f.FeatureNames);
        }
        Assert.Equal(8, d.TrainX.shape[0]);
    }
}
