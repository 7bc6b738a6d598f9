export { Tokenizer, type EncodeOptions, type DecodeOptions } from './tokenizer.ts';
export { StreamDecoder } from './stream.ts';
export { vocabFromMetadata, TokenType, Attr, type Vocab } from './vocab.ts';
export { preTokenize, preTokenizerFor, type PreTokenizer } from './pretokenize.ts';
