// Face-network benchmark, TF.js side (peer of bench_faces.c, same cases and inputs):
//
//   node tfjs_faces.mjs MODELS_DIR BACKEND THREADS MODEL BATCH MODE
//
// BACKEND: wasm (@tensorflow/tfjs-backend-wasm, THREADS workers where it supports them) or cpu
// (the plain JS backend, single-threaded); MODEL: dlib-resnet (run by face-api's own
// faceRecognitionNet.forwardInput) or a human-models name; MODE: fwd | fwdbwd (tf.grad of the
// sum of the outputs w.r.t. the input). Prints "model|batch|threads|mode|median ms|backend".
// Input: NHWC element i = 0.5 + 0.4 sin(0.37 i) (face-api gets it times 255: its 0..255 scale).
// One untimed warm-up run, then repetitions until 1 s and 3 runs, or 15 runs, or 5 s (the plain
// JS backend takes seconds per run at batch 8); the median.
// Packages come from tests/parity/node_modules (npm ci there; bench/faces/run.sh does it).
import { createRequire } from 'node:module';
import path from 'node:path';
import { loadGraphModel } from '../../tests/parity/safetensors.mjs';

const require = createRequire(new URL('../../tests/parity/package.json', import.meta.url));
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const tf = faceapi.tf;

const [modelsDir, backend, threads, model, batchArg, mode] = process.argv.slice(2);
if (!mode || !['wasm', 'cpu'].includes(backend) || !['fwd', 'fwdbwd'].includes(mode)) {
  console.error('usage: node tfjs_faces.mjs MODELS_DIR wasm|cpu THREADS MODEL BATCH fwd|fwdbwd');
  process.exit(2);
}
const batch = Number(batchArg);
if (backend === 'wasm') tf.setThreadsCount(Number(threads));
await tf.setBackend(backend);
await tf.ready();

function benchInput(shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = 0.5 + 0.4 * Math.sin(0.37 * i);
  return tf.tensor(v, shape);
}

let run, x;
if (model === 'dlib-resnet') {
  await faceapi.nets.faceRecognitionNet.loadFromDisk(path.join(modelsDir, 'face-api-1.7.15/model'));
  x = benchInput([batch, 150, 150, 3]);
  // One [1,150,150,3] tensor per image (face-api's batch input); a single image as it is: with
  // tf.grad, a one-element split/unstack loses its gradient in both backends (tfjs 4.22).
  run = (inp) => tf.sum(faceapi.nets.faceRecognitionNet.forwardInput(new faceapi.NetInput(batch > 1 ? tf.split(tf.mul(inp, 255), batch) : [tf.mul(inp, 255)])));
} else {
  const net = await loadGraphModel(tf, path.join(modelsDir, `human-models-3.0.4/models/${model}.json`));
  const [, h, w, c] = net.inputs[0].shape;
  x = benchInput([batch, h, w, c]);
  const outputs = model === 'gear' ? ['Identity', 'Identity_1', 'Identity_2'] : ['gender_pred/Sigmoid', 'global_pooling/Mean', 'age_pred/Softmax'];
  run = (inp) => tf.addN(net.execute(inp, outputs).map((o) => tf.sum(o)));
}
const step = mode === 'fwd' ? () => tf.tidy(() => run(x)) : () => tf.tidy(() => tf.grad(run)(x));

const times = [];
let start = 0;
const more = () => { const t = performance.now() - start; return times.length < 15 && t < 5000 && (times.length < 3 || t < 1000); };
for (let rep = -1; rep < 0 || more(); rep++) {
  const t0 = performance.now();
  const out = step();
  await out.data();   // wait for the result, as the C side does
  out.dispose();
  if (rep >= 0) times.push(performance.now() - t0);
  else start = performance.now();
}
times.sort((a, b) => a - b);
const used = backend === 'wasm' ? tf.getThreadsCount() : 1;
console.log(`${model}|${batch}|${used}|${mode}|${times[Math.floor(times.length / 2)].toFixed(2)}|tfjs-${backend}`);
