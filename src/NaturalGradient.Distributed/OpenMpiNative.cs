using System.Runtime.InteropServices;
using System.Text;

namespace NaturalGradient.Distributed;

/// <summary>
/// The MPI calls data-parallel training uses, bound at run time to OpenMPI's <c>libmpi.so.40</c> (Debian
/// <c>libopenmpi3</c>, OpenMPI 4.x). OpenMPI's handles (communicator, datatypes, operations, error handlers)
/// are the addresses of its exported objects, read from the library; MPI_IN_PLACE is (void*)1.
/// </summary>
/// <remarks>The library is opened with RTLD_GLOBAL so that OpenMPI's plug-ins, which it opens later, find its symbols.</remarks>
internal sealed unsafe class OpenMpiNative
{
    public const string Library = "libmpi.so.40";
    public static readonly IntPtr InPlace = 1;

    public readonly IntPtr CommWorld, Float, Double, Int64, Int32, OpSum, ErrorsReturn;
    public readonly delegate* unmanaged<int*, IntPtr, int> Init;
    public readonly delegate* unmanaged<int*, int> Initialized;
    public readonly delegate* unmanaged<int*, int> Finalized;
    public readonly delegate* unmanaged<int> Finalize;
    public readonly delegate* unmanaged<IntPtr, int*, int> CommRank;
    public readonly delegate* unmanaged<IntPtr, int*, int> CommSize;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int> CommSetErrhandler;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, int> Allreduce;
    public readonly delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int> Bcast;
    public readonly delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, int> Allgather;
    public readonly delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int*, int*, IntPtr, IntPtr, int> Allgatherv;
    public readonly delegate* unmanaged<IntPtr, int> Barrier;
    public readonly delegate* unmanaged<IntPtr, int, int> Abort;
    private readonly delegate* unmanaged<int, byte*, int*, int> _errorString;

    private OpenMpiNative(IntPtr lib)
    {
        IntPtr Get(string name) => NativeLibrary.GetExport(lib, name);
        CommWorld = Get("ompi_mpi_comm_world");
        Float = Get("ompi_mpi_float");
        Double = Get("ompi_mpi_double");
        Int64 = Get("ompi_mpi_long_long_int");
        Int32 = Get("ompi_mpi_int");
        OpSum = Get("ompi_mpi_op_sum");
        ErrorsReturn = Get("ompi_mpi_errors_return");
        Init = (delegate* unmanaged<int*, IntPtr, int>)Get("MPI_Init");
        Initialized = (delegate* unmanaged<int*, int>)Get("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)Get("MPI_Finalized");
        Finalize = (delegate* unmanaged<int>)Get("MPI_Finalize");
        CommRank = (delegate* unmanaged<IntPtr, int*, int>)Get("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<IntPtr, int*, int>)Get("MPI_Comm_size");
        CommSetErrhandler = (delegate* unmanaged<IntPtr, IntPtr, int>)Get("MPI_Comm_set_errhandler");
        Allreduce = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, int>)Get("MPI_Allreduce");
        Bcast = (delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int>)Get("MPI_Bcast");
        Allgather = (delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, int>)Get("MPI_Allgather");
        Allgatherv = (delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int*, int*, IntPtr, IntPtr, int>)Get("MPI_Allgatherv");
        Barrier = (delegate* unmanaged<IntPtr, int>)Get("MPI_Barrier");
        Abort = (delegate* unmanaged<IntPtr, int, int>)Get("MPI_Abort");
        _errorString = (delegate* unmanaged<int, byte*, int*, int>)Get("MPI_Error_string");
    }

    /// <summary>Opens OpenMPI.</summary>
    /// <exception cref="MpiNotAvailableException">libmpi.so.40 is missing or is not OpenMPI's; the message says how to install it.</exception>
    /// <param name="library">The shared library to open (OpenMPI 4's by default).</param>
    public static OpenMpiNative Load(string library = Library)
    {
        IntPtr lib = dlopen(library, RtldNow | RtldGlobal);
        if (lib == IntPtr.Zero)
            throw new MpiNotAvailableException(
                $"MPI is not installed: {library} (OpenMPI 4) could not be loaded ({Marshal.PtrToStringUTF8(dlerror()) ?? "not found"}). " +
                "Install it with `sudo apt-get install openmpi-bin libopenmpi-dev` (Debian/Ubuntu) and launch with `mpirun -np N natgrad train ...`");
        try { return new OpenMpiNative(lib); }
        catch (EntryPointNotFoundException e)
        {
            throw new MpiNotAvailableException($"{library} is not OpenMPI's ({e.Message}); install OpenMPI 4 (`sudo apt-get install openmpi-bin libopenmpi-dev`)");
        }
    }

    /// <summary>MPI's description of an error code.</summary>
    public string ErrorString(int code)
    {
        byte* buffer = stackalloc byte[512];
        int length = 0;
        if (_errorString(code, buffer, &length) != 0) return "unknown error";
        return Encoding.UTF8.GetString(buffer, Math.Clamp(length, 0, 512));
    }

    private const int RtldNow = 2, RtldGlobal = 0x100;

    [DllImport("libc", EntryPoint = "dlopen")]
    private static extern IntPtr dlopen([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);

    [DllImport("libc", EntryPoint = "dlerror")]
    private static extern IntPtr dlerror();
}
