/**
 * Byte-level BPE pre-tokenizers, as llama.cpp runs them (src/unicode.cpp `unicode_regex_split`).
 *
 * Each `tokenizer.ggml.pre` name selects a list of regexes; each regex splits the pieces left by the
 * previous one. The common GPT-2 / Llama-3 / Qwen2 patterns run as hand-written scanners over llama.cpp's
 * own code point categories (llama.cpp does the same), other patterns run as JS regexes over a
 * "collapsed" text in which each non-ASCII code point is replaced by one stand-in character per
 * category — again llama.cpp's trick — so `\p{L}` means what it means to llama.cpp, not to this ICU.
 */
import { ModelFormatError } from '../errors.ts';
import {
  CPT_CATEGORIES,
  CPT_LETTER,
  CPT_MARK,
  CPT_NUMBER,
  CPT_PUNCTUATION,
  CPT_SYMBOL,
  CPT_WHITESPACE,
  codePoints,
  cptFlags,
} from './unicode.ts';

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Regex lists per pre-tokenizer (llama-vocab.cpp `llm_tokenizer_bpe`), keyed by llama.cpp's pre type. */
const PRE_REGEXES: Record<string, readonly string[]> = {
  default: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'],
  gpt2: [GPT2],
  llama3: [LLAMA3],
  qwen2: [QWEN2],
  smollm: ['\\p{N}', GPT2],
  falcon: ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]'],
};

/** `tokenizer.ggml.pre` value → pre type, and the per-type flags llama.cpp sets with it. */
const PRE_NAMES: Record<string, { type: string; ignoreMerges?: boolean; addBos?: boolean; cleanSpaces?: boolean }> = {
  default: { type: 'default' },
  llama3: { type: 'llama3', ignoreMerges: true, addBos: true },
  'llama-v3': { type: 'llama3', ignoreMerges: true, addBos: true },
  'llama-bpe': { type: 'llama3', ignoreMerges: true, addBos: true },
  'falcon3': { type: 'llama3', ignoreMerges: true, addBos: true },
  pixtral: { type: 'llama3', ignoreMerges: true, addBos: true },
  dbrx: { type: 'llama3' },
  'smaug-bpe': { type: 'llama3' },
  falcon: { type: 'falcon' },
  'gpt-2': { type: 'gpt2' },
  'phi-2': { type: 'gpt2' },
  mpt: { type: 'gpt2' },
  olmo: { type: 'gpt2' },
  jais: { type: 'gpt2' },
  qwen2: { type: 'qwen2', cleanSpaces: false },
  'deepseek-r1-qwen': { type: 'qwen2', cleanSpaces: false },
  stablelm2: { type: 'qwen2' },
  smollm: { type: 'smollm', cleanSpaces: false },
  starcoder: { type: 'smollm' },
  refact: { type: 'smollm' },
  'command-r': { type: 'smollm', cleanSpaces: false },
  codeshell: { type: 'smollm' },
  exaone: { type: 'smollm' },
  minerva: { type: 'smollm' },
};

export interface PreTokenizer {
  readonly name: string;
  readonly type: string;
  readonly regexes: readonly string[];
  readonly ignoreMerges: boolean;
  /** Overrides the gpt2 default add_bos=false when set. */
  readonly addBos: boolean | undefined;
  readonly cleanSpaces: boolean;
}

/** The pre-tokenizer for a `tokenizer.ggml.pre` value (missing → `default`, as llama.cpp). */
export function preTokenizerFor(pre: string | undefined): PreTokenizer {
  const name = pre ?? 'default';
  const entry = PRE_NAMES[name];
  if (!entry) {
    throw new ModelFormatError(
      `unsupported tokenizer.ggml.pre '${name}' (supported: ${Object.keys(PRE_NAMES).join(', ')})`,
    );
  }
  return {
    name,
    type: entry.type,
    regexes: PRE_REGEXES[entry.type]!,
    ignoreMerges: entry.ignoreMerges ?? false,
    addBos: entry.addBos,
    cleanSpaces: entry.cleanSpaces ?? true,
  };
}

