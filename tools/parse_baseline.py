#!/usr/bin/env python3
"""Baseline: parse a raw Ali-CCP directory the straightforward way, as public preprocessing scripts do.

Reads common_features_{split}.csv into a dict (common_feature_index -> parsed feature list), then streams
sample_skeleton_{split}.csv line by line: str.split per line and per feature, float() per value, joins each row
with its common features and maps every feature to a hashed id per field. Rows are not kept (the C++ reader keeps
them in a Dataset), so this baseline does less work than the C++ reader; the ratio is a conservative one.

Usage: python3 tools/parse_baseline.py DIR [--split train|test] [--buckets N] [--max-rows N]
Prints rows, bytes, seconds and MB/s. Generate comparable files with
  FUNNEL_BENCH_KEEP=1 build/bin/funnel-bench --benchmark_filter=BM_ParseAliccpHash/
"""
import argparse
import os
import sys
import time


def parse_features(text):
    out = []
    if not text:
        return out
    for feat in text.split("\x01"):
        field, rest = feat.split("\x02")
        fid, value = rest.split("\x03")
        out.append((field, fid, float(value)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--split", default="train", choices=["train", "test"])
    ap.add_argument("--buckets", type=int, default=1 << 18)
    ap.add_argument("--max-rows", type=int, default=0)
    args = ap.parse_args()

    common_path = os.path.join(args.dir, f"common_features_{args.split}.csv")
    skel_path = os.path.join(args.dir, f"sample_skeleton_{args.split}.csv")
    fields = ["101", "109_14", "110_14", "127_14", "150_14", "121", "122", "124", "125", "126", "127", "128",
              "129", "205", "206", "207", "210", "216", "508", "509", "702", "853", "301"]
    field_index = {f: i for i, f in enumerate(fields)}
    buckets = args.buckets

    start = time.perf_counter()
    nbytes = 0
    common = {}
    with open(common_path, "r", encoding="ascii", newline="\n") as f:
        for line in f:
            nbytes += len(line)
            key, num, feats = line.rstrip("\n").split(",")
            parsed = parse_features(feats)
            if len(parsed) != int(num):
                raise ValueError(f"{common_path}: feature_num mismatch for {key}")
            common[key] = [(field_index[fl], hash(fid) % buckets, v) for fl, fid, v in parsed]

    rows = clicks = convs = ids = 0
    with open(skel_path, "r", encoding="ascii", newline="\n") as f:
        for line in f:
            nbytes += len(line)
            sid, click, conv, key, num, feats = line.rstrip("\n").split(",")
            click, conv = int(click), int(conv)
            parsed = parse_features(feats)
            if len(parsed) != int(num):
                raise ValueError(f"{skel_path}: feature_num mismatch in row {sid}")
            row = [(field_index[fl], fl_id, v) for fl, fl_id, v in
                   ((fl, hash(fid) % buckets, v) for fl, fid, v in parsed)]
            row.extend(common[key])
            row.sort(key=lambda t: t[0])
            ids += len(row)
            rows += 1
            clicks += click
            convs += click * conv
            if args.max_rows and rows >= args.max_rows:
                break
    secs = time.perf_counter() - start
    print(f"rows={rows} clicks={clicks} conversions={convs} ids={ids} bytes={nbytes} seconds={secs:.2f} "
          f"MB/s={nbytes / secs / 1e6:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
