// Reference outputs and input gradients of TF.js graph models, with the pure-JS CPU backend.
//
//   node run.mjs <models_dir> <parity_dir> <model>...
//
// Reads <parity_dir>/<model>.inputs.safetensors (written by make_inputs.c): "input" (NHWC
// float32) and metadata "outputs" (comma-separated node names). Runs <models_dir>/<model>.json
// and writes <parity_dir>/<model>.tfjs.safetensors with
//   out<k>   output k,
//   R<k>     a fixed cotangent for output k (R[i] = sin(0.37*i + 1.1*k + 0.5)),
//   grad     d/d(input) of s = sum_k sum(out<k> * R<k>) (tf.grad; NHWC like the input),
// and metadata "grad_error" when tf.grad could not differentiate the graph.
// The umbrella package: its node bundle registers the CPU backend and every op's gradient.
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { readSafetensors, writeSafetensors, cotangent, loadGraphModel } from './safetensors.mjs';

async function runModel(modelsDir, parityDir, name) {
  const { tensors, meta } = readSafetensors(path.join(parityDir, `${name}.inputs.safetensors`));
  const outputs = meta.outputs.split(',');
  const model = await loadGraphModel(tf, path.join(modelsDir, `${name}.json`));
  const x = tf.tensor(tensors.input.values, tensors.input.shape);
  const t0 = Date.now();
  const outs = [].concat(model.execute(x, outputs));
  const result = {};
  const R = [];
  for (let k = 0; k < outs.length; k++) {
    result[`out${k}`] = { shape: outs[k].shape, values: outs[k].dataSync() };
    R.push(tf.tensor(cotangent(outs[k].shape, k), outs[k].shape));
    result[`R${k}`] = { shape: outs[k].shape, values: R[k].dataSync() };
  }
  const t1 = Date.now();
  const outMeta = { model: name, batch: String(x.shape[0]), outputs: meta.outputs, tfjs: tf.version_core, backend: tf.getBackend() };
  try {
    const s = (inp) => tf.addN([].concat(model.execute(inp, outputs)).map((o, k) => tf.sum(tf.mul(o, R[k]))));
    const g = tf.grad(s)(x);
    result.grad = { shape: g.shape, values: g.dataSync() };
  } catch (e) {
    outMeta.grad_error = String(e.message || e).slice(0, 300);
  }
  const t2 = Date.now();
  writeSafetensors(path.join(parityDir, `${name}.tfjs.safetensors`), result, outMeta);
  console.log(`${name}: outputs ${outs.map((o) => `[${o.shape}]`).join(' ')}; forward ${t1 - t0} ms, gradient ${outMeta.grad_error ? 'failed: ' + outMeta.grad_error : `${t2 - t1} ms`}`);
}

const [modelsDir, parityDir, ...names] = process.argv.slice(2);
if (!modelsDir || !parityDir || names.length === 0) {
  console.error('usage: node run.mjs <models_dir> <parity_dir> <model>...');
  process.exit(2);
}
await tf.setBackend('cpu');
for (const name of names) await runModel(modelsDir, parityDir, name);
