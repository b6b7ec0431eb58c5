#!/usr/bin/python3
"""For every registered model (and a few mapping variants): train a tiny model, write `funnel predict`'s predictions,
export it with `funnel export --format onnx`, check the file with onnx.checker, score the same rows with ONNX Runtime
(onnxruntime-node, through examples/onnx_runtime_js/score.js, which maps the raw values with the exported feature
map JSON) and require every prediction to agree within 1e-5.

usage: check_onnx_models.py FUNNEL NODE ORT_NODE_MODULES EXAMPLE_DIR FIXTURES_DIR WORK_DIR [model ...]
Fails (exit 1) when node or onnxruntime-node is missing: CI installs them (scripts/install_deps.sh)."""
import csv
import json
import os
import shutil
import subprocess
import sys

import onnx

TOL = 1e-5


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def slots_rows(path):
    """The rows of a slots: file as row objects (field -> list of values), as score.js takes them."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split(",")
            row = {}
            for item in parts[3:]:
                field, value = item.split(":", 1)
                row.setdefault(field, []).append(value)
            rows.append(row)
    return rows


def main():
    funnel, node, node_modules, example, fixtures, work = sys.argv[1:7]
    only = set(sys.argv[7:])
    if shutil.which(node) is None:
        sys.exit(f"FAILED: node ('{node}') not found: install nodejs (scripts/install_deps.sh)")
    if not os.path.isdir(os.path.join(node_modules, "onnxruntime-node")):
        sys.exit(f"FAILED: onnxruntime-node not installed in {node_modules}: run scripts/install_ort.sh")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    models = [l.split()[0] for l in run([funnel, "models"]).splitlines() if l and not l[0].isspace()]
    csv_data = os.path.join(fixtures, "rechub_train_sample.csv")
    slots_data = os.path.join(fixtures, "paddlerec_esmm_train_small.txt")
    rows_json = os.path.join(work, "slots_rows.json")
    with open(rows_json, "w") as f:
        json.dump(slots_rows(slots_data), f)
    # (name, model, data spec, extra train flags, score.js input)
    cases = [(m, m, "csv:" + csv_data, ["--buckets", "64"], ["--csv", csv_data]) for m in models]
    cases += [
        # multi-valued fields (padded cells), mean pooling, a vocabulary map with out-of-vocabulary rows
        ("esmm-slots-mean-vocab", "esmm", "slots:" + slots_data, ["--pool", "mean", "--min-count", "2"],
         ["--rows", rows_json]),
        ("aitm-slots-sum-hash", "aitm", "slots:" + slots_data, ["--buckets", "32"], ["--rows", rows_json]),
    ]
    # Values of every length (the hash's 8-byte blocks and tails), multi-byte UTF-8, quoted commas, empty cells.
    text_csv = os.path.join(work, "text_values.csv")
    with open(text_csv, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["click", "purchase", "user", "item", "ctx", "D_x"])
        for i in range(80):
            user = "u" + "x" * (i % 19) + str(i % 7)
            item = ["é", "商品-%d" % (i % 5), "a,b", "", "long value with spaces %d" % (i % 3)][i % 5]
            w.writerow([int(i % 3 == 0), int(i % 9 == 0), user, item, "ctx\u00ff%d" % (i % 4), "%.3f" % (i / 80)])
    cases.append(("esmm-text-values", "esmm", "csv:" + text_csv, ["--buckets", "16"], ["--csv", text_csv]))
    env = dict(os.environ, NODE_PATH=node_modules)
    failures = 0
    for name, model, data, flags, score_in in cases:
        if only and name not in only:
            continue
        d = os.path.join(work, name)
        os.makedirs(d)
        ck, pred, out = os.path.join(d, "ck"), os.path.join(d, "pred.csv"), os.path.join(d, "model.onnx")
        run([funnel, "train", "--model", model, "--data", data, "--embedding-dim", "4", "--hidden", "8,4",
             "--epochs", "2", "--batch-size", "16", "--save", ck, "--quiet"] + flags)
        run([funnel, "predict", "--checkpoint", ck, "--data", data, "--out", pred])
        run([funnel, "export", "--checkpoint", ck, "--format", "onnx", "--out", out])
        onnx.checker.check_model(onnx.load(out), full_check=True)
        got = json.loads(run([node, os.path.join(example, "score.js"), out, os.path.join(d, "model.features.json")]
                             + score_in + ["--batch", "7"], env=env))
        with open(pred, newline="") as f:
            want = list(csv.reader(f))
        header, want = want[0], want[1:]
        if header[1:] != got["columns"]:
            sys.exit(f"FAILED {name}: columns {got['columns']} from ONNX Runtime, {header[1:]} from funnel predict")
        if len(want) != len(got["predictions"]):
            sys.exit(f"FAILED {name}: {len(got['predictions'])} rows from ONNX Runtime, {len(want)} from predict")
        worst = 0.0
        for r, (w, g) in enumerate(zip(want, got["predictions"])):
            for k, col in enumerate(got["columns"]):
                diff = abs(float(w[k + 1]) - g[k])
                worst = max(worst, diff)
                if not diff <= TOL:
                    failures += 1
                    if failures <= 10:
                        print(f"FAILED {name}: row {r + 1} {col}: funnel predict {w[k + 1]}, ONNX Runtime {g[k]}")
        print(f"{name}: {len(want)} rows x {len(header) - 1} columns, max |funnel - ORT| = {worst:.3g}; checker ok")
    if failures:
        sys.exit(f"FAILED: {failures} predictions differ by more than {TOL}")
    print("all models agree with ONNX Runtime")


if __name__ == "__main__":
    main()
