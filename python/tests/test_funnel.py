"""The Python package against the command line: same flags, same data, same numbers."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

import funnel

SMALL = dict(embedding_dim=4, hidden=[8, 4], batch_size=16, epochs=2, seed=7, threads=1, quiet=True)


def arrays(ck):
    """Every parameter and optimizer-state file of a checkpoint: relative path -> bytes."""
    root = pathlib.Path(ck)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.npy"))}


def test_models_and_ops():
    names = {m["name"]: m for m in funnel.models()}
    assert "esmm" in names and "base" in names
    assert names["esmm"]["description"]
    assert any(o["name"] == "matmul" for o in funnel.ops())
    assert "batch_size" in funnel.flag_names() and "no_shuffle" in funnel.flag_names()


def test_dataframe_trains_like_csv(tmp_path, fixture_csv):
    df = pd.read_csv(fixture_csv)
    m_df = funnel.train(data=df, save=tmp_path / "df", no_shuffle=True, **SMALL)
    m_csv = funnel.train(data=f"csv:{fixture_csv}", save=tmp_path / "csv", no_shuffle=True, **SMALL)
    a, b = arrays(tmp_path / "df"), arrays(tmp_path / "csv")
    assert a.keys() == b.keys() and len(a) > 4
    for k in a:
        assert a[k] == b[k], k
    # The same metrics, apart from the data spec recorded in the configuration.
    for m in (m_df, m_csv):
        m["config"].pop("data")
        m["config"].pop("save")
        for e in m["epochs"]:
            e.pop("samples_per_sec")
        for k in ("samples_per_sec", "steady_samples_per_sec", "steady_step_ms"):
            m.pop(k)
    assert m_df == m_csv
    # A dict of numpy arrays is the same table.
    m_dict = funnel.train(data={c: df[c].to_numpy() for c in df.columns}, save=tmp_path / "dict", no_shuffle=True,
                          **SMALL)
    assert arrays(tmp_path / "dict") == a
    # Shuffled training differs (the test above can fail).
    funnel.train(data=df, save=tmp_path / "shuf", **SMALL)
    assert arrays(tmp_path / "shuf") != a


def test_metrics_dict_is_metrics_json(tmp_path, fixture_csv):
    m = funnel.train(data=f"csv:{fixture_csv}", metrics_json=tmp_path / "m.json", **SMALL)
    written = json.loads((tmp_path / "m.json").read_text())
    for d in (m, written):
        for k in ("samples_per_sec", "steady_samples_per_sec", "steady_step_ms"):
            d.pop(k)
        for e in d["epochs"]:
            e.pop("samples_per_sec")
    assert m == written
    assert m["config"]["batch-size"] == 16 and m["config"]["hidden"] == "8,4"
    assert len(m["epochs"]) == 2 and "ctr_auc" in m["epochs"][0]
    # A resumed run: its own steps and where it started, as the CLI reports them.
    first = funnel.train(data=f"csv:{fixture_csv}", save=tmp_path / "ck", **SMALL)
    again = funnel.train(data=f"csv:{fixture_csv}", init=tmp_path / "ck", max_steps=3, **SMALL)
    assert again["run_steps"] == 3 and again["steps"] == first["steps"] + 3
    assert again["resumed_from"] == {"checkpoint": str(tmp_path / "ck"), "step": first["steps"]}


def test_profile_says_where_the_threads_wait():
    flags = dict(SMALL, threads=2, epochs=1, profile=True)
    m = funnel.train(data="synthetic:rows=4000", **flags)
    ops = {o["node"]: o for o in m["profile"]}
    assert "embedding/lookup" in ops
    for o in ops.values():
        assert o["serial_ms"] <= o["forward_ms"] + o["backward_ms"] + 1e-6
        assert 0 <= o["wait_ms"] <= o["forward_ms"] + o["backward_ms"] + 1e-6
    threads = m["profile_threads"]
    assert len(threads["busy_ms"]) == 2
    assert 0 <= threads["wait_ms"] <= threads["loop_ms"]
    one = funnel.train(data="synthetic:rows=4000", **dict(flags, threads=1))
    assert len(one["profile_threads"]["busy_ms"]) == 1 and one["profile_threads"]["loop_ms"] == 0


def test_predict_equals_cli(tmp_path, fixture_csv, funnel_bin):
    df = pd.read_csv(fixture_csv)
    funnel.train(data=df, save=tmp_path / "ck", **SMALL)
    subprocess.run([funnel_bin, "predict", "--checkpoint", tmp_path / "ck", "--data", f"csv:{fixture_csv}",
                    "--out", tmp_path / "pred.csv"], check=True, capture_output=True)
    cli = pd.read_csv(tmp_path / "pred.csv")
    p = funnel.Predictor(tmp_path / "ck")
    assert p.columns == ["pctr", "pcvr", "pctcvr"]
    out = p.predict(df.drop(columns=["click", "purchase"]))
    assert list(out.columns) == p.columns and len(out) == len(df)
    arrays_out = p.predict({c: df[c].to_numpy() for c in df.columns}, as_frame=False)
    spec_out = p.predict(f"csv:{fixture_csv}", as_frame=False)
    for c in p.columns:
        assert np.array_equal(out[c].to_numpy(), cli[c].to_numpy(dtype=np.float32)), c
        assert arrays_out[c].dtype == np.float32 and np.array_equal(arrays_out[c], out[c].to_numpy()), c
        assert np.array_equal(spec_out[c], out[c].to_numpy()), c
    assert p.model == "esmm" and p.step > 0
    # evaluate() is funnel eval's numbers.
    ev = subprocess.run([funnel_bin, "eval", "--checkpoint", tmp_path / "ck", "--data", f"csv:{fixture_csv}"],
                        check=True, capture_output=True, text=True)
    want = json.loads(ev.stdout)
    want.pop("config")
    assert funnel.evaluate(tmp_path / "ck", df) == want


def test_reload_swaps_in_the_new_version(tmp_path, fixture_csv, funnel_bin):
    df = pd.read_csv(fixture_csv)
    funnel.train(data=df, save=tmp_path / "ck", **SMALL)
    p = funnel.Predictor(tmp_path / "ck")
    before, step = p.predict(df, as_frame=False), p.step
    # Another run saved into the same directory: the loaded version stays until reload().
    funnel.train(data=df, save=tmp_path / "ck", **dict(SMALL, epochs=3, seed=8))
    same = p.predict(df, as_frame=False)
    assert all(np.array_equal(same[c], before[c]) for c in p.columns)
    assert p.reload() == p.step and p.step > step and p.reloads == 1
    after = p.predict(df, as_frame=False)
    assert not np.array_equal(after["pctr"], before["pctr"])
    subprocess.run([funnel_bin, "predict", "--checkpoint", tmp_path / "ck", "--data", f"csv:{fixture_csv}",
                    "--out", tmp_path / "pred.csv"], check=True, capture_output=True)
    cli = pd.read_csv(tmp_path / "pred.csv")
    for c in p.columns:
        assert np.array_equal(after[c], cli[c].to_numpy(dtype=np.float32)), c
    # A failed reload keeps the version in use.
    (tmp_path / "ck" / "manifest.json").write_text("{")
    with pytest.raises(funnel.CheckpointError):
        p.reload()
    assert p.reloads == 1 and np.array_equal(p.predict(df, as_frame=False)["pctr"], after["pctr"])
    with pytest.raises(funnel.ConfigError, match="max_batch"):
        funnel.Predictor(tmp_path / "ck", max_batch=0)


def test_bytes_values_are_their_text(tmp_path):
    rng = np.random.default_rng(3)
    n = 300
    a = np.array([f"v{x}" for x in rng.integers(0, 20, n)])
    b = np.array([f"w{x}" for x in rng.integers(0, 20, n)])
    click = rng.integers(0, 2, n)
    data = {"a": a, "b": b, "click": click, "purchase": click * rng.integers(0, 2, n)}
    funnel.train(data=data, save=tmp_path / "str", no_shuffle=True, **SMALL)
    p = funnel.Predictor(tmp_path / "str")
    want = p.predict({"a": a, "b": b}, as_frame=False)
    as_objects = np.array([x.encode() for x in a], dtype=object)
    for given in ({"a": a.astype("S"), "b": b.astype("S")},            # numpy bytes arrays
                  {"a": as_objects, "b": b},                          # object arrays holding bytes
                  pd.DataFrame({"a": list(as_objects), "b": b})):      # a DataFrame column of bytes
        got = p.predict(given, as_frame=False)
        for c in p.columns:
            assert np.array_equal(got[c], want[c]), c
    # Training on bytes is training on the same text.
    funnel.train(data=dict(data, a=a.astype("S"), b=list(b.astype("S"))), save=tmp_path / "bytes", no_shuffle=True,
                 **SMALL)
    assert arrays(tmp_path / "bytes") == arrays(tmp_path / "str")


def test_mpi_only_flags_are_config_errors(tmp_path, fixture_csv):
    for flags, flag in ((dict(shard_embeddings=True), "--shard-embeddings"), (dict(check_replicas=2), "--check-replicas")):
        with pytest.raises(funnel.ConfigError) as e:
            funnel.train(data=f"csv:{fixture_csv}", save=tmp_path / "ck", **flags, **SMALL)
        assert str(e.value).startswith(flag + ":") and "mpirun" in str(e.value), str(e.value)
        assert not (tmp_path / "ck").exists()  # refused before anything was read or written
    # Their off values are the defaults and train as usual.
    funnel.train(data=f"csv:{fixture_csv}", shard_embeddings=False, check_replicas=0, max_steps=2, **SMALL)


def test_threads_predict_at_once(tmp_path):
    rng = np.random.default_rng(0)
    n = 400_000
    big = {f"f{k}": rng.integers(0, 50, n) for k in range(4)}
    click = rng.integers(0, 2, 2000)
    train = dict({k: v[:2000] for k, v in big.items()}, click=click, purchase=click * rng.integers(0, 2, 2000))
    funnel.train(data=train, save=tmp_path / "ck", **SMALL)
    p = funnel.Predictor(tmp_path / "ck")
    small = {k: v[:100] for k, v in big.items()}
    state = {"started": False, "done": False}

    def long_call():
        state["started"] = True
        p.predict(big)
        state["done"] = True

    t = threading.Thread(target=long_call)
    t.start()
    while not state["started"]:
        time.sleep(0.001)
    time.sleep(0.05)  # the other thread is inside C++ now
    overlapped = False
    for _ in range(20):
        if state["done"]:
            break
        r = p.predict(small)  # runs while the long call is still running: neither the GIL nor a lock serializes
        assert len(r) == 100
        overlapped = overlapped or not state["done"]
    t.join()
    assert overlapped, "the long prediction finished before the short one could run (make it longer)"


def test_trainer_callbacks(fixture_csv):
    seen = []
    t = funnel.Trainer(on_epoch=lambda e, m: seen.append(e), **SMALL)
    m = t.fit(f"csv:{fixture_csv}")
    assert seen == [1, 2]
    assert [s for s, _ in t.history] == list(range(1, m["steps"] + 1))
    assert all(len(l) == 2 for _, l in t.history)  # ESMM: ctr and ctcvr losses
    assert t.epochs[1]["ctr_auc"] == m["epochs"][1]["ctr_auc"]

    def stop(step, losses):
        if step == 3:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        funnel.train(data=f"csv:{fixture_csv}", on_step=stop, **SMALL)


def test_errors(tmp_path, fixture_csv):
    with pytest.raises(funnel.ConfigError, match="--batch-size: must be at least 1"):
        funnel.train(data=f"csv:{fixture_csv}", batch_size=0)
    with pytest.raises(funnel.ConfigError, match="unknown flag --batch-sise"):
        funnel.train(data=f"csv:{fixture_csv}", batch_sise=8)
    with pytest.raises(funnel.ConfigError, match="--model: expected one of"):
        funnel.train(data=f"csv:{fixture_csv}", model="nope")
    df = pd.read_csv(fixture_csv)
    df.loc[2, "click"] = 2
    with pytest.raises(funnel.DataError) as e:
        funnel.train(data=df, **SMALL)
    assert (e.value.file, e.value.line, e.value.field) == ("DataFrame", 3, "click")
    assert "DataFrame:3: field 'click': expected 0 or 1, got '2'" in str(e.value)
    bad = tmp_path / "bad.csv"
    bad.write_text("click,purchase,a\n1,0,x\n0,1,y\n")
    with pytest.raises(funnel.DataError) as e:
        funnel.train(data=f"csv:{bad}", **SMALL)
    assert (e.value.file, e.value.line, e.value.field) == (str(bad), 3, "purchase")
    with pytest.raises(funnel.DataError, match="cannot"):
        funnel.train(data=f"csv:{tmp_path}/missing.csv", **SMALL)
    with pytest.raises(funnel.CheckpointError):
        funnel.Predictor(tmp_path / "no-checkpoint")
    (tmp_path / "notack").mkdir()
    (tmp_path / "notack" / "mine.txt").write_text("not funnel's")
    with pytest.raises(funnel.CheckpointError):
        funnel.train(data=f"csv:{fixture_csv}", save=tmp_path / "notack", **SMALL)
    for cls in (funnel.DataError, funnel.CheckpointError, funnel.ConfigError):
        assert issubclass(cls, funnel.Error)


CHILD = """
import sys, funnel
steps = []
def on_step(step, losses):
    steps.append(step)
    if step == 1:
        print("started", flush=True)
