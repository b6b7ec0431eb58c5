#pragma once
/// @file
/// Readers that turn files into a Dataset (data/dataset.hpp). One entry point, read_dataset(spec, ...):
///
///   csv:FILE              CSV (RFC 4180: cells may be quoted, "" is a quote inside quotes, a quoted cell may hold
///                         commas and line ends) with a header. Label columns `click` and `purchase` (or
///                         `conversion`); columns whose name starts with `D` are dense floats; every other column is
///                         a categorical field (the cell text, unquoted, is the value; an empty cell is an absent
///                         value). A first line that looks like data (no `click` column, numeric cells) is reported
///                         as a missing header; ReadOptions::csv_columns reads such a file with given columns.
///   slots:FILE            lines `sample_id,click,conversion,field:feature,...`; a field may repeat (multi-valued);
///                         no quoting (a token with a quote is a bad row, reason bad_quotes).
///                         Fields = every field seen in a valid row, sorted by name; absent field -> empty cell.
///   aliccp:DIR[:train|:test]  the raw Ali-CCP release: DIR/sample_skeleton_{split}.csv joined with
///                         DIR/common_features_{split}.csv on common_feature_index (default split: train).
///                         Features are `field\x02feature\x03value` separated by `\x01`. Fields: the 23 Ali-CCP field
///                         ids (aliccp_fields()). The skeleton is streamed through mmap and parsed in place.
///                         Each common-features row is stored once, as a shared block (Dataset::row_block)
///                         that the skeleton rows using it refer to; unused ones are dropped.
///   cache:FILE            a binary cache written by write_cache() (dataset + the feature map it was built with).
///
/// Labels are cumulative (stage 0 click, stage 1 click·conversion), num_stages = 2. Labels must be 0 or 1 and a
/// conversion without a click is a bad row.
///
/// Feature map: if `map` is empty it is built from this data with options.mapping (hash: ready at once; vocab: the
/// values of the rows kept are counted, rare ones go to the field's OOV row). If `map` is ready (e.g. loaded from a
/// checkpoint) it is used unchanged: the data must have the map's fields (csv: the same categorical and dense
/// columns in any order; slots: fields the map does not know are dropped and counted in
/// ReadReport::dropped_features; aliccp: always the 23 fields). On an exception an empty map is left empty.
///
/// Bad rows (wrong column count, bad number, missing separator, unknown common_feature_index, labels not 0/1,
/// conversion without click, feature_num mismatch, unknown field id, ...): with on_bad_row = Error the reader
/// throws funnel::Error "FILE:LINE: field 'NAME': expected ..., got '...'"; with Skip the row is dropped and counted
/// in ReadReport::skipped_by_reason. A bad row in the aliccp common file is counted under "common:<reason>"; skeleton
/// rows that point at it then count as unknown_common_index.
///
/// Text: a UTF-8 byte order mark is skipped; lines end in `\n`, `\r\n` or (whole file) `\r`. A line longer than
/// kMaxLineBytes (16 MiB) is an error found without reading on (reader_util.hpp).
/// Last line without a line end: valid (RFC 4180 §2.2 lets the last record end without a line break), so it is read
/// as a row like any other; a row that was really cut short fails its column count or value checks, and
/// ReadReport::unterminated_last_line is set (read_summary notes it). Empty files, missing files, directories where a file is expected
/// and files with no valid row at all throw funnel::Error. A file that changes while it is read (truncated,
/// rewritten) is an error naming it, never a crash (MappedFile).
/// Unknown fields with a ready map: csv columns the map does not know are not read and are listed in
/// ReadReport::ignored_columns; slots features of unknown fields are counted in dropped_features; when no column
/// or field of the file is known, it is an error. read_summary() renders all of it for tools.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.hpp"
#include "data/feature_map.hpp"
#include "data/row_sink.hpp"

