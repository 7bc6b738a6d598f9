/**
 * The reference backend: plain TypeScript, obvious loops, on the JS heap. It is the specification every
 * other backend is tested against, and the fallback for kernels they do not implement.
 */
import type { Backend } from '../../tensor/kernels.ts';
import { heapAllocator } from '../../tensor/storage.ts';
import { matmulRef } from './matmul.ts';
import { binary, binaryScalar, copyStrided, reduce, unaryDerivative, unaryScalar } from './elementwise.ts';
import * as nn from './nn.ts';

export const refBackend: Backend = {
  name: 'ref',
  threads: 1,
  allocator: heapAllocator,
  supports: () => true,
  matmul: matmulRef,
  matmulShared(ps) {
    for (const p of ps) matmulRef(p);
  },
  binary,
  unary(op, n, x, xOff, out) {
    for (let i = 0; i < n; i++) out[i] = unaryScalar(op, x[xOff + i]!);
  },
  unaryBackward(op, n, x, xOff, dy, dx) {
    for (let i = 0; i < n; i++) dx[i] = dy[i]! * unaryDerivative(op, x[xOff + i]!);
  },
  swiglu(n, g, gOff, u, uOff, out) {
    // rounded as silu then mul: silu(g) stored as f32, then one f32 product
    for (let i = 0; i < n; i++) out[i] = Math.fround(unaryScalar('silu', g[gOff + i]!)) * u[uOff + i]!;
  },
  affine(n, x, xOff, alpha, beta, out) {
    for (let i = 0; i < n; i++) out[i] = x[xOff + i]! * alpha + beta;
  },
  copyStrided,
  reduce,
  softmax: nn.softmax,
  softmaxBackward: nn.softmaxBackward,
  logSoftmax: nn.logSoftmax,
  logSoftmaxBackward: nn.logSoftmaxBackward,
  layerNorm: nn.layerNorm,
  layerNormBackward: nn.layerNormBackward,
  rmsNorm: nn.rmsNorm,
  rmsNormBackward: nn.rmsNormBackward,
  rope: nn.rope,
  attention: nn.attention,
  crossEntropy: nn.crossEntropy,
  embedding: nn.embedding,
  embeddingBackward: nn.embeddingBackward,
  adamw: nn.adamw,
};

export { binaryScalar, unaryScalar };
