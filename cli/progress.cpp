#include "cli/progress.hpp"

#include <cstdio>

namespace funnel::cli {

void EvalProgressPrinter::operator()(const EvalProgress& p) {
  if (p.batches == 1) last_printed_ = 0;  // a new evaluation
  const bool last = p.rows_done >= p.rows_total;
  if (tty_) {
    if (p.batches % 5 != 0 && !last) return;
    const double eta =
        p.rows_per_sec > 0 ? static_cast<double>(p.rows_total - p.rows_done) / p.rows_per_sec : 0.0;
    std::fprintf(stderr, "\reval     %5.1f%%  %9.0f rows/s  ETA %4.0fs ",
                 p.rows_total > 0 ? 100.0 * static_cast<double>(p.rows_done) / static_cast<double>(p.rows_total) : 100.0,
                 p.rows_per_sec, eta);
    open_ = !last;
    if (last) std::fprintf(stderr, "\n");
  } else if (p.batches - last_printed_ >= 200 || (last && last_printed_ > 0)) {
    last_printed_ = p.batches;
    std::fprintf(stderr, "eval rows %lld/%lld %.0f rows/s\n", static_cast<long long>(p.rows_done),
                 static_cast<long long>(p.rows_total), p.rows_per_sec);
  }
}

void EvalProgressPrinter::finish_line() {
  if (open_) std::fprintf(stderr, "\n");
  open_ = false;
}

}  // namespace funnel::cli
