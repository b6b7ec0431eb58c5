#include "train/strategy.hpp"

#include <map>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "train/trainer.hpp"

namespace funnel {

void ParallelStrategy::attach(Trainer&) {}

std::unique_ptr<BatchSource> ParallelStrategy::train_source(const Trainer& t) { return t.train_source(); }

std::unique_ptr<BatchSource> ParallelStrategy::eval_source(const Trainer& t) { return t.eval_source(); }

void ParallelStrategy::after_gradients(Model&, GradientStep&) {}

void ParallelStrategy::apply_optimizer(Model& m, Optimizer<float>& opt, GradientStep&) { opt.step(m.params()); }

void ParallelStrategy::after_step(const StepInfo&) {}

FunnelMetrics ParallelStrategy::evaluate(Model& m, BatchSource& mine, const EvalHooks& hooks) {
  return funnel::evaluate(m, mine, {}, hooks);
}

void ParallelStrategy::save(Trainer& t, const std::string& dir, std::int64_t step, std::int64_t epoch) {
  if (lead()) t.write_checkpoint(dir, step, epoch);
}

namespace {

struct Entry {
  std::string help;
  StrategyFactory make;
};

std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> r{
      {"local",
       {"one process",
        [](Communicator&, const StrategyOptions&) -> std::unique_ptr<ParallelStrategy> {
          return std::make_unique<LocalStrategy>();
        }}}};
  return r;
}

}  // namespace

bool register_strategy(const std::string& name, const std::string& help, StrategyFactory make) {
  if (!registry().emplace(name, Entry{help, std::move(make)}).second)
    throw Error("parallelism strategy '" + name + "' is registered twice");
  return true;
}

bool has_strategy(const std::string& name) { return registry().count(name) > 0; }

std::vector<std::string> strategy_names() {
  std::vector<std::string> names{"local"};
  for (const auto& [n, e] : registry())
    if (n != "local") names.push_back(n);
  return names;
}

std::unique_ptr<ParallelStrategy> make_strategy(const std::string& name, Communicator& c, const StrategyOptions& o) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : strategy_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("no parallelism strategy '" + name + "' in this build (it has: " + known + ")");
  }
  return it->second.make(c, o);
}

void check_same_config(Communicator& c, const nlohmann::json& config) {
  if (c.size() < 2) return;
  const std::string text = config.dump();
  const std::uint64_t h = fnv1a64(text);
  std::uint64_t lo = h, hi = h;
  c.allreduce(&lo, 1, DType::U64, ReduceOp::Min);
  c.allreduce(&hi, 1, DType::U64, ReduceOp::Max);
  if (lo != hi)
    throw Error("rank " + std::to_string(c.rank()) + " of " + std::to_string(c.size()) +
                ": the ranks were started with different configurations (hashes of the effective configuration "
                "differ), so their replicas would diverge; start every rank with the same flags. This rank's: " +
                text);
}

}  // namespace funnel
