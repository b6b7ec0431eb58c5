// funnel._core: the C++ side of the Python package (python/funnel/__init__.py is the user-facing side).
// A thin front end: `train` parses the same flags as `funnel train` (cli/train_flags.hpp, one table) and runs the
// library's Trainer; columns in memory (DataFrames, dicts of numpy arrays) are a data source of their own
// (data/columns.hpp); prediction is the serving Predictor (serving/predictor.hpp: the numbers of `funnel predict`,
// `funnel serve` and the in-process Predictor, bit for bit), evaluation the library call `funnel eval` makes. The
// GIL is released while C++ works; library errors become funnel.Error and its subclasses.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>

#include "autodiff/executor.hpp"
#include "autodiff/gradcheck.hpp"
#include "autodiff/gradflow.hpp"
#include "cli/command.hpp"
#include "cli/common.hpp"
#include "cli/plots.hpp"
#include "cli/train_flags.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/op.hpp"
#include "data/columns.hpp"
#include "data/data_error.hpp"
#include "core/dsl.hpp"
#include "models/blocks.hpp"
#include "models/model.hpp"
#include "data/synthetic.hpp"
#include "serving/predictor.hpp"
#include "train/checkpoint.hpp"
#include "train/loop.hpp"
#include "train/trainer.hpp"
#include "viz/dot.hpp"

namespace py = pybind11;
using namespace funnel;

namespace {

// The exception classes (created in PYBIND11_MODULE).
PyObject* g_error = nullptr;
PyObject* g_data_error = nullptr;
PyObject* g_checkpoint_error = nullptr;
PyObject* g_config_error = nullptr;

// What a piece of work is about: an Error from it becomes that kind's exception.
enum class Phase { Config, Data, Checkpoint, Other };

[[noreturn]] void raise(PyObject* type, const std::string& msg) {
  PyErr_SetString(type, msg.c_str());
  throw py::error_already_set();
}

[[noreturn]] void raise_data_error(const DataError& e) {
  py::object exc = py::reinterpret_borrow<py::object>(g_data_error)(e.what());
  exc.attr("file") = e.file;
  exc.attr("line") = e.line;
  exc.attr("field") = e.field;
  PyErr_SetObject(g_data_error, exc.ptr());
  throw py::error_already_set();
}

// Runs f() and turns a C++ exception into the Python exception of its kind (or of the phase).
template <class F>
auto guarded(Phase phase, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const py::error_already_set&) {
    throw;
  } catch (const cli::UsageError& e) {
    raise(g_config_error, e.what());
  } catch (const DataError& e) {
    raise_data_error(e);
  } catch (const GraphError& e) {
    raise(g_config_error, e.what());
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    PyObject* t = phase == Phase::Config       ? g_config_error
                  : phase == Phase::Data       ? g_data_error
                  : phase == Phase::Checkpoint ? g_checkpoint_error
                                               : g_error;
    if (t == g_data_error) {
      py::object exc = py::reinterpret_borrow<py::object>(g_data_error)(e.what());
      exc.attr("file") = py::none();
      exc.attr("line") = py::none();
      exc.attr("field") = py::none();
      PyErr_SetObject(g_data_error, exc.ptr());
      throw py::error_already_set();
    }
    raise(t, e.what());
  }
}

// Runs f() without the GIL; a C++ exception is turned into the Python exception of its kind (guarded) once the GIL
// is held again.
void nogil(Phase phase, const std::function<void()>& f) {
  std::exception_ptr err;
  {
    py::gil_scoped_release release;
    try {
      f();
    } catch (...) {
      err = std::current_exception();
    }
  }
  if (err) guarded(phase, [&] { std::rethrow_exception(err); });
}

