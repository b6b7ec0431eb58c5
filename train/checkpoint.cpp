#include "train/checkpoint.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <climits>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <mutex>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/hash.hpp"
#include "core/io.hpp"
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

struct Entry {
  CheckpointParam meta;
  const float* data = nullptr;
  const StreamedArray* stream = nullptr;  // instead of data
};

// FNV-1a 64 (core/hash.hpp) continued over more bytes: h starts at fnv1a64(nullptr, 0).
std::uint64_t fnv1a64_more(std::uint64_t h, const void* bytes, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(bytes);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

std::string checksum_text(std::uint64_t h) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void check_finite_at(const std::string& shown, const std::string& what, const std::string& name, const float* p,
                     std::size_t n, std::size_t offset) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i]))
      throw Error(shown + ": refusing to save: " + what + " '" + name + "' holds " +
                  (std::isnan(p[i]) ? "NaN" : "Inf") + " at element " + std::to_string(offset + i) +
                  "; the directory is left as it was");
}

// Writes a streamed array as one .npy file (fsync'ed), chunk by chunk; returns its data checksum.
std::string write_streamed(const std::string& path, const StreamedArray& a, const std::string& shown,
                           const std::string& what) {
  if (a.shape.empty() || !a.fill) throw Error("checkpoint: streamed array '" + a.name + "' has no rows or no source");
  const std::int64_t rows = a.shape[0];
  std::size_t len = 1;
  for (std::size_t k = 1; k < a.shape.size(); ++k) len *= static_cast<std::size_t>(a.shape[k]);
  const std::int64_t chunk = std::max<std::int64_t>(1, a.chunk_rows);
  std::vector<float> buf(static_cast<std::size_t>(std::min(chunk, std::max<std::int64_t>(rows, 1))) * len);
  const std::string header = npy_header(NpyDtype::F4, a.shape);
  SyncedFile f(path);
  std::uint64_t h = fnv1a64(nullptr, 0);
  f.write(header);
  for (std::int64_t first = 0; first < rows; first += chunk) {
    const std::int64_t n = std::min(chunk, rows - first);
    const std::size_t count = static_cast<std::size_t>(n) * len;
    a.fill(first, n, buf.data());
    check_finite_at(shown, what, a.name, buf.data(), count, static_cast<std::size_t>(first) * len);
    h = fnv1a64_more(h, buf.data(), count * sizeof(float));
    f.write(buf.data(), count * sizeof(float));
  }
  f.finish();
  return checksum_text(h);
}

nlohmann::json entry_json(const CheckpointParam& p) {
  return nlohmann::json{{"name", p.name}, {"file", p.file}, {"shape", p.shape}, {"dtype", "float32"},
                        {"checksum", p.checksum}};
}

// Writes the arrays under `root` (file names relative to it), checking that no two names map to one file.
void write_entries(const std::string& root, std::vector<Entry>& entries, const std::string& stage_prefix,
                   const std::string& shown, const std::string& what) {
  std::map<std::string, std::string> files;
  for (Entry& e : entries) {
    auto [it, fresh] = files.emplace(e.meta.file, e.meta.name);
    if (!fresh)
      throw Error("checkpoint: '" + e.meta.name + "' and '" + it->second + "' would both be stored as '" +
                  e.meta.file + "'");
    if (e.stream) {
      e.meta.checksum = write_streamed(root + "/" + e.meta.file, *e.stream, shown, what);
      hook(stage_prefix + e.meta.name);
      continue;
    }
    std::size_t n = 1;
    for (auto d : e.meta.shape) n *= static_cast<std::size_t>(d);
    e.meta.checksum = checkpoint_checksum(e.data, n * sizeof(float));
    write_npy<float>(root + "/" + e.meta.file, e.meta.shape, e.data, /*sync=*/true);
    hook(stage_prefix + e.meta.name);
  }
}

// Reads one array and checks it against its manifest entry.
std::vector<float> read_entry(const std::string& dir, const CheckpointParam& p) {
  const std::string path = dir + "/" + p.file;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) throw Error(path + ": missing (listed in the manifest for '" + p.name + "')");
  check_regular_file(path, "an array of the checkpoint, listed in the manifest for '" + p.name + "'");
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
  for (char& c : s) {
    if (c == '/') c = '.';
    else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-'))
      c = '_';
  }
  if (s.empty() || s.front() == '.') s.insert(s.begin(), '_');
  return s + ".npy";
}

