#pragma once
// Communicator: the few collectives data-parallel training needs, over Open MPI's C API when the process was
// started by mpirun (or another MPI launcher), or a single-process stand-in otherwise. The binary is the same
// either way: without a launcher nothing initialises MPI and every collective is a copy or a no-op.
//
//   auto& w = funnel::dist::world();           // MPI_Init happens here, once, only under a launcher
//   w.sum_identical(buf);                      // every rank gets the same bits
//   funnel::dist::finalize_world();            // at a normal exit only (see below)
//
// Errors: a failed MPI call throws CommError naming the call and the rank. A collective that does not complete
// within the watchdog timeout (a peer died or hangs and the launcher did not end the job) prints a message
// naming this rank and ends the process with exit code 70, so a job never hangs for ever; mpirun then ends the
// other ranks. On an error path do NOT call finalize_world (MPI_Finalize waits for the peers): exit non-zero
// and let the launcher end the job.
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace funnel::dist {

struct CommError : Error {
  using Error::Error;
};

enum class DType { F32, F64, I64, U64, Byte };
enum class ReduceOp { Sum, Max, Min };

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::F32; }
template <>
constexpr DType dtype_of<double>() { return DType::F64; }
template <>
constexpr DType dtype_of<std::int64_t>() { return DType::I64; }
template <>
constexpr DType dtype_of<std::uint64_t>() { return DType::U64; }
template <>
constexpr DType dtype_of<char>() { return DType::Byte; }

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual bool is_mpi() const = 0;
  // Host name (MPI processor name), for messages.
  virtual std::string host() const = 0;

  // In-place all-reduce of n elements (any rank order; for floats the ranks may differ in the last bit on some
  // MPI algorithms, so float gradients use sum_identical instead).
  virtual void allreduce(void* buf, std::size_t n, DType t, ReduceOp op) = 0;
  // In-place sum of a float buffer whose result is bit-identical on every rank: reduce_scatter (each slice is
  // summed once, on one rank) followed by allgather_slices.
  void sum_identical(std::span<float> buf) {
    reduce_scatter(buf);
    allgather_slices(buf);
  }
  // The two halves of sum_identical, for callers that work on their own slice in between (the sharded optimizer:
  // distributed/reducer.hpp). A buffer of n floats is cut into `size()` contiguous slices of ceil(n / size())
  // floats in rank order (the last ones shorter or empty); slice_of(n, r) is rank r's [begin, end).
  std::pair<std::size_t, std::size_t> slice_of(std::size_t n, int r) const {
    const std::size_t P = static_cast<std::size_t>(size()), chunk = (n + P - 1) / P;
    return {std::min(n, chunk * static_cast<std::size_t>(r)), std::min(n, chunk * static_cast<std::size_t>(r + 1))};
  }
  // In place: this rank's slice of `buf` becomes the sum over the ranks of that slice (summed once, so the same
  // bits whoever reads it later); the rest of `buf` is left as it was. Same length on every rank.
  virtual void reduce_scatter(std::span<float> buf) = 0;
  // In place: every rank's slice of `buf` (slice_of) copied into `buf` on every rank.
  virtual void allgather_slices(std::span<float> buf) = 0;
  // Concatenation of every rank's `send` in rank order into `recv`; counts[r] = elements from rank r.
  virtual void allgatherv(const void* send, std::size_t n, void* recv, std::span<const std::int64_t> counts,
                          DType t) = 0;
  virtual void broadcast(void* buf, std::size_t n, DType t, int root) = 0;
  virtual void barrier() = 0;
  // (Row-sharded embeddings, distributed/sharded_embedding.hpp.) Personalised exchange: this rank sends
  // send[r*n .. r*n + n) to rank r and receives rank r's block for it into recv[r*n .. r*n + n).
  virtual void alltoall(const void* send, std::size_t n, void* recv, DType t) = 0;
  // The same with a count per peer: send_counts[r] elements to rank r (blocks laid out in rank order in `send`),
  // recv_counts[r] elements from rank r into `recv` (in rank order). Both count lists have one entry per rank and
  // must agree with the peers' (rank r's send_counts[me] == my recv_counts[r]).
  virtual void alltoallv(const void* send, std::span<const std::int64_t> send_counts, void* recv,
                         std::span<const std::int64_t> recv_counts, DType t) = 0;
  // Every rank's `send` (n elements) concatenated in rank order into `recv` on `root` only; counts[r] = elements of
  // rank r (read on the root only; `recv` may be null elsewhere).
  virtual void gatherv(const void* send, std::size_t n, void* recv, std::span<const std::int64_t> counts, DType t,
                       int root) = 0;

  // ---- typed helpers ----
  template <class T>
  void allreduce(std::span<T> v, ReduceOp op) { allreduce(v.data(), v.size(), dtype_of<T>(), op); }
  template <class T>
  T allreduce_one(T x, ReduceOp op) {
    allreduce(&x, 1, dtype_of<T>(), op);
    return x;
  }
  // Every rank's value, in rank order.
  template <class T>
  std::vector<T> allgather_one(T x) {
    std::vector<T> all(static_cast<std::size_t>(size()));
    std::vector<std::int64_t> counts(all.size(), 1);
    allgatherv(&x, 1, all.data(), counts, dtype_of<T>());
    return all;
  }
  // Root's string on every rank.
  std::string broadcast_string(const std::string& s, int root);

  // Bytes this rank handed to collectives since construction (payload only, not protocol overhead).
  std::uint64_t bytes_sent() const { return bytes_sent_; }

  // Watchdog: a collective that takes longer than this ends the process (see the header comment). 0 = off.
  virtual void set_timeout(double seconds) = 0;

 protected:
  std::uint64_t bytes_sent_ = 0;
};

// True when this process was started by an MPI launcher (Open MPI's OMPI_COMM_WORLD_SIZE, PMI/PMIx variables).
bool launched_by_mpi();

// The process-wide communicator: MPI's world when launched_by_mpi() (MPI is initialised on the first call), else
// a one-rank stand-in. The watchdog timeout starts at FUNNEL_MPI_TIMEOUT seconds from the environment, or 300.
Communicator& world();
// MPI_Finalize, when MPI was initialised. Call only on a normal exit, after the last collective.
void finalize_world();

// A one-rank communicator (the stand-in), usable directly, e.g. to compare with a single process in tests.
std::unique_ptr<Communicator> make_local_comm();

}  // namespace funnel::dist
