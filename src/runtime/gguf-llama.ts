/**
 * GGUF ↔ llama model: the one mapping between llama.cpp's `llama` files and vista's `Llama`.
 * Tensor names are identical (module fields mirror them), so loading is a strict name lookup.
 */
import { ModelFormatError } from '../errors.ts';
import {
  getNumber, getString, getU32, hasKey, findTensor, type GGUFFile,
} from '../formats/gguf.ts';
import { ggufTensorToTensor, type ToTensorOptions } from '../formats/dequant.ts';
import { Llama, type LlamaConfig } from '../models/llama.ts';
import { withoutInit, type Tensor } from '../tensor/tensor.ts';

/** Read the llama hyper-parameters of an LM file (any integer width accepted). */
export function llamaConfigFromGGUF(f: GGUFFile): LlamaConfig {
  const arch = getString(f, 'general.architecture');
  if (arch !== 'llama')
    throw new ModelFormatError(`expected an LM file with general.architecture = llama, got '${arch}'` +
      (arch === 'clip' ? ' (this looks like an mmproj file: pass it with --mmproj)' : ''));
  const k = (name: string) => `llama.${name}`;
  const tokens = hasKey(f, 'tokenizer.ggml.tokens') ? (f.metadata['tokenizer.ggml.tokens'] as unknown[]).length : undefined;
  const embd = findTensor(f, 'token_embd.weight');
  const vocab = hasKey(f, k('vocab_size')) ? getU32(f, k('vocab_size')) : tokens ?? embd?.shape[0];
  if (!vocab) throw new ModelFormatError('cannot tell the vocabulary size (no llama.vocab_size, tokenizer.ggml.tokens or token_embd.weight)');
  const H = getU32(f, k('attention.head_count'));
  const E = getU32(f, k('embedding_length'));
  return {
    vocab_size: vocab,
    context_length: getU32(f, k('context_length'), 2048),
    embedding_length: E,
    block_count: getU32(f, k('block_count')),
    feed_forward_length: getU32(f, k('feed_forward_length')),
    'attention.head_count': H,
    'attention.head_count_kv': getU32(f, k('attention.head_count_kv'), H),
    'attention.layer_norm_rms_epsilon': getNumber(f, k('attention.layer_norm_rms_epsilon'), 1e-5),
    'rope.freq_base': getNumber(f, k('rope.freq_base'), 10000),
    'rope.dimension_count': getU32(f, k('rope.dimension_count'), E / H),
    tied_embeddings: !findTensor(f, 'output.weight'),
  };
}

/**
 * Build a `Llama` from an LM file. Weights keep their storage type (F32/F16/BF16/Q8_0/Q4_0; other GGUF
 * types are dequantized). Throws ModelFormatError listing every missing, unexpected or mis-shaped tensor.
 */
export function loadLlamaGGUF(f: GGUFFile, read?: ToTensorOptions['read']): Llama {
  const config = llamaConfigFromGGUF(f);
  const model = withoutInit(() => new Llama(config));
  const tensors = new Map<string, Tensor>();
  for (const info of f.tensors) {
    if (info.name === 'rope_freqs.weight') throw new ModelFormatError('rope_freqs.weight (llama-3 RoPE scaling) is not supported yet');
    tensors.set(info.name, ggufTensorToTensor(f, info, { read }));
  }
  model.loadParameters(tensors);
  return model;
}