std::string checkpoint_checksum(const void* bytes, std::size_t n) {
  const std::uint64_t h = fnv1a64(bytes, n);
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

constexpr const char* kLockFile = "funnel.lock";
constexpr const char* kMarker = "funnel-save-in-progress";

std::mutex& lock_mutex() {
  static std::mutex m;
  return m;
}
// Checkpoint directories (real paths) whose lock this process holds, with a use count.
std::map<std::string, int>& held_locks() {
  static std::map<std::string, int> m;
  return m;
}
bool lock_held(const std::string& real) {
  std::lock_guard<std::mutex> g(lock_mutex());
  return held_locks().count(real) > 0;
}

std::string strip_slashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

bool lexists(const std::string& p, struct stat* out = nullptr) {
  struct stat st {};
  const bool ok = ::lstat(p.c_str(), &st) == 0;
  if (out) *out = st;
  return ok;
}

// The real directory a save to `dir` writes: symlinks resolved; a path that does not exist yet is made absolute
// through its nearest existing ancestor.
std::string checkpoint_real_dir(const std::string& dir_in) {
  const std::string dir = strip_slashes(dir_in);
  if (dir.empty()) throw Error("checkpoint: empty directory name");
  fs::path p = fs::absolute(fs::path(dir)).lexically_normal();
  fs::path rest;
  while (!p.empty() && !lexists(p.string()) && p != p.root_path()) {
    rest = p.filename() / rest;
    p = p.parent_path();
  }
  std::string real = resolve_path(p.string());
  if (lexists(real)) {
    char buf[PATH_MAX];
    if (::realpath(real.c_str(), buf)) real = buf;
  }
  if (!rest.empty()) real = (fs::path(real) / rest).lexically_normal().string();
  return strip_slashes(real);
}

// True when the file `name` in the checkpoint directory `dir` (or its .funnel-tmp / .funnel-old sibling) is an
// output the saving run wrote beside its checkpoint: --metrics-json or --plot of the effective configuration
// recorded in the manifest, naming a file of that name in a directory of that name (`--save run --metrics-json
// run/m.json` rewrites run/m.json on every run).
bool own_output(const std::string& dir, const nlohmann::json& config, const std::string& name) {
  if (!config.is_object()) return false;
  std::string base = fs::path(dir).filename().string();
  for (const char* suffix : {".funnel-tmp", ".funnel-old"}) {
    const std::string sfx = suffix;
    if (base.size() > sfx.size() && base.compare(base.size() - sfx.size(), sfx.size(), sfx) == 0)
      base.resize(base.size() - sfx.size());
  }
  for (const char* key : {"metrics-json", "plot"}) {
    if (!config.contains(key) || !config.at(key).is_string()) continue;
    const fs::path out = fs::path(config.at(key).get<std::string>()).lexically_normal();
    if (out.filename() == name && out.parent_path().filename() == base) return true;
  }
  return false;
}

// Why the existing directory `dir` is not something a save may replace, or "" when it may: empty, only the lock
// file, or a funnel checkpoint holding only its own files. With `tmp`, also a half-written save (the marker).
std::string foreign_content(const std::string& dir, bool tmp) {
  bool has_manifest = false, has_marker = false;
  std::set<std::string> arrays;
  std::vector<std::string> others;  // files that are neither arrays, the manifest, the lock nor the marker
  std::error_code ec;
  auto it = fs::directory_iterator(dir, ec);
  if (ec) return "cannot list it: " + ec.message();
  for (const auto& e : it) {
    const std::string name = e.path().filename().string();
    struct stat st {};
    if (!lexists(e.path().string(), &st)) continue;
    const bool reg = S_ISREG(st.st_mode);
    if (name == "manifest.json" && reg) {
      has_manifest = true;
    } else if (name == kLockFile && reg) {
    } else if (tmp && name == kMarker && reg) {
      has_marker = true;
    } else if (name == "optimizer" && S_ISDIR(st.st_mode)) {
      for (const auto& o : fs::directory_iterator(e.path(), ec)) {
        const std::string on = "optimizer/" + o.path().filename().string();
        struct stat ost {};
        if (!lexists(o.path().string(), &ost) || !S_ISREG(ost.st_mode) || !is_checkpoint_array_file(on))
          return "'" + printable(on) + "', which funnel did not write";
        arrays.insert(on);
      }
    } else if (reg && is_checkpoint_array_file(name)) {
      arrays.insert(name);
    } else if (reg) {
      others.push_back(name);  // may be the run's own outputs (below)
    } else {
      return "'" + printable(name) + "', which funnel did not write";
    }
  }
  if (!has_manifest) {
    if (!others.empty()) return "'" + printable(others.front()) + "', which funnel did not write";
    if (arrays.empty() || (tmp && has_marker)) return "";
    return "no manifest.json (so it is not a funnel checkpoint) but '" + printable(*arrays.begin()) + "'";
  }
  CheckpointInfo info;
  try {
    info = parse_checkpoint_manifest(read_regular_file(dir + "/manifest.json", kMaxManifestBytes),
                                     dir + "/manifest.json");
  } catch (const Error& e) {
    return "a manifest.json that is not a funnel checkpoint's (" + std::string(e.what()) + ")";
  }
  for (const auto& other : others)
    if (!own_output(dir, info.config, other)) return "'" + printable(other) + "', which funnel did not write";
  for (const auto& p : info.params) arrays.erase(p.file);
  for (const auto& p : info.optimizer_arrays) arrays.erase(p.file);
  if (!arrays.empty()) return "'" + printable(*arrays.begin()) + "', which its manifest.json does not list";
  return "";
}

void check_real_target(const std::string& shown, const std::string& real) {
  if (real == "/" || fs::path(real).filename().empty())
    throw Error(shown + ": cannot save a checkpoint to the root directory");
  struct stat st {};
  if (!lexists(real, &st)) {
    const std::string old = real + ".funnel-old";
    if (lexists(old))
      throw Error(shown + ": does not exist, but " + printable(old) +
                  " holds the checkpoint of an interrupted save; rename it to " + printable(real) + " first");
    return;
  }
  if (!S_ISDIR(st.st_mode))
    throw Error(shown + ": exists and is not a directory; refusing to replace it with a checkpoint");
  const std::string why = foreign_content(real, false);
  if (!why.empty())
    throw Error(shown + ": exists and is not a funnel checkpoint or an empty directory: it holds " + why +
                "; refusing to save into it (choose a new or empty directory)");
}

// Removes a directory a save made (a stale temporary one, or an old checkpoint swapped out), but only when it
// holds nothing but funnel's files; otherwise leaves it and returns false.
// The marker goes in first and out last: a save killed while removing (kill -9) leaves a directory that the next
// save still knows as its own and removes, whatever part of it was gone. The manifest goes first, the other files
// next, the marker last.
bool remove_own_dir(const std::string& dir) {
  if (!foreign_content(dir, true).empty()) return false;
  const std::string marker = dir + "/" + kMarker;
  try {
    if (!lexists(marker)) {
      write_file_synced(marker, "");
      fsync_dir(dir);
    }
  } catch (const Error&) {
    return false;
  }
  std::error_code ec;
  // The run's own outputs beside the checkpoint first (only the manifest vouches for them), then the manifest.
  std::vector<fs::path> outputs;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n != kMarker && n != kLockFile && n != "manifest.json" && n != "optimizer" && !is_checkpoint_array_file(n))
      outputs.push_back(e.path());
  }
  for (const auto& p : outputs)
    if (::unlink(p.c_str()) == 0) hook("discard:" + p.filename().string());
  if (::unlink((dir + "/manifest.json").c_str()) == 0) hook("discard:manifest.json");
  std::vector<fs::path> rest;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename() != kMarker) rest.push_back(e.path());
  for (const auto& p : rest) {
    fs::remove_all(p, ec);
    if (ec) return false;
    hook("discard:" + p.filename().string());
  }
  ::unlink(marker.c_str());
  return ::rmdir(dir.c_str()) == 0;
}

