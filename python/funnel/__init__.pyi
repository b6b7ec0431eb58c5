# Type stub of the funnel package (python/funnel/__init__.py and its C++ part funnel._core), for editors.
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union
import os

import numpy as np
import pandas as pd

DataLike = Union[str, "pd.DataFrame", Mapping[str, "np.ndarray"]]
PathLike = Union[str, "os.PathLike[str]"]

class Error(RuntimeError):
    """Base class of funnel's errors."""

class DataError(Error):
    """Bad input data; for a bad row .file, .line (1-based; a DataFrame's row) and .field, else None."""
    file: Optional[str]
    line: Optional[int]
    field: Optional[str]

class CheckpointError(Error):
    """A checkpoint cannot be read, does not fit, or cannot be written."""

class ConfigError(Error, ValueError):
    """A bad flag (keyword argument) value, model or model option."""

def models() -> list[dict[str, Any]]:
    """The registered models: [{name, description, options: [{name, default, help}]}]."""
def ops() -> list[dict[str, str]]:
    """The registered ops: [{name, doc}]."""
def flag_names() -> list[str]:
    """The keyword arguments train() takes (funnel train's flags with - written _)."""
def train(data: DataLike = "synthetic", model: str = "esmm", eval_data: Optional[DataLike] = None,
          save: Optional[PathLike] = None, *, on_step: Optional[Callable[[int, list[float]], None]] = None,
          on_epoch: Optional[Callable[[int, dict[str, Any]], None]] = None, **flags: Any) -> dict[str, Any]:
    """Trains as `funnel train` does; returns the metrics dict that --metrics-json writes."""
def evaluate(checkpoint: PathLike, data: DataLike, batch_size: int = 4096) -> dict[str, Any]:
    """The metrics of a checkpoint on data, as `funnel eval`."""

class Trainer:
    """Training with train()'s flags and on_step / on_epoch callbacks."""
    model: str
    flags: dict[str, Any]
    history: list[tuple[int, list[float]]]
    epochs: list[dict[str, Any]]
    metrics: Optional[dict[str, Any]]
    def __init__(self, model: str = "esmm", *, on_step: Optional[Callable[[int, list[float]], None]] = None,
                 on_epoch: Optional[Callable[[int, dict[str, Any]], None]] = None, **flags: Any) -> None: ...
    def on_step(self, step: int, losses: list[float]) -> None: ...
    def on_epoch(self, epoch: int, metrics: dict[str, Any]) -> None: ...
    def fit(self, data: DataLike = "synthetic", eval_data: Optional[DataLike] = None, save: Optional[PathLike] = None,
            **flags: Any) -> dict[str, Any]: ...

class Predictor:
    """A checkpoint loaded for prediction (funnel's serving Predictor); thread-safe, the GIL released while
    predicting; reload() swaps in the checkpoint's current version."""
    checkpoint: PathLike
    def __init__(self, checkpoint: PathLike, max_batch: int = 256) -> None: ...
    @property
    def columns(self) -> list[str]: ...
    @property
    def model(self) -> str: ...
    @property
    def step(self) -> int: ...
    @property
    def reloads(self) -> int: ...
    def reload(self) -> int: ...
    def predict(self, rows: DataLike, as_frame: bool = True) -> Any: ...
    def evaluate(self, data: DataLike, batch_size: int = 4096) -> dict[str, Any]: ...

class Var:
    """A node of a graph being built (valid inside the model builder only)."""
    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> list[int]: ...
    def __add__(self, other: "Var") -> "Var": ...
    def __mul__(self, other: "Var") -> "Var": ...

class Inputs:
    """The model's inputs."""
    ids: Var
    dense: Optional[Var]
    labels: list[Var]

class Scope:
    def __enter__(self) -> "Scope": ...
    def __exit__(self, *args: Any) -> bool: ...

class Graph:
    """The graph a registered Python model builder builds; valid during the builder call."""
    @property
    def config(self) -> dict[str, Any]: ...
    def option(self, name: str) -> Any: ...
    def inputs(self) -> Inputs: ...
    def embed(self, inputs: Inputs, scope: str = "embedding") -> Var: ...
    def scope(self, name: str) -> Scope: ...
    def mlp(self, x: Var, hidden: Sequence[int], act: str = "relu") -> Var: ...
    def dense(self, x: Var, units: int, name: str, act: str = "none") -> Var: ...
    def tower(self, x: Var, scope: str, out: str, hidden: Optional[Sequence[int]] = None) -> Var: ...
    def op(self, op: str, inputs: Sequence[Var], name: str = "", **attrs: Any) -> Var: ...
    def param(self, name: str, shape: Sequence[int], init: str = "glorot") -> Var: ...
    def entire_space_funnel(self, inputs: Inputs, cond: Sequence[Var]) -> None: ...
    def add_loss(self, loss: Var) -> None: ...
    def to_dot(self) -> str: ...
    @staticmethod
    def tower_scope(stage: int) -> str: ...
    @staticmethod
    def cond_name(stage: int) -> str: ...

def register_model(name: str, description: str = ..., options: Optional[Mapping[str, Any]] = None,
                   multi_stage: bool = False) -> Callable[[Callable[[Graph], None]], Callable[[Graph], None]]:
    """Registers a Python builder (run once per graph built) as the model `name`."""
def dot(model: str = "esmm", model_options: Optional[Mapping[str, Any]] = None, fields: int = 4, vocab: int = 100,
        embedding_dim: int = 4, hidden: Sequence[int] = (16, 8), stages: int = 2) -> str:
    """A small instance of the model's graph as Graphviz DOT text."""
def gradcheck(model: str = "esmm", model_options: Optional[Mapping[str, Any]] = None, seed: int = 0,
              eps: float = 1e-6, rtol: float = 1e-3, atol: float = 1e-5, max_coords: int = 0) -> list[dict[str, Any]]:
    """Per-parameter gradient check rows (funnel gradcheck --model)."""
