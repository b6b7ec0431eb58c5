#include "train/checkpoint.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fcntl.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/shape.hpp"
#include "train/npy.hpp"

namespace funnel {

namespace fs = std::filesystem;

namespace {

std::function<void(std::string_view)>& fault_hook() {
  static std::function<void(std::string_view)> h;
  return h;
}
bool& no_exchange() {
  static bool v = false;
  return v;
}
void hook(std::string_view stage) {
  if (fault_hook()) fault_hook()(stage);
}

std::string errno_str() { return std::strerror(errno); }


std::vector<std::int64_t> tensor_shape(const Tensor<float>& t) {
  return std::vector<std::int64_t>(t.shape().begin(), t.shape().end());
}

void write_file_sync(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot create: " + errno_str());
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const std::string e = errno_str();
      ::close(fd);
      throw Error(path + ": write failed: " + e);
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) {
    const std::string e = errno_str();
    ::close(fd);
    throw Error(path + ": fsync failed: " + e);
  }
  if (::close(fd) != 0) throw Error(path + ": close failed: " + errno_str());
}

void fsync_dir(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open directory to sync it: " + errno_str());
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems do not support fsync on directories (EINVAL); there is nothing more to do then.
  if (rc != 0 && err != EINVAL) throw Error(path + ": fsync of the directory failed: " + std::strerror(err));
}

struct Entry {
  CheckpointParam meta;
  const float* data = nullptr;
};

nlohmann::json entry_json(const CheckpointParam& p) {
  return nlohmann::json{{"name", p.name}, {"file", p.file}, {"shape", p.shape}, {"dtype", "float32"},
                        {"checksum", p.checksum}};
}

// Writes the arrays under `root` (file names relative to it), checking that no two names map to one file.
void write_entries(const std::string& root, std::vector<Entry>& entries, const std::string& stage_prefix) {
  std::map<std::string, std::string> files;
  for (Entry& e : entries) {
    auto [it, fresh] = files.emplace(e.meta.file, e.meta.name);
    if (!fresh)
      throw Error("checkpoint: '" + e.meta.name + "' and '" + it->second + "' would both be stored as '" +
                  e.meta.file + "'");
    std::size_t n = 1;
    for (auto d : e.meta.shape) n *= static_cast<std::size_t>(d);
    e.meta.checksum = checkpoint_checksum(e.data, n * sizeof(float));
    write_npy<float>(root + "/" + e.meta.file, e.meta.shape, e.data, /*sync=*/true);
    hook(stage_prefix + e.meta.name);
  }
}

// ---- manifest reading helpers: every error names the manifest and the field ----
struct ManifestReader {
  std::string path;

  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw Error(path + ": field '" + field + "' " + why);
  }
  const nlohmann::json& get(const nlohmann::json& o, const std::string& key, const std::string& where) const {
    const std::string f = where.empty() ? key : where + "." + key;
    if (!o.is_object() || !o.contains(key)) fail(f, "is missing");
    return o.at(key);
  }
  std::int64_t integer(const nlohmann::json& o, const std::string& key, const std::string& where) const {
    const auto& v = get(o, key, where);
    if (!v.is_number_integer()) fail(where.empty() ? key : where + "." + key, "must be an integer, got " + v.dump());
    return v.get<std::int64_t>();
  }
  std::string string(const nlohmann::json& o, const std::string& key, const std::string& where) const {
    const auto& v = get(o, key, where);
    if (!v.is_string()) fail(where.empty() ? key : where + "." + key, "must be a string, got " + v.dump());
    return v.get<std::string>();
  }
  std::vector<CheckpointParam> entries(const nlohmann::json& arr, const std::string& where) const {
    if (!arr.is_array()) fail(where, "must be an array");
    std::vector<CheckpointParam> out;
    std::set<std::string> names;
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const std::string w = where + "[" + std::to_string(i) + "]";
      const auto& e = arr[i];
      CheckpointParam p;
      p.name = string(e, "name", w);
      p.file = string(e, "file", w);
      p.checksum = string(e, "checksum", w);
      const std::string dtype = string(e, "dtype", w);
      if (dtype != "float32") fail(w + ".dtype", "must be \"float32\", got \"" + dtype + "\"");
      if (p.file.empty() || p.file.front() == '/' || p.file.find("..") != std::string::npos)
        fail(w + ".file", "must be a relative path inside the checkpoint, got \"" + p.file + "\"");
      const auto& shp = get(e, "shape", w);
      if (!shp.is_array()) fail(w + ".shape", "must be an array of non-negative integers");
      for (const auto& d : shp) {
        if (!d.is_number_integer() || d.get<std::int64_t>() < 0)
          fail(w + ".shape", "must be an array of non-negative integers, got " + shp.dump());
        p.shape.push_back(d.get<std::int64_t>());
      }
      if (!names.insert(p.name).second) fail(w + ".name", "repeats the name '" + p.name + "'");
      out.push_back(std::move(p));
    }
    return out;
  }
};

