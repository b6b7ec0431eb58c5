#include "train/communicator.hpp"

#include <cstring>

namespace funnel {

std::string Communicator::broadcast_string(const std::string& s, int root) {
  std::int64_t n = rank() == root ? static_cast<std::int64_t>(s.size()) : 0;
  broadcast(&n, 1, DType::I64, root);
  std::string out = rank() == root ? s : std::string(static_cast<std::size_t>(n), '\0');
  if (n > 0) broadcast(out.data(), out.size(), DType::Byte, root);
  return out;
}

void LocalCommunicator::allgatherv(const void* send, std::size_t n, void* recv, std::span<const std::int64_t>,
                                   DType t) {
  if (n > 0 && send != recv) std::memmove(recv, send, n * dtype_size(t));
}

void LocalCommunicator::alltoall(const void* send, std::size_t n, void* recv, DType t) {
  if (n > 0 && send != recv) std::memmove(recv, send, n * dtype_size(t));
}

void LocalCommunicator::alltoallv(const void* send, std::span<const std::int64_t> sc, void* recv,
                                  std::span<const std::int64_t> rc, DType t) {
  if (sc.size() != 1 || rc.size() != 1 || sc[0] != rc[0])
    throw CommError("alltoallv: one rank sends to itself what it receives (counts differ)");
  if (sc[0] > 0 && send != recv) std::memmove(recv, send, static_cast<std::size_t>(sc[0]) * dtype_size(t));
}

void LocalCommunicator::gatherv(const void* send, std::size_t n, void* recv, std::span<const std::int64_t>, DType t,
                                int) {
  if (n > 0 && send != recv) std::memmove(recv, send, n * dtype_size(t));
}

namespace {

CommunicatorProvider& provider() {
  static CommunicatorProvider p;
  return p;
}

}  // namespace

bool register_communicator(const CommunicatorProvider& p) {
  provider() = p;
  return true;
}

Communicator& process_communicator() {
  if (provider().world) return provider().world();
  static LocalCommunicator local;
  return local;
}

void finish_process_communicator() {
  if (provider().finish) provider().finish();
}

}  // namespace funnel
