"""funnel from Python: train, evaluate and predict with funnel's conversion-funnel models (ESMM and others).

The work runs in C++ (the same library as the ``funnel`` command line); Python hands over data and flags and gets
metrics and predictions back. Every ``funnel train`` flag is a keyword argument with ``-`` written ``_``::

    import funnel, pandas as pd
    df = pd.read_csv("train.csv")
    metrics = funnel.train(data=df, model="esmm", epochs=2, batch_size=256, save="ck")
    p = funnel.Predictor("ck")
    p.predict(df.head())          # a DataFrame with the model's prediction columns (pctr, pcvr, pctcvr)

Data may be a spec string (``"csv:train.csv"``, ``"cache:train.cache"``, ``"synthetic"``, ...), a pandas
DataFrame or a dict of 1-d numpy arrays: labels ``click`` and ``purchase`` (or ``conversion``), dense float columns
whose name starts with ``D``, every other column a categorical field (str or int values; None/NaN is absent).
"""

from ._core import CheckpointError, ConfigError, DataError, Error
from . import _core

from ._core import Graph, Inputs, Var

__all__ = ["models", "ops", "train", "evaluate", "Predictor", "Trainer", "register_model", "dot", "gradcheck",
           "Graph", "Inputs", "Var", "Error", "DataError", "CheckpointError", "ConfigError", "flag_names"]


def models():
    """The registered models: a list of dicts ``{name, description, options: [{name, default, help}]}``."""
    return _core.models()


def ops():
    """The registered ops: a list of dicts ``{name, doc}``."""
    return _core.ops()


def flag_names():
    """The keyword arguments train() takes (``funnel train``'s flags with ``-`` written ``_``)."""
    return sorted(n.replace("-", "_") for n in _core.train_flags() + _core.train_switches())


class _Data:
    """A data argument as a spec, holding any in-memory table alive while it is used."""

    def __init__(self, data, what):
        self.table = None
        if data is None:
            self.spec = None
        elif isinstance(data, str):
            self.spec = data
        elif isinstance(data, dict):
            self.table = _core.Columns(what, [(str(k), _as_array(v)) for k, v in data.items()])
            self.spec = self.table.spec
        elif hasattr(data, "columns") and hasattr(data, "__getitem__"):  # a pandas DataFrame
            cols = [(str(c), _as_array(data[c])) for c in data.columns]
            self.table = _core.Columns(what, cols)
            self.spec = self.table.spec
        else:
            raise TypeError(f"{what}: expected a data spec (str), a pandas DataFrame or a dict of numpy arrays, "
                            f"got {type(data).__name__}")


def _as_array(v):
    import numpy as np
    if hasattr(v, "to_numpy"):  # a pandas Series: its values (no copy for numeric columns)
        if isinstance(v.dtype, np.dtype):
            v = v.to_numpy()
        else:  # pandas' own dtypes (nullable Int64, string, category): values as objects, <NA> as None
            v = v.to_numpy(dtype=object, na_value=None)
    return np.asarray(v)


def _flag_args(flags):
    """Keyword arguments -> `funnel train` command-line arguments (None and False leave a flag out)."""
    switches = set(_core.train_switches())
    args = []
    for key, value in flags.items():
        name = key.replace("_", "-")
        if value is None:
            continue
        if name in switches:
            if value is True or value is False:
                if value:
                    args.append("--" + name)
                continue
            raise ConfigError(f"--{name}: a switch, expected True or False, got {value!r}")
        if isinstance(value, bool):
            raise ConfigError(f"--{name}: expected a value, got {value!r}")
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        args.append(f"--{name}={value}")
    return args


