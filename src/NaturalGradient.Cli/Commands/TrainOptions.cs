using System.CommandLine;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Commands;

/// <summary>The options of <c>natgrad train</c>. Defaults come from the library's option records.</summary>
internal sealed class TrainOptions
{
    private static readonly OptimizerSettings Opt = new();
    private static readonly TrainerOptions Run = new();

    public TrainOptions(IReadOnlyList<string> optimizerNames)
    {
        Optimizer = CliOptions.Text("--optimizer", $"Training method: {string.Join(", ", optimizerNames)}", Opt.Name,
            v => CliOptions.Choice(v, optimizerNames), helpName: "name");
    }

    // ---- data ----
    public Option<string> Data { get; } = new("--data")
    {
        Description = "Data set: weather, weather-class, wine, boston, fashion-mnist, or the path of a CSV file (then --target is needed); required unless --resume",
        HelpName = "name|path",
    };
    public Option<string> Target { get; } = CliOptions.Text("--target", "Target column of a CSV file", null, helpName: "column");
    public Option<string> Ignore { get; } = CliOptions.Text("--ignore", "Comma-separated columns to leave out of the features", null, helpName: "col,col");
    public Option<double> TestFraction { get; } = CliOptions.Double("--test-fraction", "Fraction of rows held out for testing, in [0, 1)", 0.2);
    public Option<int?> MaxTrain { get; } = CliOptions.OptionalInt("--max-train", "Use at most N training examples (quick runs) [default: all]");
    public Option<string> Task { get; } = CliOptions.Text("--task", "regression or classification [default: the set's own; for a CSV file, classification when the target is not numeric]", null,
        v => RunLifecycleOptions.ParseTask(v), helpName: "regression|classification");
    public Option<string> Delimiter { get; } = CliOptions.Text("--delimiter", "CSV field delimiter: one character, 'tab', or 'space' (runs of blanks)", null,
        v => RunLifecycleOptions.ParseDelimiter(v), helpName: "char");
    public Option<bool> NoHeader { get; } = new("--no-header") { Description = "The CSV file has no header row (columns are named column1, column2, …)" };
    public Option<bool> DropMissing { get; } = new("--drop-missing") { Description = "Drop CSV rows with an empty, NaN or infinite value in a used column (default: such a row is an error)" };

    // ---- model ----
    public Option<string> Model { get; } = CliOptions.Text("--model", "Network: mlp or conv (conv needs image data)", "mlp",
        v => ModelSpecParser.ParseKind(v), helpName: "mlp|conv");
    public Option<string> Hidden { get; } = CliOptions.Text("--hidden", "Hidden layer widths of the MLP, e.g. 32,16; '' or none = linear model", "32",
        v => ModelSpecParser.ParseHidden(v), helpName: "widths");
    public Option<string> Activation { get; } = CliOptions.Text("--activation", "MLP activation: tanh, relu or sigmoid", "tanh",
        v => ModelSpecParser.ParseActivation(v), helpName: "tanh|relu|sigmoid");

    // ---- training run ----
    public Option<int> Epochs { get; } = CliOptions.Int("--epochs", "Passes over the training set", Run.Epochs);
    public Option<int> BatchSize { get; } = CliOptions.Int("--batch-size", "Examples per step", Run.BatchSize);
    public Option<long> Seed { get; } = CliOptions.Long("--seed", "Seed of the split, initial weights, batch order and sampling", Run.Seed);
    public Option<string> Dtype { get; } = CliOptions.Text("--dtype", "Precision: float32 or float64", "float32",
        v => CliChoices.Dtype(v), helpName: "float32|float64");
    public Option<int?> Threads { get; } = CliOptions.OptionalInt("--threads", "Torch intra-op threads [default: torch's]");
    public Option<string> Out { get; } = CliOptions.Text("--out", "Output folder [default: runs/<data>-<optimizer>-<time>]", null, helpName: "dir");
    public Option<string> TensorBoard { get; } = CliOptions.Text("--tensorboard",
        "Also write TensorBoard event files into this folder (per step: loss, lr, damping, ρ, predicted KL, step time; per epoch: losses, accuracy)", null, helpName: "dir");
    public Option<bool> Force { get; } = new("--force") { Description = "Overwrite a run already in --out" };
    public Option<string> CheckpointEvery { get; } = CliOptions.Text("--checkpoint-every", "Checkpoint every N steps, or every N epochs with Ne (e.g. 500 or 2e); one is always written at the end and on Ctrl+C/SIGTERM", null,
        v => RunLifecycleOptions.ParseCheckpointEvery(v), helpName: "N|Ne");
    public Option<string> Resume { get; } = CliOptions.Text("--resume", "Continue the run in this folder from its checkpoint, with its own options", null, helpName: "dir");

