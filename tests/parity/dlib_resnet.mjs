// Reference descriptors and input gradients of dlib's face recognition ResNet, computed by
// face-api itself (@vladmandic/face-api, pure-JS CPU backend of TF.js).
//
//   node dlib_resnet.mjs <face_api_model_dir> <parity_dir>
//
// Reads <parity_dir>/dlib-resnet.inputs.safetensors (make_inputs.c): "input", face chips
// [N,150,150,3] RGB in [0,1]. face-api takes pixels on the 0..255 scale, so it is fed input*255.
// Writes <parity_dir>/dlib-resnet.tfjs.safetensors with
//   out0   descriptors [N,128] from faceRecognitionNet.computeFaceDescriptor,
//   R0     a fixed cotangent (R[i] = sin(0.37*i + 0.5), as run.mjs),
//   grad   d/d(input) of sum(descriptors * R0) through face-api's forwardInput (tf.grad; NHWC,
//          on the [0,1] scale of the input).
import faceapi from '@vladmandic/face-api/dist/face-api.node-wasm.js';
import path from 'node:path';
import { readSafetensors, writeSafetensors, cotangent } from './safetensors.mjs';

const tf = faceapi.tf;
const [modelDir, parityDir] = process.argv.slice(2);
if (!modelDir || !parityDir) {
  console.error('usage: node dlib_resnet.mjs <face_api_model_dir> <parity_dir>');
  process.exit(2);
}
await tf.setBackend('cpu');
await tf.ready();
const net = faceapi.nets.faceRecognitionNet;
await net.loadFromDisk(modelDir);

const { tensors } = readSafetensors(path.join(parityDir, 'dlib-resnet.inputs.safetensors'));
const x = tf.tensor(tensors.input.values, tensors.input.shape);
const t0 = Date.now();
const descriptors = await net.computeFaceDescriptor(tf.unstack(tf.mul(x, 255)));   // a batch: a list of images
const N = x.shape[0];
const out = new Float32Array(N * 128);
[].concat(descriptors).forEach((d, n) => out.set(d, n * 128));
const R = tf.tensor(cotangent([N, 128], 0), [N, 128]);
const t1 = Date.now();
// Same net, through its own batch path (NetInput of the unstacked images), kept differentiable.
const s = (inp) => tf.sum(tf.mul(net.forwardInput(new faceapi.NetInput(tf.unstack(tf.mul(inp, 255)))), R));
const g = tf.grad(s)(x);
const t2 = Date.now();
writeSafetensors(path.join(parityDir, 'dlib-resnet.tfjs.safetensors'), {
  out0: { shape: [N, 128], values: out },
  R0: { shape: [N, 128], values: R.dataSync() },
  grad: { shape: g.shape, values: g.dataSync() },
}, { model: 'dlib-resnet', batch: String(N), face_api: faceapi.version, tfjs: tf.version_core, backend: tf.getBackend() });
console.log(`dlib-resnet: descriptors [${N},128]; forward ${t1 - t0} ms, gradient ${t2 - t1} ms`);
