#include "train/model.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace funnel {

Model::Model(const ModelConfig& cfg, const ParamStoreOptions& store) : cfg_(cfg) {
  h_ = build_model(graph_, cfg_);
  store_ = std::make_unique<ParamStore<float>>(graph_, store);
  ex_ = std::make_unique<Executor<float>>(graph_, *store_);
  for (std::size_t i = 0; i < h_.losses.size(); ++i) losses_.push_back({h_.losses[i], h_.loss_weights[i]});
  last_losses_.assign(h_.losses.size(), 0.0f);
}

void Model::bind(const Dataset& d, std::span<const std::int64_t> rows) {
  const auto B = static_cast<std::int64_t>(rows.size());
  const std::int64_t S = d.num_stages;
  ex_->set_batch(B);
  label_scratch_.resize(static_cast<std::size_t>(B * S));
  float* dense = h_.dense.empty() ? nullptr : ex_->input(h_.dense[0]).data();
  gather_batch(d, rows, ex_->ids(h_.ids), label_scratch_.data(), dense);
  for (std::int64_t s = 0; s < static_cast<std::int64_t>(h_.labels.size()); ++s) {
    float* y = ex_->input(h_.labels[static_cast<std::size_t>(s)]).data();
    for (std::int64_t b = 0; b < B; ++b) y[b] = label_scratch_[static_cast<std::size_t>(b * S + s)];
  }
}

void Model::compute_gradients() {
  ex_->forward_for_backward(h_.losses);
  for (std::size_t i = 0; i < h_.losses.size(); ++i) last_losses_[i] = ex_->scalar(h_.losses[i]);
  ex_->backward(losses_);
}

const std::vector<float>& Predictions::column(std::string_view name) const {
  for (std::size_t k = 0; k < names.size(); ++k)
    if (names[k] == name) return columns[k];
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  throw Error("no prediction column '" + std::string(name) + "' (columns: " + known + ")");
}

void check_compatible(const ModelConfig& cfg, const Dataset& d, const std::string& what) {
  auto bad = [&](const std::string& why) { throw Error(what + " does not fit the model: " + why); };
  if (d.num_fields != cfg.num_fields)
    bad("it has " + std::to_string(d.num_fields) + " fields, the model " + std::to_string(cfg.num_fields));
  if (d.vocab > cfg.vocab)
    bad("its ids need " + std::to_string(d.vocab) + " embedding rows, the model has " + std::to_string(cfg.vocab));
  if (d.num_dense != cfg.num_dense)
    bad("it has " + std::to_string(d.num_dense) + " dense columns, the model " + std::to_string(cfg.num_dense));
  if (d.num_stages != cfg.num_stages)
    bad("it has " + std::to_string(d.num_stages) + " funnel stages, the model " + std::to_string(cfg.num_stages));
}

}  // namespace funnel
