namespace NaturalGradient.Training.Data.Csv;

/// <summary>One record (row) of a delimited text file.</summary>
/// <param name="Line">1-based line on which the record starts.</param>
/// <param name="Fields">The record's fields, unquoted.</param>
public sealed record DelimitedRecord(int Line, IReadOnlyList<string> Fields);
