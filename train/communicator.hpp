#pragma once
/// @file
/// Communicator: the collectives a training run needs to agree across processes (stop requests, batch sizes,
/// errors), reduce gradients and merge metrics. The interface lives here, below every parallelism strategy; this
/// layer has the one-process implementation (LocalCommunicator, every collective a copy or a no-op) and the MPI
/// layer (distributed/comm.hpp) the one over Open MPI. A program asks for the process's communicator with
/// process_communicator(): the MPI one when the MPI layer is linked in and the process was started by a launcher,
/// else a local one.
///
///   Communicator& c = funnel::process_communicator();
///   c.sum_identical(buf);                     // every rank gets the same bits
///   funnel::finish_process_communicator();    // at a normal exit only
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace funnel {

/// A failed collective (an MPI call's error, counts that do not agree), naming the call and the rank.
struct CommError : Error {
  using Error::Error;
};

/// Element types a collective carries.
enum class DType { F32, F64, I64, U64, Byte };
/// Reductions of an all-reduce.
enum class ReduceOp { Sum, Max, Min };

/// The DType of a C++ element type (float, double, std::int64_t, std::uint64_t, char).
template <class T>
constexpr DType dtype_of();
/// float: DType::F32.
template <>
constexpr DType dtype_of<float>() { return DType::F32; }
/// double: DType::F64.
template <>
constexpr DType dtype_of<double>() { return DType::F64; }
/// std::int64_t: DType::I64.
template <>
constexpr DType dtype_of<std::int64_t>() { return DType::I64; }
/// std::uint64_t: DType::U64.
template <>
constexpr DType dtype_of<std::uint64_t>() { return DType::U64; }
/// char: DType::Byte.
template <>
constexpr DType dtype_of<char>() { return DType::Byte; }

/// Bytes of one element of type `t`.
constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I64: return 8;
    case DType::U64: return 8;
    case DType::Byte: return 1;
  }
  return 1;
}

/// The collectives of a group of `size()` processes (ranks). Every collective must be called by every rank at the
/// same point with agreeing arguments.
class Communicator {
 public:
  virtual ~Communicator() = default;
  /// This process's rank, 0 ≤ rank() < size().
  virtual int rank() const = 0;
  /// Number of ranks.
  virtual int size() const = 0;
  /// True for a communicator over MPI (false for the local one).
  virtual bool is_mpi() const = 0;
  /// Host name (MPI processor name), for messages.
  virtual std::string host() const = 0;

  /// In-place all-reduce of n elements (any rank order; for floats the ranks may differ in the last bit on some
  /// MPI algorithms, so float gradients use sum_identical instead).
  virtual void allreduce(void* buf, std::size_t n, DType t, ReduceOp op) = 0;
  /// In-place sum of a float buffer whose result is bit-identical on every rank: reduce_scatter (each slice is
  /// summed once, on one rank) followed by allgather_slices.
  void sum_identical(std::span<float> buf) {
    reduce_scatter(buf);
    allgather_slices(buf);
  }
  /// Rank r's slice [begin, end) of a buffer of n floats: the buffer is cut into `size()` contiguous slices of
  /// ceil(n / size()) floats in rank order (the last ones shorter or empty). The two halves of sum_identical work
  /// on these, for callers that work on their own slice in between (the sharded optimizer: distributed/reducer.hpp).
  std::pair<std::size_t, std::size_t> slice_of(std::size_t n, int r) const {
    const std::size_t P = static_cast<std::size_t>(size()), chunk = (n + P - 1) / P;
    return {std::min(n, chunk * static_cast<std::size_t>(r)), std::min(n, chunk * static_cast<std::size_t>(r + 1))};
  }
  /// In place: this rank's slice of `buf` becomes the sum over the ranks of that slice (summed once, so the same
  /// bits whoever reads it later); the rest of `buf` is left as it was. Same length on every rank.
  virtual void reduce_scatter(std::span<float> buf) = 0;
  /// In place: every rank's slice of `buf` (slice_of) copied into `buf` on every rank.
  virtual void allgather_slices(std::span<float> buf) = 0;
  /// Concatenation of every rank's `send` in rank order into `recv`; counts[r] = elements from rank r.
  virtual void allgatherv(const void* send, std::size_t n, void* recv, std::span<const std::int64_t> counts,
                          DType t) = 0;
  /// Root's n elements of `buf` into `buf` on every rank.
  virtual void broadcast(void* buf, std::size_t n, DType t, int root) = 0;
  /// Waits until every rank has called it.
  virtual void barrier() = 0;
  /// Personalised exchange (row-sharded embeddings): this rank sends send[r*n .. r*n + n) to rank r and receives
  /// rank r's block for it into recv[r*n .. r*n + n).
  virtual void alltoall(const void* send, std::size_t n, void* recv, DType t) = 0;
  /// The same with a count per peer: send_counts[r] elements to rank r (blocks laid out in rank order in `send`),
  /// recv_counts[r] elements from rank r into `recv` (in rank order). Both count lists have one entry per rank and
  /// must agree with the peers' (rank r's send_counts[me] == my recv_counts[r]).
  virtual void alltoallv(const void* send, std::span<const std::int64_t> send_counts, void* recv,
                         std::span<const std::int64_t> recv_counts, DType t) = 0;
  /// Every rank's `send` (n elements) concatenated in rank order into `recv` on `root` only; counts[r] = elements of
  /// rank r (read on the root only; `recv` may be null elsewhere).
  virtual void gatherv(const void* send, std::size_t n, void* recv, std::span<const std::int64_t> counts, DType t,
                       int root) = 0;

