/**
 * vista — vision-language models in TypeScript.
 *
 * @example
 * import { VisionLanguageModel } from 'vista';
 * const model = await VisionLanguageModel.load({ model: 'lm.gguf', mmproj: 'mmproj.gguf' });
 * const { text } = await model.complete([
 *   { role: 'user', content: [{ type: 'image', image: 'photo.png' }, { type: 'text', text: 'How many red objects are there?' }] },
 * ]);
 */
export { VisionLanguageModel, type Message, type ContentPart, type ImageInput, type ChatOptions, type PreparedPrompt, type RuntimeCacheOptions } from './runtime/vlm.ts';
export { generate, greedyTokens, type GenerateOptions, type GenerationEvent, type GenerationStats, type FinishReason } from './runtime/generate.ts';
export { Sampler, type SamplerOptions } from './runtime/sampler.ts';
export { loadLlamaGGUF, llamaConfigFromGGUF } from './runtime/gguf-llama.ts';
export { loadVlmGGUF, llamaToGGUF, mmprojToGGUF } from './runtime/gguf-vlm.ts';
export { llamaToHFSafetensors, loadHFSafetensors } from './runtime/hf-llama.ts';
export { initBackend, type BackendName, type BackendOptions } from './backend/index.ts';
export * as tensor from './tensor/index.ts';
export { Llama, type LlamaConfig } from './models/llama.ts';
export { VisionTower, type VisionConfig } from './models/vit.ts';
export { Projector, type ProjectorConfig } from './models/projector.ts';
export { Llava, type VlmConfig } from './models/llava.ts';
export { readGGUF, writeGGUF } from './formats/gguf.ts';
export { readSafetensors, writeSafetensors } from './formats/safetensors.ts';
export { Tokenizer } from './tokenizer/index.ts';
export { decodeImage } from './image/index.ts';
export * from './errors.ts';
