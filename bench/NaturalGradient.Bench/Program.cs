// NaturalGradient benchmarks. Figures go to stdout and to bench/results/<mode>.json + .md.
//   dotnet run -c Release --project bench/NaturalGradient.Bench -- steps [--quick]   step time of every method as a ratio to SGD
//   dotnet run -c Release --project bench/NaturalGradient.Bench -- memory            RSS over a 2,000-step run (must grow < 5%)
//   dotnet run -c Release --project bench/NaturalGradient.Bench -- micro             BenchmarkDotNet kernels
using BenchmarkDotNet.Running;
using NaturalGradient.Bench;

var mode = args.FirstOrDefault() ?? "steps";
bool quick = args.Contains("--quick");
TorchSharp.torch.set_num_threads(1);
return mode switch
{
    "steps" => StepRatios.Run(quick),
    "memory" => MemoryFlatness.Run(),
    "micro" => Micro(),
    _ => Usage(),
};

static int Micro()
{
    BenchmarkRunner.Run<Kernels>();
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("usage: NaturalGradient.Bench steps [--quick] | memory | micro");
    return 2;
}
