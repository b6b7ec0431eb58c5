#pragma once
/// @file
/// The error of a bad row of input data (thrown by the readers with OnBadRow::Error): a funnel::Error whose message
/// is "FILE:LINE: field 'NAME': expected ..., got '...'", with the parts kept for programs (the Python module's
/// funnel.DataError has them as attributes).
#include <string>

#include "core/error.hpp"

namespace funnel {

struct DataError : Error {
  DataError(std::string file_name, long long line_no, std::string field_name, const std::string& what)
      : Error(what), file(std::move(file_name)), line(line_no), field(std::move(field_name)) {}
  std::string file;
  long long line = 0;  ///< 1-based (a table in memory: the row)
  std::string field;
};

}  // namespace funnel
