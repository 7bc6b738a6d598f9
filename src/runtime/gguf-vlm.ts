/**
 * vista VLM ↔ GGUF, as llama.cpp expects it: an LM file (`general.architecture = llama`, llama.cpp
 * tensor names, RoPE on adjacent pairs) and an mmproj file (`general.architecture = clip`, `v.*` / `mm.*`
 * tensors, `clip.vision.*` keys).
 *
 * Layout choice for vista's own towers (written down here, see ../shared/specs/gguf-multimodal.md §5):
 * llama.cpp's `mlp` (LLaVA) graph puts the class token last and runs one block fewer than stored, so a
 * vista tower exported as `mlp` would not compute the same thing there. vista's own models therefore use
 * the **`idefics3` layout** — no class token, patch-embedding bias, no pre-LN, every block runs, post-LN,
 * tanh-GELU, pixel-shuffle by s then `mm.model.fc` without bias — which llama.cpp's SigLIP graph computes
 * exactly. `mlp` files are still written and read (LLaVA-1.5 style) for exchange; keys under `vista.*`
 * record what llama.cpp has no key for (class token, exact-erf GELU) so vista reloads them bit-exactly.
 */
import { ModelFormatError } from '../errors.ts';
import {
  GGUFValueType, findTensor, getBool, getNumber, getNumberArray, getString, getU32, hasKey,
  type GGUFFile, type GGUFTypeInfo, type GGUFValue, type GGUFWriteInput, type GGUFWriteTensor,
} from '../formats/gguf.ts';
import { dtypeToGGML } from '../formats/ggml-types.ts';
import { ggufTensorToTensor, type ToTensorOptions } from '../formats/dequant.ts';
import type { Llama } from '../models/llama.ts';
import { Llava, type VlmConfig } from '../models/llava.ts';
import type { VisionActivation, VisionConfig } from '../models/vit.ts';
import type { ProjectorConfig } from '../models/projector.ts';
import { quantize, dequantize } from '../tensor/quant.ts';
import { withoutInit, type Tensor } from '../tensor/tensor.ts';
import type { DType } from '../tensor/dtype.ts';
import { llamaConfigFromGGUF } from './gguf-llama.ts';

const F32 = { type: GGUFValueType.FLOAT32 };
const U32 = { type: GGUFValueType.UINT32 };
const BOOL = { type: GGUFValueType.BOOL };
const STR = { type: GGUFValueType.STRING };

/** Value types of the tokenizer keys llama.cpp reads with strict accessors. */
const TOKENIZER_TYPES: Record<string, GGUFTypeInfo> = {
  'tokenizer.ggml.model': STR,
  'tokenizer.ggml.pre': STR,
  'tokenizer.ggml.tokens': { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.STRING },
  'tokenizer.ggml.scores': { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.FLOAT32 },
  'tokenizer.ggml.token_type': { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.INT32 },
  'tokenizer.ggml.merges': { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.STRING },
  'tokenizer.ggml.bos_token_id': U32,
  'tokenizer.ggml.eos_token_id': U32,
  'tokenizer.ggml.unknown_token_id': U32,
  'tokenizer.ggml.padding_token_id': U32,
  'tokenizer.ggml.eot_token_id': U32,
  'tokenizer.ggml.add_bos_token': BOOL,
  'tokenizer.ggml.add_eos_token': BOOL,
  'tokenizer.ggml.add_space_prefix': BOOL,
  'tokenizer.chat_template': STR,
};

export interface ExportOptions {
  /** storage type for 2-D weights whose rows fit its blocks (norms, biases, embeddings of odd width stay f32) */
  type?: DType;
  name?: string;
}

function weightTensor(name: string, t: Tensor, type: DType): GGUFWriteTensor {
  let w = t;
  const rows2d = t.ndim === 2 && name.endsWith('.weight') && !name.includes('norm') && !name.includes('position_embd');
  const target: DType = rows2d && t.shape[1]! % (type === 'f32' || type === 'f16' || type === 'bf16' ? 1 : 32) === 0 ? type : 'f32';
  if (w.dtype !== target) w = target === 'f32' ? dequantize(w) : quantize(w.dtype === 'f32' ? w : dequantize(w), target);
  const data = w.dtype === 'f32' ? new Uint8Array(w.toArray().buffer) : w.bytes.slice();
  return { name, shape: [...t.shape], type: dtypeToGGML(w.dtype), data };
}

