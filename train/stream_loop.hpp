#pragma once
// Training, evaluation and prediction streamed from a v3 cache (data/stream.hpp): anonymous memory does not grow
// with the number of rows — the model, the optimizer state, the batch buffers, the shuffle window (8 bytes a row
// of the window) and the prefetch queue. Whole-set evaluation keeps its exact AUCs with 4 bytes per evaluated row
// per AUC (the scores of the positives and of the negatives, sorted at the end): 8 bytes per row for CTR and
// CTCVR plus 4 per clicked row for CVR — about 0.35 GB for the 43M rows of Ali-CCP's test split.
#include <cstdint>
#include <functional>
#include <vector>

#include "data/stream.hpp"
#include "train/loop.hpp"
#include "train/metrics.hpp"
#include "train/trainer.hpp"

namespace funnel {

// Makes a streamed batch the model's bound batch: the ids are swapped in (no copy; the stream's slot receives the
// model's old buffers, so a steady loop allocates nothing), labels and dense features are copied.
void bind_stream_batch(Model& m, StreamBatch& b);

// The streaming counterpart of train(): every epoch is one pass of `train` (its order: StreamOptions), evaluation
// after each epoch on `eval` (in order) when given. Same hooks, reports and determinism as train().
// A part of a cache: the chunks [chunk_begin, chunk_end) (-1: to the last).
struct CachePart {
  const CacheFile* file = nullptr;
  std::int64_t chunk_begin = 0, chunk_end = -1;
};

TrainResult train_stream(Model& m, Optimizer<float>& opt, BatchStream& train, const CachePart& eval,
                         const TrainOptions& o, const TrainHooks& hooks, std::int64_t start_step = 0);

// Whole-set metrics of the model on a cache, read in order with a prefetching reader. Equal to
// evaluate_funnel() over the same rows (same arithmetic, same order).
FunnelMetrics evaluate_stream(Model& m, const CachePart& part, std::int64_t batch_size);

// Predictions for every row of the part, in order: `out(columns, n)` per batch of n rows, one pointer per
// prediction column of the model (ModelHandle::columns, e.g. pctr, pcvr, pctcvr), each n values.
void predict_stream(Model& m, const CachePart& part, std::int64_t batch_size,
                    const std::function<void(const std::vector<const float*>&, std::int64_t)>& out);

// Exact whole-set funnel metrics accumulated batch by batch (4 bytes per row per AUC; see above).
class StreamingFunnelMetrics {
 public:
  // One batch: predictions and labels (0/1 floats; ctcvr must be 0 where click is 0).
  void add(const float* pctr, const float* pcvr, const float* pctcvr, const float* click, const float* ctcvr,
           std::int64_t n);
  FunnelMetrics result();

 private:
  struct Auc {
    std::vector<std::uint32_t> pos, neg;  // score bits (non-negative floats order like their bits)
    void add(float score, bool positive);
    double value();
  };
  struct Sum {
    double loss = 0, pred = 0, label = 0;
    std::int64_t n = 0;
    void add(double p, double y);
  };
  Auc ctr_, cvr_, ctcvr_;
  Sum ctr_s_, cvr_s_, ctcvr_s_;
  std::int64_t rows_ = 0, clicks_ = 0, conversions_ = 0;
};

}  // namespace funnel
