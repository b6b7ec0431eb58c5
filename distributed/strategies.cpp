// The MPI layer's parallelism strategies, registered by name for `funnel train` (train/strategy.hpp):
// "replicated" (distributed/data_parallel.hpp) and "row-sharded" (distributed/sharded_embedding.hpp).
#include "distributed/data_parallel.hpp"
#include "distributed/sharded_embedding.hpp"

namespace funnel::dist {
namespace {

DataParallelOptions options_of(const StrategyOptions& o) { return DataParallelOptions{.check_every = o.check_every}; }

const bool strategies_registered =
    register_strategy("replicated", "data parallel over the MPI ranks, every rank a whole replica",
                      [](Communicator& c, const StrategyOptions& o) -> std::unique_ptr<ParallelStrategy> {
                        return std::make_unique<DataParallel>(c, options_of(o));
                      }) &&
    register_strategy("row-sharded", "data parallel with the embedding tables spread by rows over the ranks",
                      [](Communicator& c, const StrategyOptions& o) -> std::unique_ptr<ParallelStrategy> {
                        return std::make_unique<RowSharded>(c, options_of(o));
                      });

}  // namespace
}  // namespace funnel::dist
