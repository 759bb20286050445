using System.Text.Json;
using System.Text.Json.Serialization;
using NaturalGradient.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training.Models;

/// <summary>A per-column standardisation x ↦ (x − mean) / scale as stored beside a saved model.</summary>
public sealed record SavedScaling(double[] Mean, double[] Scale)
{
    /// <summary>The stored form of <paramref name="s"/> (null stays null).</summary>
    public static SavedScaling? From(ColumnScaling? s) => s is null ? null : new(s.Mean.ToArray(), s.Scale.ToArray());

    /// <summary>The scaling itself.</summary>
    public ColumnScaling ToScaling() => new(Mean, Scale);
}

/// <summary>
/// What is needed to use a trained model beside its weights (model.pt, TorchSharp's <c>Module.save</c> format): the
/// network (<see cref="ModelSpec"/>, input shape, outputs, dtype), the task, the feature and label names and the
/// standardisations fitted on the training split. Stored as model.json in a run folder.
/// </summary>
public sealed record SavedModel
{
    /// <summary>File name of the description in a run folder.</summary>
    public const string DescriptionFile = "model.json";

    /// <summary>File name of the weights in a run folder (load with <c>module.load(path)</c>).</summary>
    public const string WeightsFile = "model.pt";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>Version of model.json.</summary>
    public int FormatVersion { get; init; } = 1;
    /// <summary>The network.</summary>
    public required ModelSpec Spec { get; init; }
    /// <summary>Shape of one input example.</summary>
    public required long[] InputShape { get; init; }
    /// <summary>Network outputs (classes, or regression targets).</summary>
    public required long Outputs { get; init; }
    /// <summary>Parameter dtype, "Float32" or "Float64".</summary>
    public required string Dtype { get; init; }
    /// <summary>Regression or classification.</summary>
    public required TaskKind Task { get; init; }
    /// <summary>Class names in class-index order (classification).</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }
    /// <summary>Feature column names in input order (tables).</summary>
    public IReadOnlyList<string>? FeatureNames { get; init; }
    /// <summary>Target column name(s).</summary>
    public IReadOnlyList<string>? TargetNames { get; init; }
    /// <summary>Standardisation of the features fitted on the training split.</summary>
    public SavedScaling? FeatureScaling { get; init; }
    /// <summary>Standardisation of regression targets fitted on the training split (predictions are mapped back).</summary>
    public SavedScaling? TargetScaling { get; init; }
    /// <summary>How the training data were read (so new data are read the same way).</summary>
    public DataOptions? Data { get; init; }
    /// <summary>What --data named.</summary>
    public string? DataSource { get; init; }

    /// <summary>The description of a model trained on <paramref name="data"/>.</summary>
    public static SavedModel Describe(ModelSpec spec, Dataset data, ScalarType dtype, DataOptions options, string source) => new()
    {
        Spec = spec, InputShape = data.InputShape, Outputs = data.OutputCount, Dtype = dtype.ToString(), Task = data.Task,
        ClassNames = data.ClassNames, FeatureNames = data.FeatureNames, TargetNames = data.TargetNames,
        FeatureScaling = SavedScaling.From(data.FeatureScaling), TargetScaling = SavedScaling.From(data.TargetScaling),
        Data = options with { Names = DataOptionNames.Properties }, DataSource = source,
    };

    /// <summary>The parameter dtype.</summary>
    [JsonIgnore]
    public ScalarType ScalarType => Enum.Parse<ScalarType>(Dtype);

    /// <summary>Writes model.json into <paramref name="folder"/> (temporary file, then rename).</summary>
    public void Save(string folder)
    {
        var path = Path.Combine(folder, DescriptionFile);
        var temp = path + $".{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(this, Json) + "\n");
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Reads model.json from a run folder.</summary>
    /// <exception cref="InvalidDataException">Missing or unreadable (one line naming the file).</exception>
    public static SavedModel Load(string folder)
    {
        var path = Path.Combine(folder, DescriptionFile);
        if (!File.Exists(path)) throw new InvalidDataException($"{folder} holds no trained model ({DescriptionFile} is missing)");
        try
        {
            return JsonSerializer.Deserialize<SavedModel>(File.ReadAllText(path), Json) ?? throw new JsonException("empty");
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException)
        {
            throw new InvalidDataException($"{path} is not a valid model description ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>Builds the network and loads its weights from the run folder's model.pt.</summary>
    /// <exception cref="InvalidDataException">The weights are missing or do not fit the description.</exception>
    public nn.Module<Tensor, Tensor> LoadModule(string folder)
    {
        var weights = Path.Combine(folder, WeightsFile);
        if (!File.Exists(weights)) throw new InvalidDataException($"{folder} holds no trained weights ({WeightsFile} is missing)");
        var model = ModelFactory.Build(Spec, InputShape, Outputs, ScalarType);
        try
        {
            model.load(weights);
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidOperationException)
        {
            model.Dispose();
            throw new InvalidDataException($"{weights} does not fit the model in {DescriptionFile} ({e.Message.Split('\n')[0]})");
        }
        model.eval();
        return model;
    }
}