namespace funnel {

/// What a reader does with a bad row: throw funnel::Error naming file, line and field, or skip and count it.
enum class OnBadRow { Error, Skip };
/// The weight of each id: 1, or the feature's value (aliccp `\x03value`).
enum class PoolWeights { Ones, Values };

/// How read_dataset and the buffer readers read.
struct ReadOptions {
  OnBadRow on_bad_row = OnBadRow::Error;  ///< throw on a bad row, or skip and count it
  FeatureMapConfig mapping;          ///< used when the map passed to the reader is empty
  PoolWeights weights = PoolWeights::Ones;  ///< the weight each id gets in its cell
  std::int64_t max_rows = 0;         ///< stop after this many kept rows (0 = all)
  /// csv: the file has no header line; these are its columns (e.g. a checkpoint's training columns). A first
  /// line equal to them is still taken as a header and skipped.
  std::vector<std::string> csv_columns;
  /// csv: the column holding each row's user (for GAUC): its cell text, hashed, becomes the row's user key
  /// (Dataset::user_keys; an empty cell: no key). The column is read as whatever it is besides (a field, ...).
  std::string user_column;
  /// Streaming: rows and shared blocks go to the sink as they are read (data/row_sink.hpp); the Dataset returned
  /// is then empty of rows. Used by `convert` to write a cache in bounded memory.
  RowSink* sink = nullptr;
};

/// What a read saw, kept, skipped and ignored (see read_summary). Filled when a reader is given one.
struct ReadReport {
  std::string source;                ///< the spec read
  std::int64_t bytes = 0;            ///< bytes of input scanned
  std::int64_t rows_read = 0;        ///< data rows looked at (header excluded; aliccp: skeleton rows)
  std::int64_t rows_kept = 0;        ///< rows in the Dataset (or given to the sink)
  std::int64_t rows_skipped = 0;     ///< == sum of skipped_by_reason (common-file reasons excluded)
  std::map<std::string, std::int64_t> skipped_by_reason;  ///< reason -> rows
  std::int64_t common_rows = 0;      ///< aliccp: rows of the common file read (incl. skipped ones)
  std::int64_t common_rows_skipped = 0;     ///< aliccp: bad rows of the common file (== sum of "common:" reasons)
  std::int64_t common_rows_unused = 0;      ///< aliccp: of those, rows whose key no sample row refers to
  std::vector<std::string> ignored_columns; ///< csv with a ready map: columns the map does not know (not read)
  std::vector<std::string> header;          ///< csv: the columns (from the header line or csv_columns)
  std::map<std::string, std::int64_t> dropped_features;   ///< features dropped from kept rows: "unknown_field:NAME"
  std::vector<std::string> first_errors;                  ///< the first few skip messages, for diagnostics
  std::vector<std::int64_t> skipped_rows;  ///< 1-based data row numbers (header excluded) of skipped rows, ascending
  bool unterminated_last_line = false;  ///< the last line had no line end (read as a row all the same)
  bool stopped_at_max_rows = false;     ///< the read ended at ReadOptions::max_rows, not at the end of the input
};

/// The bad-row reasons (keys of skipped_by_reason).
namespace reason {
/// @{
/// One constant per reason; its value is its name.
inline constexpr const char* column_count = "column_count";
inline constexpr const char* bad_number = "bad_number";
inline constexpr const char* bad_label = "bad_label";
inline constexpr const char* conversion_without_click = "conversion_without_click";
inline constexpr const char* missing_separator = "missing_separator";
inline constexpr const char* empty_value = "empty_value";
inline constexpr const char* unknown_common_index = "unknown_common_index";
inline constexpr const char* duplicate_common_index = "duplicate_common_index";
inline constexpr const char* feature_num_mismatch = "feature_num_mismatch";
inline constexpr const char* unknown_field = "unknown_field";
inline constexpr const char* bad_quotes = "bad_quotes";
/// @}
}  // namespace reason

/// Reads the data named by `spec` (csv:FILE, slots:FILE, aliccp:DIR[:split], cache:FILE; see the file's
/// description) into a Dataset, building or checking `map` as described there, and fills `report` when given.
/// Throws funnel::Error naming the file (and line and field for a bad row under OnBadRow::Error). Reentrant: reads
/// of different files may run on different threads, each with its own map and report.
Dataset read_dataset(const std::string& spec, const ReadOptions& options, FeatureMap& map,
                     ReadReport* report = nullptr);

/// The files a spec reads (csv:/slots:/cache: FILE, aliccp: its two files; none for other specs), for checking
/// that an output is not one of a command's inputs.
std::vector<std::string> dataset_spec_inputs(const std::string& spec);

/// What a read skipped, dropped and ignored, one line each ("" when nothing): rows skipped by reason (they add up
/// to rows_skipped), the aliccp common file's bad rows and how many of them no sample used, ignored csv columns,
/// dropped features, an unterminated last line.
std::string read_summary(const ReadReport& rep);

/// The accepted spec forms, from the registered data formats (data/formats.hpp), for error messages and --help.
std::string dataset_spec_help();

/// Buffer entry points (used by read_dataset, the fuzzers and tests). `name` is the file name used in messages.
/// @{
Dataset read_csv_buffer(std::string_view text, const std::string& name, const ReadOptions& options,
                        FeatureMap& map, ReadReport* report = nullptr);
Dataset read_slots_buffer(std::string_view text, const std::string& name, const ReadOptions& options,
                          FeatureMap& map, ReadReport* report = nullptr);
Dataset read_aliccp_buffers(std::string_view skeleton, const std::string& skeleton_name, std::string_view common,
                            const std::string& common_name, const ReadOptions& options, FeatureMap& map,
                            ReadReport* report = nullptr);
/// @}

/// The 23 Ali-CCP field ids, in the order used as the dataset's fields.
const std::vector<std::string>& aliccp_fields();

/// Binary cache: the dataset and its (ready) feature map. Written atomically (temp file + rename).
void write_cache(const Dataset& d, const FeatureMap& map, const std::string& file);
/// Loads a cache (mmap). If `map` is empty it receives the cached map; if ready it must equal the cached one.
Dataset read_cache(const std::string& file, FeatureMap& map, ReadReport* report = nullptr);

/// Option parsing helpers for tools: "error"|"skip", "ones"|"values". Throw funnel::Error on anything else.
/// @{
OnBadRow parse_on_bad_row(std::string_view s);
PoolWeights parse_pool_weights(std::string_view s);
/// @}

}  // namespace funnel
