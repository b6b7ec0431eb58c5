#pragma once
/// @file
/// The MPI communicator: funnel::Communicator (train/communicator.hpp) over Open MPI's C API when the process was
/// started by mpirun (or another MPI launcher), or the one-process LocalCommunicator otherwise. The binary is the
/// same either way: without a launcher nothing initialises MPI and every collective is a copy or a no-op. Linking
/// this layer registers world() as the process's communicator (funnel::process_communicator()).
///
///   auto& w = funnel::dist::world();           // MPI_Init happens here, once, only under a launcher
///   w.sum_identical(buf);                      // every rank gets the same bits
///   funnel::dist::finalize_world();            // at a normal exit only (see below)
///
/// Errors: a failed MPI call throws CommError naming the call and the rank. A collective that does not complete
/// within the watchdog timeout (a peer died or hangs and the launcher did not end the job) prints a message
/// naming this rank and ends the process with exit code 70, so a job never hangs for ever; mpirun then ends the
/// other ranks. On an error path do NOT call finalize_world (MPI_Finalize waits for the peers): exit non-zero
/// and let the launcher end the job.
#include <memory>

#include "train/communicator.hpp"

namespace funnel::dist {

// The interface and its types live below the strategies (train/communicator.hpp); the names stay usable here.
using funnel::CommError;
using funnel::Communicator;
using funnel::DType;
using funnel::dtype_of;
using funnel::ReduceOp;

/// True when this process was started by an MPI launcher (Open MPI's OMPI_COMM_WORLD_SIZE, PMI/PMIx variables).
bool launched_by_mpi();

/// The process-wide communicator: MPI's world when launched_by_mpi() (MPI is initialised on the first call), else
/// a LocalCommunicator. The watchdog timeout starts at FUNNEL_MPI_TIMEOUT seconds from the environment, or 300.
Communicator& world();
/// MPI_Finalize, when MPI was initialised. Call only on a normal exit, after the last collective.
void finalize_world();

/// A one-rank communicator (a LocalCommunicator), e.g. to compare with a single process in tests.
std::unique_ptr<Communicator> make_local_comm();

}  // namespace funnel::dist
