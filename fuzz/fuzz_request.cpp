// libFuzzer target: the prediction server's request parser (serving/request.hpp) on arbitrary bytes, with default
// and with tight limits. A RequestError (with a 4xx status) is the accepted outcome for a bad body; a parsed request
// must hold consistent views (rows point into its own arrays).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "serving/request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  funnel::RequestLimits tight;
  tight.max_rows = 3;
  tight.max_features = 5;
  tight.max_value_bytes = 16;
  tight.max_line_bytes = 64;
  for (const funnel::RequestLimits& lim : {funnel::RequestLimits{}, tight}) {
    try {
      const funnel::PredictRequest r = funnel::parse_predict_request(body, lim);
      if (r.size() > lim.max_rows) __builtin_trap();
      std::size_t features = 0, dense = 0;
      for (const auto& row : r.rows) {
        if (static_cast<std::int64_t>(row.features.size() + row.dense.size()) > lim.max_features) __builtin_trap();
        for (const auto& f : row.features) {
          if (f.value.size() > lim.max_value_bytes) __builtin_trap();
          features += f.field.size() + f.value.size();  // reads every view (ASan checks they are alive)
        }
        for (const auto& d : row.dense) dense += d.name.size();
      }
      for (auto l : r.lines) features += l.size();
      for (auto l : r.common) features += l.size();
      if (features + dense == SIZE_MAX) __builtin_trap();
    } catch (const funnel::RequestError& e) {
      if (e.status() < 400 || e.status() > 499) __builtin_trap();
    }
  }
  return 0;
}
