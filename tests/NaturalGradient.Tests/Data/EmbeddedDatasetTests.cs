using NaturalGradient.Training.Data;
using TorchSharp;

namespace NaturalGradient.Tests.Data;

public class EmbeddedDatasetTests
{
    [Fact]
    public void EmbeddedNames_AreTheFourShippedSets() =>
        Assert.Equal(new[] { "weather", "weather-class", "wine", "boston" }, DatasetCatalog.EmbeddedNames);

    [Fact]
    public void Weather_IsRegressionOfTempMax_On1461Rows()
    {
        using var d = DatasetCatalog.Load("weather", new DataOptions());
        Assert.Equal(TaskKind.Regression, d.Task);
        Assert.Equal(1461, d.TrainCount + d.TestCount);
        Assert.Equal(292, d.TestCount);
        Assert.Equal(new[] { "precipitation", "temp_min", "wind" }, d.FeatureNames);
        Assert.Equal(new[] { "temp_max" }, d.TargetNames);
        Assert.Equal(1, d.OutputCount);
        Assert.Contains("NOAA", d.Provenance);
    }

    [Fact]
    public void WeatherClass_HasFiveWeatherLabels()
    {
        using var d = DatasetCatalog.Load("weather-class", new DataOptions());
        Assert.Equal(TaskKind.Classification, d.Task);
        Assert.Equal(1461, d.TrainCount + d.TestCount);
        Assert.Equal(new[] { "drizzle", "fog", "rain", "snow", "sun" }, d.ClassNames);
        Assert.Equal(new[] { "precipitation", "temp_max", "temp_min", "wind" }, d.FeatureNames);
        var counts = torch.cat(new[] { d.TrainY, d.TestY }).bincount(null).data<long>().ToArray();
        Assert.Equal(new long[] { 54, 411, 259, 23, 714 }, counts);
    }

    [Fact]
    public void Wine_Has178RowsOf13Features_AndThreeClasses()
    {
        using var d = DatasetCatalog.Load("wine", new DataOptions());
        Assert.Equal(178, d.TrainCount + d.TestCount);
        Assert.Equal(new long[] { 13 }, d.InputShape);
        Assert.Equal(new[] { "class_0", "class_1", "class_2" }, d.ClassNames);
        var counts = torch.cat(new[] { d.TrainY, d.TestY }).bincount(null).data<long>().ToArray();
        Assert.Equal(new long[] { 59, 71, 48 }, counts);
    }

    [Fact]
    public void Boston_Has506RowsOf12Features_WithoutB()
    {
        using var d = DatasetCatalog.Load("BOSTON", new DataOptions());
        Assert.Equal(TaskKind.Regression, d.Task);
        Assert.Equal(506, d.TrainCount + d.TestCount);
        Assert.Equal(new long[] { 12 }, d.InputShape);
        Assert.DoesNotContain("B", d.FeatureNames!);
        Assert.Equal(new[] { "MEDV" }, d.TargetNames);
    }

    [Fact]
    public void EmbeddedDefaults_CanBeOverridden()
    {
        using var d = DatasetCatalog.Load("weather", new DataOptions { TargetColumn = "weather" });
        Assert.Equal(TaskKind.Classification, d.Task);
        Assert.Equal(5, d.ClassNames!.Count);
        Assert.Equal(new[] { "precipitation", "temp_max", "temp_min", "wind" }, d.FeatureNames);
    }

    [Fact]
    public void UnknownName_ListsTheDataSets()
    {
        var e = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load("ecoli", new DataOptions()));
        Assert.Equal("ecoli: no such data set or file: the data sets are weather, weather-class, wine, boston, fashion-mnist; otherwise give the path of a CSV file", e.Message);
    }

    [Fact]
    public void CsvPath_RequiresATargetColumn()
    {
        using var folder = new TempFolder();
        var path = folder.Write("p.csv", "a,b\n1,2\n3,4\n");
        var e = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load(path, new DataOptions()));
        Assert.Contains(path, e.Message);
        Assert.Contains("no target column given (set TargetColumn)", e.Message);
        using var d = DatasetCatalog.Load(path, new DataOptions { TargetColumn = "b", TestFraction = 0.5 });
        Assert.Equal("p", d.Name);
        Assert.Contains(path, d.Provenance);
    }
}
