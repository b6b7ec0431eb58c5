"""A model defined in Python: built once by its Python builder, then trained, saved, evaluated, predicted, drawn and
gradient-checked in C++ exactly like a C++ model — and equal to the same model written in C++."""
import os
import pathlib
import subprocess

import numpy as np
import pandas as pd
import pytest

import funnel

DATA = "synthetic:rows=3000,fields=4,vocab=40,seed=3"
FLAGS = dict(embedding_dim=4, hidden=[8, 4], batch_size=128, threads=1, epochs=2, seed=5, quiet=True)


@funnel.register_model(name="py-esmm-shared-bottom",
                       description="ESMM with a shared-bottom MLP, defined in Python",
                       options={"bottom": ([64], "layer sizes of the shared-bottom MLP")}, multi_stage=True)
def esmm_shared_bottom(g):
    inp = g.inputs()
    x = g.embed(inp, "embedding")
    with g.scope("shared_bottom"):
        x = g.mlp(x, g.option("bottom"))
    cond = [g.tower(x, g.tower_scope(s), g.cond_name(s)) for s in range(g.config["num_stages"])]
    g.entire_space_funnel(inp, cond)


def arrays(ck):
    root = pathlib.Path(ck)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.npy"))}


def test_listed():
    m = {m["name"]: m for m in funnel.models()}["py-esmm-shared-bottom"]
    assert m["options"] == [{"name": "bottom", "default": [64], "help": "layer sizes of the shared-bottom MLP"}]
    with pytest.raises(funnel.ConfigError):
        funnel.register_model(name="esmm")(esmm_shared_bottom)


def test_trains_saves_predicts_draws(tmp_path):
    m = funnel.train(data=DATA, model="py-esmm-shared-bottom", model_options={"bottom": "[16,8]"},
                     save=tmp_path / "ck", **FLAGS)
    assert m["model"]["kind"] == "py-esmm-shared-bottom" and m["steps"] == 38
    p = funnel.Predictor(tmp_path / "ck")
    assert p.columns == ["pctr", "pcvr", "pctcvr"]
    out = p.predict(DATA)
    assert len(out) == 3000 and (out.pctcvr <= out.pctr + 1e-7).all()
    ev = funnel.evaluate(tmp_path / "ck", DATA)
    assert 0 < ev["ctr_auc"] < 1 and ev["ctcvr_logloss"] > 0
    dot = funnel.dot("py-esmm-shared-bottom", model_options={"bottom": [16]})
    assert "shared_bottom" in dot and dot.startswith("digraph")


def test_gradcheck():
    rows = funnel.gradcheck(model="py-esmm-shared-bottom", model_options={"bottom": [6]})
    names = {r["param"] for r in rows}
    assert any(n.startswith("shared_bottom/") for n in names)
    assert all(r["pass"] for r in rows), pd.DataFrame(rows)
    # Each loss alone, then their weighted sum, which reaches every parameter.
    assert {r["param"] for r in rows if "+" in r["loss"]} == names
    assert {r["loss"] for r in rows if "+" not in r["loss"]} == {"loss/ctr", "loss/ctcvr"}


def test_equals_cpp_model(tmp_path):
    cpp = os.environ.get("ESMM_SHARED_BOTTOM")
    if not cpp or not os.path.exists(cpp):
        pytest.skip("ESMM_SHARED_BOTTOM (examples/custom_model's binary) not given")
    subprocess.run([cpp, "train", "--model", "esmm-shared-bottom", "--model-options", "bottom=[16,8]", "--data", DATA,
                    "--embedding-dim", "4", "--hidden", "8,4", "--batch-size", "128", "--threads", "1", "--epochs",
                    "2", "--seed", "5", "--quiet", "--save", tmp_path / "cpp"], check=True, capture_output=True)
    funnel.train(data=DATA, model="py-esmm-shared-bottom", model_options={"bottom": "[16,8]"}, save=tmp_path / "py",
                 **FLAGS)
    a, b = arrays(tmp_path / "py"), arrays(tmp_path / "cpp")
    assert a.keys() == b.keys() and any(k.startswith("shared_bottom.") for k in a)
    for k in a:
        assert a[k] == b[k], k