    // ---- first-order ----
    public Option<string> Optimizer { get; }
    public Option<double?> Lr { get; } = CliOptions.OptionalDouble("--lr", "Learning rate (> 0) [default: per method, docs/DEFAULTS.md]");
    public Option<double?> Momentum { get; } = CliOptions.OptionalDouble("--momentum", "Momentum in [0, 1) (sgd and natural-gradient methods) [default: per method]");
    public Option<double> WeightDecay { get; } = CliOptions.Double("--weight-decay", "L2 weight decay (≥ 0)", Opt.WeightDecay);
    public Option<string> LrDecay { get; } = CliOptions.Text("--lr-decay", "Per-epoch learning-rate decay: none, exp:GAMMA or step:EPOCHS:GAMMA", "none",
        v => LrSchedule.Parse(v), helpName: "schedule");
    public Option<double> Beta1 { get; } = CliOptions.Double("--beta1", "Adam β₁ in [0, 1)", Opt.Beta1);
    public Option<double> Beta2 { get; } = CliOptions.Double("--beta2", "Adam β₂ in [0, 1)", Opt.Beta2);
    public Option<double> Eps { get; } = CliOptions.Double("--eps", "Adam ε (> 0)", Opt.Eps);

    // ---- natural gradient ----
    public Option<double?> Damping { get; } = CliOptions.OptionalDouble("--damping", "Damping λ (> 0); initial value under lm [default: per method]");
    public Option<string> DampingSchedule { get; } = CliOptions.Text("--damping-schedule", "constant, or lm (Levenberg–Marquardt) [default: per method]", null,
        v => CliChoices.DampingSchedule(v), helpName: "constant|lm");
    public Option<string> Fisher { get; } = CliOptions.Text("--fisher", "Fisher: empirical, mc (Monte-Carlo) or exact (GGN) [default: per method]", null,
        v => CliChoices.Fisher(v), helpName: "empirical|mc|exact");
    public Option<int> McSamples { get; } = CliOptions.Int("--mc-samples", "Sampled targets per input for --fisher mc", Opt.McSamples);
    public Option<string> Metric { get; } = CliOptions.Text("--metric", "Curvature batch: same (the gradient's), other (another batch), unlabeled (inputs only)", "same",
        v => CliChoices.Metric(v), helpName: "same|other|unlabeled");
    public Option<string> MetricForm { get; } = CliOptions.Text("--metric-form", "fisher, or covariance (TONGA's centred gradient covariance; exact, block, tengrad)", "fisher",
        v => CliChoices.MetricForm(v), helpName: "fisher|covariance");
    public Option<int?> UnlabeledCount { get; } = CliOptions.OptionalInt("--unlabeled-count", "Inputs per step for --metric unlabeled [default: batch size]");
    public Option<int?> InversePeriod { get; } = CliOptions.OptionalInt("--inverse-period", "Recompute K-FAC/EKFAC inverses or eigenbases every N steps [default: per method: kfac 10, ekfac 20, hf 1]");
    public Option<int?> FactorPeriod { get; } = CliOptions.OptionalInt("--factor-period", "Update K-FAC/EKFAC factors every N steps [default: per method: 3; hf: 1]");
    public Option<double> FactorDecay { get; } = CliOptions.Double("--factor-decay", "Moving-average decay of curvature factors, in [0, 1)", Opt.FactorDecay);
    public Option<string> KfacInverse { get; } = CliOptions.Text("--kfac-inverse", "K-FAC factor inverses: cholesky or eigen (EKFAC always uses eigen)", "cholesky",
        v => CliChoices.KfacInverse(v), helpName: "eigen|cholesky");
    public Option<string> FactorPrecision { get; } = CliOptions.Text("--factor-precision",
        "K-FAC/EKFAC factor GEMMs for float32 models: model (float32) or bfloat16 (faster on CPUs with bfloat16 instructions such as AVX512-BF16 or AMX; emulated, possibly slower, elsewhere)",
        "model", v => CliChoices.FactorPrecision(v), helpName: "model|bfloat16");
    public Option<string> InversePrecision { get; } = CliOptions.Text("--inverse-precision",
        "K-FAC/EKFAC solve for float32 models: model (float32) or bfloat16 (the inverses and eigenbases applied by bfloat16 GEMMs: faster on CPUs with bfloat16 instructions such as AVX512-BF16 or AMX; emulated, possibly slower, elsewhere)",
        "model", v => CliChoices.InversePrecision(v), helpName: "model|bfloat16");
    public Option<string> KfacDistribution { get; } = CliOptions.Text("--kfac-distribution",
        "Under mpirun -np N > 1, how K-FAC/EKFAC share their inverse work: inverse (each layer's owner rank inverts and broadcasts the inverse), gradient (the owner broadcasts the preconditioned gradient) or replicated (statistics gathered, every rank inverts every layer)",
        "inverse", v => CliChoices.KfacDistribution(v), helpName: "inverse|gradient|replicated");
    public Option<int> FactorSync { get; } = CliOptions.Int("--factor-sync-every",
        "Under mpirun -np N > 1, allreduce the K-FAC/EKFAC factors every N steps (inverse steps always sync)", Opt.FactorSyncPeriod);
    public Option<string> KfacDamping { get; } = CliOptions.Text("--kfac-damping", "K-FAC/EKFAC damping: factored (π-adjusted Tikhonov) or eigenbasis (exact, in the eigenbasis; K-FAC: needs eigen)", "factored",
        v => CliChoices.KfacDamping(v), helpName: "factored|eigenbasis");
    public Option<bool> HfDiagonal { get; } = new("--hf-diagonal") { Description = "Precondition the Hessian-free solver with the diagonal Fisher" };
    public Option<string> KlClip { get; } = CliOptions.Text("--kl-clip", "Bound κ on the KL of an update, measured as --kl-clip-form says, or none [default: per method: 0.01 for kfac and ekfac, none otherwise]", null,
        v => SettingsBinder.ParseKlClip(v), helpName: "X|none");
    public Option<string> KlClipForm { get; } = CliOptions.Text("--kl-clip-form",
        "What --kl-clip bounds: gradient (η²Δᵀg before momentum, Ba et al. 2017, kfac-pytorch's kl_clip; no metric product) or step (½uᵀMu of the applied step; one metric product per step) [default: gradient for kfac and ekfac, step otherwise]", null,
        v => CliChoices.KlClipForm(v), helpName: "gradient|step");
    public Option<string> HfPreconditioner { get; } = CliOptions.Text("--hf-preconditioner", "Hessian-free solver preconditioner: none, diagonal or kfac", "none",
        v => CliChoices.HfPreconditioner(v), helpName: "none|diagonal|kfac");
    public Option<string> HfSolver { get; } = CliOptions.Text("--hf-solver", "Hessian-free solver: cg, minres or minres-qlp", "cg",
        v => CliChoices.HfSolver(v), helpName: "cg|minres|minres-qlp");
    public Option<int?> HfIters { get; } = CliOptions.OptionalInt("--hf-iters", "Maximum Hessian-free solver iterations [default: per method]");
    public Option<double> HfTol { get; } = CliOptions.Double("--hf-tol", "Relative residual at which the Hessian-free solver stops", Opt.HfTolerance);
    public Option<int> KbfgsMemory { get; } = CliOptions.Int("--kbfgs-memory",
        "K-BFGS: secant pairs the L-BFGS inverse of each G factor keeps (K-BFGS(L)); 0 = a dense BFGS inverse", Opt.KbfgsMemory);
    public Option<int> KsdDimension { get; } = CliOptions.Int("--ksd-dimension",
        "Krylov subspace descent: Krylov vectors g, Gg, …, G^(k−1)g per step (k ≥ 1; the previous step is added)", Opt.KsdDimension);
    public Option<int> DiagnosticsEvery { get; } = CliOptions.Int("--diagnostics-every",
        "Every N steps, per-layer error of the approximate block vs the exact one on a probe batch (approximation.csv/png); for hf with a solver preconditioner, the iterations it saved; 0 = off", Opt.DiagnosticsEvery);
    public Option<int> MaxExactParams { get; } = CliOptions.Int("--max-exact-params", "Largest model the dense exact method accepts", Opt.MaxExactParameters);

