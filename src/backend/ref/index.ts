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
  binary,
  unary(op, n, x, xOff, out) {
    for (let i = 0; i < n; i++) out[i] = unaryScalar(op, x[xOff + i]!);
  },
  unaryBackward(op, n, x, xOff, dy, dx) {
    for (let i = 0; i < n; i++) dx[i] = dy[i]! * unaryDerivative(op, x[xOff + i]!);
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
