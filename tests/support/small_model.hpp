#pragma once
// Small model configurations for tests: the sizes of a zoo model that builds and runs in milliseconds, a model
// sized for a data set, and the Trainer's options for a small model.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.hpp"
#include "models/model.hpp"
#include "train/trainer.hpp"

namespace funnel::test {

struct SmallSizes {
  std::int64_t fields = 3;                   ///< categorical fields
  std::int64_t vocab = 30;                   ///< embedding rows
  std::int64_t dim = 3;                      ///< embedding dim
  std::vector<std::int64_t> hidden{5, 4};  ///< tower widths
};

// Model `kind` with the sizes `s` (the other settings at their defaults).
inline ModelConfig small(const std::string& kind, const SmallSizes& s = {}) {
  ModelConfig c;
  c.kind = kind;
  c.num_fields = s.fields;
  c.vocab = s.vocab;
  c.dim = s.dim;
  c.hidden = s.hidden;
  return c;
}

// Model `kind` for the data set `d` (its fields, vocabulary and stages), embedding `dim`, towers `hidden`.
inline ModelConfig sized_for(const Dataset& d, const std::string& kind, std::int64_t dim,
                             std::vector<std::int64_t> hidden) {
  ModelConfig c;
  c.kind = kind;
  c.num_fields = d.num_fields;
  c.vocab = d.vocab;
  c.num_stages = d.num_stages;
  c.dim = dim;
  c.hidden = std::move(hidden);
  return c;
}

// Trainer options for model `kind` with embedding `dim` and towers `hidden`, `batch_size` rows a step and learning
// rate `lr` (everything else at its default).
inline TrainerOptions small_trainer(const std::string& kind, std::int64_t dim, std::vector<std::int64_t> hidden,
                                    std::int64_t batch_size, double lr) {
  TrainerOptions o;
  o.model.kind = kind;
  o.model.dim = dim;
  o.model.hidden = std::move(hidden);
  o.train.batch_size = batch_size;
  o.opt.lr = lr;
  return o;
}

}  // namespace funnel::test
