#pragma once
/// @file
/// Checkpoints: a directory with
///   manifest.json                    the format marker ("format": "funnel-checkpoint") and version, the caller's
///                                    `model`, `data` and `config` JSON, step/epoch, and for each parameter its name,
///                                    file, shape, dtype and FNV-1a 64 checksum of the data bytes (train/manifest.hpp)
///   ctr_tower.dense_0.w.npy          one float32 .npy per parameter (graph name with '/' -> '.')
///   optimizer/emb.table.adam_m.npy   the optimizer's state arrays, the same way (name, step and config in the
///                                    manifest)
///   funnel.lock                      the lock file (empty; see below)
///
/// What a save may write to (checked by CheckpointLock before any work, and again by save_checkpoint):
///   - a directory that does not exist yet (its parent directories are created), or an empty directory, or
///   - a funnel checkpoint: manifest.json carries the format marker and the directory holds nothing but the files
///     its manifest lists, optimizer/ and funnel.lock. Any other file in it, and anything else at that path, is
///     refused: funnel replaces only what it wrote.
/// A symlink to a directory is resolved and the real directory is replaced; the link stays.
/// Locking: the saver holds an exclusive flock on DIR/funnel.lock (the same inode is linked into every new version
/// of DIR), so a second process saving to the same DIR fails at once instead of both reporting success.
/// Atomicity: everything is written and fsync'ed into the sibling directory DIR.funnel-tmp, which then replaces DIR
/// in one step (renameat2 RENAME_EXCHANGE; where the file system lacks it, DIR is renamed aside to DIR.funnel-old
/// first and removed after the new one is in place). A crash at any point leaves the old or the new complete
/// checkpoint; the next save (under the lock) removes a DIR.funnel-tmp left behind and puts back a DIR.funnel-old
/// whose DIR is missing. Parameters and optimizer state must be finite: a NaN or Inf anywhere refuses the save and
/// leaves the existing checkpoint as it was.
///
/// Tables whose storage keeps their rows outside the store (TableStorage::held_in_store() false, e.g. embedding
/// tables spread by rows over processes, distributed/sharded_embedding.hpp) are written from streams, chunk by
/// chunk (StreamedArray), and read back by row ranges (read_checkpoint_rows); the files are the ordinary ones, so
/// such a checkpoint loads in any process.
///
/// Loading checks everything before changing anything: manifest syntax and fields, missing/extra parameters,
/// shapes against the graph, .npy headers and sizes, checksums, and the optimizer state; on any error the executor
/// and optimizer are left untouched. Errors name the file, the parameter and what was expected. Every file is
/// opened without blocking and must be a regular file (a FIFO or device in a checkpoint is refused at once).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "autodiff/executor.hpp"
#include "train/manifest.hpp"
#include "train/optimizer.hpp"

namespace funnel {

/// Holds the save lock of a checkpoint directory for its lifetime: checks the target (see above; throws
/// funnel::Error naming it and the reason when it may not be used), creates it if new, and takes the lock
/// (an Error if another process holds it). Tools create one before loading data or training, so a bad --save
/// target costs nothing; save_checkpoint in the same process then reuses the lock. A directory this object
/// created and that was never saved into is removed again by the destructor. Within one process the lock is
/// counted: a second CheckpointLock of the same directory (from any thread) shares it, and the last one to go
/// releases it.
class CheckpointLock {
 public:
  /// Checks `dir` as a save target, creates it (and its parents) when it does not exist, and takes the exclusive
  /// flock on DIR/funnel.lock. Throws funnel::Error naming the directory when it may not be used, cannot be
  /// created, or another process holds the lock.
  explicit CheckpointLock(const std::string& dir);
  /// Releases the lock (when this is the process's last holder) and removes a directory it created that was
  /// never saved into.
  ~CheckpointLock();
  CheckpointLock(const CheckpointLock&) = delete;
  CheckpointLock& operator=(const CheckpointLock&) = delete;
  /// The directory locked, symlinks resolved: the path a save replaces.
  const std::string& real_dir() const { return real_; }

