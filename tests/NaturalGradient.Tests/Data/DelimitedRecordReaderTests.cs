using NaturalGradient.Training.Data.Csv;

namespace NaturalGradient.Tests.Data;

public class DelimitedRecordReaderTests
{
    private static List<DelimitedRecord> Read(string text, char delimiter = ',') =>
        new DelimitedRecordReader(new StringReader(text), "mem", delimiter).ReadAll().ToList();

    [Fact]
    public void LineEndings_CrLfCrAndLf_AllCount()
    {
        var records = Read("a,b\r\n1,2\r3,4\n\n5,6");
        Assert.Equal(new[] { 1, 2, 3, 5 }, records.Select(r => r.Line));
        Assert.Equal(new[] { "5", "6" }, records[3].Fields);
    }

    [Fact]
    public void EmptyFields_AndTrailingDelimiter_AreKept()
    {
        var record = Assert.Single(Read(" 1 ,, \"\" ,\n"));
        Assert.Equal(new[] { "1", "", "", "" }, record.Fields);
    }

    [Fact]
    public void QuotedField_KeepsDelimitersNewlinesAndDoubledQuotes()
    {
        var records = Read("\"a,b\",\"x\n\"\"y\"\"\",z\nnext,1,2\n");
        Assert.Equal(new[] { "a,b", "x\n\"y\"", "z" }, records[0].Fields);
        Assert.Equal(3, records[1].Line);
    }

    [Fact]
    public void Whitespace_RunsSeparateFields_AndEdgesAreIgnored()
    {
        var records = Read("  a \t b  \"c d\"  \n\t\n x y z", DelimitedRecordReader.Whitespace);
        Assert.Equal(new[] { "a", "b", "c d" }, records[0].Fields);
        Assert.Equal(new[] { "x", "y", "z" }, records[1].Fields);
        Assert.Equal(3, records[1].Line);
    }

    [Fact]
    public void Semicolons_CanDelimit()
    {
        Assert.Equal(new[] { "1,5", "2", "a;b" }, Read("1,5;2;\"a;b\"", ';')[0].Fields);
    }
}
