#pragma once
/// @file
/// Columns in memory as a data source: a table of typed column arrays (a pandas DataFrame's or a dict of numpy
/// arrays, handed over by the Python module without a copy), read into a Dataset exactly as csv:FILE reads a file
/// with the same columns: `click` and `purchase` (or `conversion`) are the labels, columns whose name starts with
/// `D` are dense floats, every other column is a categorical field whose value is the cell's text (an integer is
/// its decimal digits, as in a CSV file; a float that holds an integer likewise; a missing value is an absent one).
///
/// A table is read through a spec like any file: register_columns() names it "columns:NAME" for as long as its
/// registration lives, so training, evaluation and prediction take it wherever they take "csv:FILE". Messages name
/// the table and the 1-based row: "DataFrame:3: field 'click': expected 0 or 1, got '2'".
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/readers.hpp"

namespace funnel {

/// One column of a ColumnTable: its name, type and values (borrowed, not owned).
struct ColumnArray {
  /// The element type of `values` (or Text: `text`).
  enum class Type { Int64, Float64, Float32, Bool, Text };
  std::string name;  ///< the column's name, as a CSV header cell
  Type type = Type::Int64;  ///< the element type
  /// Rows contiguous values (Int64: int64_t, Float64: double, Float32: float, Bool: uint8_t)
  const void* values = nullptr;
  std::vector<std::string_view> text;  ///< Text: one per row; a null data() is a missing value
};

/// Columns of equal length in memory, read like a CSV file with the same header (see the file's description).
struct ColumnTable {
  std::string name = "columns";  ///< for messages (file name position)
  std::int64_t rows = 0;  ///< rows of every column
  std::vector<ColumnArray> columns;  ///< the columns, in header order
};

/// Reads the table as read_csv_buffer reads a file with the same header and cells (the same checks and feature
/// mapping; ReadOptions::csv_columns does not apply).
Dataset read_columns(const ColumnTable& t, const ReadOptions& options, FeatureMap& map, ReadReport* report = nullptr);

/// Makes `t` readable as the spec "columns:NAME" (NAME unique per registration) until the returned handle is
/// destroyed. The table's arrays must outlive the handle.
class ColumnsRegistration {
 public:
  /// Registers `t` under a new unique spec.
  explicit ColumnsRegistration(std::shared_ptr<const ColumnTable> t);
  ~ColumnsRegistration();
  ColumnsRegistration(const ColumnsRegistration&) = delete;
  ColumnsRegistration& operator=(const ColumnsRegistration&) = delete;
  const std::string& spec() const { return spec_; }  ///< the spec to read it by: "columns:NAME"

 private:
  std::string spec_;
};

/// The registered table of a "columns:NAME" spec (an Error naming the spec when there is none).
std::shared_ptr<const ColumnTable> registered_columns(const std::string& spec);

}  // namespace funnel