def train(data="synthetic", model="esmm", eval_data=None, save=None, *, on_step=None, on_epoch=None, **flags):
    """Trains a model as ``funnel train`` does and returns the metrics dict that ``--metrics-json`` writes.

    data, eval_data: a spec string, a pandas DataFrame or a dict of numpy arrays (see the module's doc); without
        eval_data the last ``eval_fraction`` of the data is held out.
    model: a registered model (``funnel.models()``), including ones registered from Python.
    save: a checkpoint directory to write at the end (and every ``save_every`` steps).
    on_step(step, losses): called after every step with the running mean losses (a list, one per loss).
    on_epoch(epoch, metrics): called after every epoch's evaluation with its metrics (a dict).
    flags: any other ``funnel train`` flag, ``-`` written ``_``: ``epochs=2, batch_size=256, hidden=[16, 8],
        no_shuffle=True, model_options={"cvr_weight": 1}``. Defaults and checks are the command line's; a bad
        value raises ConfigError naming the flag.

    Ctrl-C (KeyboardInterrupt) stops after the current step, saves the checkpoint when ``save`` is given, and is
    raised again. Errors: ConfigError (flags), DataError (data), CheckpointError (save / init), Error (others).
    """
    d = _Data(data, "DataFrame" if not isinstance(data, (str, dict)) else "data")
    e = _Data(eval_data, "eval DataFrame" if not isinstance(eval_data, (str, dict)) else "eval_data")
    args = _flag_args(dict(flags, data=d.spec, model=model, eval_data=e.spec, save=save))
    return _core.train(args, on_step, on_epoch)


class Trainer:
    """Training with the same flags as train(), and callbacks for a notebook's live curves.

    ``Trainer(model="esmm", epochs=3, batch_size=256).fit(df, eval_data=test_df, save="ck")``; override
    ``on_step(step, losses)`` and ``on_epoch(epoch, metrics)`` or pass them to the constructor. ``history`` holds
    (step, losses) pairs and ``epochs`` the per-epoch metrics of the last fit.
    """

    def __init__(self, model="esmm", *, on_step=None, on_epoch=None, **flags):
        self.model = model
        self.flags = flags
        self._on_step = on_step
        self._on_epoch = on_epoch
        self.history = []
        self.epochs = []
        self.metrics = None

    def on_step(self, step, losses):
        """Called after every training step with the running mean losses; by default records them."""
        self.history.append((step, list(losses)))
        if self._on_step is not None:
            self._on_step(step, losses)

    def on_epoch(self, epoch, metrics):
        """Called after every epoch's evaluation with its metrics dict; by default records it."""
        self.epochs.append(dict(metrics, epoch=epoch))
        if self._on_epoch is not None:
            self._on_epoch(epoch, metrics)

    def fit(self, data="synthetic", eval_data=None, save=None, **flags):
        """Trains on `data` (see train()) and returns the metrics dict; flags here add to the constructor's."""
        self.history, self.epochs = [], []
        self.metrics = train(data=data, model=self.model, eval_data=eval_data, save=save, on_step=self.on_step,
                             on_epoch=self.on_epoch, **dict(self.flags, **flags))
        return self.metrics