try:
    funnel.train(data="synthetic:rows=200000,fields=4,vocab=100", save=sys.argv[1], epochs=50, batch_size=64,
                 embedding_dim=4, hidden=[8], on_step=on_step, quiet=True)
except KeyboardInterrupt:
    print("interrupted at", steps[-1], flush=True)
    sys.exit(3)
print("not interrupted", flush=True)
"""


def test_sigint_saves_and_raises(tmp_path):
    ck = tmp_path / "ck"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ck)], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ))
    assert child.stdout.readline().strip() == "started"
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 3, out
    last = int(out.split()[-1])  # the last step on_step saw
    manifest = json.loads((ck / "manifest.json").read_text())
    # Saved after the step in which the signal was seen (on_step is not called for it when the signal is seen
    # before the callback runs).
    assert manifest["step"] in (last, last + 1)
    assert last < 50 * 200000 * 0.8 / 64 / 2  # stopped long before the end


def test_pandas_dtypes_missing_values(tmp_path):
    """pandas' nullable and categorical columns: <NA> is an absent value, as NaN in a float column is."""
    n = 200
    base = dict(click=np.tile([1, 0, 1, 0], n // 4), purchase=np.tile([1, 0, 0, 0], n // 4))
    a = pd.DataFrame(dict(base, u=pd.array(np.tile([1, None, 3, 4], n // 4), dtype="Int64"),
                          v=pd.Series(np.tile(["x", "y", None, "z"], n // 4), dtype="string")))
    b = pd.DataFrame(dict(base, u=np.tile([1.0, np.nan, 3.0, 4.0], n // 4),
                          v=np.tile(np.array(["x", "y", None, "z"], dtype=object), n // 4)))
    c = pd.DataFrame(dict(base, u=np.tile([1, 0, 3, 4], n // 4), v=b.v))  # 0 instead of missing: differs
    for name, df in (("a", a), ("b", b), ("c", c)):
        funnel.train(data=df, save=tmp_path / name, no_shuffle=True, **SMALL)
    assert arrays(tmp_path / "a") == arrays(tmp_path / "b")
    assert arrays(tmp_path / "a") != arrays(tmp_path / "c")
