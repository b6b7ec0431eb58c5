#include "distributed/run_trainer.hpp"

namespace funnel::dist {

TrainResult train(Communicator& c, Trainer& t, const TrainHooks& hooks, const DataParallelOptions& o) {
  DataParallel dp(c, t.model(), o);
  const TrainData& d = t.data();
  return train_data_parallel(dp, t.model(), t.optimizer(), d.train.data, d.has_eval ? &d.eval : nullptr,
                             t.options().train, hooks, t.start_step());
}

}  // namespace funnel::dist