// nlohmann JSON -> Python, through the json module (the same text --metrics-json writes).
py::object to_python(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

// argv for Flags: argv[0] is the command name.
struct Argv {
  std::vector<std::string> args;
  std::vector<char*> ptrs;
  Argv(const std::string& command, const std::vector<std::string>& a) : args{command} {
    args.insert(args.end(), a.begin(), a.end());
    for (auto& s : args) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(args.size()); }
  char** argv() { return ptrs.data(); }
};

// A table of columns kept alive with the Python arrays it points into, readable as its spec while it lives.
class Columns {
 public:
  // `columns`: (name, array) pairs; arrays are 1-d numpy arrays of int/uint/bool/float, or of objects (str, None,
  // NaN) for text columns.
  Columns(const std::string& name, const std::vector<std::pair<std::string, py::array>>& columns) {
    auto t = std::make_shared<ColumnTable>();
    t->name = name;
    bool first = true;
    for (const auto& [col_name, given] : columns) {
      ColumnArray c;
      c.name = col_name;
      py::array a = given;
      if (a.ndim() != 1) raise(g_data_error, name + ": column '" + col_name + "': expected a 1-d array");
      const char kind = a.dtype().kind();
      if (kind == 'O' || kind == 'U' || kind == 'S') {
        c.type = ColumnArray::Type::Text;
        py::array obj = kind == 'O' ? a : py::array(a.attr("astype")("O"));
        keep_.push_back(obj);
        const auto n = static_cast<std::size_t>(obj.shape(0));
        c.text.resize(n);
        auto* items = static_cast<PyObject* const*>(obj.data());  // contiguous? use strides below
        const auto stride = obj.strides(0) / static_cast<py::ssize_t>(sizeof(PyObject*));
        for (std::size_t i = 0; i < n; ++i) {
          PyObject* o = items[static_cast<py::ssize_t>(i) * stride];
          if (o == Py_None) continue;
          if (PyUnicode_Check(o)) {
            Py_ssize_t len = 0;
            const char* s = PyUnicode_AsUTF8AndSize(o, &len);
            if (!s) throw py::error_already_set();
            c.text[i] = std::string_view(s, static_cast<std::size_t>(len));
          } else if (PyBytes_Check(o)) {
            // bytes: the value is its bytes, as the same text in a file (b"abc" is "abc", not "b'abc'").
            c.text[i] = std::string_view(PyBytes_AS_STRING(o), static_cast<std::size_t>(PyBytes_GET_SIZE(o)));
          } else if (PyFloat_Check(o) && PyFloat_AS_DOUBLE(o) != PyFloat_AS_DOUBLE(o)) {
            continue;  // NaN: missing
          } else {
            // Another object (an int in an object column, ...): its str(), kept alive here.
            strings_.push_back(py::str(py::handle(o)));
            Py_ssize_t len = 0;
            const char* s = PyUnicode_AsUTF8AndSize(strings_.back().ptr(), &len);
            c.text[i] = std::string_view(s, static_cast<std::size_t>(len));
          }
        }
      } else {
        py::array b;
        if (kind == 'f' && a.itemsize() == 4) {
          c.type = ColumnArray::Type::Float32;
          b = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
        } else if (kind == 'f') {
          c.type = ColumnArray::Type::Float64;
          b = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
        } else if (kind == 'b') {
          c.type = ColumnArray::Type::Bool;
          b = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(a.attr("view")("u1"));
        } else if (kind == 'i' || kind == 'u') {
          c.type = ColumnArray::Type::Int64;
          // int64 arrays (pandas' default) are used in place; other widths are widened.
          b = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        } else {
          raise(g_data_error, name + ": column '" + col_name + "': expected numbers, booleans or strings, got dtype " +
                                  std::string(py::str(a.dtype())));
        }
        if (!b) throw py::error_already_set();
        keep_.push_back(b);
        c.values = b.data();
      }
      const auto n = static_cast<std::int64_t>(a.shape(0));
      if (first) t->rows = n;
      first = false;
      if (n != t->rows)
        raise(g_data_error, name + ": column '" + col_name + "': expected " + std::to_string(t->rows) +
                                " values like the first column, got " + std::to_string(n));
      t->columns.push_back(std::move(c));
    }
    table_ = t;
    reg_ = std::make_unique<ColumnsRegistration>(t);
  }
  const std::string& spec() const { return reg_->spec(); }
  std::int64_t rows() const { return table_->rows; }

 private:
  std::vector<py::array> keep_;
  std::vector<py::str> strings_;
  std::shared_ptr<const ColumnTable> table_;
  std::unique_ptr<ColumnsRegistration> reg_;
};

py::list model_list() {
  py::list out;
  for (const auto& k : model_kinds()) {
    const ModelDef& d = get_model(k);
    py::list opts;
    for (const auto& o : d.options)
      opts.append(py::dict(py::arg("name") = o.name, py::arg("default") = to_python(o.default_value),
                           py::arg("help") = o.help));
    out.append(py::dict(py::arg("name") = d.name, py::arg("description") = d.description, py::arg("options") = opts));
  }
  return out;
}

py::list op_list() {
  py::list out;
  for (const auto& n : op_names()) {
    const Op& op = get_op(n);
    out.append(py::dict(py::arg("name") = op.name(), py::arg("doc") = op.doc()));
  }
  return out;
}

py::list train_switch_names() {
  py::list l;
  for (const auto& s : cli::train_switches()) l.append(s);
  return l;
}
py::list train_valued_names() {
  py::list l;
  for (const auto& s : cli::train_valued_flags()) l.append(s);
  return l;
}

// A Python error raised inside a training hook (KeyboardInterrupt, a callback's exception): kept until the loop
// has stopped and the checkpoint is saved, then raised.
struct PendingError {
  std::optional<py::error_already_set> err;
};

// funnel train with `args` (flags as on the command line); on_step(step, losses), on_epoch(epoch, metrics) are
// called with the GIL held. Returns the metrics JSON (--metrics-json's) as text.
py::object py_train(const std::vector<std::string>& args, py::object on_step, py::object on_epoch) {
  Argv av("train", args);
  std::optional<cli::Flags> flags;
  cli::RunOptions ro;
  guarded(Phase::Config, [&] {
    flags.emplace(av.argc(), av.argv(), cli::train_valued_flags(), cli::train_switches());
    ro = cli::train_run_options(*flags);
    return 0;
  });
  const cli::Flags& f = *flags;
  guarded(Phase::Config, [&] {
    // Flags that only mean something across the processes of `mpirun funnel train`: a Python process trains alone,
    // so accepting them would silently train otherwise than asked.
    auto mpi_only = [](const std::string& flag, const std::string& what) {
      throw cli::UsageError("--" + flag + ": " + what + " needs MPI processes (mpirun -n N funnel train ...); "
                            "funnel.train runs in this one process: leave it out, or use the command line");
    };
    if (f.has("shard-embeddings")) mpi_only("shard-embeddings", "sharding the embedding tables over the ranks");
    if (f.integer("check-replicas", 0, 0) > 0) mpi_only("check-replicas", "comparing the ranks' replicas");
  });
  TrainerOptions& so = ro.trainer;
  std::vector<std::string> inputs;
  std::optional<CheckpointLock> save_lock;
  guarded(Phase::Config, [&] {
    if (so.train.save_every > 0 && !f.has("save")) throw cli::UsageError("--save-every needs --save DIR");
    inputs = dataset_spec_inputs(ro.data.train);
    for (const auto& e : dataset_spec_inputs(ro.data.eval)) inputs.push_back(e);
    if (!so.init_dir.empty()) inputs.push_back(so.init_dir);
    if (!f.config_file().empty()) inputs.push_back(f.config_file());
    if (f.has("metrics-json")) check_output_target(f.str("metrics-json", ""), inputs, "--metrics-json");
    if (f.has("plot") && f.str("plot", "").empty()) throw cli::UsageError("--plot: needs a file name (FILE.svg)");
    if (f.has("plot")) check_output_target(f.str("plot", ""), inputs, "--plot");
    return 0;
  });
  if (f.has("save")) guarded(Phase::Checkpoint, [&] { save_lock.emplace(f.str("save", "")); return 0; });

  std::shared_ptr<TrainData> data;
  nogil(Phase::Data, [&] {
    cli::set_threads(so.threads);
    data = cli::load_run_data(ro, f);
  });
  std::unique_ptr<Trainer> trainer;
  nogil(so.init_dir.empty() ? Phase::Config : Phase::Checkpoint,
        [&] { trainer = std::make_unique<Trainer>(so, data); });
  Trainer& s = *trainer;
  const bool quiet = f.has("quiet");
  std::atomic<bool> stop{false};
  PendingError pending;
  cli::LossHistory history;
  TrainHooks hooks;
  hooks.stop = &stop;
  std::int64_t last_print = 0;
  hooks.on_step = [&](const StepInfo& i) {
    history.add(i.step, i.running_losses);
    if (!quiet && (i.step - last_print >= 200 || i.rows_done == i.rows_total)) {
      last_print = i.step;
      std::fprintf(stderr, "step %lld epoch %lld rows %lld/%lld %.0f rows/s\n", static_cast<long long>(i.step),
                   static_cast<long long>(i.epoch + 1), static_cast<long long>(i.rows_done),
                   static_cast<long long>(i.rows_total), i.rows_per_sec);
    }
    py::gil_scoped_acquire gil;
    if (pending.err) return;
    // Ctrl-C: Python's SIGINT handler only sets a flag; running it here raises KeyboardInterrupt, which stops
    // the loop after this step (the checkpoint is saved before it is raised again).
    if (PyErr_CheckSignals() != 0) {
      pending.err.emplace();
      stop = true;
      return;
    }
    if (!on_step.is_none()) {
      try {
        py::list losses;
        for (double l : i.running_losses) losses.append(l);
        on_step(i.step, losses);
      } catch (py::error_already_set& e) {
        pending.err.emplace(std::move(e));
        stop = true;
      }
    }
  };
  hooks.on_epoch = [&](const EpochReport& e) {
    if (on_epoch.is_none()) return;
    py::gil_scoped_acquire gil;
    if (pending.err) return;
    try {
      nlohmann::json j = e.has_eval ? metrics_to_json(e.eval) : nlohmann::json::object();
      for (std::size_t k = 0; k < e.mean_losses.size(); ++k) j["loss_" + s.loss_name(k)] = e.mean_losses[k];
      on_epoch(e.epoch + 1, to_python(j));
    } catch (py::error_already_set& err) {
      pending.err.emplace(std::move(err));
      stop = true;
    }
  };
  if (so.train.save_every > 0) hooks.save = [&](std::int64_t step, std::int64_t) { s.save(f.str("save", ""), step); };

  TrainResult res;
  const std::int64_t start_step = s.start_step();
  nogil(Phase::Other, [&] { res = s.train(hooks); });
  if (f.has("save")) nogil(Phase::Checkpoint, [&] { s.save(f.str("save", ""), res.steps); });
  nlohmann::json mj = cli::train_metrics_json(s, res, start_step);
  guarded(Phase::Other, [&] {
    if (f.has("metrics-json")) write_output_file(f.str("metrics-json", ""), mj.dump(2) + "\n", inputs, "--metrics-json");
    if (f.has("plot")) {
      std::vector<std::string> names;
      for (std::size_t k = 0; k < s.model().handle().losses.size(); ++k) names.push_back(s.loss_name(k));
      write_output_file(f.str("plot", ""),
                        plot::to_svg(cli::train_figure("funnel train: " + s.model_description(), names, history, res)),
                        inputs, "--plot");
    }
    return 0;
  });
  if (pending.err) pending.err->restore(), throw py::error_already_set();
  return to_python(mj);
}

// A checkpoint loaded for prediction and evaluation. Prediction is the serving Predictor: any number of threads at
// once (each call borrows a workspace), reload() swaps in the checkpoint's current version while calls in flight
// finish on the old one. evaluate() runs `funnel eval`'s library call on a model of a pool (loaded on first use,
// again when all are busy).
class PyPredictor {
 public:
  PyPredictor(std::string dir, std::int64_t max_batch) : dir_(std::move(dir)) {
    if (max_batch < 1 || max_batch > 65536)
      raise(g_config_error, "max_batch: must be in [1, 65536], got " + std::to_string(max_batch));
    PredictorOptions o;
    o.max_batch = max_batch;
    nogil(Phase::Checkpoint, [&] { p_ = std::make_unique<funnel::Predictor>(dir_, o); });
  }
  std::vector<std::string> columns() const { return p_->current()->columns(); }
  std::int64_t step() const { return p_->current()->step(); }
  std::string model() const { return p_->current()->kind(); }
  std::int64_t reloads() const { return p_->reloads(); }
  std::int64_t reload() {
    std::int64_t step = 0;
    nogil(Phase::Checkpoint, [&] { step = p_->reload()->step(); });
    return step;
  }

  // Predictions for the rows of `spec` as {name: float32 array}, scored by one version of the checkpoint.
  py::dict predict(const std::string& spec) {
    const std::shared_ptr<const ServingModel> m = p_->current();
    const std::size_t nc = m->columns().size();
    std::vector<std::unique_ptr<std::vector<float>>> cols;
    nogil(Phase::Data, [&] {
      std::vector<float> out;
      std::int64_t n = 0;
      if (is_synthetic_spec(spec) || !m->has_feature_map()) {
        LoadedData d = funnel::load_data(spec, ReadOptions{}, &m->manifest_data());
        n = d.data.rows();
        out.resize(static_cast<std::size_t>(n) * nc);
        m->predict(d.data, 0, n, out);
      } else if (is_cache_spec(spec)) {
        const auto cache = open_cache(spec, &m->manifest_data());
        n = cache->rows();
        out.resize(static_cast<std::size_t>(n) * nc);
        m->predict(*cache, 0, n, out);
      } else {
        const Dataset d = m->read_data(spec, ReadOptions{});
        n = d.rows();
        out.resize(static_cast<std::size_t>(n) * nc);
        m->predict(d, 0, n, out);
      }
      for (std::size_t k = 0; k < nc; ++k) {
        auto col = std::make_unique<std::vector<float>>(static_cast<std::size_t>(n));
        for (std::int64_t r = 0; r < n; ++r) (*col)[static_cast<std::size_t>(r)] = out[static_cast<std::size_t>(r) * nc + k];
        cols.push_back(std::move(col));
      }
    });
    py::dict res;
    for (std::size_t k = 0; k < nc; ++k) {
      auto* raw = cols[k].get();
      py::capsule owner(cols[k].release(), [](void* v) { delete static_cast<std::vector<float>*>(v); });
      res[py::str(m->columns()[k])] = py::array_t<float>(static_cast<py::ssize_t>(raw->size()), raw->data(), owner);
    }
    return res;
  }

  // The paper's metrics of the checkpoint on `spec` (what `funnel eval` prints, without its config).
  py::object evaluate(const std::string& spec, std::int64_t batch_size) {
    nlohmann::json j;
    Lease model(*this);
    nogil(Phase::Data, [&] {
      model.get();
      const nlohmann::json& info = model.info();
      std::unique_ptr<BatchSource> src;
      LoadedData d;
      std::shared_ptr<const CacheFile> cache;
      if (is_cache_spec(spec)) {
        cache = open_cache(spec, &info);
        check_compatible(model->config(), *cache, "'" + spec + "'");
        StreamOptions so;
        so.batch_size = batch_size;
        so.shuffle = false;
        src = std::make_unique<CacheSource>(CachePart{cache.get()}, so);
      } else {
        d = funnel::load_data(spec, ReadOptions{}, &info);
        check_compatible(model->config(), d.data, "'" + spec + "'");
        src = std::make_unique<DatasetSource>(d.data, batch_size);
      }
      j = metrics_to_json(funnel::evaluate(*model, *src));
    });
    return to_python(j);
  }

 private:
  // A model of the evaluation pool for one call (loaded from the checkpoint when all are busy), given back at the end.
  class Lease {
   public:
    explicit Lease(PyPredictor& p) : p_(p) {}
    ~Lease() {
      if (!m_.model) return;
      std::lock_guard<std::mutex> lock(p_.mu_);
      p_.free_.push_back(std::move(m_));
    }
    void get() {
      {
        std::lock_guard<std::mutex> lock(p_.mu_);
        if (!p_.free_.empty()) {
          m_ = std::move(p_.free_.back());
          p_.free_.pop_back();
          return;
        }
      }
      m_ = load_model(p_.dir_);
    }
    const nlohmann::json& info() const { return m_.info.data; }
    Model* operator->() { return m_.model.get(); }
    Model& operator*() { return *m_.model; }

   private:
    PyPredictor& p_;
    LoadedModel m_;
  };

  std::string dir_;
  std::unique_ptr<funnel::Predictor> p_;
  std::mutex mu_;
  std::vector<LoadedModel> free_;
};


// ---- Models defined in Python: the graph DSL during a builder call ----

// What a Python builder builds into; valid only during the call (a Var kept past it raises instead of crashing).
struct BuildCtx {
  Graph* g = nullptr;
  const ModelConfig* c = nullptr;
  ModelHandle* h = nullptr;
  bool alive = true;
  void check() const {
    if (!alive || !g) raise(g_config_error, "this graph is gone: a Graph and its Vars are valid only inside the "
                                            "model builder while it runs");
  }
};
using Ctx = std::shared_ptr<BuildCtx>;

struct PyVar {
  Ctx ctx;
  Var v;
  Var get() const {
    ctx->check();
    return v;
  }
};

struct PyInputs {
  PyVar ids;
  std::optional<PyVar> dense;
  std::vector<PyVar> labels;
  blocks::Inputs in;
};

struct PyScope {
  Ctx ctx;
  std::string name;
  std::unique_ptr<ScopeGuard> guard;
};

struct PyGraph {
  Ctx ctx;
  Graph& g() const {
    ctx->check();
    return *ctx->g;
  }
  PyVar wrap(Var v) const { return PyVar{ctx, v}; }
};

Act act_of(const std::string& a) {
  if (a == "relu") return Act::Relu;
  if (a == "sigmoid") return Act::Sigmoid;
  if (a == "tanh") return Act::Tanh;
  if (a == "none" || a.empty()) return Act::None;
  raise(g_config_error, "act: expected relu, sigmoid, tanh or none, got '" + a + "'");
}

template <class F>
auto graph_call(F&& f) -> decltype(f()) {
  return guarded(Phase::Config, std::forward<F>(f));
}

nlohmann::json from_python(py::handle o) {
  return nlohmann::json::parse(std::string(py::str(py::module_::import("json").attr("dumps")(o))));
}

// A Python builder registered as a model: run with the GIL held (training releases it), once per graph built.
ModelHandle run_builder(const py::object& builder, Graph& g, const ModelConfig& c) {
  py::gil_scoped_acquire gil;
  ModelHandle h;
  auto ctx = std::make_shared<BuildCtx>(BuildCtx{&g, &c, &h, true});
  try {
    builder(PyGraph{ctx});
  } catch (py::error_already_set& e) {
    ctx->alive = false;
    throw GraphError("model '" + c.kind + "': the Python builder raised " + e.what());
  }
  ctx->alive = false;
  return h;
}

void register_python_model(const std::string& name, const std::string& description, py::dict options,
                           py::function builder, bool multi_stage) {
  ModelDef d;
  d.name = name;
  d.description = description;
  d.multi_stage = multi_stage;
  for (auto [k, v] : options) {
    ModelOption o;
    o.name = py::str(k);
    if (py::isinstance<py::tuple>(v) && py::len(v) == 2) {
      o.default_value = from_python(v.cast<py::tuple>()[0]);
      o.help = py::str(v.cast<py::tuple>()[1]);
    } else {
      o.default_value = from_python(v);
    }
    d.options.push_back(std::move(o));
  }
  // Kept for the life of the process (the registry has no removal; never destroyed without the GIL at exit).
  auto* fn = new py::object(builder);
  d.build = [fn](Graph& g, const ModelConfig& c) { return run_builder(*fn, g, c); };
  guarded(Phase::Config, [&] {
    register_model(std::move(d));
    return 0;
  });
}

// A small configuration of a model, as `funnel dot` and `funnel gradcheck` build it.
ModelConfig small_config(const std::string& model, py::object options, std::int64_t fields, std::int64_t vocab,
                         std::int64_t dim, const std::vector<std::int64_t>& hidden, std::int64_t stages) {
  ModelConfig cfg;
  cfg.kind = model;
  if (!find_model(model))
    raise(g_config_error, "--model: expected one of " + model_kinds_text() + " (see funnel models), got '" + model + "'");
  if (!options.is_none()) cfg.options = from_python(options);
  cfg.num_fields = fields;
  cfg.vocab = vocab;
  cfg.dim = dim;
  cfg.hidden = hidden;
  cfg.num_stages = stages;
  return cfg;
}

std::string model_dot(const std::string& model, py::object options, std::int64_t fields, std::int64_t vocab,
                      std::int64_t dim, const std::vector<std::int64_t>& hidden, std::int64_t stages) {
  ModelConfig cfg = small_config(model, options, fields, vocab, dim, hidden, stages);
  return guarded(Phase::Config, [&] {
    Graph g;
    build_model(g, cfg);
    return to_dot(g);
  });
}

// The per-parameter gradient check of a model (`funnel gradcheck --model`'s setup: 3 fields, vocab 50, dim 4,
// hidden 6,5, batch 8): every parameter through each loss alone, then through the weighted sum of the losses.
py::list model_gradcheck(const std::string& model, py::object options, std::uint64_t seed, double eps, double rtol,
                         double atol, std::int64_t max_coords) {
  ModelConfig cfg = small_config(model, options, 3, 50, 4, {6, 5}, 2);
  GradCheckOptions opt;
  opt.seed = seed;
  opt.eps = eps;
  opt.rtol = rtol;
  opt.atol = atol;
  opt.max_coords = max_coords;
  std::vector<GradCheckResult> results = guarded(Phase::Config, [&] {
    Graph g;
    ModelHandle h = build_model(g, cfg);
    Executor<double> ex(g);
    ex.init_params(opt.seed);
    std::mt19937_64 rng(opt.seed + 17);
    feed_random_batch(ex, 8, rng);
    std::vector<GradCheckResult> out;
    for (NodeId l : h.losses) out.push_back(gradcheck(ex, {{l, 1.0}}, opt));
    std::vector<LossWeight> all;
    for (std::size_t i = 0; i < h.losses.size(); ++i) all.push_back({h.losses[i], h.loss_weights[i]});
    out.push_back(gradcheck(ex, all, opt));
    return out;
  });
  py::list rows;
  for (const auto& r : results)
    for (const auto& row : r.rows)
      rows.append(py::dict(py::arg("param") = row.param, py::arg("loss") = row.loss, py::arg("sparse") = row.sparse,
                           py::arg("checked") = row.checked, py::arg("skipped") = row.skipped,
                           py::arg("max_abs") = row.max_abs, py::arg("max_rel") = row.max_rel,
                           py::arg("pass") = row.pass && r.repeat_identical, py::arg("worst") = row.worst));
  return rows;
}

void bind_dsl(py::module_& m) {
  py::class_<PyVar>(m, "Var", "A node of a graph being built (valid inside the model builder only).")
      .def_property_readonly("name", [](const PyVar& v) { return v.get().name(); })
      .def_property_readonly("shape",
                             [](const PyVar& v) {
                               std::vector<std::int64_t> s;
                               for (auto d : v.get().shape().dims) s.push_back(d);
                               return s;
                             })
      .def("__add__", [](const PyVar& a, const PyVar& b) { return graph_call([&] { return PyVar{a.ctx, add(a.get(), b.get())}; }); })
      .def("__mul__", [](const PyVar& a, const PyVar& b) { return graph_call([&] { return PyVar{a.ctx, mul(a.get(), b.get())}; }); })
      .def("__repr__", [](const PyVar& v) { return "<funnel.Var " + v.get().name() + ">"; });
  py::class_<PyInputs>(m, "Inputs", "The model's inputs: ids (B × fields), dense (B × D or None), labels per stage.")
      .def_readonly("ids", &PyInputs::ids)
      .def_readonly("dense", &PyInputs::dense)
      .def_readonly("labels", &PyInputs::labels);
  py::class_<PyScope>(m, "Scope", "A name scope: `with g.scope(\"tower\"):` prefixes the names of the nodes made in it.")
      .def("__enter__", [](PyScope& s) {
        s.ctx->check();
        s.guard = std::make_unique<ScopeGuard>(s.ctx->g->scope(s.name));
        return &s;
      }, py::return_value_policy::reference)
      .def("__exit__", [](PyScope& s, py::args) {
        s.guard.reset();
        return false;
      });
  py::class_<PyGraph>(m, "Graph", "The graph a model builder builds (funnel.register_model); valid during the call.")
      .def_property_readonly("config",
                             [](const PyGraph& pg) {
                               pg.ctx->check();
                               return to_python(to_json(*pg.ctx->c));
                             }, "The model configuration: kind, dims, hidden, fields, vocab, stages, options.")
      .def("option", [](const PyGraph& pg, const std::string& name) {
        pg.ctx->check();
        return graph_call([&] { return to_python(model_option(*pg.ctx->c, name)); });
      }, py::arg("name"), "The value of one of the model's options (its default unless model_options sets it).")
      .def("inputs", [](const PyGraph& pg) {
        return graph_call([&] {
          PyInputs r;
          r.in = blocks::make_inputs(pg.g(), *pg.ctx->c, *pg.ctx->h);
          r.ids = pg.wrap(r.in.ids);
          if (r.in.has_dense) r.dense = pg.wrap(r.in.dense);
          for (const auto& l : r.in.labels) r.labels.push_back(pg.wrap(l));
          return r;
        });
      }, "Makes the model's inputs (ids, dense features, one label per stage) and records them in the model.")
      .def("embed", [](const PyGraph& pg, const PyInputs& in, const std::string& scope) {
        return graph_call([&] { return pg.wrap(blocks::embed(pg.g(), *pg.ctx->c, in.in, scope)); });
      }, py::arg("inputs"), py::arg("scope") = "embedding",
         "One embedding table (dim from the config); every field looked up, pooled, flattened with the dense features.")
      .def("scope", [](const PyGraph& pg, const std::string& name) { return PyScope{pg.ctx, name, nullptr}; },
           py::arg("name"))
      .def("mlp", [](const PyGraph& pg, const PyVar& x, const std::vector<std::int64_t>& hidden, const std::string& act) {
        pg.ctx->check();
        return graph_call([&] { return pg.wrap(mlp(x.get(), hidden, act_of(act))); });
      }, py::arg("x"), py::arg("hidden"), py::arg("act") = "relu", "Dense layers dense_0, dense_1, ... with `act`.")
      .def("dense", [](const PyGraph& pg, const PyVar& x, std::int64_t units, const std::string& name, const std::string& act) {
        pg.ctx->check();
        return graph_call([&] { return pg.wrap(dense(x.get(), units, name, act_of(act))); });
      }, py::arg("x"), py::arg("units"), py::arg("name"), py::arg("act") = "none", "One dense layer x·W + b.")
      .def("tower", [](const PyGraph& pg, const PyVar& x, const std::string& scope, const std::string& out, py::object hidden) {
        return graph_call([&] {
          if (hidden.is_none()) return pg.wrap(blocks::tower(pg.g(), *pg.ctx->c, x.get(), scope, out));
          return pg.wrap(blocks::tower(pg.g(), hidden.cast<std::vector<std::int64_t>>(), x.get(), scope, out));
        });
      }, py::arg("x"), py::arg("scope"), py::arg("out"), py::arg("hidden") = py::none(),
         "An MLP (the config's hidden sizes unless given) ending in one sigmoid unit named `out`: a probability.")
      .def("op", [](const PyGraph& pg, const std::string& op, const std::vector<PyVar>& inputs, const std::string& name,
                    py::kwargs attrs) {
        return graph_call([&] {
          std::vector<NodeId> ids;
          for (const auto& v : inputs) ids.push_back(v.get().id);
          Attrs a;
          for (auto [k, v] : attrs) {
            const std::string key = py::str(k);
            if (py::isinstance<py::str>(v)) a.str[key] = py::str(v);
            else if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v))
              a.ints[key] = v.cast<std::vector<std::int64_t>>();
            else a.num[key] = v.cast<double>();
          }
          return pg.wrap(Var{&pg.g(), pg.g().add_op(op, ids, a, name)});
        });
      }, py::arg("op"), py::arg("inputs"), py::arg("name") = "",
         "Any registered op by name (funnel.ops()) with keyword attributes: g.op(\"scale\", [x], w=0.5).")
      .def("param", [](const PyGraph& pg, const std::string& name, const std::vector<std::int64_t>& shape,
                       const std::string& init) {
        return graph_call([&] {
          Init i = init == "zeros"    ? Init::zeros()
                   : init == "ones"   ? Init::constant(1.0)
                   : init == "glorot" ? Init::glorot_uniform()
                   : init == "he"     ? Init::he_normal()
                                      : (throw cli::UsageError("init: expected glorot, he, zeros or ones, got '" +
                                                               init + "'"), Init{});
          return pg.wrap(param(pg.g(), name, Shape{shape}, i));
        });
      }, py::arg("name"), py::arg("shape"), py::arg("init") = "glorot", "A trained parameter (init: glorot, he, zeros or ones).")
      .def("entire_space_funnel", [](const PyGraph& pg, const PyInputs& in, const std::vector<PyVar>& cond) {
        graph_call([&] {
          std::vector<Var> c;
          for (const auto& v : cond) c.push_back(v.get());
          blocks::entire_space_funnel(pg.g(), in.in, c, *pg.ctx->h);
          return 0;
        });
      }, py::arg("inputs"), py::arg("cond"),
         "ESMM's funnel over per-stage conditional probabilities (pCTR, pCVR, ...): the entire-space products, "
         "their losses on the labels, and the prediction columns (pctr, pcvr, pctcvr).")
      .def("add_loss", [](const PyGraph& pg, const PyVar& l) {
        graph_call([&] {
          blocks::add_loss(pg.g(), *pg.ctx->h, l.get());
          return 0;
        });
      }, py::arg("loss"), "Adds a scalar loss node to the model's losses.")
      .def("to_dot", [](const PyGraph& pg) { return to_dot(pg.g()); }, "The graph so far as Graphviz DOT text.")
      .def_static("tower_scope", &blocks::tower_scope, py::arg("stage"), "The tower scope of a stage (ctr_tower, cvr_tower, ...).")
      .def_static("cond_name", &blocks::cond_name, py::arg("stage"), "The name of a stage's conditional probability (pctr, pcvr, ...).");

  m.def("register_model", &register_python_model, py::arg("name"), py::arg("description"), py::arg("options"),
        py::arg("builder"), py::arg("multi_stage") = false);
  m.def("dot", &model_dot, py::arg("model"), py::arg("options") = py::none(), py::arg("fields") = 4,
        py::arg("vocab") = 100, py::arg("dim") = 4, py::arg("hidden") = std::vector<std::int64_t>{16, 8},
        py::arg("stages") = 2);
  m.def("gradcheck", &model_gradcheck, py::arg("model"), py::arg("options") = py::none(), py::arg("seed") = 0,
        py::arg("eps") = 1e-6, py::arg("rtol") = 1e-3, py::arg("atol") = 1e-5, py::arg("max_coords") = 0);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "funnel's C++ core (use the funnel package, not this module)";
  g_error = PyErr_NewExceptionWithDoc("funnel.Error", "Base class of funnel's errors.", PyExc_RuntimeError, nullptr);
  g_data_error = PyErr_NewExceptionWithDoc(
      "funnel.DataError",
      "Bad input data. For a bad row, .file, .line (1-based; a DataFrame's row) and .field name it; else None.",
      g_error, nullptr);
  g_checkpoint_error = PyErr_NewExceptionWithDoc(
      "funnel.CheckpointError", "A checkpoint cannot be read, does not fit, or cannot be written.", g_error, nullptr);
  py::tuple config_bases = py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError));
  g_config_error = PyErr_NewExceptionWithDoc("funnel.ConfigError",
                                             "A bad flag (keyword argument) value, model or model option; the "
                                             "message names the flag as the command line does.",
                                             config_bases.ptr(), nullptr);
  m.attr("Error") = py::handle(g_error);
  m.attr("DataError") = py::handle(g_data_error);
  m.attr("CheckpointError") = py::handle(g_checkpoint_error);
  m.attr("ConfigError") = py::handle(g_config_error);

  m.def("models", &model_list, "The registered models: [{name, description, options: [{name, default, help}]}].");
  m.def("ops", &op_list, "The registered ops: [{name, doc}].");
  m.def("train_switches", &train_switch_names, "`funnel train`'s flags that take no value.");
  m.def("train_flags", &train_valued_names, "`funnel train`'s flags that take a value.");
  m.def("train", &py_train, py::arg("args"), py::arg("on_step") = py::none(), py::arg("on_epoch") = py::none(),
        "Runs `funnel train ARGS` in this process and returns the metrics dict (--metrics-json's).");
  py::class_<Columns>(m, "Columns", "A table of columns in memory, readable as the data spec .spec while it lives.")
      .def(py::init<const std::string&, const std::vector<std::pair<std::string, py::array>>&>(), py::arg("name"),
           py::arg("columns"))
      .def_property_readonly("spec", &Columns::spec)
      .def_property_readonly("rows", &Columns::rows);
  py::class_<PyPredictor>(m, "Predictor", "A checkpoint loaded for prediction (the serving Predictor) and evaluation.")
      .def(py::init<std::string, std::int64_t>(), py::arg("checkpoint"), py::arg("max_batch") = 256)
      .def_property_readonly("columns", &PyPredictor::columns)
      .def_property_readonly("step", &PyPredictor::step)
      .def_property_readonly("model", &PyPredictor::model)
      .def_property_readonly("reloads", &PyPredictor::reloads)
      .def("reload", &PyPredictor::reload)
      .def("predict", &PyPredictor::predict, py::arg("spec"))
      .def("evaluate", &PyPredictor::evaluate, py::arg("spec"), py::arg("batch_size") = 4096);
  bind_dsl(m);
}
