namespace NaturalGradient.Cli; public static class Program { public static int Main(string[] a) { return 0; } }
