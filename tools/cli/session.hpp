#pragma once
// A training session as the CLI sees it: flags -> data, model, optimizer; train; report; checkpoint.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tools/cli/common.hpp"
#include "train/loop.hpp"
#include "train/optimizer.hpp"
#include "train/trainer.hpp"

namespace funnel::cli {

struct SessionOptions {
  ModelConfig model;
  bool model_dims_given = false;  // --embedding-dim / --hidden given explicitly
  TrainOptions train;
  std::string optimizer = "adam";
  OptimizerConfig opt;
  std::string data_spec = "synthetic";
  std::string eval_spec;       // empty: hold out the tail of the training data
  double eval_fraction = 0.2;
  std::string init_dir;
  bool reset_optimizer = false;  // --init: take the parameters only, start the optimizer afresh
  int threads = 1;
};
SessionOptions session_options(const Flags& f);

struct SessionData {
  LoadedData train;
  Dataset eval;
  bool has_eval = false;
  std::string eval_description;
};
std::shared_ptr<SessionData> load_session_data(const SessionOptions& o, const Flags& f);

class Session {
 public:
  Session(const SessionOptions& o, const Flags& f);
  Session(const SessionOptions& o, std::shared_ptr<SessionData> data);

  TrainResult train(const TrainHooks& hooks);
  // Writes a checkpoint of the model, optimizer state and data mapping (atomically).
  void save(const std::string& dir, std::int64_t step);

  Model& model() { return *model_; }
  const SessionOptions& options() const { return o_; }
  const SessionData& data() const { return *data_; }
  bool has_eval() const { return data_->has_eval; }
  std::string train_description() const { return data_->train.description; }
  std::string eval_description() const { return data_->eval_description; }
  std::string model_description() const;
  std::string loss_name(std::size_t k) const;

 private:
  void init();
  SessionOptions o_;
  std::shared_ptr<SessionData> data_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Optimizer<float>> opt_;
  std::int64_t start_step_ = 0;
};

std::string format_epochs(const TrainResult& r, const Session& s);
nlohmann::json metrics_json(const TrainResult& r, const Session& s);
nlohmann::json metrics_to_json(const FunnelMetrics& m);

}  // namespace funnel::cli
