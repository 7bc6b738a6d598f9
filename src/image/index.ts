/** Images: decode (sharp, at the edge) → resize / pad → normalise into (B, 3, S, S) tensors. */
export * from './image.ts';
export * from './sniff.ts';
export * from './decode.ts';
export * from './preprocess.ts';
