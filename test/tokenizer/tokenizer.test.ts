import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError, ModelFormatError } from '../../src/errors.ts';
import { Tokenizer, preTokenize, preTokenizerFor, trainBPE } from '../../src/tokenizer/index.ts';
import { conformanceStrings, trainingCorpus } from '../fixtures/tokenizer/gen-strings.ts';
import { BPE_MODEL, SPM_MODEL, ggufMeta, loadTokenizer, readJSON } from './helpers.ts';

const spm = loadTokenizer(SPM_MODEL);
const bpe = loadTokenizer(BPE_MODEL);
const strings = [...readJSON<string[]>('/work/shared/fixtures/llama-tiny/strings.json'), ...conformanceStrings(11, 1000)];

describe('round trips', () => {
  it('SPM: decode(encode(s)) === s (the space prefix added by encode is removed by decode)', () => {
    // A literal U+2581 in the input is indistinguishable from an escaped space: it decodes to ' ' (as llama.cpp).
    const plain = strings.filter((s) => !s.includes('\u2581'));
    assert.ok(plain.length > 1000);
    assert.deepEqual(plain.filter((s) => spm.decode(spm.encode(s)) !== s), []);
    assert.equal(spm.decode(spm.encode('a\u2581b')), 'a b');
  });
  it('BPE: decode(encode(s)) === s exactly, with and without special parsing', () => {
    assert.deepEqual(strings.filter((s) => bpe.decode(bpe.encode(s)) !== s), []);
    assert.deepEqual(strings.filter((s) => bpe.decode(bpe.encode(s, { parseSpecial: true })) !== s), []);
  });
  it('lone surrogates become U+FFFD, as in llama.cpp', () => {
    assert.equal(bpe.decode(bpe.encode('a\ud800b')), 'a\ufffdb');
  });
});

describe('streaming decoder', () => {
  it('never splits a character: 4 byte tokens of an emoji give one delta', () => {
    const ids = spm.encode('😀', {});
    assert.ok(ids.length >= 4, `expected byte fallback, got ${ids}`);
    const d = spm.streamDecoder();
    const deltas = ids.map((id) => d.push(id));
    assert.deepEqual(deltas.slice(1, -1).filter((x) => x !== ''), []);
    assert.equal(deltas.join('') + d.flush(), '😀');
  });
  it('concatenated deltas equal decode(ids), and no delta holds a replacement character', () => {
    for (const tok of [spm, bpe]) {
      for (const s of strings) {
        const ids = tok.encode(s, { parseSpecial: true });
        const d = tok.streamDecoder();
        const deltas = ids.map((id) => d.push(id));
        const rest = d.flush();
        assert.equal(deltas.join('') + rest, tok.decode(ids), JSON.stringify(s));
        if (!s.includes('\ufffd')) assert.ok(!deltas.some((x) => x.includes('\ufffd')), JSON.stringify(s));
      }
    }
  });
  it('BPE tokens that cut a character in the middle are buffered', () => {
    const ids = bpe.encode('中文🙂');
    const d = bpe.streamDecoder();
    let text = '';
    for (const id of ids) {
      const delta = d.push(id);
      assert.ok(!delta.includes('\ufffd'));
      text += delta;
    }
    assert.equal(text + d.flush(), '中文🙂');
  });
  it('flush() releases an incomplete tail as U+FFFD', () => {
    const d = spm.streamDecoder();
    assert.equal(d.push(spm.tokenId('<0xE4>')!), '');
    assert.equal(d.flush(), '\ufffd');
  });
});

describe('special tokens', () => {
  it('CONTROL tokens match only with parseSpecial; longest first', () => {
    const im = bpe.tokenId('<|im_start|>')!;
    assert.deepEqual(bpe.encode('<|im_start|>', { parseSpecial: true }), [im]);
    assert.ok(bpe.encode('<|im_start|>').length > 1);
    assert.deepEqual(bpe.encode('<image><image>', { parseSpecial: true }), [bpe.tokenId('<image>'), bpe.tokenId('<image>')]);
  });
  it('USER_DEFINED tokens are always matched', () => {
    const meta = ggufMeta(BPE_MODEL);
    const types = [...(meta['tokenizer.ggml.token_type'] as number[])];
    const img = bpe.tokenId('<image>')!;
    types[img] = 4;
    const tok = Tokenizer.fromGGUFMetadata({ ...meta, 'tokenizer.ggml.token_type': types });
    assert.ok(tok.encode('a<image>b').includes(img));
    assert.equal(tok.decode([img], { skipSpecial: true }), '<image>');
  });
  it('SPM: text after a special token gets its own space prefix', () => {
    const bos = spm.bosId;
    const ids = spm.encode('hi<s>hi', { parseSpecial: true });
    const i = ids.indexOf(bos);
    assert.deepEqual(ids.slice(i + 1), spm.encode('hi'));
  });
  it('addBos follows the vocabulary flag; skipSpecial hides control tokens', () => {
    assert.equal(spm.encode('x', { addBos: true })[0], spm.bosId);
    assert.equal(bpe.encode('x', { addBos: true })[0], bpe.bosId); // trainer sets add_bos when <s> exists
    assert.equal(bpe.decode([bpe.bosId, ...bpe.encode('hi')], { skipSpecial: true }), 'hi');
    assert.equal(bpe.decode([bpe.bosId, ...bpe.encode('hi')]), '<s>hi');
    assert.ok(bpe.eogIds.has(bpe.tokenId('<|im_end|>')!));
    assert.ok(bpe.eogIds.has(bpe.eosId));
  });
});

