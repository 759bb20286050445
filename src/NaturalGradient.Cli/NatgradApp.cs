using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using System.CommandLine;
using NaturalGradient.Cli.Commands;
using NaturalGradient.Training.Data;

namespace NaturalGradient.Cli;

/// <summary>
/// The <c>natgrad</c> command tree and its error policy: every failure is ONE line on stderr,
/// "natgrad: error: …", with the exit codes of <see cref="ExitCodes"/>; never a stack trace.
/// </summary>
internal sealed class NatgradApp(CliContext ctx)
{
    public RootCommand BuildRoot()
    {
        var root = new RootCommand("natgrad: natural-gradient training for TorchSharp (see docs/CLI.md)");
        root.Add(TrainCommand.Create(ctx));
        root.Add(EvaluateCommand.Create(ctx));
        root.Add(PredictCommand.Create(ctx));
        root.Add(PathsCommand.Create());
        root.Add(CompareCommand.Create(ctx));
        root.Add(CheckCommand.Create(ctx));
        root.Add(ScaleCommand.Create(ctx));
        root.Add(ScalePointCommand.Create(ctx));
        root.Add(OrderVarianceCommand.Create(ctx));
        root.Add(MpiCheckCommand.Create(ctx));
        return root;
    }

    public int Run(string[] args)
    {
        var parse = BuildRoot().Parse(args);
        if (OptionWithoutValue(parse) is { } missing) return Fail(ExitCodes.Usage, missing);
        if (parse.Errors.Count > 0 && parse.Action is not { ClearsParseErrors: true })
        {
            // An unknown word is the most useful thing to report (before "Required command was not provided").
            var error = parse.Errors.FirstOrDefault(e => parse.UnmatchedTokens.Any(t => e.Message.Contains($"'{t}'"))) ?? parse.Errors[0];
            // Our own parsers name the option first ("--lr: 'x' is not a number"); System.CommandLine's messages get a pointer to help.
            var message = error.Message.StartsWith("--", StringComparison.Ordinal) ? error.Message : $"{error.Message} (see '{HelpHint(parse)}')";
            return Fail(ExitCodes.Usage, message);
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = ctx.Out, Error = ctx.Error, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e) { return Fail(ExitCodes.Usage, e.Message); }
        catch (DataFormatException e) { return Fail(ExitCodes.Usage, e.Message); }
        catch (InvalidDataException e) { return Fail(ExitCodes.Usage, e.Message); }
        // A model the chosen method cannot handle: too large for exact NGD, a conv layer for TENGraD, a bypassed layer.
        catch (Exception e) when (e is ModelNotSupportedException or NotSupportedException or LayerNotObservedException)
        {
            return Fail(ExitCodes.Usage, e.Message);
        }
        catch (OperationCanceledException) { return Fail(ExitCodes.Interrupted, "interrupted"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail(ExitCodes.Usage, e.Message);
        }
        catch (Exception e)
        {
            if (Environment.GetEnvironmentVariable("NATGRAD_DEBUG") == "1") ctx.Error.WriteLine(e);
            return Fail(ExitCodes.Internal, $"internal error ({e.GetType().Name}): {e.Message} (set NATGRAD_DEBUG=1 for details)");
        }
    }

    /// <summary>
    /// An option given no value takes the next word as its value, even another option's name: "--data --optimizer kfac"
    /// reads "--optimizer" as the data set and then refuses "kfac", and "--out --force" would write to a folder named
    /// "--force". No value of ours is an option's name, so such a word means the value is missing. An option that needs a
    /// value and is the last word has none either, and the parser lets it pass when the option was given a value earlier
    /// ("--data weather … --data"). Null when every value-taking option has its value.
    /// </summary>
    private static string? OptionWithoutValue(ParseResult parse)
    {
        var options = new Dictionary<string, System.CommandLine.Option>(StringComparer.Ordinal);
        for (var r = parse.CommandResult; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            foreach (var option in r.Command.Options)
            {
                options.TryAdd(option.Name, option);
                foreach (var alias in option.Aliases) options.TryAdd(alias, option);
            }
        var tokens = parse.Tokens;
        for (int i = 0; i < tokens.Count; i++)
        {
            if (tokens[i].Type != System.CommandLine.Parsing.TokenType.Option
                || !options.TryGetValue(tokens[i].Value, out var option) || option.Arity.MinimumNumberOfValues < 1)
                continue;
            if (i + 1 == tokens.Count) return $"{option.Name} needs a value (it is the last word)";
            if (options.ContainsKey(tokens[i + 1].Value)) return $"{option.Name} needs a value (the next word is the option {tokens[i + 1].Value})";
        }
        return null;
    }

    private static string HelpHint(ParseResult parse)
    {
        var names = new List<string>();
        for (var r = parse.CommandResult; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            names.Insert(0, r.Command is RootCommand ? "natgrad" : r.Command.Name);
        return string.Join(" ", names) + " --help";
    }

    private int Fail(int code, string message)
    {
        ctx.Error.WriteLine("natgrad: error: " + OneLine(message));
        return code;
    }

    private static string OneLine(string text) => string.Join(" ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()));
}
