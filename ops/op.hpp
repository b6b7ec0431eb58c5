#pragma once
/// @file
/// What an op file includes. An op is one file, `ops/<name>.cpp`: its maths and VJP in the opening comment, then the
/// shape rule, forward and backward side by side, registered with FUNNEL_REGISTER_OP (the interface, Ctx and the
/// registry live in core/op.hpp, so that graph code can run shape rules without depending on the ops layer).
/// Its gradient-check examples live in `opcheck/<name>.cpp` (the check layer, above autodiff), its tests in
/// `tests/ops/test_<name>.cpp`. An op file includes only core/ and ops/ headers (scripts/check_layers.sh).
/// An op that can be part of an inference graph ends its file with its ONNX lowering (core/onnx_lowering.hpp).
#include "core/onnx_lowering.hpp"
#include "core/op.hpp"
