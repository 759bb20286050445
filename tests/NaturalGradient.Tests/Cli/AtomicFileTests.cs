using NaturalGradient.Cli.Output;

namespace NaturalGradient.Tests.Cli;

public class AtomicFileTests
{
    [Fact]
    public void Write_ReplacesExistingFile_AndLeavesNoTempFile()
    {
        var dir = CliHarness.TempDir();
        var path = Path.Combine(dir, "a.csv");
        File.WriteAllText(path, "old");
        AtomicFile.WriteText(path, "new");
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(dir));
    }

    [Fact]
    public void FailedWrite_KeepsOldFile_AndRemovesTempFile()
    {
        var dir = CliHarness.TempDir();
        var path = Path.Combine(dir, "a.csv");
        File.WriteAllText(path, "old");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, w =>
        {
            w.Write("half");
            throw new InvalidOperationException("disk full");
        }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(dir));
    }
}
