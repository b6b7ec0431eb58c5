// The data-format registry and the dispatch of read_dataset() on a spec's prefix.
#include "data/formats.hpp"

#include "core/error.hpp"
#include "core/registry.hpp"

namespace funnel {

namespace {
OrderedRegistry<DataFormat>& format_table() {
  static OrderedRegistry<DataFormat> t;
  return t;
}
}  // namespace

void register_data_format(DataFormat f) {
  if (f.prefix.empty() || f.prefix.find(':') != std::string::npos)
    throw Error("register_data_format: the prefix must be a non-empty name without ':', got '" + f.prefix + "'");
  if (f.usage.empty()) throw Error("register_data_format: '" + f.prefix + "' has no usage");
  if (!f.read) throw Error("register_data_format: '" + f.prefix + "' has no reader");
  if (find_data_format(f.prefix + ":")) throw Error("register_data_format: '" + f.prefix + "' is already registered");
  format_table().add(std::move(f));
}

const DataFormat* find_data_format(std::string_view spec) {
  const auto colon = spec.find(':');
  if (colon == std::string_view::npos) return nullptr;
  return format_table().find_if([&](const DataFormat& f) { return f.prefix == spec.substr(0, colon); });
}

std::vector<const DataFormat*> data_formats() { return format_table().all(); }

std::string data_format_usages(bool to_cache_only) {
  std::string out;
  for (const DataFormat* f : data_formats())
    if (!f->help.empty() && (f->to_cache || !to_cache_only)) out += (out.empty() ? "" : ", ") + f->usage;
  return out;
}

DataFormatRegistrar::DataFormatRegistrar(DataFormat f) {
  register_or_abort("data format", [&] { register_data_format(std::move(f)); });
}

namespace detail {
std::string spec_file(const std::string& spec, const std::string& rest) {
  if (rest.empty()) throw Error("dataset spec '" + spec + "': expected a file name after the colon");
  return rest;
}
}  // namespace detail

std::vector<std::string> dataset_spec_inputs(const std::string& spec) {
  const DataFormat* f = find_data_format(spec);
  if (!f || !f->inputs) return {};
  return f->inputs(spec.substr(f->prefix.size() + 1));
}

std::string dataset_spec_help() {
  std::string out;
  for (const DataFormat* f : data_formats())
    if (!f->help.empty()) out += (out.empty() ? "" : ", ") + f->usage + " (" + f->help + ")";
  return out;
}

Dataset read_dataset(const std::string& spec, const ReadOptions& options, FeatureMap& map, ReadReport* report) {
  if (options.max_rows < 0) throw Error("max_rows: expected >= 0, got " + std::to_string(options.max_rows));
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  rep = ReadReport{};
  rep.source = spec;
  if (const DataFormat* f = find_data_format(spec))
    return f->read(spec, spec.substr(f->prefix.size() + 1), options, map, rep);
  throw Error("dataset spec: expected one of " + dataset_spec_help() + "; got '" + spec + "'");
}

}  // namespace funnel
