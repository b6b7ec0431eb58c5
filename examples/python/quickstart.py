"""funnel from Python in five steps: a CSV into pandas, ESMM and its BASE baseline trained on it, their metrics
side by side, ROC and pCVR calibration plots, predictions for new rows.

    PYTHONPATH=build/python python3 examples/python/quickstart.py [train.csv] [--out DIR]

The CSV has a header: click, purchase (or conversion), categorical columns, dense columns named D...; without
one, a synthetic funnel of 20000 impressions is written first (users, items, categories, hours and a price, with
clicks and purchases drawn from hidden per-value effects), so there is something to learn.
"""
import argparse
import pathlib
import tempfile

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import funnel

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("csv", nargs="?", default=None)
ap.add_argument("--out", default=None, help="folder for checkpoints and the figure (default: a temporary one)")
args = ap.parse_args()
out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="funnel-quickstart-"))
out.mkdir(parents=True, exist_ok=True)


def write_demo_csv(path, rows=20000, seed=0):
    """A made-up shop: click and purchase probabilities from hidden effects of the user, item, category, price."""
    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, 500, rows), rng.integers(0, 300, rows)
    category, hour = item % 20, rng.integers(0, 24, rows)
    price = np.round(rng.lognormal(3, 0.5, rows), 2)
    u, i, c = rng.normal(0, 1, 500), rng.normal(0, 1, 300), rng.normal(0, 0.5, 20)
    sig = lambda z: 1 / (1 + np.exp(-z))
    click = rng.random(rows) < sig(u[user] + i[item] + c[category] - 2.0)
    buy = click & (rng.random(rows) < sig(0.8 * i[item] - 0.03 * (price - 20) - 0.5))
    pd.DataFrame({"click": click.astype(int), "purchase": buy.astype(int), "user": user, "item": item,
                  "category": [f"cat{k}" for k in category], "hour": hour, "Dprice": price}).to_csv(path, index=False)


# 1. The data, with pandas: the last fifth held out for evaluation.
if args.csv is None:
    args.csv = out / "shop.csv"
    write_demo_csv(args.csv)
df = pd.read_csv(args.csv)
cut = int(len(df) * 0.8)
train_df, test_df = df.iloc[:cut], df.iloc[cut:]
print(f"{len(train_df)} training rows, {len(test_df)} test rows, {df.click.mean():.3f} click rate")

# 2. Two models, the same flags as `funnel train` (batch_size is --batch-size).
flags = dict(epochs=3, batch_size=256, embedding_dim=8, hidden=[32, 16], seed=1, quiet=True)
metrics = {}
for model in ["esmm", "base"]:
    m = funnel.train(data=train_df, eval_data=test_df, model=model, save=out / model, **flags)
    metrics[model] = m["epochs"][-1]

# 3. Their metrics side by side.
table = pd.DataFrame(metrics).T[["ctr_auc", "cvr_auc", "ctcvr_auc", "ctr_logloss", "ctcvr_logloss"]]
print(table.to_string(float_format=lambda v: f"{v:.4f}"))


# 4. ROC curves (CTR on all rows, CVR on the clicked ones) and pCVR calibration, into one PNG.
def roc(y, p):
    order = np.argsort(-p, kind="stable")
    y = y[order]
    tpr = np.concatenate([[0], np.cumsum(y) / max(y.sum(), 1)])
    fpr = np.concatenate([[0], np.cumsum(1 - y) / max((1 - y).sum(), 1)])
    return fpr, tpr


fig, (ax_ctr, ax_cvr, ax_cal) = plt.subplots(1, 3, figsize=(13, 4))
clicked = test_df.click.to_numpy() == 1
for model in metrics:
    pred = funnel.Predictor(out / model).predict(test_df)
    ax_ctr.plot(*roc(test_df.click.to_numpy(), pred.pctr.to_numpy()), label=model)
    ax_cvr.plot(*roc(test_df.purchase.to_numpy()[clicked], pred.pcvr.to_numpy()[clicked]), label=model)
    bins = np.quantile(pred.pcvr[clicked], np.linspace(0, 1, 6)) if clicked.any() else np.array([0, 1])
    which = np.clip(np.searchsorted(bins, pred.pcvr[clicked], side="right") - 1, 0, len(bins) - 2)
    mean_p = [pred.pcvr[clicked][which == b].mean() for b in range(len(bins) - 1) if (which == b).any()]
    mean_y = [test_df.purchase[clicked][which == b].mean() for b in range(len(bins) - 1) if (which == b).any()]
    ax_cal.plot(mean_p, mean_y, "o-", label=model)
for ax, title in [(ax_ctr, "CTR ROC (all impressions)"), (ax_cvr, "CVR ROC (clicked)")]:
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(title=title, xlabel="false positive rate", ylabel="true positive rate")
    ax.legend()
ax_cal.plot([0, 1], [0, 1], ":", color="grey")
ax_cal.set(title="pCVR calibration (clicked)", xlabel="mean pCVR", ylabel="conversion rate")
ax_cal.legend()
fig.tight_layout()
fig.savefig(out / "quickstart.png", dpi=80)
print(f"wrote {out / 'quickstart.png'}")

# 5. Predictions for new rows: labels are not needed.
new_rows = test_df.drop(columns=["click", "purchase"]).head(5)
print(funnel.Predictor(out / "esmm").predict(new_rows))
