// Maps raw feature values to the inputs of a model exported by `funnel export --format onnx`, from the JSON written
// beside the .onnx file (docs/onnx.md) — no funnel code needed. Hash maps use funnel's value hash (below, in BigInt
// arithmetic); vocabulary maps look values up in the saved lists.
'use strict';

const M64 = (1n << 64n) - 1n;

function mix(x) {
  x ^= x >> 30n;
  x = (x * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 27n;
  x = (x * 0x94d049bb133111ebn) & M64;
  x ^= x >> 31n;
  return x;
}

// funnel's 64-bit hash of the UTF-8 bytes of `value` with `seed` (a BigInt).
function featureHash(value, seed) {
  const b = Buffer.from(String(value), 'utf8');
  let h = seed ^ ((0x9e3779b97f4a7c15n * BigInt(b.length + 1)) & M64);
  let p = 0;
  for (; p + 8 <= b.length; p += 8) h = mix(h ^ b.readBigUInt64LE(p));
  let w = 0n;
  for (let i = 0; p + i < b.length; ++i) w |= BigInt(b[p + i]) << BigInt(8 * i);
  return mix(h ^ w ^ 0xa5a5a5a5a5a5a5a5n);
}

class FeatureMap {
  // `side`: the parsed JSON written beside the .onnx file.
  constructor(side) {
    if (side.format !== 'funnel.onnx_inputs') throw new Error('not a funnel.onnx_inputs document');
    const m = side.feature_map;
    if (!m) throw new Error('the model was trained on synthetic data: its inputs are ids, there is no feature map');
    this.kind = m.kind;
    this.fields = m.fields;
    this.dense = m.dense;
    this.fieldIndex = new Map(m.fields.map((f, i) => [f, i]));
    if (m.kind === 'hash') {
      this.buckets = BigInt(m.buckets);
      this.seed = BigInt(side.hash.seed);  // the seed as a decimal string: a JSON number may not hold 64 bits
    } else {
      this.base = [];
      this.lookup = [];
      let base = 0;
      for (const values of m.values) {
        this.base.push(base);
        this.lookup.push(new Map(values.map((v, k) => [v, k + 1])));  // local row 0: out of vocabulary
        base += values.length + 1;
      }
    }
  }

  // The embedding row of `value` in field number f.
  row(f, value) {
    if (this.kind === 'hash') {
      const bucket = (featureHash(value, this.seed) * this.buckets) >> 64n;
      return BigInt(f) * this.buckets + bucket;
    }
    return BigInt(this.base[f] + (this.lookup[f].get(String(value)) || 0));
  }

  // ONNX Runtime feeds for `rows`: each an object field -> value (a string or number), [values] (multi-valued) or
  // {value: weight, ...}, plus every dense feature by name. Absent fields are empty cells.
  feeds(ort, rows) {
    const F = this.fields.length, B = rows.length;
    const cells = rows.map((r) =>
      this.fields.map((name, f) => {
        const v = r[name];
        if (v === undefined || v === null || v === '') return [];
        if (Array.isArray(v)) return v.map((x) => [this.row(f, x), 1]);
        if (typeof v === 'object') return Object.entries(v).map(([x, w]) => [this.row(f, x), Number(w)]);
        return [[this.row(f, v), 1]];
      }));
    // funnel's ids layout: every cell's ids one after another, and where each cell starts.
    const flat = cells.flat(2);
    const ids = new BigInt64Array(flat.length), weights = new Float32Array(flat.length);
    const offsets = new BigInt64Array(B * F + 1);
    flat.forEach(([id, w], k) => { ids[k] = id; weights[k] = w; });
    cells.flat(1).forEach((cell, c) => { offsets[c + 1] = offsets[c] + BigInt(cell.length); });
    const feeds = {ids: new ort.Tensor('int64', ids, [ids.length]),
                   weights: new ort.Tensor('float32', weights, [weights.length]),
                   offsets: new ort.Tensor('int64', offsets, [offsets.length])};
    if (this.dense.length > 0) {
      const d = new Float32Array(B * this.dense.length);
      rows.forEach((r, b) => this.dense.forEach((name, k) => {
        const x = Number(r[name]);
        if (r[name] === undefined || r[name] === '' || !Number.isFinite(x))
          throw new Error(`row ${b + 1}: dense feature '${name}': expected a number, got '${r[name]}'`);
        d[b * this.dense.length + k] = x;
      }));
      feeds.dense = new ort.Tensor('float32', d, [B, this.dense.length]);
    }
    return feeds;
  }
}

// RFC 4180 CSV text -> array of rows (arrays of cells).
function parseCsv(text) {
  const rows = [];
  let row = [], cell = '', q = false;
  for (let i = 0; i < text.length; ++i) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; ++i; } else if (c === '"') q = false; else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') ++i;
      row.push(cell); rows.push(row); row = []; cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) { row.push(cell); rows.push(row); }
  return rows;
}

// A csv file with a header (funnel's csv: format) -> row objects keyed by column name.
function csvRows(text) {
  const [header, ...lines] = parseCsv(text.replace(/^\ufeff/, ''));
  return lines.filter((l) => l.length > 1 || l[0] !== '').map((l) => Object.fromEntries(header.map((h, k) => [h, l[k]])));
}

module.exports = {featureHash, FeatureMap, parseCsv, csvRows};
