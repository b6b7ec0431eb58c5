// funnel ops: list every registered op with its one-line description.
#include <cstdio>

#include "ops/op.hpp"
#include "cli/command.hpp"

namespace {
int run_ops(int argc, char** argv) {
  funnel::cli::Flags flags(argc, argv, {}, {});
  for (const auto& n : funnel::op_names()) {
    const funnel::Op& op = funnel::get_op(n);
    std::printf("%-12s %s\n", op.name(), op.doc());
  }
  return 0;
}
}  // namespace
FUNNEL_COMMAND(ops, "ops", "list the registered ops", run_ops);
