// Scores rows with ONNX Runtime (onnxruntime-node) on a model exported by `funnel export --format onnx`, mapping
// raw feature values through the feature map saved beside it:
//   node score.js MODEL.onnx MODEL.features.json (--csv FILE | --rows FILE.json) [--threads N] [--batch N]
// --csv: a csv file with a header, as funnel reads it; --rows: a JSON array of row objects
// ({"101": "1234", "216": ["a", "b"], "D109_14": 0.3}). Prints {"columns": [...], "predictions": [[...], ...]}.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');
const {FeatureMap, csvRows} = require('./funnel_features.js');

async function main(argv) {
  const [modelPath, sidePath, ...rest] = argv;
  const opt = {};
  for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
  if (!modelPath || !sidePath || !(opt.csv || opt.rows)) {
    console.error('usage: node score.js MODEL.onnx MODEL.features.json (--csv FILE | --rows FILE.json) [--threads N] [--batch N]');
    process.exit(2);
  }
  const side = JSON.parse(fs.readFileSync(sidePath, 'utf8'));
  const map = new FeatureMap(side);
  const rows = opt.csv ? csvRows(fs.readFileSync(opt.csv, 'utf8')) : JSON.parse(fs.readFileSync(opt.rows, 'utf8'));
  const threads = Number(opt.threads || 1), batch = Number(opt.batch || 1024);
  const session = await ort.InferenceSession.create(modelPath, {intraOpNumThreads: threads, interOpNumThreads: 1});
  const predictions = [];
  for (let start = 0; start < rows.length; start += batch) {
    const part = rows.slice(start, start + batch);
    const out = await session.run(map.feeds(ort, part));
    for (let i = 0; i < part.length; ++i) predictions.push(side.outputs.map((c) => out[c].data[i]));
  }
  process.stdout.write(JSON.stringify({columns: side.outputs, predictions}) + '\n');
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`score.js: ${e.message}`);
  process.exit(1);
});
