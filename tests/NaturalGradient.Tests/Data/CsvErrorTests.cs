using NaturalGradient.Training.Data;
using NaturalGradient.Training.Data.Csv;

namespace NaturalGradient.Tests.Data;

/// <summary>Every CSV error names the file, the line and the column.</summary>
public class CsvErrorTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private static readonly DataOptions Target = new() { TargetColumn = "y" };

    public void Dispose() => _folder.Dispose();

    private Action Loading(string text, DataOptions? options = null, string file = "t.csv")
    {
        var path = _folder.Write(file, text);
        return () => CsvDatasetLoader.Load(path, options ?? Target).Dispose();
    }

    private string PathOf(string file = "t.csv") => System.IO.Path.Combine(_folder.Path, file);

    [Fact]
    public void MissingCell_NamesLineAndColumn()
    {
        var e = DataErrorAssert.At(Loading("a,b,y\n1,2,3\n4,,6\n7,8,9\n"), PathOf(), 3, 2, "(b)", "missing value");
        Assert.Equal("b", e.ColumnName);
    }

    [Fact]
    public void MissingTarget_NamesLineAndColumn() =>
        DataErrorAssert.At(Loading("a,b,y\n1,2,3\n4,5,\n1,1,1\n"), PathOf(), 3, 3, "(y)", "missing target value");

    [Fact]
    public void NonNumericFeature_NamesLineColumnAndValue() =>
        DataErrorAssert.At(Loading("a,b,y\n1,2,3\n4,5,6\nabc,8,9\n"), PathOf(), 4, 1, "(a)", "non-numeric value \"abc\"");

    [Fact]
    public void NonNumericColumnNotIgnored_NamesColumnAndSuggestsIgnoreColumns()
    {
        const string text = "date,x,y\n2012/01/01,1,2\n2012/01/02,3,4\n2012/01/03,5,6\n";
        DataErrorAssert.At(Loading(text), PathOf(), 2, 1, "(date)", "IgnoreColumns");
        using var ok = CsvDatasetLoader.Load(PathOf(), Target with { IgnoreColumns = new[] { "date" } });
        Assert.Equal(new[] { "x" }, ok.FeatureNames);
    }

    [Fact]
    public void NonFiniteValue_IsRejected() =>
        DataErrorAssert.At(Loading("a,y\n1,2\nNaN,3\n4,5\n"), PathOf(), 3, 1, "(a)", "\"NaN\"");

    [Fact]
    public void TooManyFields_NamesFirstExtraColumn() =>
        DataErrorAssert.At(Loading("a,b,y\n1,2,3\n4,5,6,7\n"), PathOf(), 3, 4, "too many fields", "has 4, expected 3");

    [Fact]
    public void TooFewFields_NamesFirstMissingColumn() =>
        DataErrorAssert.At(Loading("a,b,y\n1,2,3\n4,5\n"), PathOf(), 3, 3, "(y)", "too few fields", "has 2, expected 3");

    [Fact]
    public void UnknownTargetColumn_ListsAvailableColumns() =>
        DataErrorAssert.AtNamedColumn(Loading("a,b,c\n1,2,3\n"), PathOf(), 1, "\"y\"", "unknown target column \"y\"; the columns are: a, b, c");

    /// <summary>
    /// A header with control characters (a binary file read as CSV) is listed with them as \xNN, never raw bytes, and
    /// a header of many columns lists the first 20 and the count.
    /// </summary>
    [Fact]
    public void ColumnList_ShowsControlCharactersEscaped_AndAtMostTwentyNames()
    {
        var e = DataErrorAssert.AtNamedColumn(Loading("a\u0001b,c\u0000,d\n1,2,3\n"), PathOf(), 1, "\"y\"",
            "unknown target column \"y\"; the columns are: a\\x01b, c\\x00, d");
        Assert.DoesNotContain(e.Message, c => char.IsControl(c));
        var names = Enumerable.Range(1, 30).Select(i => $"c{i}").ToArray();
        DataErrorAssert.AtNamedColumn(Loading(string.Join(",", names) + "\n" + string.Join(",", names.Select(_ => "1")) + "\n"), PathOf(), 1, "\"y\"",
            "the columns are: " + string.Join(", ", names.Take(20)) + ", … (30 columns)");
    }

    [Fact]
    public void NoTargetColumnGiven_ListsColumns() =>
        DataErrorAssert.AtNamedColumn(Loading("a,b,c\n1,2,3\n", new DataOptions()), PathOf(), 1, "columns are: a, b, c", "TargetColumn");

    [Fact]
    public void UnknownIgnoredColumn_ListsAvailableColumns() =>
        DataErrorAssert.AtNamedColumn(Loading("a,b,y\n1,2,3\n", Target with { IgnoreColumns = new[] { "zz" } }), PathOf(), 1, "\"zz\"",
            "unknown column \"zz\" in IgnoreColumns; the columns are: a, b, y");

    [Fact]
    public void DuplicateColumnName_NamesBothPositions() =>
        DataErrorAssert.At(Loading("a,b,a,y\n1,2,3,4\n"), PathOf(), 1, 3, "(a)", "duplicate column name (also column 1)");

    [Fact]
    public void EmptyFile_NamesFileLineOneColumnOne() =>
        DataErrorAssert.At(Loading(""), PathOf(), 1, 1, "empty file");

    [Fact]
    public void BlankLinesOnly_CountAsEmpty() =>
        DataErrorAssert.At(Loading("\n  \n\n"), PathOf(), 1, 1, "empty file");

    [Fact]
    public void HeaderOnly_HasNoDataRows() =>
        DataErrorAssert.At(Loading("a,b,y\n"), PathOf(), 2, 1, "no data rows");

    [Fact]
    public void UnclosedQuote_NamesLineWhereItOpened() =>
        DataErrorAssert.At(Loading("a,b,y\n1,2,3\n4,\"5,6\n7,8,9\n"), PathOf(), 3, 2, "not closed");

    [Fact]
    public void TextAfterClosingQuote_IsAnError() =>
        DataErrorAssert.At(Loading("a,b,y\n1,\"2\"x,3\n"), PathOf(), 2, 2, "after a closing quote");

    [Fact]
    public void RegressionTargetThatIsText_NamesLineAndColumn() =>
        DataErrorAssert.At(Loading("a,y\n1,2\n3,four\n5,6\n", Target with { Task = TaskKind.Regression }), PathOf(), 3, 2, "(y)", "non-numeric target value \"four\"");

    [Fact]
    public void SingleClass_IsAnError() =>
        DataErrorAssert.At(Loading("a,y\n1,cat\n2,cat\n"), PathOf(), 2, 2, "(y)", "only one class");

    [Fact]
    public void ErrorLine_CountsNewlinesInsideQuotedFields()
    {
        const string text = "a,label,y\n1,\"two\nlines\",3\n4,\"x\",5\n6,ok,seven\n";
        DataErrorAssert.At(Loading(text, Target with { IgnoreColumns = new[] { "label" }, Task = TaskKind.Regression }), PathOf(), 5, 3, "(y)");
    }

    [Fact]
    public void ColumnNamesOfWrongCount_NamesHeaderLine()
    {
        var e = Assert.Throws<DataFormatException>(Loading("a,b,y\n1,2,3\n", Target with { ColumnNames = new[] { "p", "y" } }));
        Assert.Contains(PathOf(), e.Message);
        Assert.Contains("line 1", e.Message);
        Assert.Contains("ColumnNames gives 2 names but the header has 3 fields", e.Message);
    }

    [Fact]
    public void FileNotFound_NamesFile()
    {
        var path = PathOf("absent.csv");
        var e = Assert.Throws<DataFormatException>(() => CsvDatasetLoader.Load(path, Target));
        Assert.Equal($"{path}: file not found", e.Message);
    }

    [Fact]
    public void TooFewRowsForASplit_IsADataError()
    {
        var e = Assert.Throws<DataFormatException>(Loading("a,y\n1,2\n"));
        Assert.Contains(PathOf(), e.Message);
        Assert.Equal($"{PathOf()}: too few data rows to split: 1 row and test fraction 0.2 leave no training rows", e.Message);
    }
}
