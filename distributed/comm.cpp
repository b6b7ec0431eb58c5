#include "distributed/comm.hpp"

#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

namespace funnel::dist {

namespace {

// ---------------------------------------------------------------- MPI
MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I64: return MPI_INT64_T;
    case DType::U64: return MPI_UINT64_T;
    case DType::Byte: return MPI_CHAR;
  }
  return MPI_CHAR;
}
MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

// Ends the process when a collective has been waiting longer than the timeout.
class Watchdog {
 public:
  Watchdog(int rank, std::string host) : rank_(rank), host_(std::move(host)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> l(m_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void set_timeout(double s) { timeout_ns_.store(static_cast<std::int64_t>(s * 1e9)); }
  void arm(const char* what) {
    what_.store(what);
    since_ns_.store(now_ns());
  }
  void disarm() { since_ns_.store(0); }

 private:
  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void run() {
    std::unique_lock<std::mutex> l(m_);
    while (!quit_) {
      cv_.wait_for(l, std::chrono::milliseconds(100));
      const std::int64_t since = since_ns_.load(), limit = timeout_ns_.load();
      if (since != 0 && limit > 0 && now_ns() - since > limit) {
        std::fprintf(stderr,
                     "funnel: rank %d (%s): %s has waited %.1f s for the other ranks; one of them died or hangs. "
                     "Giving up (exit 70).\n",
                     rank_, host_.c_str(), what_.load(), static_cast<double>(limit) * 1e-9);
        std::fflush(stderr);
        std::_Exit(70);
      }
    }
  }
  int rank_;
  std::string host_;
  std::atomic<std::int64_t> timeout_ns_{0};
  std::atomic<std::int64_t> since_ns_{0};
  std::atomic<const char*> what_{""};
  std::mutex m_;
  std::condition_variable cv_;
  bool quit_ = false;
  std::thread thread_;
};

class MpiComm final : public Communicator {
 public:
  MpiComm() {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      // Only the main thread calls MPI (the worker pool never does).
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        throw CommError("MPI_Init_thread failed");
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(name, &len);
    host_.assign(name, static_cast<std::size_t>(len));
    watchdog_ = std::make_unique<Watchdog>(rank_, host_);
    double t = 300.0;
    if (const char* e = std::getenv("FUNNEL_MPI_TIMEOUT")) {
      char* end = nullptr;
      const double v = std::strtod(e, &end);
      if (end != e && *end == '\0' && v >= 0) t = v;
    }
    watchdog_->set_timeout(t);
  }
  ~MpiComm() override = default;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool is_mpi() const override { return true; }
  std::string host() const override { return host_; }
  void set_timeout(double s) override { watchdog_->set_timeout(s); }

  void allreduce(void* buf, std::size_t n, DType t, ReduceOp op) override {
    Guard g(*this, "MPI_Allreduce");
    check(MPI_Allreduce(MPI_IN_PLACE, buf, count(n), mpi_type(t), mpi_op(op), MPI_COMM_WORLD), "MPI_Allreduce");
    bytes_sent_ += n * dtype_size(t);
  }

  void reduce_scatter(std::span<float> buf) override {
    const std::size_t P = static_cast<std::size_t>(size_);
    const std::size_t chunk = (buf.size() + P - 1) / P;
    padded_.resize(chunk * P);
    slice_.resize(chunk);
    std::memcpy(padded_.data(), buf.data(), buf.size() * sizeof(float));
    std::fill(padded_.begin() + static_cast<std::ptrdiff_t>(buf.size()), padded_.end(), 0.0f);
    {
      Guard g(*this, "MPI_Reduce_scatter_block");
      check(MPI_Reduce_scatter_block(padded_.data(), slice_.data(), count(chunk), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
            "MPI_Reduce_scatter_block");
    }
    const auto [b, e] = slice_of(buf.size(), rank_);
    if (e > b) std::memcpy(buf.data() + b, slice_.data(), (e - b) * sizeof(float));
    // Ring-equivalent payload: this rank's whole (padded) buffer.
    bytes_sent_ += chunk * P * sizeof(float);
  }

  void allgather_slices(std::span<float> buf) override {
    const std::size_t P = static_cast<std::size_t>(size_);
    const std::size_t chunk = (buf.size() + P - 1) / P;
    padded_.resize(chunk * P);
    const auto [b, e] = slice_of(buf.size(), rank_);
    if (e > b) std::memcpy(padded_.data() + b, buf.data() + b, (e - b) * sizeof(float));
    {
      Guard g(*this, "MPI_Allgather");
      check(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, padded_.data(), count(chunk), MPI_FLOAT,
                          MPI_COMM_WORLD),
            "MPI_Allgather");
    }
    std::memcpy(buf.data(), padded_.data(), buf.size() * sizeof(float));
    // Ring-equivalent payload: this rank's slice.
    bytes_sent_ += chunk * sizeof(float);
  }

  void allgatherv(const void* send, std::size_t n, void* recv, std::span<const std::int64_t> counts,
                  DType t) override {
    if (counts.size() != static_cast<std::size_t>(size_)) throw CommError("allgatherv: counts need one entry per rank");
    icounts_.resize(counts.size());
    displs_.resize(counts.size());
    std::int64_t off = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      icounts_[r] = count(static_cast<std::size_t>(counts[r]));
      displs_[r] = count(static_cast<std::size_t>(off));
      off += counts[r];
    }
    if (static_cast<std::int64_t>(n) != counts[static_cast<std::size_t>(rank_)])
      throw CommError("allgatherv: this rank's count does not match its entry in counts");
    Guard g(*this, "MPI_Allgatherv");
    check(MPI_Allgatherv(send, count(n), mpi_type(t), recv, icounts_.data(), displs_.data(), mpi_type(t),
                         MPI_COMM_WORLD),
          "MPI_Allgatherv");
    bytes_sent_ += n * dtype_size(t);
  }

  void broadcast(void* buf, std::size_t n, DType t, int root) override {
    Guard g(*this, "MPI_Bcast");
    check(MPI_Bcast(buf, count(n), mpi_type(t), root, MPI_COMM_WORLD), "MPI_Bcast");
    if (rank_ == root) bytes_sent_ += n * dtype_size(t);
  }

  void barrier() override {
    Guard g(*this, "MPI_Barrier");
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }

  void alltoall(const void* send, std::size_t n, void* recv, DType t) override {
    Guard g(*this, "MPI_Alltoall");
    check(MPI_Alltoall(send, count(n), mpi_type(t), recv, count(n), mpi_type(t), MPI_COMM_WORLD), "MPI_Alltoall");
    bytes_sent_ += n * static_cast<std::size_t>(size_ - 1) * dtype_size(t);  // not counting the block to itself
  }

  void alltoallv(const void* send, std::span<const std::int64_t> sc, void* recv, std::span<const std::int64_t> rc,
                 DType t) override {
    const auto P = static_cast<std::size_t>(size_);
    if (sc.size() != P || rc.size() != P) throw CommError("alltoallv: counts need one entry per rank");
    a2a_.resize(4 * P);
    int* scount = a2a_.data();
    int* sdispl = scount + P;
    int* rcount = sdispl + P;
    int* rdispl = rcount + P;
    std::int64_t so = 0, ro = 0, sent = 0;
    for (std::size_t r = 0; r < P; ++r) {
      scount[r] = count(static_cast<std::size_t>(sc[r]));
      sdispl[r] = count(static_cast<std::size_t>(so));
      rcount[r] = count(static_cast<std::size_t>(rc[r]));
      rdispl[r] = count(static_cast<std::size_t>(ro));
      so += sc[r];
      ro += rc[r];
      if (r != static_cast<std::size_t>(rank_)) sent += sc[r];
    }
    Guard g(*this, "MPI_Alltoallv");
    check(MPI_Alltoallv(send, scount, sdispl, mpi_type(t), recv, rcount, rdispl, mpi_type(t), MPI_COMM_WORLD),
          "MPI_Alltoallv");
    bytes_sent_ += static_cast<std::size_t>(sent) * dtype_size(t);
  }

  void gatherv(const void* send, std::size_t n, void* recv, std::span<const std::int64_t> counts, DType t,
               int root) override {
    const auto P = static_cast<std::size_t>(size_);
    if (rank_ == root && counts.size() != P) throw CommError("gatherv: counts need one entry per rank");
    a2a_.resize(2 * P);
    int* rcount = a2a_.data();
    int* rdispl = rcount + P;
    if (rank_ == root) {
      std::int64_t off = 0;
      for (std::size_t r = 0; r < P; ++r) {
        rcount[r] = count(static_cast<std::size_t>(counts[r]));
        rdispl[r] = count(static_cast<std::size_t>(off));
        off += counts[r];
      }
    }
    Guard g(*this, "MPI_Gatherv");
    check(MPI_Gatherv(send, count(n), mpi_type(t), recv, rcount, rdispl, mpi_type(t), root, MPI_COMM_WORLD),
          "MPI_Gatherv");
    if (rank_ != root) bytes_sent_ += n * dtype_size(t);
  }

 private:
  struct Guard {
    Guard(MpiComm& c, const char* what) : c_(c) { c_.watchdog_->arm(what); }
    ~Guard() { c_.watchdog_->disarm(); }
    MpiComm& c_;
  };
  int count(std::size_t n) const {
    if (n > static_cast<std::size_t>(INT_MAX))
      throw CommError("rank " + std::to_string(rank_) + ": a message of " + std::to_string(n) +
                      " elements exceeds MPI's int count");
    return static_cast<int>(n);
  }
  void check(int rc, const char* what) const {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw CommError(std::string(what) + " failed on rank " + std::to_string(rank_) + " (" + host_ + "): " +
                    std::string(msg, static_cast<std::size_t>(len)));
  }

  int rank_ = 0, size_ = 1;
  std::string host_;
  std::unique_ptr<Watchdog> watchdog_;
  std::vector<float> padded_, slice_;
  std::vector<int> icounts_, displs_;
  std::vector<int> a2a_;  // alltoallv / gatherv counts and displacements
};

std::unique_ptr<Communicator>& world_ptr() {
  static std::unique_ptr<Communicator> w;
  return w;
}

}  // namespace

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

Communicator& world() {
  auto& w = world_ptr();
  if (!w) {
    if (launched_by_mpi())
      w = std::make_unique<MpiComm>();
    else
      w = make_local_comm();
  }
  return *w;
}

void finalize_world() {
  auto& w = world_ptr();
  const bool mpi = w && w->is_mpi();
  w.reset();  // stops the watchdog
  if (mpi) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
  }
}

std::unique_ptr<Communicator> make_local_comm() { return std::make_unique<LocalCommunicator>(); }

namespace {
// Linking this layer makes MPI's world the process's communicator (funnel::process_communicator()).
const bool mpi_world_registered = register_communicator({&world, &finalize_world});
}  // namespace

}  // namespace funnel::dist