// Reads one array and checks it against its manifest entry.
std::vector<float> read_entry(const std::string& dir, const CheckpointParam& p) {
  const std::string path = dir + "/" + p.file;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": missing (listed in the manifest for '" + p.name + "')");
  NpyArray<float> a = read_npy<float>(path);
  if (a.shape != p.shape)
    throw Error(path + ": holds shape " + dims_str(a.shape) + " but the manifest says " + dims_str(p.shape) +
                " for '" + p.name + "'");
  const std::string sum = checkpoint_checksum(a.data.data(), a.data.size() * sizeof(float));
  if (sum != p.checksum)
    throw Error(path + ": checksum mismatch for '" + p.name + "': the manifest says " + p.checksum +
                ", the data has " + sum + " (the file is corrupt)");
  return std::move(a.data);
}

}  // namespace

namespace testing {
void set_checkpoint_fault_hook(std::function<void(std::string_view stage)> h) { fault_hook() = std::move(h); }
void set_checkpoint_no_exchange(bool on) { no_exchange() = on; }
}  // namespace testing

std::string checkpoint_file_name(const std::string& param_name) {
  std::string s = param_name;
  for (char& c : s)
    if (c == '/') c = '.';
  return s + ".npy";
}

std::string checkpoint_checksum(const void* bytes, std::size_t n) {
  const std::uint64_t h = fnv1a64(bytes, n);
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void save_checkpoint(const std::string& dir_in, Executor<float>& ex, const Optimizer<float>* opt,
                     const nlohmann::json& model, const nlohmann::json& data, std::int64_t step,
                     std::int64_t epoch) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty()) throw Error("save_checkpoint: empty directory name");
  std::error_code ec;
  const fs::path target(dir);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const bool exists = fs::exists(target, ec);
  if (exists) {
    if (!fs::is_directory(target, ec)) throw Error(dir + ": exists and is not a directory; refusing to replace it");
    if (!fs::exists(target / "manifest.json", ec) && !fs::is_empty(target, ec))
      throw Error(dir + ": exists and is not a checkpoint (no manifest.json); refusing to replace it");
  } else {
    fs::create_directories(parent, ec);
    if (ec) throw Error(parent.string() + ": cannot create the directory: " + ec.message());
  }

  const std::string pid = std::to_string(static_cast<long long>(::getpid()));
  const std::string tmp = dir + ".tmp-" + pid;
  fs::remove_all(tmp, ec);  // a leftover of an earlier crashed save with the same pid
  try {
    if (!fs::create_directory(tmp, ec) || ec)
      throw Error(tmp + ": cannot create the temporary checkpoint directory: " + ec.message());

    nlohmann::json man;
    man["format"] = "funnel-checkpoint";
    man["format_version"] = kCheckpointFormatVersion;
    man["step"] = step;
    man["epoch"] = epoch;
    man["model"] = model;
    man["data"] = data;

    std::vector<Entry> params;
    for (NodeId p : ex.params()) {
      const std::string& name = ex.graph().node(p).name;
      const Tensor<float>& t = ex.param(p);
      params.push_back({{name, checkpoint_file_name(name), tensor_shape(t), ""}, t.data()});
    }
    write_entries(tmp, params, "param:");
    man["params"] = nlohmann::json::array();
    for (const Entry& e : params) man["params"].push_back(entry_json(e.meta));

    if (opt) {
      OptimizerState st = opt->export_state();
      std::vector<Entry> arrays;
      for (const auto& a : st.arrays)
        arrays.push_back({{a.name, "optimizer/" + checkpoint_file_name(a.name), a.shape, ""}, a.data.data()});
      if (!fs::create_directory(tmp + "/optimizer", ec) || ec)
        throw Error(tmp + "/optimizer: cannot create: " + ec.message());
      write_entries(tmp, arrays, "optimizer:");
      fsync_dir(tmp + "/optimizer");
      nlohmann::json o;
      o["name"] = st.optimizer;
      o["step"] = st.step;
      o["config"] = to_json(opt->config());
      o["arrays"] = nlohmann::json::array();
      for (const Entry& e : arrays) o["arrays"].push_back(entry_json(e.meta));
      man["optimizer"] = o;
    } else {
      man["optimizer"] = nullptr;
    }

    std::string text;
    try {
      text = man.dump(2) + "\n";
    } catch (const nlohmann::json::exception& e) {
      throw Error(dir + ": cannot write the manifest (the model/data JSON is not serialisable): " + e.what());
    }
    write_file_sync(tmp + "/manifest.json", text);
    hook("manifest");
    fsync_dir(tmp);
    hook("swap");

    if (exists) {
      const int rc = no_exchange() ? (errno = EINVAL, -1)
                                   : ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE);
      if (rc == 0) {
        // tmp now holds the old checkpoint.
        fsync_dir(parent.string());
        fs::remove_all(tmp, ec);
        return;
      }
      if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        throw Error(dir + ": cannot swap in the new checkpoint " + tmp + ": " + errno_str());
      // No atomic exchange on this file system: move the old one aside, the new one in, then drop the old.
      const std::string old = dir + ".old-" + pid;
      fs::remove_all(old, ec);
      if (::rename(dir.c_str(), old.c_str()) != 0)
        throw Error(dir + ": cannot move the old checkpoint aside to " + old + ": " + errno_str());
      try {
        hook("aside");
        if (::rename(tmp.c_str(), dir.c_str()) != 0)
          throw Error(dir + ": cannot move the new checkpoint " + tmp + " in place: " + errno_str());
      } catch (...) {
        ::rename(old.c_str(), dir.c_str());  // put the old one back
        throw;
      }
      fsync_dir(parent.string());
      fs::remove_all(old, ec);
    } else {
      if (::rename(tmp.c_str(), dir.c_str()) != 0)
        throw Error(dir + ": cannot move the new checkpoint " + tmp + " in place: " + errno_str());
      fsync_dir(parent.string());
    }
  } catch (...) {
    std::error_code ignore;
    fs::remove_all(tmp, ignore);
    throw;
  }
}

