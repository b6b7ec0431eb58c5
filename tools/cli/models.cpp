// funnel models: list every registered model with its one-line description (and its own options, if any).
#include <algorithm>
#include <cstdio>

#include "models/model.hpp"
#include "tools/cli/command.hpp"

namespace {
int run_models(int argc, char** argv) {
  funnel::cli::Flags flags(argc, argv, {}, {});
  std::size_t width = 0;
  for (const auto& k : funnel::model_kinds()) width = std::max(width, k.size());
  for (const auto& k : funnel::model_kinds()) {
    const funnel::ModelDef& d = funnel::get_model(k);
    std::printf("%-*s  %s\n", static_cast<int>(width), d.name.c_str(), d.description.c_str());
    for (const auto& o : d.options)
      std::printf("%-*s    --model-options %s=%s  %s\n", static_cast<int>(width), "", o.name.c_str(),
                  o.default_value.dump().c_str(), o.help.c_str());
  }
  return 0;
}
}  // namespace
FUNNEL_COMMAND(models, "models", "list the registered models", run_models);
