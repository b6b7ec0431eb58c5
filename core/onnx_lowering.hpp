#pragma once
/// @file
/// ONNX lowerings of ops. Each op file that can run in an inference graph declares, next to its forward, how a node
/// of it is written as ONNX operators (opset 17), at the end of the file:
///
///   FUNNEL_ONNX_LOWERING("relu") { e.node("Relu", {e.in(0)}, {e.out()}); }
///
/// The body sees `e` (an OnnxEmitter: the ONNX value names of the node's inputs and output, fresh names,
/// constants, and node()) and `n` (the funnel node, with its attributes and shape). The emitter is implemented by the
/// exporter (exporter/onnx_export.hpp), which owns the protobuf side; an op file needs nothing but this header.
/// Losses need none: the exporter prunes the graph to the model's prediction columns, and an op met there without a
/// lowering stops the export naming the node and the op.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/graph.hpp"

namespace funnel {

/// One attribute of an ONNX node.
struct OnnxAttr {
  /// Which of the value fields holds the attribute's value.
  enum class Kind { Int, Float, Ints, String };
  std::string name;                ///< the attribute's ONNX name ("axis", "perm")
  Kind kind = Kind::Int;           ///< which field below is set
  std::int64_t i = 0;              ///< Int: the value
  float f = 0;                     ///< Float: the value
  std::vector<std::int64_t> ints;  ///< Ints: the values
  std::string s;                   ///< String: the value
  /// @{
  /// An attribute `n` holding one integer, one float, a list of integers or a string.
  static OnnxAttr integer(std::string n, std::int64_t v) { return {std::move(n), Kind::Int, v, 0, {}, {}}; }
  static OnnxAttr real(std::string n, float v) { return {std::move(n), Kind::Float, 0, v, {}, {}}; }
  static OnnxAttr list(std::string n, std::vector<std::int64_t> v) {
    return {std::move(n), Kind::Ints, 0, 0, std::move(v), {}};
  }
  static OnnxAttr text(std::string n, std::string v) { return {std::move(n), Kind::String, 0, 0, {}, std::move(v)}; }
  /// @}
};

/// What a lowering writes its ONNX nodes through (implemented by the exporter). One emitter serves one funnel node
/// at a time; the names it returns are valid in the model being written.
class OnnxEmitter {
 public:
  virtual ~OnnxEmitter() = default;
  /// The ONNX value of the node's input slot i. For an Ids input, funnel's IdBatch layout (core/ids.hpp): in(i) is
  /// the ids of every cell one after another (int64, N), weights(i) their weights (float, N) and offsets(i) where
  /// each cell starts (int64, B·F + 1: cell c holds ids[offsets[c] .. offsets[c + 1])).
  /// @{
  virtual std::string in(std::size_t slot) const = 0;
  virtual std::string weights(std::size_t slot) const = 0;
  virtual std::string offsets(std::size_t slot) const = 0;
  /// @}
  /// The funnel node feeding input slot i (its shape: kBatch marks the batch dim).
  virtual const Node& input_node(std::size_t slot) const = 0;
  /// The name the node's result must be written to.
  virtual std::string out() const = 0;
  /// A new value name, unique in the model (hint: a readable suffix).
  virtual std::string temp(std::string_view hint) = 0;
  /// Constants (initializers): float32 and int64 tensors of the given dims ({} for a scalar).
  /// @{
  virtual std::string constant(const std::vector<float>& values, const std::vector<std::int64_t>& dims) = 0;
  virtual std::string constant_i64(const std::vector<std::int64_t>& values, const std::vector<std::int64_t>& dims) = 0;
  /// @}
  /// Appends an ONNX node (op_type of the default domain, opset 17); an empty input name is an omitted input.
  virtual void node(std::string_view op_type, std::vector<std::string> inputs, std::vector<std::string> outputs,
                    std::vector<OnnxAttr> attrs = {}) = 0;
};

/// A lowering: writes node `n` as ONNX nodes through `e`. One that cannot express the node throws funnel::Error,
/// which stops the export.
using OnnxLowering = void (*)(OnnxEmitter& e, const Node& n);

/// Registry of lowerings by op name (registered at static-init time by the op files). register_onnx_lowering aborts
/// on a second lowering for the same op.
void register_onnx_lowering(std::string_view op, OnnxLowering f);
OnnxLowering find_onnx_lowering(std::string_view op);  ///< nullptr when the op has none
std::vector<std::string> onnx_lowered_ops();          ///< sorted

/// Registers a lowering from a static object's constructor; used by FUNNEL_ONNX_LOWERING.
struct OnnxLoweringRegistrar {
  /// Registers `f` as the lowering of op `op`.
  OnnxLoweringRegistrar(std::string_view op, OnnxLowering f) { register_onnx_lowering(op, f); }
};

}  // namespace funnel

/// Declares the ONNX lowering of op `op_name` (a string); the braces that follow are its body (see above). One per
/// file, at namespace scope.
#define FUNNEL_ONNX_LOWERING(op_name)                                                                  \
  static void funnel_onnx_lower(::funnel::OnnxEmitter& e, const ::funnel::Node& n);                    \
  static const ::funnel::OnnxLoweringRegistrar funnel_onnx_lowering_registrar{op_name, &funnel_onnx_lower}; \
  static void funnel_onnx_lower([[maybe_unused]] ::funnel::OnnxEmitter& e, [[maybe_unused]] const ::funnel::Node& n)