/** Splits `text` into pre-tokens (plain strings, not yet byte-mapped). */
export function preTokenize(text: string, regexes: readonly string[]): string[] {
  const cpts = codePoints(text);
  let offsets = [cpts.length];
  let collapsed: string | undefined;
  for (const re of regexes) {
    if (re === GPT2) offsets = splitGpt2(cpts, offsets);
    else if (re === LLAMA3) offsets = splitLlama3(cpts, offsets, 3);
    else if (re === QWEN2) offsets = splitLlama3(cpts, offsets, 1);
    else if (/\\p\{/.test(re)) offsets = splitRegex(collapsed ??= collapse(cpts), collapseRegex(re), offsets, null);
    else offsets = splitRegex(wideText(cpts), new RegExp(re, 'gu'), offsets, cpts);
  }
  const words: string[] = [];
  let start = 0;
  for (const n of offsets) {
    words.push(String.fromCodePoint(...cpts.slice(start, start + n)));
    start += n;
  }
  return words;
}

// ---- hand-written scanners (unicode.cpp unicode_regex_split_custom_*) -------------------------------

/** What a scanner sees of one segment [ini, end): code points and flags (OUT / 0 outside it), and `token(to)`
 * to emit the piece from the previous cut up to `to` (returns its length). */
interface SegmentCursor {
  cpt(p: number): number;
  flags(p: number): number;
  token(to: number): number;
}

type Scan = (ini: number, end: number, cur: SegmentCursor) => void;

function eachSegment(cpts: number[], offsets: number[], scan: Scan): number[] {
  const out: number[] = [];
  let start = 0;
  for (const n of offsets) {
    const ini = start;
    const end = start + n;
    let prev = ini;
    scan(ini, end, {
      cpt: (p) => (p >= ini && p < end ? cpts[p]! : OUT),
      flags: (p) => (p >= ini && p < end ? cptFlags(cpts[p]!) : 0),
      token(to) {
        const len = to - prev;
        if (len > 0) out.push(len);
        prev = to;
        return len;
      },
    });
    start = end;
  }
  return out;
}

const OUT = -1;
const isLetter = (f: number) => (f & CPT_LETTER) !== 0;
const isNumber = (f: number) => (f & CPT_NUMBER) !== 0;
const isSpace = (f: number) => (f & CPT_WHITESPACE) !== 0;
/** `[^\s\p{L}\p{N}]` — false past the segment end (flags 0). */
const isOther = (f: number) => f !== 0 && (f & (CPT_WHITESPACE | CPT_LETTER | CPT_NUMBER)) === 0;

function contractionLength(cpts: number[], pos: number, end: number, ignoreCase: boolean): number {
  if (cpts[pos] !== 0x27 || pos + 1 >= end) return 0;
  const low = (c: number) => (ignoreCase && c >= 0x41 && c <= 0x5a ? c + 32 : c);
  const n1 = low(cpts[pos + 1]!);
  if (n1 === 0x73 || n1 === 0x74 || n1 === 0x6d || n1 === 0x64) return 2; // s t m d
  if (pos + 2 < end) {
    const n2 = low(cpts[pos + 2]!);
    if ((n1 === 0x72 && n2 === 0x65) || (n1 === 0x76 && n2 === 0x65) || (n1 === 0x6c && n2 === 0x6c)) return 3; // re ve ll
  }
  return 0;
}

function splitGpt2(cpts: number[], offsets: number[]): number[] {
  return eachSegment(cpts, offsets, (ini, end, { cpt, flags, token }) => {
    for (let pos = ini; pos < end; ) {
      const c = cpt(pos);
      const c1 = contractionLength(cpts, pos, end, false);
      if (c1) {
        pos += token(pos + c1);
        continue;
      }
      let f2 = c === 0x20 ? flags(pos + 1) : flags(pos);
      const run = (pred: (f: number) => boolean) => {
        pos += c === 0x20 ? 1 : 0;
        while (pred(f2)) f2 = flags(++pos);
        token(pos);
      };
      if (isLetter(f2)) {
        run(isLetter);
        continue;
      }
      if (isNumber(f2)) {
        run(isNumber);
        continue;
      }
      if (isOther(f2)) {
        run(isOther);
        continue;
      }
      let ws = 0;
      while (isSpace(flags(pos + ws))) ws++;
      if (ws > 1 && cpt(pos + ws) !== OUT) {
        pos += ws - 1; // \s+(?!\S): leave the last space to prefix the next word
        token(pos);
        continue;
      }
      if (ws > 0) {
        pos += ws;
        token(pos);
        continue;
      }
      token(++pos);
    }
  });
}

function splitLlama3(cpts: number[], offsets: number[], maxDigits: number): number[] {
  return eachSegment(cpts, offsets, (ini, end, { cpt, flags, token }) => {
    for (let pos = ini; pos < end; ) {
      const c = cpt(pos);
      const f = flags(pos);
      const c1 = contractionLength(cpts, pos, end, true);
      if (c1) {
        pos += token(pos + c1);
        continue;
      }
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if (!(c === 0x0d || c === 0x0a || isNumber(f)) && (isLetter(f) || isLetter(flags(pos + 1)))) {
        pos++;
        while (isLetter(flags(pos))) pos++;
        token(pos);
        continue;
      }
      // \p{N}{1,maxDigits}
      if (isNumber(f)) {
        let ini2 = pos;
        while (isNumber(flags(pos))) {
          if (++pos - ini2 >= maxDigits) {
            token(pos);
            ini2 = pos;
          }
        }
        token(pos);
        continue;
      }
      // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
      let f2 = c === 0x20 ? flags(pos + 1) : f;
      if (f !== 0 && (f2 & (CPT_WHITESPACE | CPT_LETTER | CPT_NUMBER)) === 0) { // f, not f2: a lone trailing ' ' matches too
        pos += c === 0x20 ? 1 : 0;
        while (isOther(f2)) f2 = flags(++pos);
        let c2 = cpt(pos);
        while (c2 === 0x0d || c2 === 0x0a) c2 = cpt(++pos);
        token(pos);
        continue;
      }
      let ws = 0;
      let lastNewline = 0;
      while (isSpace(flags(pos + ws))) {
        const c2 = cpt(pos + ws);
        if (c2 === 0x0d || c2 === 0x0a) lastNewline = pos + ws + 1;
        ws++;
      }
      if (lastNewline > 0) {
        pos = lastNewline; // \s*[\r\n]+
        token(pos);
        continue;
      }
      if (ws > 1 && cpt(pos + ws) !== OUT) {
        pos += ws - 1;
        token(pos);
        continue;
      }
      if (ws > 0) {
        pos += ws;
        token(pos);
        continue;
      }
      token(++pos);
    }
  });
}

// ---- general regexes (unicode.cpp unicode_regex_split_stl) ------------------------------------------

// Stand-ins for non-ASCII code points of each category (llama.cpp uses the bytes 0xD0..0xD5).
const STAND_IN: Record<number, string> = {
  [CPT_NUMBER]: '\u00d1',
  [CPT_LETTER]: '\u00d2',
  [CPT_PUNCTUATION]: '\u00d3',
  [CPT_MARK]: '\u00d4',
  [CPT_SYMBOL]: '\u00d5',
};
const OTHER_STAND_IN = '\u00d0';
const CLASS_BODY: Record<string, string> = {
  N: '\\u00d10-9',
  L: '\\u00d2A-Za-z',
  Lu: '\\u00d2A-Za-z',
  Ll: '\\u00d2A-Za-z',
  Lt: '\\u00d2A-Za-z',
  Lm: '\\u00d2A-Za-z',
  Lo: '\\u00d2A-Za-z',
  P: '\\u00d3!-#%-*,-/:-;?-@\\[-\\]_\\{\\}',
  M: '\\u00d4',
  S: '\\u00d5\\$\\+<->\\^`\\|~',
};

function collapse(cpts: number[]): string {
  let s = '';
  for (const c of cpts) {
    if (c < 128) s += String.fromCharCode(c);
    else {
      const f = cptFlags(c);
      // C++ std::regex \s does not match non-ASCII spaces; llama.cpp substitutes a vertical tab.
      s += isSpace(f) ? '\u000b' : (STAND_IN[f & CPT_CATEGORIES] ?? OTHER_STAND_IN);
    }
  }
  return s;
}

function collapseRegex(re: string): RegExp {
  let out = '';
  let inside = false;
  for (let i = 0; i < re.length; i++) {
    const ch = re[i]!;
    if (ch === '[' && (i === 0 || re[i - 1] !== '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && ch === ']' && re[i - 1] !== '\\') {
      out += ']';
      inside = false;
      continue;
    }
    const m = /^\\p\{(\w+)\}/.exec(re.slice(i));
    if (m && CLASS_BODY[m[1]!] !== undefined) {
      const body = CLASS_BODY[m[1]!]!;
      out += inside ? body : `[${body}]`;
      i += m[0].length - 1;
      continue;
    }
    out += ch;
  }
  return new RegExp(out, 'g');
}

/** The code points as a JS string with non-ASCII whitespace replaced by \v (std::wregex's \s is ASCII-only). */
function wideText(cpts: number[]): string {
  return String.fromCodePoint(...cpts.map((c) => (c > 0x7f && isSpace(cptFlags(c)) ? 0x0b : c)));
}

/**
 * Splits each segment into regex matches and the gaps between them. `text` is indexed in UTF-16 units;
 * when `cpts` is given it may hold astral characters, so indices are mapped back to code points.
 */
function splitRegex(text: string, re: RegExp, offsets: number[], cpts: number[] | null): number[] {
  const unitStart: number[] = []; // code point index → UTF-16 index
  if (cpts) {
    let u = 0;
    for (const c of cpts) {
      unitStart.push(u);
      u += c > 0xffff ? 2 : 1;
    }
    unitStart.push(u);
  }
  const toUnits = (cp: number) => (cpts ? unitStart[cp]! : cp);
  const out: number[] = [];
  const push = (from: number, to: number) => {
    // from/to in UTF-16 units of `text`; count code points between them
    if (to <= from) return;
    out.push(cpts ? countCodePoints(text, from, to) : to - from);
  };
  let start = 0;
  for (const n of offsets) {
    const a = toUnits(start);
    const b = toUnits(start + n);
    const segment = text.slice(a, b);
    let last = 0;
    re.lastIndex = 0;
    for (let m = re.exec(segment); m; m = re.exec(segment)) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      push(a + last, a + m.index);
      push(a + m.index, a + m.index + m[0].length);
      last = m.index + m[0].length;
    }
    push(a + last, b);
    start += n;
  }
  return out;
}

function countCodePoints(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < to) i++;
    n++;
  }
  return n;
}