/** The LM file: llama metadata, tokenizer metadata (as given) and every LM tensor by its llama.cpp name. */
export function llamaToGGUF(lm: Llama, tokenizer: Record<string, GGUFValue>, opts: ExportOptions = {}): GGUFWriteInput {
  const c = lm.config;
  const metadata: Record<string, GGUFValue> = {
    'general.architecture': 'llama',
    'general.type': 'model',
    'general.name': opts.name ?? 'vista',
    'llama.vocab_size': c.vocab_size,
    'llama.context_length': c.context_length,
    'llama.embedding_length': c.embedding_length,
    'llama.block_count': c.block_count,
    'llama.feed_forward_length': c.feed_forward_length,
    'llama.attention.head_count': c['attention.head_count'],
    'llama.attention.head_count_kv': c['attention.head_count_kv'],
    'llama.attention.layer_norm_rms_epsilon': c['attention.layer_norm_rms_epsilon'],
    'llama.rope.freq_base': c['rope.freq_base'],
    'llama.rope.dimension_count': c['rope.dimension_count'] ?? lm.headDim,
    ...tokenizer,
  };
  const metadataTypes: Record<string, GGUFTypeInfo> = {
    ...TOKENIZER_TYPES,
    'llama.attention.layer_norm_rms_epsilon': F32,
    'llama.rope.freq_base': F32,
  };
  for (const k of Object.keys(metadata)) if (k.startsWith('llama.') && !metadataTypes[k]) metadataTypes[k] = U32;
  const type = opts.type ?? 'f32';
  const tensors = [...lm.namedParameters()].map(([name, t]) => weightTensor(name, t, type));
  return { metadata, metadataTypes, tensors };
}

/** The mmproj file: clip metadata and the `v.*` / `mm.*` tensors. */
export function mmprojToGGUF(vlm: Llava, opts: ExportOptions = {}): GGUFWriteInput {
  const v = vlm.config.vision;
  const p = vlm.config.projector;
  const metadata: Record<string, GGUFValue> = {
    'general.architecture': 'clip',
    'general.type': 'mmproj',
    'general.name': opts.name ?? 'vista',
    'clip.projector_type': p.projector_type,
    'clip.has_vision_encoder': true,
    'clip.has_audio_encoder': false,
    'clip.use_gelu': v.activation === 'gelu_tanh' || v.activation === 'gelu_erf',
    'clip.use_silu': v.activation === 'silu',
    'clip.vision.image_size': v.image_size,
    'clip.vision.patch_size': v.patch_size,
    'clip.vision.embedding_length': v.embedding_length,
    'clip.vision.feed_forward_length': v.feed_forward_length,
    'clip.vision.block_count': v.block_count,
    'clip.vision.projection_dim': p.output_dim,
    'clip.vision.attention.head_count': v['attention.head_count'],
    'clip.vision.attention.layer_norm_epsilon': v['attention.layer_norm_epsilon'],
    'clip.vision.image_mean': [...v.image_mean],
    'clip.vision.image_std': [...v.image_std],
    'vista.vision.activation': v.activation,
    'vista.vision.class_token': v.class_token,
    'vista.vision.feature_layer': v.feature_layer ?? v.block_count,
    'vista.projector.activation': p.activation ?? 'gelu_erf',
  };
  if (p.projector_type === 'idefics3') metadata['clip.vision.projector.scale_factor'] = p.scale_factor ?? 2;
  const metadataTypes: Record<string, GGUFTypeInfo> = {
    'clip.vision.attention.layer_norm_epsilon': F32,
    'clip.vision.image_mean': { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.FLOAT32 },
    'clip.vision.image_std': { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.FLOAT32 },
  };
  for (const [k, val] of Object.entries(metadata)) if (typeof val === 'number' && !metadataTypes[k]) metadataTypes[k] = U32;
  const type = opts.type ?? 'f32';
  const tensors: GGUFWriteTensor[] = [];
  for (const [name, t] of vlm.v.namedParameters('v')) {
    // llama.cpp reads the patch embedding as F16/F32 conv weights only
    tensors.push(weightTensor(name, t, name === 'v.patch_embd.weight' ? (type === 'f32' ? 'f32' : 'f16') : type));
  }
  for (const [name, t] of vlm.mm.namedParameters('mm')) tensors.push(weightTensor(name, t, type));
  return { metadata, metadataTypes, tensors };
}

