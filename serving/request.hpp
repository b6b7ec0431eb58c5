#pragma once
/// @file
/// The body of a prediction request (POST /v1/predict), parsed and checked before any scoring. One of:
///
///   {"rows": [ROW, ...]}   structured rows; a ROW is an object whose keys are field or dense-feature names:
///                            "205": "1234"                  one categorical value
///                            "216": ["a", "b"]              several values of a multi-valued field (pooled)
///                            "216": {"a": 0.5, "b": 2}      values with their pooling weights
///                            "216": null or []              no value (an empty cell)
///                            "D109_14": 0.3                 a dense feature (a number)
///   {"csv": [LINE, ...]}   lines under the checkpoint's training csv header (labels included, ignored)
///   {"slots": [LINE, ...]} lines in the slots format
///   {"aliccp": {"skeleton": [LINE, ...], "common": [LINE, ...]}}  raw Ali-CCP lines
///
/// Anything else is a RequestError with an HTTP status (400 malformed JSON or a wrong type, 413 too many rows),
/// the 0-based row and the field it is about, and a message naming both. Whether a field exists is the model's
/// question (ServingModel::predict), not the parser's.
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "serving/predictor.hpp"

namespace funnel {

struct RequestLimits {
  std::int64_t max_rows = 4096;           ///< rows (or lines) per request
  std::int64_t max_features = 4096;       ///< values per row
  std::size_t max_value_bytes = 4096;     ///< bytes of one value, field name or line... of a field name or value
  std::size_t max_line_bytes = 1 << 20;   ///< bytes of one training-format line
};

class RequestError : public Error {
 public:
  RequestError(int status, std::int64_t row, std::string field, const std::string& what)
      : Error(what), status_(status), row_(row), field_(std::move(field)) {}
  int status() const { return status_; }
  std::int64_t row() const { return row_; }
  const std::string& field() const { return field_; }

 private:
  int status_;
  std::int64_t row_;
  std::string field_;
};

struct PredictRequest {
  enum class Kind { Rows, Csv, Slots, Aliccp } kind = Kind::Rows;
  /// Kind::Rows: the rows, whose views point into `strings`, `features` and `dense` (which own the text).
  std::vector<PredictRow> rows;
  std::vector<FeatureValue> features;
  std::vector<DenseValue> dense;
  std::deque<std::string> strings;
  /// The line formats: the lines (and Ali-CCP common lines), views into `strings`.
  std::vector<std::string_view> lines;
  std::vector<std::string_view> common;
  std::int64_t size() const {
    return kind == Kind::Rows ? static_cast<std::int64_t>(rows.size()) : static_cast<std::int64_t>(lines.size());
  }
};

/// Parses `body`; throws RequestError.
PredictRequest parse_predict_request(std::string_view body, const RequestLimits& limits = {});

/// {"error": {"status": ..., "message": ..., "row": ..., "field": ...}} (row and field only when known).
std::string error_json(int status, const std::string& message, std::int64_t row = -1, const std::string& field = "");

}  // namespace funnel
