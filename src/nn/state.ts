/**
 * Named tensor sets (model parameters, optimiser buffers) to and from safetensors bytes. Pure over bytes:
 * write files with `platform/fs.writeFileAtomic`, read them with `readFileChecked`.
 *
 * Loading is strict: every missing, unexpected, wrong-shaped and wrong-dtype tensor is collected and
 * thrown once as a ModelFormatError listing them all; nothing is written unless everything matches.
 */
import { ModelFormatError } from '../errors.ts';
import {
  readSafetensors, safetensorsToTensor, writeSafetensors, type SafetensorsDType, type SafetensorsWriteTensor,
} from '../formats/safetensors.ts';
import type { DType } from '../tensor/dtype.ts';
import { copyTensorsStrict, type StoredTensorInfo } from '../tensor/optim.ts';
import type { Tensor } from '../tensor/tensor.ts';

const STORED: Partial<Record<DType, SafetensorsDType>> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
const FLOAT: ReadonlySet<SafetensorsDType> = new Set(['F32', 'F16', 'BF16']);

/** A named tensor set: a plain record, or the Map of `Module.namedParameters()`. */
export type NamedTensors = Readonly<Record<string, Tensor>> | ReadonlyMap<string, Tensor>;

const asRecord = (t: NamedTensors): Readonly<Record<string, Tensor>> =>
  t instanceof Map ? Object.fromEntries(t) : t as Readonly<Record<string, Tensor>>;

/**
 * Serialise `tensors` (f32, f16 or bf16; any strides) in name order, with optional string metadata.
 * @example await writeFileAtomic(path, saveState(model.namedParameters(), { step: '1200' }));
 */
export function saveState(named: NamedTensors, metadata?: Record<string, string>): Uint8Array {
  const tensors = asRecord(named);
  const entries: SafetensorsWriteTensor[] = [];
  const bad: string[] = [];
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name]!;
    const dtype = STORED[t.dtype];
    if (!dtype) {
      bad.push(`${name} (${t.dtype})`);
      continue;
    }
    // f32 values in logical order; safetensors is little-endian, as are the typed arrays on every
    // platform Node runs on
    const data = t.dtype === 'f32' ? new Uint8Array(t.toArray().buffer) : t.bytes;
    entries.push({ name, dtype, shape: [...t.shape], data });
  }
  if (bad.length) throw new ModelFormatError(`safetensors cannot store block-quantized tensors: ${bad.join(', ')}`);
  return writeSafetensors(entries, metadata);
}

/** The tensors (copies; F16/BF16 kept as such) and metadata of safetensors bytes. */
export function readState(bytes: Uint8Array): { tensors: Record<string, Tensor | StoredTensorInfo>; metadata: Record<string, string> } {
  const file = readSafetensors(bytes);
  const tensors: Record<string, Tensor | StoredTensorInfo> = {};
  for (const info of file.tensors)
    tensors[info.name] = FLOAT.has(info.dtype) ? safetensorsToTensor(file, info) : { shape: info.shape, dtype: info.dtype };
  return { tensors, metadata: file.metadata };
}

/**
 * Load safetensors bytes into `into` in place (parameters keep their identity, storage and grad state).
 * f32 targets accept F32, F16 and BF16 data; f16/bf16 targets need their own dtype. Returns the metadata.
 * @example loadState(model.namedParameters(), await readFileChecked(path));
 */
export function loadState(into: NamedTensors, bytes: Uint8Array, what = 'checkpoint'): Record<string, string> {
  const { tensors, metadata } = readState(bytes);
  copyTensorsStrict(asRecord(into), tensors, what);
  return metadata;
}
