#pragma once
/// @file
/// ONNX export: a model's inference graph — the part of its graph the prediction columns depend on, losses and
/// labels pruned — as an ONNX model (opset 17, float32), each op written by its own lowering (core/onnx_lowering.hpp),
/// the parameters as initializers.
///
/// Inputs: the categorical ids as funnel holds them (core/ids.hpp's IdBatch), and the dense features:
///   ids      int64  N                   the embedding rows of every cell's values (the checkpoint's feature map),
///                                       cell after cell, row-major (row 0 field 0, row 0 field 1, ...)
///   weights  float  N                   each id's weight (1 for a plain categorical value)
///   offsets  int64  batch · F + 1       cell c holds ids[offsets[c] .. offsets[c + 1]); offsets[0] = 0, offsets[last]
///                                       = N, non-decreasing (an empty cell repeats the offset); the batch is
///                                       (len(offsets) − 1) / F
///   dense    float  batch × num_dense   the dense features, in the feature map's "dense" order (only when the model
///                                       has dense features)
/// Outputs: one float batch × 1 tensor per prediction column, named as the column (ESMM: pctr, pcvr, pctcvr).
/// docs/onnx.md says why this layout rather than ids padded to a fixed width (measured: tools/ort/bench.js).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/graph.hpp"
#include "train/model.hpp"

namespace funnel {

inline constexpr std::int64_t kOnnxOpset = 17;  ///< the ONNX opset version exported files declare

/// The nodes of `g` that `targets` depend on, in topological order, and among them the op nodes whose op has no ONNX
/// lowering ("node 'x' (op y)"); the export refuses a graph with any.
/// @{
std::vector<NodeId> inference_nodes(const Graph& g, const std::vector<NodeId>& targets);
std::vector<std::string> missing_onnx_lowerings(const Graph& g, const std::vector<NodeId>& targets);
/// @}

/// The model as a serialized ONNX ModelProto (see above). `doc` goes into the model's doc_string. Throws
/// funnel::Error when an op on the way to a column has no lowering.
std::string export_onnx(const Model& m, const std::string& doc = "");

/// What a client needs to feed the exported file without funnel (written beside it as JSON): the input layout, the
/// output columns, and the checkpoint's feature map (or the synthetic data's shape). See docs/onnx.md.
nlohmann::json onnx_inputs_json(const Model& m, const nlohmann::json& checkpoint_data, std::int64_t step);

}  // namespace funnel