 private:
  std::string real_;
  int fd_ = -1;
  bool created_ = false;
};

/// Checks that `dir` may be used as a save target (see the file comment) without creating or locking anything;
/// throws funnel::Error naming it and the reason.
void check_checkpoint_target(const std::string& dir);

/// Writes every parameter of the store and, when `opt` is not null, the store's optimizer state with opt's name
/// and config. `config` (an object, or null for none) is the run's effective configuration, stored as the
/// manifest's "config". `model` and `data` are the caller's JSON descriptions (what to rebuild the model and map
/// the data with), stored as the manifest's "model" and "data"; `step` and `epoch` the training progress. Takes
/// the lock unless a CheckpointLock of `dir` is held in this process; writes atomically (see the file comment).
/// Throws funnel::Error, leaving any existing checkpoint as it was, when the target may not be used, a value is
/// not finite, or a write fails. The store must not change during the call.
///@{
void save_checkpoint(const std::string& dir, const ParamStore<float>& store, const Optimizer<float>* opt,
                     const nlohmann::json& model, const nlohmann::json& data, std::int64_t step,
                     std::int64_t epoch = 0, const nlohmann::json& config = nullptr);
inline void save_checkpoint(const std::string& dir, Executor<float>& ex, const Optimizer<float>* opt,
                            const nlohmann::json& model, const nlohmann::json& data, std::int64_t step,
                            std::int64_t epoch = 0, const nlohmann::json& config = nullptr) {
  save_checkpoint(dir, ex.store(), opt, model, data, step, epoch, config);
}
///@}

/// An array a save writes in pieces: a table held outside the store, or its optimizer state. `name` is the
/// parameter's (or `<param>/<slot>`), `shape` its shape (rows first); fill(first, n, out) puts rows
/// [first, first + n) into `out` (n × the values of a row). The save asks for consecutive ranges from row 0 on, each
/// of at most chunk_rows rows, and writes one before asking for the next: it holds one chunk, never the array.
struct StreamedArray {
  std::string name;  ///< the parameter's graph name, or `<param>/<slot>` for its optimizer state (slot: e.g. adam_m)
  std::vector<std::int64_t> shape;  ///< the whole array's shape, rows first (e.g. {vocab, dim})
  std::int64_t chunk_rows = 8192;   ///< the most rows one fill call is asked for (the save's buffer, in rows)
  /// Puts rows [first, first + n) into `out` (n × the values of a row, row-major float32). Called from the saving
  /// thread; may throw (the save fails and the old checkpoint stays). It may gather the rows from other processes,
  /// which then take part in every call (distributed/sharded_embedding.hpp).
  std::function<void(std::int64_t first, std::int64_t n, float* out)> fill;
};

/// save_checkpoint for a store whose tables' storages keep their rows outside it (TableStorage::held_in_store()
/// false): `tables` has one stream per such parameter and, when
/// the store holds optimizer state, `tables_state` one per (such parameter, slot of opt); nothing else is accepted.
/// Each file's checksum is computed while it is written; every chunk is checked to be finite (a NaN or Inf fails the
/// save, which leaves the existing checkpoint as it was). Same format, lock and atomicity as above.
void save_checkpoint(const std::string& dir, const ParamStore<float>& store, const Optimizer<float>* opt,
                     const std::vector<StreamedArray>& tables, const std::vector<StreamedArray>& tables_state,
                     const nlohmann::json& model, const nlohmann::json& data, std::int64_t step,
                     std::int64_t epoch = 0, const nlohmann::json& config = nullptr);

/// Reads and validates the manifest only (e.g. to rebuild the model from info.model before loading). Throws
/// funnel::Error naming the file and field when `dir` is not a checkpoint (saying so when an interrupted save left
/// DIR.funnel-old) or its manifest is malformed (train/manifest.hpp).
CheckpointInfo read_checkpoint_info(const std::string& dir);

/// Before a model is built from a checkpoint made by a trainer (eval, predict, --init): checks what the manifest
/// says against the files, so a damaged manifest is an error naming its field instead of an allocation failure:
/// each parameter file must hold its listed shape's bytes, the model's vocab × dim embedding table must fit in
/// them, and `data` must describe the training data ("kind" synthetic or mapped). Throws funnel::Error.
void check_checkpoint_for_model(const std::string& dir, const CheckpointInfo& info);

/// Loads every parameter of the store (the checkpoint must hold exactly the graph's parameters, with the same
/// shapes). When `opt` is not null and the checkpoint has optimizer state, that state is imported into the store
/// (it must be of opt's kind: an Error otherwise; pass nullptr to load the parameters only). When the checkpoint
/// has no optimizer state, the store's is left as it is and info.optimizer is empty. On any error the store is
/// left untouched. Tables whose storage is not held in the store are checked in the manifest (present, same shape)
/// but neither they nor their optimizer state are read: their storage's owner reads its rows (read_checkpoint_rows).
/// Returns the manifest. Errors are funnel::Error naming the file, the parameter and what was expected.
///@{
CheckpointInfo load_checkpoint(const std::string& dir, ParamStore<float>& store, Optimizer<float>* opt);
inline CheckpointInfo load_checkpoint(const std::string& dir, Executor<float>& ex, Optimizer<float>* opt) {
  return load_checkpoint(dir, ex.store(), opt);
}
///@}

/// Rows first, first + stride, first + 2·stride, … of the checkpoint array `a` (an entry of info.params or
/// info.optimizer_arrays of the checkpoint in `dir`) into `out`, row after row. The file is checked as a load checks
/// it (a regular file, its .npy header and size, the manifest's shape, float32) and streamed once in chunks of about
/// a MiB, its checksum computed on the way: the memory used is one chunk, never the array. On an error (which names
/// the file and the array) `out` may hold some of the rows. `out` must have room for every selected row
/// (ceil((rows - first) / stride) × the values of a row).
void read_checkpoint_rows(const std::string& dir, const CheckpointParam& a, std::int64_t first, std::int64_t stride,
                          float* out);

/// The file name a parameter is saved under: `<graph name with '/' replaced by '.'>.npy`; other characters than
/// letters, digits, '.', '_' and '-' become '_'.
std::string checkpoint_file_name(const std::string& param_name);
/// FNV-1a 64 of `n` bytes, as `fnv1a64:<16 lower-case hex digits>` (the manifest's checksum form).
std::string checkpoint_checksum(const void* bytes, std::size_t n);

namespace testing {
// Called by save_checkpoint at named points ("param:<name>" after each parameter file, "optimizer:<name>" after
// each optimizer array, "manifest" after the manifest, "swap" just before DIR is replaced). A hook that throws
// simulates a failure at that point. Not thread-safe; pass an empty function to remove it.
void set_checkpoint_fault_hook(std::function<void(std::string_view stage)> hook);
// Pretend the file system lacks renameat2(RENAME_EXCHANGE), to exercise the rename-aside path (whose extra hook
// stage "aside" sits between moving the old checkpoint aside and moving the new one in).
void set_checkpoint_no_exchange(bool on);
}  // namespace testing

}  // namespace funnel