void check_finite(const std::string& shown, const std::string& what, const std::string& name, const float* p,
                  std::size_t n) {
  check_finite_at(shown, what, name, p, n, 0);
}

}  // namespace

void check_checkpoint_target(const std::string& dir) { check_real_target(printable(dir), checkpoint_real_dir(dir)); }

CheckpointLock::CheckpointLock(const std::string& dir) {
  const std::string shown = printable(dir);
  real_ = checkpoint_real_dir(dir);
  {
    std::lock_guard<std::mutex> g(lock_mutex());
    auto it = held_locks().find(real_);
    if (it != held_locks().end()) {  // this process holds it already
      ++it->second;
      return;
    }
  }
  check_real_target(shown, real_);
  if (!lexists(real_)) {
    std::error_code ec;
    fs::create_directories(fs::path(real_).parent_path(), ec);
    if (ec) throw Error(shown + ": cannot create the parent directory: " + ec.message());
    if (::mkdir(real_.c_str(), 0777) == 0) created_ = true;
    else if (errno != EEXIST) throw Error(shown + ": cannot create the directory: " + errno_str());
  }
  const std::string lock = real_ + "/" + kLockFile;
  for (int attempt = 0;; ++attempt) {
    const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0) throw Error(printable(lock) + ": cannot create the lock file: " + errno_str());
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      ::close(fd);
      if (e == EWOULDBLOCK)
        throw Error(shown + ": another process is saving to this checkpoint (it holds " + printable(lock) +
                    "); two runs cannot save to one directory");
      throw Error(printable(lock) + ": cannot lock: " + std::strerror(e));
    }
    struct stat a {}, b {};
    if (::fstat(fd, &a) == 0 && ::stat(lock.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev &&
        S_ISREG(a.st_mode)) {
      fd_ = fd;
      break;
    }
    ::close(fd);  // the directory was replaced between open and flock: lock the new one
    if (attempt > 20) throw Error(shown + ": cannot lock: the directory keeps changing");
  }
  try {
    check_real_target(shown, real_);  // again, under the lock
  } catch (...) {
    ::close(fd_);
    throw;
  }
  std::lock_guard<std::mutex> g(lock_mutex());
  held_locks()[real_] = 1;
}