    /// <summary>Every option, in help order.</summary>
    public IEnumerable<Option> All => new Option[]
    {
        Data, Target, Ignore, TestFraction, MaxTrain, Task, Delimiter, NoHeader, DropMissing,
        Model, Hidden, Activation,
        Optimizer, Lr, Momentum, WeightDecay, LrDecay, Beta1, Beta2, Eps,
        Damping, DampingSchedule, Fisher, McSamples, Metric, MetricForm, UnlabeledCount, InversePeriod, FactorPeriod, FactorDecay, FactorPrecision, InversePrecision, KfacInverse, KfacDamping, KfacDistribution, FactorSync, KlClip, KlClipForm,
        HfSolver, HfIters, HfTol, HfDiagonal, HfPreconditioner, KbfgsMemory, KsdDimension, DiagnosticsEvery, MaxExactParams,
        Epochs, BatchSize, Seed, Dtype, Threads, Out, TensorBoard, Force, CheckpointEvery, Resume,
    };

    /// <summary>
    /// Which option a property of the option records stands for, so that an <see cref="ArgumentOutOfRangeException"/>
    /// from <c>Validate()</c> ("LearningRate must be …") is reported as "--lr must be …".
    /// </summary>
    public IReadOnlyDictionary<string, string> PropertyToOption => new Dictionary<string, string>
    {
        [nameof(OptimizerSettings.Name)] = Optimizer.Name,
        [nameof(OptimizerSettings.LearningRate)] = Lr.Name,
        [nameof(OptimizerSettings.Momentum)] = Momentum.Name,
        [nameof(OptimizerSettings.WeightDecay)] = WeightDecay.Name,
        [nameof(OptimizerSettings.LrDecay)] = LrDecay.Name,
        [nameof(LrSchedule.Gamma)] = LrDecay.Name,
        [nameof(LrSchedule.StepEpochs)] = LrDecay.Name,
        [nameof(OptimizerSettings.Beta1)] = Beta1.Name,
        [nameof(OptimizerSettings.Beta2)] = Beta2.Name,
        [nameof(OptimizerSettings.Eps)] = Eps.Name,
        [nameof(OptimizerSettings.Damping)] = Damping.Name,
        [nameof(OptimizerSettings.DampingSchedule)] = DampingSchedule.Name,
        [nameof(OptimizerSettings.Fisher)] = Fisher.Name,
        [nameof(OptimizerSettings.McSamples)] = McSamples.Name,
        [nameof(OptimizerSettings.MetricSource)] = Metric.Name,
        [nameof(OptimizerSettings.MetricForm)] = MetricForm.Name,
        ["Form"] = MetricForm.Name,
        [nameof(OptimizerSettings.UnlabeledCount)] = UnlabeledCount.Name,
        [nameof(OptimizerSettings.InverseUpdatePeriod)] = InversePeriod.Name,
        [nameof(OptimizerSettings.FactorUpdatePeriod)] = FactorPeriod.Name,
        [nameof(OptimizerSettings.FactorDecay)] = FactorDecay.Name,
        [nameof(OptimizerSettings.KlClip)] = KlClip.Name,
        [nameof(OptimizerSettings.KlClipForm)] = KlClipForm.Name,
        [nameof(OptimizerSettings.KfacInverse)] = KfacInverse.Name,
        [nameof(OptimizerSettings.KfacDamping)] = KfacDamping.Name,
        [nameof(OptimizerSettings.KfacFactorPrecision)] = FactorPrecision.Name,
        ["FactorPrecision"] = FactorPrecision.Name,
        [nameof(OptimizerSettings.KfacInversePrecision)] = InversePrecision.Name,
        ["InversePrecision"] = InversePrecision.Name,
        [nameof(OptimizerSettings.KfacDistribution)] = KfacDistribution.Name,
        [nameof(OptimizerSettings.FactorSyncPeriod)] = FactorSync.Name,
        ["DampingMode"] = KfacDamping.Name,
        ["InverseMethod"] = KfacInverse.Name,
        [nameof(OptimizerSettings.HfSolver)] = HfSolver.Name,
        [nameof(OptimizerSettings.HfKfacPreconditioner)] = HfPreconditioner.Name,
        [nameof(OptimizerSettings.HfMaxIterations)] = HfIters.Name,
        [nameof(OptimizerSettings.HfTolerance)] = HfTol.Name,
        [nameof(OptimizerSettings.HfDiagonalPreconditioner)] = HfDiagonal.Name,
        [nameof(OptimizerSettings.KbfgsMemory)] = KbfgsMemory.Name,
        ["Memory"] = KbfgsMemory.Name,
        [nameof(OptimizerSettings.KsdDimension)] = KsdDimension.Name,
        ["Dimension"] = KsdDimension.Name,
        [nameof(OptimizerSettings.MaxExactParameters)] = MaxExactParams.Name,
        [nameof(OptimizerSettings.DiagnosticsEvery)] = DiagnosticsEvery.Name,
        [nameof(ModelSpec.Kind)] = Model.Name,
        [nameof(ModelSpec.Hidden)] = Hidden.Name,
        [nameof(ModelSpec.Activation)] = Activation.Name,
        [nameof(TrainerOptions.Epochs)] = Epochs.Name,
        [nameof(TrainerOptions.BatchSize)] = BatchSize.Name,
        [nameof(TrainerOptions.Dtype)] = Dtype.Name,
        [nameof(TrainerOptions.Threads)] = Threads.Name,
        ["TestFraction"] = TestFraction.Name,
        ["MaxTrainExamples"] = MaxTrain.Name,
    };
}
