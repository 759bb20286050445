using System.Text;

namespace NaturalGradient.Training.Data.Csv;

/// <summary>
/// Reads records from delimited text: RFC 4180 CSV (fields in double quotes may hold delimiters, newlines and
/// doubled quotes ""), any single-character delimiter, or ' ' for runs of spaces and tabs.
/// Unquoted fields are trimmed of surrounding spaces (and tabs, unless tab is the delimiter); blank lines are skipped;
/// CR, LF and CRLF all end a line.
/// </summary>
public sealed class DelimitedRecordReader
{
    /// <summary>The delimiter value that means "runs of whitespace".</summary>
    public const char Whitespace = ' ';

    private enum State { StartOfField, Unquoted, Quoted, AfterQuote, BetweenFields }

    private readonly TextReader _reader;
    private readonly string _source;
    private readonly char _delimiter;
    private readonly bool _whitespaceSeparated;
    private int _line = 1;

    /// <param name="reader">The text; not disposed by this reader.</param>
    /// <param name="source">File name used in error messages.</param>
    /// <param name="delimiter">Field delimiter; <see cref="Whitespace"/> for runs of spaces and tabs.</param>
    public DelimitedRecordReader(TextReader reader, string source, char delimiter = ',')
    {
        if (delimiter is '"' or '\r' or '\n')
            throw new ArgumentException($"'{delimiter}' cannot be a delimiter", nameof(delimiter));
        _reader = reader;
        _source = source;
        _delimiter = delimiter;
        _whitespaceSeparated = delimiter == Whitespace;
    }

    /// <summary>All remaining records, blank lines skipped.</summary>
    /// <exception cref="DataFormatException">A quoted field is not closed, or text follows a closing quote.</exception>
    public IEnumerable<DelimitedRecord> ReadAll()
    {
        while (ReadRecord() is { } record) yield return record;
    }

    /// <summary>The next non-blank record, or null at the end of the text.</summary>
    public DelimitedRecord? ReadRecord()
    {
        while (true)
        {
            int startLine = _line;
            var (fields, quotedAny, atEnd) = ReadFields();
            bool blank = fields.Count == 0 || (fields.Count == 1 && fields[0].Length == 0 && !quotedAny);
            if (!blank) return new DelimitedRecord(startLine, fields);
            if (atEnd) return null;
        }
    }

    private (List<string> Fields, bool QuotedAny, bool AtEnd) ReadFields()
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quotedAny = false;
        int quoteLine = _line;
        var state = _whitespaceSeparated ? State.BetweenFields : State.StartOfField;

        void EndField(bool quoted)
        {
            fields.Add(quoted ? field.ToString() : Trim(field.ToString()));
            field.Clear();
        }

        while (true)
        {
            int c = ReadChar();
            bool endOfLine = c is -1 or '\n';
            switch (state)
            {
                case State.BetweenFields:
                    if (endOfLine) return (fields, quotedAny, c == -1);
                    if (IsBlank(c)) break;
                    goto case State.StartOfField;

                case State.StartOfField:
                    if (endOfLine) { EndField(false); return (fields, quotedAny, c == -1); }
                    if (c == '"') { state = State.Quoted; quotedAny = true; quoteLine = _line; break; }
                    if (!_whitespaceSeparated && c == _delimiter) { EndField(false); break; }
                    if (IsTrimmed(c)) break;
                    field.Append((char)c);
                    state = State.Unquoted;
                    break;

                case State.Unquoted:
                    if (endOfLine) { EndField(false); return (fields, quotedAny, c == -1); }
                    if (_whitespaceSeparated && IsBlank(c)) { EndField(false); state = State.BetweenFields; break; }
                    if (!_whitespaceSeparated && c == _delimiter) { EndField(false); state = State.StartOfField; break; }
                    field.Append((char)c);
                    break;

                case State.Quoted:
                    if (c == -1)
                        throw new DataFormatException(_source, quoteLine, fields.Count + 1, null,
                            "quoted field is not closed before the end of the file");
                    if (c == '"')
                    {
                        if (_reader.Peek() == '"') { _reader.Read(); field.Append('"'); }
                        else state = State.AfterQuote;
                        break;
                    }
                    field.Append((char)c);
                    break;

                case State.AfterQuote:
                    if (endOfLine) { EndField(true); return (fields, quotedAny, c == -1); }
                    if (_whitespaceSeparated && IsBlank(c)) { EndField(true); state = State.BetweenFields; break; }
                    if (!_whitespaceSeparated && c == _delimiter) { EndField(true); state = State.StartOfField; break; }
                    if (IsTrimmed(c)) break;
                    throw new DataFormatException(_source, _line, fields.Count + 1, null,
                        $"unexpected character '{(char)c}' after a closing quote (a quote inside a quoted field is written \"\")");
            }
        }
    }

    /// <summary>Reads one character; CRLF and lone CR come back as '\n'. Counts lines.</summary>
    private int ReadChar()
    {
        int c = _reader.Read();
        if (c == '\r')
        {
            if (_reader.Peek() == '\n') _reader.Read();
            c = '\n';
        }
        if (c == '\n') _line++;
        return c;
    }

    private static bool IsBlank(int c) => c is ' ' or '\t';

    private bool IsTrimmed(int c) => IsBlank(c) && c != _delimiter;

    private string Trim(string text) => _delimiter == '\t' ? text.Trim(' ') : text.Trim(' ', '\t');
}
