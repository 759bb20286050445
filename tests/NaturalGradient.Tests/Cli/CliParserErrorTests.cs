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
}