CheckpointInfo read_checkpoint_info(const std::string& dir_in) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::string path = dir + "/manifest.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (!fs::exists(dir, ec)) {
      // A save interrupted between the two renames of the fallback path leaves DIR.old-<pid>.
      const fs::path target(dir);
      const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
      const std::string prefix = target.filename().string() + ".old-";
      for (const auto& e : fs::directory_iterator(parent, ec))
        if (e.path().filename().string().rfind(prefix, 0) == 0)
          throw Error(dir + ": no such checkpoint, but " + e.path().string() +
                      " is left by an interrupted save: rename it to " + dir + " to use it");
      throw Error(dir + ": no such checkpoint directory");
    }
    throw Error(path + ": missing (not a checkpoint directory?)");
  }
  nlohmann::json man;
  {
    std::ifstream f(path);
    if (!f) throw Error(path + ": cannot open: " + errno_str());
    try {
      man = nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
      throw Error(path + ": not valid JSON: " + e.what());
    }
  }
  ManifestReader r{path};
  if (!man.is_object()) throw Error(path + ": expected a JSON object at the top level");
  const std::string format = r.string(man, "format", "");
  if (format != "funnel-checkpoint") r.fail("format", "must be \"funnel-checkpoint\", got \"" + format + "\"");
  CheckpointInfo info;
  const auto ver = r.integer(man, "format_version", "");
  if (ver != kCheckpointFormatVersion)
    r.fail("format_version", "is " + std::to_string(ver) + ", this build reads version " +
                                 std::to_string(kCheckpointFormatVersion));
  info.format_version = static_cast<int>(ver);
  info.step = r.integer(man, "step", "");
  info.epoch = r.integer(man, "epoch", "");
  info.model = r.get(man, "model", "");
  info.data = r.get(man, "data", "");
  info.params = r.entries(r.get(man, "params", ""), "params");
  const auto& o = r.get(man, "optimizer", "");
  if (!o.is_null()) {
    if (!o.is_object()) r.fail("optimizer", "must be an object or null");
    info.optimizer = r.string(o, "name", "optimizer");
    info.optimizer_step = r.integer(o, "step", "optimizer");
    if (info.optimizer_step < 0) r.fail("optimizer.step", "must be >= 0");
    info.optimizer_config = r.get(o, "config", "optimizer");
    info.optimizer_arrays = r.entries(r.get(o, "arrays", "optimizer"), "optimizer.arrays");
  }
  return info;
}