CheckpointLock::~CheckpointLock() {
  std::lock_guard<std::mutex> g(lock_mutex());
  auto it = held_locks().find(real_);
  if (it != held_locks().end() && --it->second > 0) return;
  if (it != held_locks().end()) held_locks().erase(it);
  if (fd_ < 0) return;
  if (created_) {
    // Never saved into: remove the directory this lock made (it holds only the lock file).
    std::error_code ec;
    bool only_lock = true;
    for (const auto& e : fs::directory_iterator(real_, ec)) only_lock = only_lock && e.path().filename() == kLockFile;
    if (!ec && only_lock) {
      ::unlink((real_ + "/" + kLockFile).c_str());
      ::rmdir(real_.c_str());
    }
  }
  ::close(fd_);
}

void save_checkpoint(const std::string& dir_in, const ParamStore<float>& ps, const Optimizer<float>* opt,
                     const nlohmann::json& model, const nlohmann::json& data, std::int64_t step,
                     std::int64_t epoch, const nlohmann::json& config) {
  save_checkpoint(dir_in, ps, opt, {}, {}, model, data, step, epoch, config);
}

namespace {

// A table whose storage keeps its rows outside the store (TableStorage::held_in_store): its arrays come from
// streams when saving and from its storage's owner when loading.
bool table_outside(const ParamStore<float>& ps, NodeId p) { return ps.is_table(p) && !ps.table(p).held_in_store(); }

// What a save writes, checked before anything is touched.
struct SavePlan {
  std::map<std::string, const StreamedArray*> streams, state_streams;  // by parameter / "<param>/<slot>"
  bool has_state = false;
  OptimizerState state;  // the store's optimizer state (without the tables held elsewhere)
};

// Validate: the streams (exactly one per table held elsewhere, and per its state slot when there is state, each
// of the parameter's shape), and that nothing non-finite would be written (streams: checked as they are written).
SavePlan validate_save(const std::string& shown, const ParamStore<float>& ps, const Optimizer<float>* opt,
                       const std::vector<StreamedArray>& tables, const std::vector<StreamedArray>& tables_state,
                       const nlohmann::json& config) {
  if (!config.is_null() && !config.is_object()) throw Error("save_checkpoint: config must be an object or null");
  SavePlan plan;
  for (const auto& a : tables)
    if (!plan.streams.emplace(a.name, &a).second) throw Error(shown + ": two streams for parameter '" + a.name + "'");
  for (const auto& a : tables_state)
    if (!plan.state_streams.emplace(a.name, &a).second)
      throw Error(shown + ": two streams for state '" + a.name + "'");
  plan.has_state = opt && !ps.optimizer().empty();
  std::size_t held = 0;
  for (NodeId p : ps.ids()) {
    if (!table_outside(ps, p)) continue;
    ++held;
    const Node& nd = ps.graph().node(p);
    const std::vector<std::int64_t> shp{nd.shape[0], nd.shape[1]};
    auto check = [&](const std::map<std::string, const StreamedArray*>& m, const std::string& name) {
      auto it = m.find(name);
      if (it == m.end())
        throw Error(shown + ": '" + name + "' is held outside the parameter store and no stream writes it");
      if (it->second->shape != shp)
        throw Error(shown + ": the stream of '" + name + "' has shape " + dims_str(it->second->shape) +
                    ", the parameter " + dims_str(shp));
    };
    check(plan.streams, nd.name);
    if (plan.has_state)
      for (const auto& sl : ps.slot_names()) check(plan.state_streams, nd.name + "/" + sl);
  }
  if (plan.streams.size() != held)
    throw Error(shown + ": streams given for parameters the store holds itself (or that are not in the graph)");
  if (plan.state_streams.size() != (plan.has_state ? held * ps.slot_names().size() : 0))
    throw Error(shown + ": optimizer state streams given that match no table held elsewhere and slot of the store");
  for (NodeId p : ps.ids()) {
    if (table_outside(ps, p)) continue;
    const Tensor<float>& t = ps.value(p);
    check_finite(shown, "parameter", ps.name(p), t.data(), static_cast<std::size_t>(t.size()));
  }
  if (opt) {
    if (!ps.optimizer().empty() && ps.optimizer() != opt->name())
      throw Error(shown + ": the parameter store holds '" + ps.optimizer() + "' optimizer state, the optimizer is '" +
                  opt->name() + "'");
    plan.state = ps.export_optimizer();
    plan.state.optimizer = opt->name();
    for (const auto& a : plan.state.arrays)
      check_finite(shown, "optimizer state", a.name, a.data.data(), a.data.size());
  }
  return plan;
}

// The parameters, each from the store or its stream.
std::vector<Entry> param_entries(const ParamStore<float>& ps, const SavePlan& plan) {
  std::vector<Entry> params;
  for (NodeId p : ps.ids()) {
    const std::string& name = ps.name(p);
    if (table_outside(ps, p)) {
      const StreamedArray* a = plan.streams.at(name);
      params.push_back({{name, checkpoint_file_name(name), a->shape, ""}, nullptr, a});
      continue;
    }
    const Tensor<float>& t = ps.value(p);
    params.push_back({{name, checkpoint_file_name(name), tensor_shape(t), ""}, t.data()});
  }
  return params;
}

// The optimizer's arrays in the store's parameter order (export_optimizer's), a held table's streams at its place.
std::vector<Entry> state_entries(const ParamStore<float>& ps, const SavePlan& plan) {
  std::vector<Entry> arrays;
  const auto& st = plan.state;
  auto from_store = [&](const auto& a) {
    arrays.push_back({{a.name, "optimizer/" + checkpoint_file_name(a.name), a.shape, ""}, a.data.data()});
  };
  std::size_t next = 0;
  for (NodeId p : ps.ids()) {
    if (!plan.has_state) break;
    if (table_outside(ps, p)) {
      for (const auto& sl : ps.slot_names()) {
        const StreamedArray* a = plan.state_streams.at(ps.name(p) + "/" + sl);
        arrays.push_back({{a->name, "optimizer/" + checkpoint_file_name(a->name), a->shape, ""}, nullptr, a});
      }
      continue;
    }
    for (std::size_t k = 0; k < ps.slot_names().size() && next < st.arrays.size(); ++k, ++next)
      from_store(st.arrays[next]);
  }
  for (; next < st.arrays.size(); ++next) from_store(st.arrays[next]);  // (none: every array belongs to a parameter)
  return arrays;
}

// Manifest: writes every array into `root` and returns the manifest that lists them.
nlohmann::json write_contents(const std::string& root, const std::string& shown, const ParamStore<float>& ps,
                              const Optimizer<float>* opt, const SavePlan& plan, const nlohmann::json& model,
                              const nlohmann::json& data, std::int64_t step, std::int64_t epoch,
                              const nlohmann::json& config) {
  nlohmann::json man;
  man["format"] = kCheckpointFormat;
  man["format_version"] = kCheckpointFormatVersion;
  man["step"] = step;
  man["epoch"] = epoch;
  man["model"] = model;
  man["data"] = data;
  if (config.is_object()) man["config"] = config;
  std::vector<Entry> params = param_entries(ps, plan);
  write_entries(root, params, "param:", shown, "parameter");
  man["params"] = nlohmann::json::array();
  for (const Entry& e : params) man["params"].push_back(entry_json(e.meta));
  man["optimizer"] = nullptr;
  if (!opt) return man;
  std::vector<Entry> arrays = state_entries(ps, plan);
  if (::mkdir((root + "/optimizer").c_str(), 0777) != 0)
    throw Error(printable(root) + "/optimizer: cannot create: " + errno_str());
  write_entries(root, arrays, "optimizer:", shown, "optimizer state");
  fsync_dir(root + "/optimizer");
  nlohmann::json o;
  o["name"] = plan.state.optimizer;
  o["step"] = plan.state.step;
  o["config"] = to_json(opt->config());
  o["arrays"] = nlohmann::json::array();
  for (const Entry& e : arrays) o["arrays"].push_back(entry_json(e.meta));
  man["optimizer"] = o;
  return man;
}

void write_manifest(const std::string& root, const std::string& shown, const nlohmann::json& man) {
  std::string text;
  try {
    text = man.dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {
    throw Error(shown + ": cannot write the manifest (the model/data JSON is not serialisable): " + e.what());
  }
  write_file_synced(root + "/manifest.json", text);
  hook("manifest");
}

}  // namespace

void save_checkpoint(const std::string& dir_in, const ParamStore<float>& ps, const Optimizer<float>* opt,
                     const std::vector<StreamedArray>& tables, const std::vector<StreamedArray>& tables_state,
                     const nlohmann::json& model, const nlohmann::json& data, std::int64_t step,
                     std::int64_t epoch, const nlohmann::json& config) {
  const std::string shown = printable(strip_slashes(dir_in));
  const SavePlan plan = validate_save(shown, ps, opt, tables, tables_state, config);
  std::optional<CheckpointLock> own_lock;
  std::string dir = checkpoint_real_dir(dir_in);
  if (!lock_held(dir)) {
    own_lock.emplace(dir_in);
    dir = own_lock->real_dir();
  }
  check_real_target(shown, dir);
  // Commit: into DIR.funnel-tmp (leftovers of a killed save removed when they hold only funnel's files), then
  // swapped with DIR; on any error DIR is left as it was.
  AtomicDir out(dir, shown, {kMarker, remove_own_dir, hook, no_exchange(), "checkpoint"});
  if (::link((dir + "/" + kLockFile).c_str(), (out.path() + "/" + kLockFile).c_str()) != 0 && errno != ENOENT)
    throw Error(printable(out.path()) + ": cannot link the lock file into the new checkpoint: " + errno_str());
  write_manifest(out.path(), shown,
                 write_contents(out.path(), shown, ps, opt, plan, model, data, step, epoch, config));
  out.commit();
}

void read_checkpoint_rows(const std::string& dir_in, const CheckpointParam& a, std::int64_t first,
                          std::int64_t stride, float* out) {
  const std::string path = strip_slashes(dir_in) + "/" + a.file;
  if (!lexists(path)) throw Error(path + ": missing (listed in the manifest for '" + a.name + "')");
  check_regular_file(path, "an array of the checkpoint, listed in the manifest for '" + a.name + "'");
  const NpyHeader h = read_npy_header(path);
  if (h.shape != a.shape)
    throw Error(path + ": holds shape " + dims_str(h.shape) + " but the manifest says " + dims_str(a.shape) +
                " for '" + a.name + "'");
  if (h.dtype != NpyDtype::F4)
    throw Error(path + ": .npy dtype is '" + std::string(npy_descr(h.dtype)) + "', expected '<f4' for '" + a.name +
                "'");
  if (h.shape.empty() || first < 0 || stride < 1)
    throw Error(path + ": cannot read rows of '" + a.name + "' (shape " + dims_str(h.shape) + ")");
  const std::int64_t rows = h.shape[0];
  const std::size_t len = rows > 0 ? h.count() / static_cast<std::size_t>(rows) : 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(path + ": cannot open: " + errno_str());
  std::uint64_t sum = fnv1a64(nullptr, 0);
  try {
    const std::int64_t chunk = std::max<std::int64_t>(1, static_cast<std::int64_t>((std::size_t{1} << 20) /
                                                                                   std::max<std::size_t>(1, len * 4)));
    std::vector<float> buf(static_cast<std::size_t>(std::min(chunk, std::max<std::int64_t>(rows, 1))) * len);
    for (std::int64_t r0 = 0; r0 < rows && len > 0; r0 += chunk) {
      const std::int64_t n = std::min(chunk, rows - r0);
      const std::size_t bytes = static_cast<std::size_t>(n) * len * sizeof(float);
      const auto at = static_cast<off_t>(h.data_offset + static_cast<std::size_t>(r0) * len * sizeof(float));
      std::size_t got = 0;
      auto* dst = reinterpret_cast<char*>(buf.data());
      while (got < bytes) {
        const ssize_t k = ::pread(fd, dst + got, bytes - got, at + static_cast<off_t>(got));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) throw Error(path + ": read error: " + errno_str());
        if (k == 0) throw Error(path + ": truncated while reading '" + a.name + "'");
        got += static_cast<std::size_t>(k);
      }
      sum = fnv1a64_more(sum, buf.data(), bytes);
      // The rows of this chunk that are wanted: the first r ≥ r0 with r ≡ first (mod stride), then every stride-th.
      std::int64_t r = first >= r0 ? first : r0 + ((first - r0) % stride + stride) % stride;
      for (; r < r0 + n; r += stride)
        std::memcpy(out + static_cast<std::size_t>((r - first) / stride) * len,
                    buf.data() + static_cast<std::size_t>(r - r0) * len, len * sizeof(float));
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  const std::string got = checksum_text(sum);
  if (got != a.checksum)
    throw Error(path + ": checksum mismatch for '" + a.name + "': the manifest says " + a.checksum +
                ", the data has " + got + " (the file is corrupt)");
}

CheckpointInfo read_checkpoint_info(const std::string& dir_in) {
  const std::string dir = strip_slashes(dir_in);
  const std::string path = dir + "/manifest.json";
  struct stat st {};
  if (!lexists(path, &st)) {
    if (!lexists(dir)) {
      // A save interrupted between the two renames of the fallback path leaves DIR.funnel-old.
      if (lexists(dir + ".funnel-old"))
        throw Error(printable(dir) + ": no such checkpoint, but " + printable(dir) +
                    ".funnel-old is left by an interrupted save: rename it to " + printable(dir) + " to use it");
      throw Error(printable(dir) + ": no such checkpoint directory");
    }
    throw Error(printable(path) + ": missing (not a checkpoint directory?)");
  }
  return parse_checkpoint_manifest(read_regular_file(path, kMaxManifestBytes), path);
}


CheckpointInfo load_checkpoint(const std::string& dir_in, ParamStore<float>& ps, Optimizer<float>* opt) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  CheckpointInfo info = read_checkpoint_info(dir);
  const Graph& g = ps.graph();

  // Parameters: exactly the graph's, same shapes.
  std::map<std::string, const CheckpointParam*> by_name;
  for (const auto& p : info.params) by_name[p.name] = &p;
  std::set<std::string> graph_names;
  std::vector<std::pair<NodeId, std::vector<float>>> values;
  for (NodeId id : ps.ids()) {
    const std::string& name = g.node(id).name;
    graph_names.insert(name);
    auto it = by_name.find(name);
    if (it == by_name.end())
      throw Error(dir + ": the checkpoint has no parameter '" + name + "' (the graph has it)");
    const Node& nd = g.node(id);
    const auto want = table_outside(ps, id) ? std::vector<std::int64_t>{nd.shape[0], nd.shape[1]}
                                            : tensor_shape(ps.value(id));
    if (it->second->shape != want)
      throw Error(dir + ": parameter '" + name + "' has shape " + dims_str(it->second->shape) +
                  " in the checkpoint but " + dims_str(want) + " in the graph");
    if (table_outside(ps, id)) continue;  // its holder reads its rows
    values.emplace_back(id, read_entry(dir, *it->second));
  }
  for (const auto& p : info.params)
    if (!graph_names.count(p.name))
      throw Error(dir + ": the checkpoint's parameter '" + p.name + "' is not in the graph");

  // Optimizer state: validated by import_state before anything changes.
  if (opt && !info.optimizer.empty()) {
    if (info.optimizer != opt->name())
      throw Error(dir + ": the checkpoint holds '" + info.optimizer + "' optimizer state, the optimizer is '" +
                  opt->name() + "' (load without an optimizer to take the parameters only: train --reset-optimizer)");
    OptimizerState st;
    st.optimizer = info.optimizer;
    st.step = info.optimizer_step;
    std::set<std::string> elsewhere;  // state of the tables held elsewhere: read by their holder
    for (NodeId id : ps.ids())
      if (table_outside(ps, id))
        for (const auto& sl : opt->slot_names()) elsewhere.insert(g.node(id).name + "/" + sl);
    for (const auto& a : info.optimizer_arrays)
      if (!elsewhere.count(a.name)) st.arrays.push_back({a.name, a.shape, read_entry(dir, a)});
    try {
      opt->import_state(ps, st);
    } catch (const Error& e) {
      throw Error(dir + ": " + e.what());
    }
  }
  for (auto& [id, v] : values) std::copy(v.begin(), v.end(), ps.value(id).data());
  return info;
}

}  // namespace funnel

