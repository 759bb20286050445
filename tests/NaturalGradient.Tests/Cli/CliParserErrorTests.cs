namespace NaturalGradient.Tests.Cli;

/// <summary>
/// Options whose parsers name the option themselves (--checkpoint-every, --delimiter, --task) are refused by the
/// command-line parser with their own one line and exit code 2, for train and compare alike; such a parser's error
/// once escaped the parser as an unhandled exception (stack trace, exit 134).
/// </summary>
[Collection("Torch")]
public class CliParserErrorTests
{
    [Theory]
    [InlineData("train", "--checkpoint-every", "0", "natgrad: error: --checkpoint-every must be N (steps) or Ne (epochs) with N ≥ 1, got '0'")]
    [InlineData("train", "--checkpoint-every", "2x", "natgrad: error: --checkpoint-every must be N (steps) or Ne (epochs) with N ≥ 1, got '2x'")]
    [InlineData("train", "--delimiter", "ab", "natgrad: error: --delimiter must be one character, 'tab' or 'space', got 'ab'")]
    [InlineData("train", "--task", "ranking", "natgrad: error: --task must be regression or classification, got 'ranking'")]
    [InlineData("compare", "--delimiter", "ab", "natgrad: error: --delimiter must be one character, 'tab' or 'space', got 'ab'")]
    public void OptionRefusedByItsOwnParser_IsOneLine_ExitCode2(string command, string option, string value, string expected)
    {
        var outcome = CliHarness.Run(new[] { command, "--data", "tiny", option, value });
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal(expected, Assert.Single(outcome.ErrorLines));
        Assert.DoesNotContain(" at ", outcome.Stderr);
    }

    /// <summary>A value-taking option as the last word has no value, also when it was given one earlier.</summary>
    [Theory]
    [InlineData(new[] { "train", "--data", "tiny", "--data" }, "natgrad: error: --data needs a value (it is the last word)")]
    [InlineData(new[] { "train", "--data", "tiny", "--lr" }, "natgrad: error: --lr needs a value (it is the last word)")]
    [InlineData(new[] { "train", "--data", "tiny", "--data", "--lr", "0.1" }, "natgrad: error: --data needs a value (the next word is the option --lr)")]
    public void OptionWithoutAValue_AtTheEnd_IsRefused(string[] args, string expected)
    {
        var outcome = CliHarness.Run(args);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal(expected, Assert.Single(outcome.ErrorLines));
    }

    /// <summary>A flag (no value) may be the last word: the error reported is the next one, about --lr.</summary>
    [Fact]
    public void FlagAsTheLastWord_IsAccepted()
    {
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--lr", "0", "--force" });
        Assert.Equal("natgrad: error: --lr must be a finite number > 0, got 0", Assert.Single(outcome.ErrorLines));
    }
}