describe('pre-tokenizers', () => {
  const split = (pre: string, s: string) => preTokenize(s, preTokenizerFor(pre).regexes);
  it('llama3 groups digits by 3 and keeps contractions', () => {
    assert.deepEqual(split('llama-bpe', "I'M 12345 ok!!\n\n  x"), ['I', "'M", ' ', '123', '45', ' ok', '!!\n\n', ' ', ' x']);
  });
  it('qwen2 splits every digit; smollm too, with GPT-2 words', () => {
    assert.deepEqual(split('qwen2', 'a123'), ['a', '1', '2', '3']);
    assert.deepEqual(split('smollm', "we're 42  go"), ['we', "'re", ' ', '4', '2', ' ', ' go']);
  });
  it('unknown pre names are a ModelFormatError', () => {
    assert.throws(() => preTokenizerFor('nope'), ModelFormatError);
  });
});

describe('metadata and input errors', () => {
  const meta = ggufMeta(BPE_MODEL);
  it('bad vocabulary metadata → ModelFormatError', () => {
    assert.throws(() => Tokenizer.fromGGUFMetadata({}), ModelFormatError);
    assert.throws(() => Tokenizer.fromGGUFMetadata({ ...meta, 'tokenizer.ggml.model': 'bert' }), ModelFormatError);
    assert.throws(() => Tokenizer.fromGGUFMetadata({ ...meta, 'tokenizer.ggml.merges': undefined }), ModelFormatError);
    assert.throws(() => Tokenizer.fromGGUFMetadata({ ...meta, 'tokenizer.ggml.tokens': [1, 2] }), ModelFormatError);
    assert.throws(() => Tokenizer.fromGGUFMetadata({ ...meta, 'tokenizer.ggml.token_type': [1] }), ModelFormatError);
  });
  it('bad ids → InputError', () => {
    assert.throws(() => bpe.decode([bpe.vocabSize]), InputError);
    assert.throws(() => bpe.tokenToPiece(-1), InputError);
    assert.throws(() => bpe.encode(42 as unknown as string), InputError);
  });
  it('tokenId / tokenToPiece / vocabSize', () => {
    assert.equal(spm.vocabSize, 2048);
    assert.equal(spm.tokenToPiece(spm.tokenId('<0x41>')!), 'A');
    assert.equal(bpe.tokenToPiece(bpe.tokenId('Ġthe')!), ' the');
    assert.equal(spm.tokenToPiece(spm.bosId, false), '');
  });
});

describe('trainBPE', () => {
  const corpus = trainingCorpus(5, 300);
  const opts = { vocabSize: 400, specialTokens: ['<s>', '</s>', '<image>', '<|im_start|>', '<|im_end|>'] };
  it('is deterministic and lays out specials, 256 bytes, merges', () => {
    const a = trainBPE(corpus, opts);
    assert.deepEqual(a, trainBPE(corpus, opts));
    const tokens = a['tokenizer.ggml.tokens'] as string[];
    assert.equal(tokens.length, 400);
    assert.deepEqual(tokens.slice(0, 5), opts.specialTokens);
    assert.equal(tokens[5 + 0x20], 'Ġ');
    assert.equal(a['tokenizer.ggml.bos_token_id'], 0);
    assert.equal(a['tokenizer.ggml.eos_token_id'], 1);
    assert.equal((a['tokenizer.ggml.merges'] as string[]).length >= 400 - 261, true);
  });
  it('trained vocabularies round-trip any text and compress the training text', () => {
    const tok = Tokenizer.fromGGUFMetadata(trainBPE(corpus, opts));
    for (const s of [...corpus.slice(0, 50), ...conformanceStrings(3, 100)]) assert.equal(tok.decode(tok.encode(s)), s);
    const bytes = corpus.reduce((n, s) => n + Buffer.byteLength(s), 0);
    const ids = corpus.reduce((n, s) => n + tok.encode(s).length, 0);
    assert.ok(ids < bytes * 0.6, `${ids} tokens for ${bytes} bytes`);
  });
  it('rejects a vocabulary too small for the bytes', () => {
    assert.throws(() => trainBPE(corpus, { vocabSize: 100 }));
  });
});

describe('SPM without byte tokens', () => {
  const base = {
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': ['<unk>', '<s>', '</s>', '▁', 'a', 'b', '▁a'],
    'tokenizer.ggml.scores': [0, 0, 0, -1, -2, -2, -0.5],
    'tokenizer.ggml.token_type': [2, 3, 3, 1, 1, 1, 1],
  };
  it('merges by score and falls back to UNK for characters with no byte token', () => {
    const tok = Tokenizer.fromGGUFMetadata(base);
    assert.deepEqual(tok.encode('ab'), [6, 5]);
    assert.deepEqual(tok.encode('aé'), [6, 0, 0]);
  });
  it('an out-of-range unknown_token_id is ignored, as in llama.cpp', () => {
    const tok = Tokenizer.fromGGUFMetadata({ ...base, 'tokenizer.ggml.unknown_token_id': 99, 'tokenizer.ggml.token_type': [1, 3, 3, 1, 1, 1, 1] });
    assert.deepEqual(tok.encode('ab'), [6, 5]);
    assert.equal(tok.vocab.unkId, 0); // out-of-range override is ignored, default 0 stays
  });
});
