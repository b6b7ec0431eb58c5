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

/// Upper bounds a request must stay within; a request over one is refused with 413 before anything is scored.
struct RequestLimits {
  std::int64_t max_rows = 4096;           ///< rows (or lines) per request
  std::int64_t max_features = 4096;       ///< values per row
  std::size_t max_value_bytes = 4096;     ///< bytes of one value, field name or line... of a field name or value
  std::size_t max_line_bytes = 1 << 20;   ///< bytes of one training-format line
};

/// A request that cannot be parsed or exceeds a limit: the HTTP status to answer with, the row and field it is
/// about, and the message.
class RequestError : public Error {
 public:
  /// An error answered with `status` about row `row` (-1: none) and field `field` ("": none).
  RequestError(int status, std::int64_t row, std::string field, const std::string& what)
      : Error(what), status_(status), row_(row), field_(std::move(field)) {}
  int status() const { return status_; }  ///< the HTTP status (400 or 413)
  std::int64_t row() const { return row_; }  ///< 0-based row, -1 when not about one row
  const std::string& field() const { return field_; }  ///< the field it is about, "" when none

 private:
  int status_;
  std::int64_t row_;
  std::string field_;
};

/// A parsed request body, owning its text: structured rows or lines of a training format.
struct PredictRequest {
  /// @{
  /// Which form the body had: structured rows, or csv, slots or Ali-CCP lines.
  enum class Kind { Rows, Csv, Slots, Aliccp } kind = Kind::Rows;
  /// @}
  /// Kind::Rows: the rows, whose views point into `strings`, `features` and `dense` (which own the text).
  std::vector<PredictRow> rows;
  std::vector<FeatureValue> features;  ///< storage of every row's categorical values
  std::vector<DenseValue> dense;  ///< storage of every row's dense features
  std::deque<std::string> strings;  ///< the decoded text the views point into
  /// The line formats: the lines (and Ali-CCP common lines), views into `strings`.
  std::vector<std::string_view> lines;
  std::vector<std::string_view> common;  ///< Ali-CCP: the common-features lines
  /// Rows to score: structured rows, or lines.
  std::int64_t size() const {
    return kind == Kind::Rows ? static_cast<std::int64_t>(rows.size()) : static_cast<std::int64_t>(lines.size());
  }
};

/// Parses `body`; throws RequestError.
PredictRequest parse_predict_request(std::string_view body, const RequestLimits& limits = {});

/// {"error": {"status": ..., "message": ..., "row": ..., "field": ...}} (row and field only when known).
std::string error_json(int status, const std::string& message, std::int64_t row = -1, const std::string& field = "");

}  // namespace funnel
