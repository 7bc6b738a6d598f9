/** The tensor layer: tensors, autograd, ops, quantized storage, RNG, optimisers. */
export * from './tensor.ts';
export * from './dtype.ts';
export { tidy, keep, Storage, type Allocator, type Region } from './storage.ts';
export { backward } from './autograd.ts';
export * from './quant.ts';
export * from './rng.ts';
export * from './init.ts';
export * from './ops/view.ts';
export * from './ops/elementwise.ts';
export * from './ops/matmul.ts';
export * from './ops/reduce.ts';
export * from './ops/nn.ts';
export * from './ops/shape.ts';
export * from './ops/image.ts';
export * from './ops/dropout.ts';
export * from './optim.ts';
export * from './schedule.ts';
