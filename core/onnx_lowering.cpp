#include "core/onnx_lowering.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace funnel {
namespace {
std::map<std::string, OnnxLowering, std::less<>>& lowerings() {
  static std::map<std::string, OnnxLowering, std::less<>> m;
  return m;
}
}  // namespace

void register_onnx_lowering(std::string_view op, OnnxLowering f) {
  if (!lowerings().emplace(std::string(op), f).second) {
    std::fprintf(stderr, "funnel: a second ONNX lowering for op '%.*s'\n", static_cast<int>(op.size()), op.data());
    std::abort();
  }
}

OnnxLowering find_onnx_lowering(std::string_view op) {
  const auto it = lowerings().find(op);
  return it == lowerings().end() ? nullptr : it->second;
}

std::vector<std::string> onnx_lowered_ops() {
  std::vector<std::string> v;
  for (const auto& [k, f] : lowerings()) v.push_back(k);
  return v;
}

}  // namespace funnel
