export { Tokenizer, type EncodeOptions, type DecodeOptions } from './tokenizer.ts';
export { StreamDecoder } from './stream.ts';
export { vocabFromMetadata, TokenType, Attr, type Vocab } from './vocab.ts';
export { preTokenize, preTokenizerFor, type PreTokenizer } from './pretokenize.ts';
export { trainBPE, DEFAULT_SPECIAL_TOKENS, type TrainBPEOptions } from './train.ts';
export {
  renderChatTemplate,
  DEFAULT_CHAT_TEMPLATE,
  IMAGE_PLACEHOLDER,
  type ChatMessage,
  type ChatContentPart,
  type ChatTemplateOptions,
} from './chat-template.ts';
