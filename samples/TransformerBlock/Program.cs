using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TransformerBlock;
using static TorchSharp.torch;

// Sequence classification: which of the tokens 0, 1, 2 occurs most often in a sequence of 8 tokens drawn from 8 (ties:
// the smallest). A transformer block (docs/LAYERS.md) trained with K-FAC and with TENGraD; every parameter is covered.
// Exit code 0 when both reach a training-set loss below Target within Steps steps and the coverage is complete.
const long Vocabulary = 8, Length = 8, Classes = 3, Width = 16, Train = 512, Batch = 32;
const int Steps = 60;
const double Target = 0.1;

manual_seed(0);
var tokens = randint(Vocabulary, new[] { Train, Length }, dtype: ScalarType.Int64);
var counts = stack(Enumerable.Range(0, (int)Classes).Select(c => tokens.eq(c).sum(1)).ToArray(), 1);   // Train × 3
var labels = (counts.to_type(ScalarType.Float64) - 1e-3 * arange(Classes, dtype: ScalarType.Float64)).argmax(1);

int failures = 0;
foreach (var structure in new[] { CurvatureStructure.Kfac, CurvatureStructure.Tengrad })
{
    manual_seed(1);
    using var model = new TransformerClassifier(Vocabulary, Width, Classes);
    using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), new NaturalGradientOptions
    {
        LearningRate = 0.1,
        // K-FAC's norm constraint on the predicted KL ½uᵀMu of each step (at most 1e-3; one metric product per step). On
        // this task it trained K-FAC to a loss of 0.0065 in 60 steps, where the gradient form (η²Δᵀg ≤ κ before momentum,
        // no metric product) reached 0.034 with κ = 1e-3 and 0.097 with κ = 1e-2.
        KlClip = 1e-3, KlClipForm = KlClipForm.StepQuadraticForm,
        Preconditioner = new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Exact, Damping = 1e-2 },
    });
    Console.WriteLine($"== {structure}");
    foreach (var line in ngd.Preconditioner.Coverage().SummaryLines()) Console.WriteLine(line);
    if (!ngd.Preconditioner.Coverage().CoversEveryTrainableTensor) failures++;

    double loss = double.NaN;
    for (int step = 0; step < Steps; step++)
    {
        using var scope = NewDisposeScope();
        long start = step * Batch % Train;
        var report = ngd.Step(tokens.narrow(0, start, Batch), labels.narrow(0, start, Batch));
        if (step % 25 == 0) Console.WriteLine($"step {step,4}  batch loss {report.Loss:F4}");
    }
    using (no_grad())
    {
        var logits = model.call(tokens);
        loss = nn.functional.cross_entropy(logits, labels).item<float>();
        double accuracy = logits.argmax(1).eq(labels).to_type(ScalarType.Float32).mean().item<float>();
        Console.WriteLine($"{structure}: training-set loss {loss:F4}, accuracy {accuracy:P1} after {Steps} steps (target loss < {Target})");
    }
    if (!(loss < Target)) failures++;
}
return failures == 0 ? 0 : 1;
