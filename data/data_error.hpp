#pragma once
/// @file
/// The error of a bad row of input data (thrown by the readers with OnBadRow::Error): a funnel::Error whose message
/// is "FILE:LINE: field 'NAME': expected ..., got '...'", with the parts kept for programs (the Python module's
/// funnel.DataError has them as attributes).
#include <string>

#include "core/error.hpp"

namespace funnel {

/// A bad row of input data: the message plus its parts.
struct DataError : Error {
  /// An error at `file_name`:`line_no`, field `field_name`, with the complete message `what`.
  DataError(std::string file_name, long long line_no, std::string field_name, const std::string& what)
      : Error(what), file(std::move(file_name)), line(line_no), field(std::move(field_name)) {}
  std::string file;  ///< the file (or table) name
  long long line = 0;  ///< 1-based (a table in memory: the row)
  std::string field;  ///< the field or column the problem is in
};

}  // namespace funnel
