#pragma once
// A Trainer (train/trainer.hpp) run data-parallel: the Trainer's model, optimizer, data and options, the loop of
// train_data_parallel over a communicator. What `funnel train` does under mpirun.
#include "distributed/data_parallel.hpp"
#include "train/trainer.hpp"

namespace funnel::dist {

// Trains `t` from its start step like Trainer::train, every rank on its share of each global batch. hooks run
// on every rank (print and save on rank 0 only); the stop flag is agreed across ranks.
TrainResult train(Communicator& c, Trainer& t, const TrainHooks& hooks, const DataParallelOptions& o = {});

}  // namespace funnel::dist
