#!/usr/bin/python3
"""Two embedding-only ONNX models (opset 17) that pool the same table in the two input layouts funnel's export could
use, for tools/ort/bench.js --layout: padded.onnx (ids and weights B×F×W, padding id 0 of weight 0: Gather, Mul,
ReduceSum — what `funnel export` writes) and offsets.onnx (ids and weights N, offsets B·F+1 as in funnel's IdBatch:
the cell of each id from the offsets by ScatterElements + CumSum, then Gather, Mul and ScatterND(add)).
usage: make_layout_models.py OUT_DIR [rows] [dim] [fields]"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
V = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
D = int(sys.argv[3]) if len(sys.argv) > 3 else 18
F = int(sys.argv[4]) if len(sys.argv) > 4 else 20
table = numpy_helper.from_array(np.random.default_rng(1).normal(0, 0.01, (V, D)).astype(np.float32), "table")
i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
f32 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.float32), name)


def save(name, nodes, inputs, inits):
    g = helper.make_graph(nodes, name, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", F, D])],
                          [table] + inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(out, name + ".onnx"))


save("padded", [
    helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
    helper.make_node("Unsqueeze", ["weights", "ax3"], ["w4"]),
    helper.make_node("Mul", ["rows", "w4"], ["prod"]),
    helper.make_node("ReduceSum", ["prod", "ax2"], ["y"], keepdims=0),
], [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", F, "width"]),
    helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["batch", F, "width"])],
    [i64("ax3", [3]), i64("ax2", [2])])

save("padded_matmul", [
    helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
    helper.make_node("Unsqueeze", ["weights", "ax2"], ["w4"]),
    helper.make_node("MatMul", ["w4", "rows"], ["prod"]),
    helper.make_node("Squeeze", ["prod", "ax2"], ["y"]),
], [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", F, "width"]),
    helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["batch", F, "width"])],
    [i64("ax2", [2])])

save("offsets", [  # the nodes `funnel export` writes for a sum-pooled embedding (ops/embedding.cpp)
    helper.make_node("Shape", ["ids"], ["n"]),
    helper.make_node("Add", ["n", "one1"], ["n1"]),
    helper.make_node("Expand", ["i0", "n1"], ["marks0"]),
    helper.make_node("Slice", ["offsets", "one1", "minus1"], ["starts"]),
    helper.make_node("Shape", ["starts"], ["ns"]),
    helper.make_node("Expand", ["i1", "ns"], ["ones"]),
    helper.make_node("ScatterElements", ["marks0", "starts", "ones"], ["marks1"], axis=0, reduction="add"),
    helper.make_node("Slice", ["marks1", "zero1", "n"], ["marks"]),
    helper.make_node("CumSum", ["marks", "i0"], ["cell"]),
    helper.make_node("Unsqueeze", ["cell", "one1"], ["cell2"]),
    helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
    helper.make_node("Unsqueeze", ["weights", "one1"], ["w2"]),
    helper.make_node("Mul", ["rows", "w2"], ["prod"]),
    helper.make_node("Shape", ["offsets"], ["nc1"]),
    helper.make_node("Sub", ["nc1", "one1"], ["nc"]),
    helper.make_node("Concat", ["nc", "dim"], ["outshape"], axis=0),
    helper.make_node("Expand", ["zero", "outshape"], ["zeros"]),
    helper.make_node("ScatterND", ["zeros", "cell2", "prod"], ["pooled"], reduction="add"),
    helper.make_node("Reshape", ["pooled", "shape3"], ["y"]),
], [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"]),
    helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["n"]),
    helper.make_tensor_value_info("offsets", TensorProto.INT64, ["cells1"])],
    [i64("i0", 0), i64("i1", 1), i64("one1", [1]), i64("minus1", [-1]), i64("zero1", [0]), i64("dim", [D]),
     i64("shape3", [-1, F, D]), f32("zero", 0.0)])
print(f"wrote {out}/padded.onnx, padded_matmul.onnx and offsets.onnx (table {V}x{D}, {F} fields)")