class Predictor:
    """A checkpoint loaded for prediction: ``Predictor("ck").predict(df)`` -> a DataFrame of predictions.

    This is funnel's serving Predictor, the code behind ``funnel predict`` and ``funnel serve``: the same rows give
    the same numbers, bit for bit. Several threads may predict with one Predictor at once (the GIL is released
    while C++ works; each call borrows a workspace of its own). ``reload()`` loads the checkpoint directory's
    current version (after another ``save``) and swaps it in; calls in flight finish on the version they started
    with. ``max_batch``: rows per forward pass (``funnel predict/serve --max-batch``; a power of two, 256 by
    default; the last bits of a prediction may depend on it).
    """

    def __init__(self, checkpoint, max_batch=256):
        self.checkpoint = checkpoint
        self._p = _core.Predictor(str(checkpoint), int(max_batch))

    @property
    def columns(self):
        """The model's prediction columns, e.g. ['pctr', 'pcvr', 'pctcvr']."""
        return list(self._p.columns)

    @property
    def model(self):
        """The registered name of the loaded model (e.g. 'esmm')."""
        return self._p.model

    @property
    def step(self):
        """The training step the loaded checkpoint version was saved at."""
        return self._p.step

    @property
    def reloads(self):
        """How many times reload() has swapped in a new version."""
        return self._p.reloads

    def reload(self):
        """Loads the checkpoint directory's current version and swaps it in; returns its step.

        On an error (CheckpointError) the version loaded before stays in use."""
        return self._p.reload()

    def predict(self, rows, as_frame=True):
        """Predictions for `rows` (a DataFrame, a dict of arrays or a spec string), one row per input row.

        Categorical values may be str, int or bytes (bytes are taken as their bytes, like the same text in a CSV
        file). Returns a pandas DataFrame with the model's columns, indexed like a DataFrame input; with
        ``as_frame=False`` (or without pandas) a dict of float32 numpy arrays, which saves the few hundred
        microseconds pandas takes to make a DataFrame (most of a small call's cost). Label columns may be absent
        from `rows`.
        """
        import numpy as np
        index = None if isinstance(rows, (str, dict)) else getattr(rows, "index", None)
        if not isinstance(rows, str):
            cols = rows if isinstance(rows, dict) else {c: rows[c] for c in rows.columns}
            n = len(next(iter(cols.values()))) if cols else 0
            cols = dict(cols)
            if "click" not in cols:
                cols["click"] = np.zeros(n, dtype=np.int64)
            if "purchase" not in cols and "conversion" not in cols:
                cols["purchase"] = np.zeros(n, dtype=np.int64)
            rows = cols
        d = _Data(rows, "rows")
        out = self._p.predict(d.spec)
        if not as_frame:
            return out
        try:
            import pandas as pd
        except ImportError:
            return out
        return pd.DataFrame(out, index=index)

    def evaluate(self, data, batch_size=4096):
        """The metrics of the checkpoint on `data` (what ``funnel eval`` reports)."""
        d = _Data(data, "DataFrame" if not isinstance(data, (str, dict)) else "data")
        return self._p.evaluate(d.spec, batch_size)


def evaluate(checkpoint, data, batch_size=4096):
    """The paper's metrics of `checkpoint` on `data` (a spec, DataFrame or dict of arrays), as ``funnel eval``."""
    return Predictor(checkpoint).evaluate(data, batch_size=batch_size)


def register_model(name, description="a model defined in Python", options=None, multi_stage=False):
    """Registers the decorated function as the model `name`: ``builder(g: funnel.Graph) -> None``.

    The builder runs once each time the model's graph is built (training, evaluation, prediction, dot, gradcheck)
    and builds it with the graph DSL; the graph then runs in C++, with no Python in a training step::

        @funnel.register_model(name="my-esmm", options={"bottom": ([64], "shared-bottom layer sizes")})
        def my_esmm(g):
            inp = g.inputs()
            x = g.embed(inp)
            with g.scope("shared_bottom"):
                x = g.mlp(x, g.option("bottom"))
            cond = [g.tower(x, g.tower_scope(s), g.cond_name(s)) for s in range(g.config["num_stages"])]
            g.entire_space_funnel(inp, cond)

    options: {name: default} or {name: (default, help)}; set per run with ``model_options={...}``.
    A name already registered raises ConfigError. Returns the builder unchanged.
    """

    def wrap(builder):
        _core.register_model(name, description, dict(options or {}), builder, multi_stage)
        return builder

    return wrap


def dot(model="esmm", model_options=None, fields=4, vocab=100, embedding_dim=4, hidden=(16, 8), stages=2):
    """The graph of `model` (a small instance of it) as Graphviz DOT text."""
    return _core.dot(model, model_options, fields, vocab, embedding_dim, list(hidden), stages)


def gradcheck(model="esmm", model_options=None, seed=0, eps=1e-6, rtol=1e-3, atol=1e-5, max_coords=0):
    """``funnel gradcheck --model``: analytic float64 gradients against central differences, per parameter.

    Returns a list of rows ``{param, loss, sparse, checked, skipped, max_abs, max_rel, pass, worst}``: every
    parameter through each loss alone, then through the weighted sum of the losses (a pandas DataFrame of them is
    ``pd.DataFrame(funnel.gradcheck(...))``).
    """
    return _core.gradcheck(model, model_options, seed, eps, rtol, atol, max_coords)
