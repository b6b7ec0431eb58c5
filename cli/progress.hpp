#pragma once
/// @file
/// Progress of a whole-set evaluation on stderr, in the style of the training lines: on a terminal one line
/// rewritten every 5 batches ("eval      42.0%     812345 rows/s  ETA   31s"), otherwise a line every 200 batches
/// ("eval rows 819200/43000000 812345 rows/s") and, when some were printed, one at the end. Small sets print nothing
/// when not on a terminal.
#include <cstdint>

#include "train/loop.hpp"

namespace funnel::cli {

/// Prints an evaluation's progress to stderr as the file comment describes; pass it as EvalHooks::on_batch or
/// TrainHooks::on_eval_batch. One printer serves successive evaluations (a report of batch 1 starts a new one).
/// Not synchronised: the evaluation calls it from one thread.
class EvalProgressPrinter {
 public:
  /// `tty`: whether stderr is a terminal (isatty(2)); chooses the rewritten line or the occasional plain line.
  explicit EvalProgressPrinter(bool tty) : tty_(tty) {}
  /// Reports one scored batch; prints when due (see the file comment), the last batch's line ends with a newline.
  void operator()(const EvalProgress& p);
  /// Ends a terminal line left open by an interrupted evaluation (nothing otherwise).
  void finish_line();

 private:
  bool tty_;
  bool open_ = false;              // a terminal line is being rewritten
  std::int64_t last_printed_ = 0;  // batches at the last line (not on a terminal)
};

}  // namespace funnel::cli
