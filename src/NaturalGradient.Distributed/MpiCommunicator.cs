using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Distributed;

/// <summary>
/// <see cref="ICommunicator"/> over MPI_COMM_WORLD (OpenMPI): MPI_Init on creation, MPI_Finalize on disposal.
/// Errors are returned by MPI (MPI_ERRORS_RETURN) and thrown as <see cref="MpiException"/> naming the call.
/// </summary>
/// <remarks>
/// Failure of another rank: a collective that does not complete within <see cref="CollectiveTimeout"/> ends this
/// process with exit code 3 and a one-line message naming the call and the timeout (MPI cannot cancel a
/// blocked call); when mpirun stops the job because a rank died (SIGTERM), the process exits with code 143
/// and a message saying so. Either way no rank waits forever.
/// </remarks>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private const int ChunkElements = int.MaxValue / 2;
    private readonly OpenMpiNative _mpi;
    private readonly Thread _watchdog;
    private readonly PosixSignalRegistration? _sigterm;
    private string? _inCall;
    private long _ticksInCalls;
    private long _callStarted;
    private volatile bool _disposed;

    /// <summary>Initialises MPI (the process must have been started by mpirun).</summary>
    /// <param name="collectiveTimeout">Longest wait in one collective before the process gives up; default 120 s.</param>
    /// <exception cref="MpiNotAvailableException">OpenMPI's library is not installed.</exception>
    /// <exception cref="MpiException">MPI_Init or a query failed.</exception>
    public MpiCommunicator(TimeSpan? collectiveTimeout = null)
    {
        CollectiveTimeout = collectiveTimeout ?? TimeSpan.FromSeconds(120);
        if (CollectiveTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(collectiveTimeout), CollectiveTimeout, "must be > 0");
        _mpi = OpenMpiNative.Load();
        int flag = 0;
        Check(_mpi.Initialized(&flag), "MPI_Initialized");
        if (flag == 0) Check(_mpi.Init(null, IntPtr.Zero), "MPI_Init");
        Check(_mpi.CommSetErrhandler(_mpi.CommWorld, _mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
        int rank = 0, size = 0;
        Check(_mpi.CommRank(_mpi.CommWorld, &rank), "MPI_Comm_rank");
        Check(_mpi.CommSize(_mpi.CommWorld, &size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
        {
            Console.Error.WriteLine($"error: rank {Rank}: stopped by mpirun (SIGTERM){During()}: another rank of the job failed or was killed");
            Console.Error.Flush();
            _exit(143);
        });
        _watchdog = new Thread(Watch) { IsBackground = true, Name = "MPI collective watchdog" };
        _watchdog.Start();
    }

    /// <inheritdoc/>
    public TimeSpan CommunicationTime => System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _ticksInCalls));

    /// <summary>Longest time one collective may wait for the other ranks.</summary>
    public TimeSpan CollectiveTimeout { get; }

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size { get; }

    /// <inheritdoc/>
    public void AllReduce(Tensor tensor, ReduceOperation operation = ReduceOperation.Sum)
    {
        TensorBuffer.Check(tensor, "AllReduce");
        var type = DataType(tensor);
        long count = tensor.numel(), size = tensor.element_size();
        byte* data = (byte*)TensorBuffer.Pointer(tensor);
        for (long offset = 0; offset < count; offset += ChunkElements)
        {
            int n = (int)Math.Min(ChunkElements, count - offset);
            Run("MPI_Allreduce", () => _mpi.Allreduce(OpenMpiNative.InPlace, (IntPtr)(data + offset * size), n, type, _mpi.OpSum, _mpi.CommWorld));
        }
        if (operation == ReduceOperation.Average && Size > 1)
        {
            if (tensor.dtype == ScalarType.Int64) tensor.div_(Size, rounding_mode: RoundingMode.floor);
            else tensor.div_(Size);
        }
    }

    /// <inheritdoc/>
    public void Broadcast(Tensor tensor, int root = 0)
    {
        TensorBuffer.Check(tensor, "Broadcast");
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"the root must be a rank of the job (0 ≤ root < {Size})");
        var type = DataType(tensor);
        long count = tensor.numel(), size = tensor.element_size();
        byte* data = (byte*)TensorBuffer.Pointer(tensor);
        for (long offset = 0; offset < count; offset += ChunkElements)
        {
            int n = (int)Math.Min(ChunkElements, count - offset);
            Run("MPI_Bcast", () => _mpi.Bcast((IntPtr)(data + offset * size), n, type, root, _mpi.CommWorld));
        }
    }

    /// <inheritdoc/>
    public Tensor AllGather(Tensor input)
    {
        TensorBuffer.Check(input, "AllGather");
        if (input.dim() == 0) throw new ArgumentException("AllGather: the input needs a first dimension to concatenate along", nameof(input));
        long rowElements = 1;
        for (int d = 1; d < input.dim(); d++) rowElements *= input.shape[d];

        // Every rank's row count (one small allgather), so that the ranks' inputs may differ in length.
        var rows = new long[Size];
        var shapes = new long[Size * 2];
        long* mine = stackalloc long[2] { input.shape[0], rowElements };
        fixed (long* pinned = shapes)
        {
            IntPtr all = (IntPtr)pinned, own = (IntPtr)mine;
            Run("MPI_Allgather", () => _mpi.Allgather(own, 2, _mpi.Int64, all, 2, _mpi.Int64, _mpi.CommWorld));
        }
        long total = 0;
        for (int r = 0; r < Size; r++)
        {
            if (shapes[2 * r + 1] != rowElements)
                throw new ArgumentException($"AllGather: rank {r}'s rows have {shapes[2 * r + 1]} elements, this rank's {rowElements} (the dimensions after the first must agree)", nameof(input));
            rows[r] = shapes[2 * r];
            total += rows[r];
        }
        if (total * rowElements > int.MaxValue)
            throw new ArgumentException($"AllGather: {total * rowElements} elements exceed MPI's int count", nameof(input));
        var shape = input.shape.ToArray();
        shape[0] = total;
        var output = empty(shape, input.dtype, input.device);
        var counts = new int[Size];
        var displacements = new int[Size];
        for (int r = 0, at = 0; r < Size; r++)
        {
            counts[r] = (int)(rows[r] * rowElements);
            displacements[r] = at;
            at += counts[r];
        }
        var type = DataType(input);
        IntPtr send = TensorBuffer.Pointer(input), receive = TensorBuffer.Pointer(output);
        int sendCount = (int)input.numel();
        fixed (int* c = counts, d = displacements)
        {
            int* cc = c, dd = d;
            Run("MPI_Allgatherv", () => _mpi.Allgatherv(send, sendCount, type, receive, cc, dd, type, _mpi.CommWorld));
        }
        return output;
    }

    /// <inheritdoc/>
    public void Barrier() => Run("MPI_Barrier", () => _mpi.Barrier(_mpi.CommWorld));

    /// <summary>Finalises MPI (after a barrier-free shutdown: every rank must dispose).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _sigterm?.Dispose();
        int finalized = 0;
        if (_mpi.Finalized(&finalized) == 0 && finalized == 0) Check(_mpi.Finalize(), "MPI_Finalize");
    }

    private delegate int Call();

    private void Run(string name, Call call)
    {
        if (_disposed) throw new ObjectDisposedException(nameof(MpiCommunicator));
        Interlocked.Exchange(ref _callStarted, Environment.TickCount64);
        Volatile.Write(ref _inCall, name);
        int code;
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        try { code = call(); }
        finally
        {
            Volatile.Write(ref _inCall, null);
            Interlocked.Add(ref _ticksInCalls, System.Diagnostics.Stopwatch.GetTimestamp() - start);
        }
        Check(code, name);
    }

    private void Check(int code, string call)
    {
        if (code != 0) throw new MpiException(call, code, _mpi.ErrorString(code));
    }

    private IntPtr DataType(Tensor t) => t.dtype switch
    {
        ScalarType.Float32 => _mpi.Float,
        ScalarType.Float64 => _mpi.Double,
        _ => _mpi.Int64,
    };

    private string During() => Volatile.Read(ref _inCall) is { } call ? $" while in {call}" : "";

    private void Watch()
    {
        long limit = (long)CollectiveTimeout.TotalMilliseconds;
        while (!_disposed)
        {
            Thread.Sleep(250);
            var call = Volatile.Read(ref _inCall);
            if (call is null) continue;
            long waited = Environment.TickCount64 - Interlocked.Read(ref _callStarted);
            if (waited > limit && Volatile.Read(ref _inCall) is not null)
            {
                Console.Error.WriteLine($"error: rank {Rank}: {call} did not complete within {CollectiveTimeout.TotalSeconds:G} s: another rank of the job failed or stopped responding");
                Console.Error.Flush();
                _exit(3);
            }
        }
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void _exit(int status);
}
