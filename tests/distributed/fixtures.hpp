#pragma once
// Fixtures of the MPI tests (test_data_parallel.cpp, test_sharded.cpp): a small synthetic data set, the model,
// optimizer and training configurations both train with, and a temporary directory every rank knows.
#include <cstdint>
#include <memory>
#include <string>

#include "data/synthetic.hpp"
#include "distributed/data_parallel.hpp"
#include "support/temp_dir.hpp"

namespace funnel::test {

// 5 fields, click rate 0.2, conversion-after-click rate 0.05.
inline Dataset synthetic_data(std::uint64_t seed, std::int64_t rows = 900, std::int64_t vocab_per_field = 40) {
  SyntheticConfig c;
  c.rows = rows;
  c.fields = 5;
  c.vocab_per_field = vocab_per_field;
  c.seed = seed;
  c.ctr = 0.2;
  c.ctcvr = 0.05;
  return make_synthetic(c);
}

// Embeddings of dim 4, towers 12 -> 6.
inline ModelConfig small_model(const Dataset& d) {
  ModelConfig m;
  m.num_fields = d.num_fields;
  m.vocab = d.vocab;
  m.dim = 4;
  m.hidden = {12, 6};
  return m;
}

inline OptimizerConfig opt_config(const std::string& name, double weight_decay = 0.0) {
  OptimizerConfig oc;
  oc.lr = name == "sgd" ? 0.1 : 0.01;
  oc.weight_decay = weight_decay;
  return oc;
}

// Batches of 64, 2 epochs cut at 20 steps, data order seed 5.
inline TrainOptions train_options(bool shuffle) {
  TrainOptions o;
  o.batch_size = 64;
  o.epochs = 2;
  o.max_steps = 20;
  o.seed = 5;
  o.shuffle = shuffle;
  return o;
}

// Rank 0's temporary directory, its path known to every rank (one machine here; across machines it must be on a
// shared file system). Rank 0 removes it when the object goes out of scope: end a case with a barrier so that no
// rank still reads it then.
struct SharedTemp {
  std::unique_ptr<TempDir> tmp;
  std::string root;
  SharedTemp(dist::Communicator& w, const std::string& tag) {
    if (w.rank() == 0) tmp = std::make_unique<TempDir>(tag);
    root = w.broadcast_string(tmp ? tmp->path.string() : std::string(), 0);
  }
};

}  // namespace funnel::test
