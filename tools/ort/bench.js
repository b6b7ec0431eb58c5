// ONNX Runtime (onnxruntime-node, CPU) latency and throughput on funnel's exported models. Feeds are built before
// timing (the raw-value mapping is not timed); each call is one session.run, timed with process.hrtime.
//   node bench.js MODEL.onnx MODEL.features.json --csv FILE [--batches 1,64,256,1024] [--threads 1,2] [--seconds 2]
//       rows of FILE (cycled to fill a batch), per batch size and intra-op thread count: p50/p99/p99.9 µs per call
//       and rows/s, as JSON lines
//   node bench.js --layout DIR [--seconds 1]
//       DIR/padded.onnx against DIR/offsets.onnx (tools/ort/make_layout_models.py) on the same random cells,
//       interleaved A B A B (7 pairs), single- and multi-valued fields, 1 and 256 rows: median µs per call and the
//       median of the per-pair ratios
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const {FeatureMap, csvRows} = require('../../examples/onnx_runtime_js/funnel_features.js');

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf('--' + name);
  return i >= 0 ? args[i + 1] : dflt;
};

// Calls for about `seconds` (at least 50), after 20 warm-up calls: per-call microseconds, sorted.
async function time(session, feeds, seconds) {
  for (let i = 0; i < 20; ++i) await session.run(feeds);
  const t = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  while (t.length < 50 || process.hrtime.bigint() < end) {
    const a = process.hrtime.bigint();
    await session.run(feeds);
    t.push(Number(process.hrtime.bigint() - a) / 1e3);
  }
  return t.sort((x, y) => x - y);
}
const pct = (t, p) => t[Math.min(t.length - 1, Math.floor(p * t.length))];
const median = (v) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];

async function modelBench() {
  const [model, side] = args;
  const map = new FeatureMap(JSON.parse(fs.readFileSync(side, 'utf8')));
  const rows = csvRows(fs.readFileSync(flag('csv'), 'utf8'));
  const seconds = Number(flag('seconds', 2));
  for (const threads of flag('threads', '1,2').split(',').map(Number)) {
    const s = await ort.InferenceSession.create(model, {intraOpNumThreads: threads, interOpNumThreads: 1,
                                                        executionMode: 'sequential'});
    for (const batch of flag('batches', '1,64,256,1024').split(',').map(Number)) {
      const part = Array.from({length: batch}, (_, i) => rows[i % rows.length]);
      const t = await time(s, map.feeds(ort, part), seconds);
      console.log(JSON.stringify({impl: 'onnxruntime-node ' + ort.env.versions.node, threads, rows_per_call: batch,
                                  calls: t.length, p50_us: +pct(t, 0.5).toFixed(1), p99_us: +pct(t, 0.99).toFixed(1),
                                  p999_us: +pct(t, 0.999).toFixed(1),
                                  rows_per_s: Math.round(batch / (median(t) / 1e6))}));
    }
  }
}

// Random cells: `per(cell)` ids each, ids uniform in [0, V).
function cells(B, F, per, V, seed) {
  let x = seed;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({length: B * F}, (_, c) => Array.from({length: per(c, rnd)}, () => Math.floor(rnd() * V)));
}
function padded(cs, B, F) {
  const W = Math.max(1, ...cs.map((c) => c.length));
  const ids = new BigInt64Array(B * F * W), w = new Float32Array(B * F * W);
  cs.forEach((c, k) => c.forEach((id, j) => { ids[k * W + j] = BigInt(id); w[k * W + j] = 1; }));
  return {ids: new ort.Tensor('int64', ids, [B, F, W]), weights: new ort.Tensor('float32', w, [B, F, W])};
}
function offsets(cs) {
  const flat = cs.flat(), off = [0];
  cs.forEach((c) => off.push(off[off.length - 1] + c.length));
  return {ids: new ort.Tensor('int64', BigInt64Array.from(flat.map(BigInt)), [flat.length]),
          weights: new ort.Tensor('float32', new Float32Array(flat.length).fill(1), [flat.length]),
          offsets: new ort.Tensor('int64', BigInt64Array.from(off.map(BigInt)), [off.length])};
}

async function layoutBench() {
  const dir = flag('layout');
  const seconds = Number(flag('seconds', 1));
  const opts = {intraOpNumThreads: 1, interOpNumThreads: 1};
  const a = await ort.InferenceSession.create(path.join(dir, flag('padded', 'padded') + '.onnx'), opts);
  const b = await ort.InferenceSession.create(path.join(dir, 'offsets.onnx'), opts);
  const F = 20, V = 100000;
  const kinds = {
    'single-valued (1 id per cell)': () => 1,
    'multi-valued (4 of 20 fields: 0-15 ids, mean 7.5)': (c, rnd) => (c % F < 4 ? Math.floor(rnd() * 16) : 1),
  };
  for (const [kind, per] of Object.entries(kinds))
    for (const B of [1, 256]) {
      const cs = cells(B, F, per, V, 7 + B);
      const fa = padded(cs, B, F), fb = offsets(cs);
      const ya = (await a.run(fa)).y.data, yb = (await b.run(fb)).y.data;
      let diff = 0;
      for (let i = 0; i < ya.length; ++i) diff = Math.max(diff, Math.abs(ya[i] - yb[i]));
      if (!(diff < 1e-5)) throw new Error(`layouts disagree by ${diff}`);
      const ta = [], tb = [], ratio = [];
      for (let p = 0; p < 7; ++p) {
        const x = median(await time(a, fa, seconds)), y = median(await time(b, fb, seconds));
        ta.push(x); tb.push(y); ratio.push(y / x);
      }
      console.log(JSON.stringify({impl: 'onnxruntime-node ' + ort.env.versions.node, kind, rows_per_call: B,
                                  padded_us: +median(ta).toFixed(1), offsets_us: +median(tb).toFixed(1),
                                  offsets_over_padded: +median(ratio).toFixed(2)}));
    }
}

(flag('layout') ? layoutBench() : modelBench()).catch((e) => {
  console.error(`bench.js: ${e.stack}`);
  process.exit(1);
});