  /// Typed all-reduce of a span in place.
  template <class T>
  void allreduce(std::span<T> v, ReduceOp op) { allreduce(v.data(), v.size(), dtype_of<T>(), op); }
  /// The reduction of one value over the ranks.
  template <class T>
  T allreduce_one(T x, ReduceOp op) {
    allreduce(&x, 1, dtype_of<T>(), op);
    return x;
  }
  /// Every rank's value, in rank order.
  template <class T>
  std::vector<T> allgather_one(T x) {
    std::vector<T> all(static_cast<std::size_t>(size()));
    std::vector<std::int64_t> counts(all.size(), 1);
    allgatherv(&x, 1, all.data(), counts, dtype_of<T>());
    return all;
  }
  /// Root's string on every rank.
  std::string broadcast_string(const std::string& s, int root);

  /// Bytes this rank handed to collectives since construction (payload only, not protocol overhead).
  std::uint64_t bytes_sent() const { return bytes_sent_; }

  /// Watchdog: a collective that takes longer than this many seconds ends the process (MPI; see
  /// distributed/comm.hpp). 0 = off. The local communicator has nothing to wait for and ignores it.
  virtual void set_timeout(double seconds) = 0;

 protected:
  /// Payload bytes handed to collectives so far (implementations add to it).
  std::uint64_t bytes_sent_ = 0;
};

/// One process alone: rank 0 of 1. Every collective is a copy (or nothing).
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }                        ///< always 0
  int size() const override { return 1; }                        ///< always 1
  bool is_mpi() const override { return false; }                 ///< false
  std::string host() const override { return "localhost"; }     ///< "localhost"
  void allreduce(void*, std::size_t, DType, ReduceOp) override {}  ///< nothing to reduce
  void reduce_scatter(std::span<float>) override {}              ///< the buffer is its own sum
  void allgather_slices(std::span<float>) override {}            ///< the one slice is the buffer
  /// Copies `send` to `recv`.
  void allgatherv(const void* send, std::size_t n, void* recv, std::span<const std::int64_t>, DType t) override;
  void broadcast(void*, std::size_t, DType, int) override {}     ///< the root's buffer is this one
  void barrier() override {}                                     ///< nobody to wait for
  /// Copies `send` to `recv`.
  void alltoall(const void* send, std::size_t n, void* recv, DType t) override;
  /// Copies `send` to `recv`; a CommError when the two counts differ.
  void alltoallv(const void* send, std::span<const std::int64_t> sc, void* recv, std::span<const std::int64_t> rc,
                 DType t) override;
  /// Copies `send` to `recv`.
  void gatherv(const void* send, std::size_t n, void* recv, std::span<const std::int64_t>, DType t, int) override;
  void set_timeout(double) override {}                           ///< nothing can hang
};

/// Where a program's process-wide communicator comes from: the MPI layer registers one (register_communicator)
/// when it is linked in; without one, process_communicator() is a LocalCommunicator.
struct CommunicatorProvider {
  Communicator& (*world)() = nullptr;  ///< the process's communicator (made on the first call)
  void (*finish)() = nullptr;          ///< at a normal exit, after the last collective (e.g. MPI_Finalize)
};
/// Registers the provider (at static-initialisation time; the last one registered wins). Returns true, for use as
/// a static initialiser.
bool register_communicator(const CommunicatorProvider& p);
/// The process-wide communicator: the registered provider's, else one LocalCommunicator.
Communicator& process_communicator();
/// Ends the process-wide communicator at a normal exit (MPI_Finalize for MPI's). Never on an error path (it may
/// wait for peers that are gone): exit non-zero and let the launcher end the job.
void finish_process_communicator();

}  // namespace funnel