namespace funnel {

void check_checkpoint_for_model(const std::string& dir_in, const CheckpointInfo& info) {
  const std::string dir = strip_slashes(dir_in);
  const std::string man = printable(dir + "/manifest.json");
  double total = 0;
  for (const auto& p : info.params) {
    double want = 4;
    for (auto d : p.shape) want *= static_cast<double>(d);
    struct stat st {};
    if (::stat((dir + "/" + p.file).c_str(), &st) != 0)
      throw Error(man + ": params '" + printable(p.name) + "': its file " + printable(p.file) + " is missing");
    if (static_cast<double>(st.st_size) < want)
      throw Error(man + ": params '" + printable(p.name) + "': shape " + dims_str(p.shape) + " needs " +
                  std::to_string(static_cast<long long>(want)) + " bytes, its file " + printable(p.file) + " holds " +
                  std::to_string(static_cast<long long>(st.st_size)));
    total += static_cast<double>(st.st_size);
  }
  if (info.model.is_object()) {
    const auto num = [&](const char* k) -> double {
      const auto it = info.model.find(k);
      return it != info.model.end() && it->is_number() ? it->get<double>() : 0.0;
    };
    const double table = num("vocab") * num("dim") * 4;
    if (table > total)
      throw Error(man + ": field 'model.vocab' is " + info.model.at("vocab").dump() + ": a vocab × dim " +
                  info.model.at("dim").dump() + " embedding table needs " +
                  std::to_string(static_cast<long long>(table)) + " bytes, but the parameter files hold " +
                  std::to_string(static_cast<long long>(total)) + " in all (the manifest does not match its files)");
  }
  const auto kind = info.data.find("kind");
  if (kind == info.data.end() || !kind->is_string() || (*kind != "synthetic" && *kind != "mapped"))
    throw Error(man + ": field 'data' must describe the training data (\"kind\": \"synthetic\" or \"mapped\" with "
                "its feature map), got " + printable(info.data.dump(), 80));
  if (*kind == "mapped" && !info.data.contains("map"))
    throw Error(man + ": field 'data.map' (the feature map of mapped training data) is missing");
}

}  // namespace funnel
