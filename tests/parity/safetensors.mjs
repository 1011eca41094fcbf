// Shared by the parity and benchmark scripts: safetensors (F32 only), the fixed cotangents the
// parity references project outputs on, and loading a TF.js graph model from disk.
import fs from 'node:fs';
import path from 'node:path';

export function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const data = buf.subarray(8 + n);
  const tensors = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (e.dtype !== 'F32') throw new Error(`${file}: ${name}: dtype ${e.dtype}, F32 expected`);
    const [b, end] = e.data_offsets;
    const bytes = Uint8Array.from(data.subarray(b, end));   // copy: aligned for Float32Array
    tensors[name] = { shape: e.shape, values: new Float32Array(bytes.buffer) };
  }
  return { tensors, meta: header.__metadata__ || {} };
}

export function writeSafetensors(file, tensors, meta) {
  const header = { __metadata__: meta };
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.values.length] };
    offset += 4 * t.values.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const parts = [head, Buffer.from(json, 'utf8')];
  for (const name of names) parts.push(Buffer.from(tensors[name].values.buffer, tensors[name].values.byteOffset, 4 * tensors[name].values.length));
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, Buffer.concat(parts));
  fs.renameSync(tmp, file);
}

export function cotangent(shape, k) {
  const n = shape.reduce((a, b) => a * b, 1);
  const r = new Float32Array(n);
  for (let i = 0; i < n; i++) r[i] = Math.sin(0.37 * i + 1.1 * k + 0.5);
  return r;
}

// tf: the caller's TF.js module (its backend runs the model).
export function loadGraphModel(tf, jsonPath) {
  const model = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const dir = path.dirname(jsonPath);
  const weightSpecs = [];
  const shards = [];
  for (const group of model.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) shards.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const artifacts = { modelTopology: model.modelTopology, weightSpecs, weightData, format: model.format,
                      generatedBy: model.generatedBy, convertedBy: model.convertedBy, signature: model.signature };
  return tf.loadGraphModel(tf.io.fromMemory(artifacts));
}
