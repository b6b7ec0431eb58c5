#include "train/manifest.hpp"

#include <limits>
#include <set>

#include "core/error.hpp"
#include "core/files.hpp"

namespace funnel {

namespace {

// JSON text of a value for a message: invalid UTF-8 replaced, control bytes escaped, shortened.
std::string shown(const nlohmann::json& v) {
  return printable(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 80);
}

struct ManifestReader {
  std::string path;

  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw Error(path + ": field '" + field + "' " + why);
  }
  static std::string at(const std::string& where, const std::string& key) {
    return where.empty() ? key : where + "." + key;
  }
  const nlohmann::json& get(const nlohmann::json& o, const std::string& key, const std::string& where) const {
    if (!o.is_object()) fail(where, "must be an object, got " + shown(o));
    const auto it = o.find(key);
    if (it == o.end()) fail(at(where, key), "is missing");
    return *it;
  }
  std::int64_t integer(const nlohmann::json& o, const std::string& key, const std::string& where,
                       std::int64_t min = std::numeric_limits<std::int64_t>::min()) const {
    const auto& v = get(o, key, where);
    const std::string f = at(where, key);
    if (v.is_number_unsigned()) {
      if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(f, "is too large: " + shown(v));
    } else if (!v.is_number_integer()) {
      fail(f, "must be an integer, got " + shown(v));
    }
    const auto x = v.get<std::int64_t>();
    if (x < min) fail(f, "must be at least " + std::to_string(min) + ", got " + std::to_string(x));
    return x;
  }
  std::string string(const nlohmann::json& o, const std::string& key, const std::string& where) const {
    const auto& v = get(o, key, where);
    if (!v.is_string()) fail(at(where, key), "must be a string, got " + shown(v));
    return v.get<std::string>();
  }
  // A name shown in later messages: printable ASCII only.
  std::string name(const nlohmann::json& o, const std::string& key, const std::string& where) const {
    std::string s = string(o, key, where);
    if (s.empty() || s.size() > 512) fail(at(where, key), "must be 1 to 512 characters long");
    for (unsigned char c : s)
      if (c < 0x21 || c > 0x7e || c == '\'' || c == '"' || c == '\\')
        fail(at(where, key), "must be printable ASCII without spaces or quotes, got \"" + printable(s) + "\"");
    return s;
  }
  const nlohmann::json& object(const nlohmann::json& o, const std::string& key, const std::string& where) const {
    const auto& v = get(o, key, where);
    if (!v.is_object()) fail(at(where, key), "must be an object, got " + shown(v));
    return v;
  }
  std::vector<CheckpointParam> entries(const nlohmann::json& arr, const std::string& where, bool optimizer,
                                       std::set<std::string>& files) const {
    if (!arr.is_array()) fail(where, "must be an array, got " + shown(arr));
    std::vector<CheckpointParam> out;
    std::set<std::string> names;
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const std::string w = where + "[" + std::to_string(i) + "]";
      const auto& e = arr[i];
      if (!e.is_object()) fail(w, "must be an object, got " + shown(e));
      CheckpointParam p;
      p.name = name(e, "name", w);
      p.file = string(e, "file", w);
      p.checksum = string(e, "checksum", w);
      const std::string dtype = string(e, "dtype", w);
      if (dtype != "float32") fail(w + ".dtype", "must be \"float32\", got \"" + printable(dtype) + "\"");
      if (!is_checkpoint_array_file(p.file) || (p.file.rfind("optimizer/", 0) == 0) != optimizer)
        fail(w + ".file", std::string("must be a file name of letters, digits, '.', '_' or '-' ending in .npy") +
                              (optimizer ? " under optimizer/" : " (not in a subdirectory)") + ", got \"" +
                              printable(p.file) + "\"");
      bool hex_ok = p.checksum.size() == 24 && p.checksum.compare(0, 8, "fnv1a64:") == 0;
      for (std::size_t k = 8; hex_ok && k < p.checksum.size(); ++k) {
        const char c = p.checksum[k];
        hex_ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      }
      if (!hex_ok) fail(w + ".checksum", "must be \"fnv1a64:\" and 16 hex digits, got \"" + printable(p.checksum) + "\"");
      const auto& shp = get(e, "shape", w);
      if (!shp.is_array() || shp.size() > 8) fail(w + ".shape", "must be an array of at most 8 non-negative integers, got " + shown(shp));
      std::int64_t count = 1;
      for (const auto& d : shp) {
        if (!d.is_number_integer() || d.get<std::int64_t>() < 0 ||
            (d.is_number_unsigned() && d.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxCheckpointArrayElements)))
          fail(w + ".shape", "must be an array of non-negative integers, got " + shown(shp));
        const std::int64_t x = d.get<std::int64_t>();
        if (x > kMaxCheckpointArrayElements || (x > 0 && count > kMaxCheckpointArrayElements / x))
          fail(w + ".shape", "describes more than 2^36 elements: " + shown(shp));
        count *= x;
        p.shape.push_back(x);
      }
      if (!names.insert(p.name).second) fail(w + ".name", "repeats the name '" + p.name + "'");
      if (!files.insert(p.file).second) fail(w + ".file", "repeats the file '" + p.file + "'");
      out.push_back(std::move(p));
    }
    return out;
  }
};

}  // namespace

bool is_checkpoint_array_file(std::string_view f) {
  if (f.rfind("optimizer/", 0) == 0) f.remove_prefix(10);
  if (f.size() < 5 || f.size() > 600 || f.front() == '.' || f.substr(f.size() - 4) != ".npy") return false;
  for (char c : f)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

CheckpointInfo parse_checkpoint_manifest(std::string_view text, const std::string& path) {
  nlohmann::json man;
  try {
    man = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + printable(e.what(), 300));
  }
  ManifestReader r{path};
  if (!man.is_object()) throw Error(path + ": expected a JSON object at the top level, got " + shown(man));
  const std::string format = r.string(man, "format", "");
  if (format != kCheckpointFormat)
    r.fail("format", "must be \"" + std::string(kCheckpointFormat) + "\", got \"" + printable(format) + "\"");
  CheckpointInfo info;
  const auto ver = r.integer(man, "format_version", "");
  if (ver != kCheckpointFormatVersion)
    r.fail("format_version", "is " + std::to_string(ver) + ", this build reads version " +
                                 std::to_string(kCheckpointFormatVersion));
  info.format_version = static_cast<int>(ver);
  info.step = r.integer(man, "step", "", 0);
  info.epoch = r.integer(man, "epoch", "", 0);
  info.model = r.object(man, "model", "");
  info.data = r.object(man, "data", "");
  if (man.contains("config")) info.config = r.object(man, "config", "");
  else info.config = nlohmann::json::object();
  std::set<std::string> files;
  info.params = r.entries(r.get(man, "params", ""), "params", false, files);
  const auto& o = r.get(man, "optimizer", "");
  if (!o.is_null()) {
    if (!o.is_object()) r.fail("optimizer", "must be an object or null, got " + shown(o));
    info.optimizer = r.name(o, "name", "optimizer");
    info.optimizer_step = r.integer(o, "step", "optimizer", 0);
    info.optimizer_config = r.get(o, "config", "optimizer");
    if (!info.optimizer_config.is_object() && !info.optimizer_config.is_null())
      r.fail("optimizer.config", "must be an object or null, got " + shown(info.optimizer_config));
    info.optimizer_arrays = r.entries(r.get(o, "arrays", "optimizer"), "optimizer.arrays", true, files);
  }
  return info;
}

}  // namespace funnel
