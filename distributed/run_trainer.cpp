#include "distributed/run_trainer.hpp"

namespace funnel::dist {

TrainResult train(Communicator& c, Trainer& t, const TrainHooks& hooks, const DataParallelOptions& o) {
  DataParallel dp(c, t.model(), o);
  const int r = c.rank(), n = c.size();
  // In memory: every rank its part of each global batch. Streamed: every rank its own chunks, batch sizes agreed.
  std::unique_ptr<BatchSource> src = t.train_source(r, n);
  if (t.data().streamed()) src = std::make_unique<AgreedSource>(c, std::move(src));
  std::unique_ptr<BatchSource> ev = t.eval_source(r, n);
  return train_data_parallel(dp, t.model(), t.optimizer(), *src, ev.get(), t.loop_options(), hooks, t.start_step());
}

}  // namespace funnel::dist