function visionConfigFromGGUF(f: GGUFFile): { vision: VisionConfig; projector: Omit<ProjectorConfig, 'output_dim'> & { output_dim: number } } {
  const arch = getString(f, 'general.architecture');
  if (arch !== 'clip')
    throw new ModelFormatError(`expected an mmproj file with general.architecture = clip, got '${arch}'` +
      (arch === 'llama' ? ' (this looks like an LM file: pass it with --model)' : ''));
  if (hasKey(f, 'clip.has_vision_encoder') && !getBool(f, 'clip.has_vision_encoder'))
    throw new ModelFormatError('mmproj file has no vision encoder (clip.has_vision_encoder = false)');
  const type = getString(f, 'clip.projector_type', hasKey(f, 'clip.vision.projector_type') ? getString(f, 'clip.vision.projector_type') : 'mlp');
  if (type !== 'mlp' && type !== 'idefics3') throw new ModelFormatError(`projector type '${type}' is not supported yet (supported: mlp, idefics3)`);
  const k = (n: string) => `clip.vision.${n}`;
  const useGelu = getBool(f, 'clip.use_gelu', false);
  const useSilu = getBool(f, 'clip.use_silu', false);
  if (useGelu && useSilu) throw new ModelFormatError('clip.use_gelu and clip.use_silu are both true');
  const activation = (hasKey(f, 'vista.vision.activation') ? getString(f, 'vista.vision.activation')
    : useGelu ? 'gelu_tanh' : useSilu ? 'silu' : 'quick_gelu') as VisionActivation;
  const mean = getNumberArray(f, k('image_mean'));
  const std = getNumberArray(f, k('image_std'));
  if (mean.length !== 3 || std.length !== 3) throw new ModelFormatError('clip.vision.image_mean / image_std must have 3 values');
  const blocks = getU32(f, k('block_count'));
  const E = getU32(f, k('embedding_length'));
  const vision: VisionConfig = {
    image_size: getU32(f, k('image_size')),
    patch_size: getU32(f, k('patch_size')),
    embedding_length: E,
    feed_forward_length: getU32(f, k('feed_forward_length')),
    block_count: blocks,
    'attention.head_count': getU32(f, k('attention.head_count')),
    'attention.layer_norm_epsilon': getNumber(f, k('attention.layer_norm_epsilon'), 1e-5),
    image_mean: mean as unknown as [number, number, number],
    image_std: std as unknown as [number, number, number],
    activation,
    class_token: !!findTensor(f, 'v.class_embd'),
    patch_bias: !!findTensor(f, 'v.patch_embd.bias'),
    pre_ln: !!findTensor(f, 'v.pre_ln.weight'),
    post_ln: !!findTensor(f, 'v.post_ln.weight'),
    feature_layer: hasKey(f, 'vista.vision.feature_layer') ? getU32(f, 'vista.vision.feature_layer') : type === 'mlp' ? blocks - 1 : blocks,
  };
  if (type === 'mlp') {
    const mm0 = findTensor(f, 'mm.0.weight');
    const mm2 = findTensor(f, 'mm.2.weight');
    if (!mm0 || !mm2) throw new ModelFormatError('mlp projector needs mm.0.weight and mm.2.weight');
    return {
      vision,
      projector: {
        projector_type: 'mlp', input_dim: E, hidden_dim: mm0.shape[0]!, output_dim: mm2.shape[0]!,
        activation: (hasKey(f, 'vista.projector.activation') ? getString(f, 'vista.projector.activation') : 'gelu_tanh') as VisionActivation,
      },
    };
  }
  const fc = findTensor(f, 'mm.model.fc.weight');
  if (!fc) throw new ModelFormatError('idefics3 projector needs mm.model.fc.weight');
  return {
    vision,
    projector: { projector_type: 'idefics3', input_dim: E, output_dim: fc.shape[0]!, scale_factor: getU32(f, 'clip.vision.projector.scale_factor', 2) },
  };
}

/** Tensors of a GGUF file by name, with the legacy swapped-FFN names of old LLaVA converters repaired. */
function tensorsOf(f: GGUFFile, E?: number, read?: ToTensorOptions['read']): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const info of f.tensors) out.set(info.name, ggufTensorToTensor(f, info, { read }));
  if (E !== undefined)
    for (const [name, t] of [...out]) {
      const m = /^v\.blk\.(\d+)\.ffn_down\.weight$/.exec(name);
      if (!m || t.shape[1] !== E || t.shape[0] === E) continue;
      // ffn_down must map F → E (PyTorch [E, F]); a [F, E] tensor here is the legacy swap (spec §4.3)
      const b = `v.blk.${m[1]}`;
      const up = out.get(`${b}.ffn_up.weight`)!;
      out.set(`${b}.ffn_up.weight`, t);
      out.set(`${b}.ffn_down.weight`, up);
      const ub = out.get(`${b}.ffn_up.bias`);
      const db = out.get(`${b}.ffn_down.bias`);
      if (ub && db) {
        out.set(`${b}.ffn_up.bias`, db);
        out.set(`${b}.ffn_down.bias`, ub);
      }
    }
  return out;
}

/** Build a VLM from an LM file and its mmproj file; checks that the projector output fits the LM. */
export function loadVlmGGUF(lmFile: GGUFFile, mmprojFile: GGUFFile, read?: { lm?: ToTensorOptions['read']; mmproj?: ToTensorOptions['read'] }): Llava {
  const lm = llamaConfigFromGGUF(lmFile);
  const { vision, projector } = visionConfigFromGGUF(mmprojFile);
  if (projector.output_dim !== lm.embedding_length)
    throw new ModelFormatError(`mmproj output width ${projector.output_dim} ≠ LM width ${lm.embedding_length}: wrong mmproj for this model?`);
  const config: VlmConfig = { vision, projector, lm };
  const vlm = withoutInit(() => new Llava(config));
  vlm.lm.loadParameters(tensorsOf(lmFile, undefined, read?.lm));
  const vt = tensorsOf(mmprojFile, vision.embedding_length, read?.mmproj);
  vlm.v.loadParameters(vt, { prefix: 'v' });
  vlm.mm.loadParameters(vt, { prefix: 'mm' });
  const unexpected = [...vt.keys()].filter((n) => !n.startsWith('v.') && !n.startsWith('mm.'));
  if (unexpected.length) throw new ModelFormatError(`mmproj has unexpected tensors: ${unexpected.join(', ')}`);
  return vlm;
}