CheckpointInfo load_checkpoint(const std::string& dir_in, Executor<float>& ex, Optimizer<float>* opt) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  CheckpointInfo info = read_checkpoint_info(dir);
  const Graph& g = ex.graph();

  // Parameters: exactly the graph's, same shapes.
  std::map<std::string, const CheckpointParam*> by_name;
  for (const auto& p : info.params) by_name[p.name] = &p;
  std::set<std::string> graph_names;
  std::vector<std::pair<NodeId, std::vector<float>>> values;
  for (NodeId id : ex.params()) {
    const std::string& name = g.node(id).name;
    graph_names.insert(name);
    auto it = by_name.find(name);
    if (it == by_name.end())
      throw Error(dir + ": the checkpoint has no parameter '" + name + "' (the graph has it)");
    const auto want = tensor_shape(ex.param(id));
    if (it->second->shape != want)
      throw Error(dir + ": parameter '" + name + "' has shape " + dims_str(it->second->shape) +
                  " in the checkpoint but " + dims_str(want) + " in the graph");
    values.emplace_back(id, read_entry(dir, *it->second));
  }
  for (const auto& p : info.params)
    if (!graph_names.count(p.name))
      throw Error(dir + ": the checkpoint's parameter '" + p.name + "' is not in the graph");

  // Optimizer state: validated by import_state before anything changes.
  if (opt && !info.optimizer.empty()) {
    if (info.optimizer != opt->name())
      throw Error(dir + ": the checkpoint holds '" + info.optimizer + "' optimizer state, the optimizer is '" +
                  opt->name() + "' (load without an optimizer to take the parameters only)");
    OptimizerState st;
    st.optimizer = info.optimizer;
    st.step = info.optimizer_step;
    for (const auto& a : info.optimizer_arrays) st.arrays.push_back({a.name, a.shape, read_entry(dir, a)});
    try {
      opt->import_state(g, st);
    } catch (const Error& e) {
      throw Error(dir + ": " + e.what());
    }
  }
  for (auto& [id, v] : values) std::copy(v.begin(), v.end(), ex.param(id).data());
  return info;
}

}  // namespace funnel
