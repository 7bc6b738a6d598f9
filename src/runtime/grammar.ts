/**
 * Grammar-constrained JSON: a JSON schema compiles to a small grammar (`GNode`), and a character-level
 * matcher tells whether a piece of text may come next. The matcher is a set of threads (alternatives such
 * as `anyOf`, enum values or which object key comes next run side by side); each thread is a persistent
 * stack of immutable frames, so trying a candidate token shares everything with the current state.
 *
 * The JSON it admits is compact, with at most one space after ':' and ','; object properties come in the
 * schema's order (required ones always, optional ones may be skipped); numbers have no exponent. Strings
 * without `maxLength`, arrays without `maxItems` and free-form objects are bounded (`GrammarLimits`) so a
 * sampled value always ends. Unsupported keywords (`pattern`, `format`, `oneOf` exclusivity, `not`,
 * `if/then`) are ignored here; the caller validates the result.
 *
 * @example
 * const m = new GrammarMatcher(schemaGrammar({ type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }));
 * m.allows('{"n": 4'); // true
 * m.advance('{"n": 42}'); m.accepting(); // true
 */
import { InputError } from '../errors.ts';

export type GNode =
  | { readonly k: 'lit'; readonly cs: readonly string[] }
  | { readonly k: 'str'; readonly min: number; readonly max: number }
  | { readonly k: 'num'; readonly int: boolean; readonly lo: number; readonly hi: number }
  | { readonly k: 'obj'; readonly props: readonly Prop[]; readonly free: GNode | null; readonly maxKeys: number }
  | { readonly k: 'arr'; readonly item: GNode; readonly min: number; readonly max: number }
  | { readonly k: 'alt'; readonly opts: readonly GNode[] }
  | { readonly k: 'seq'; readonly parts: readonly GNode[] }
  | { readonly k: 'rep'; readonly body: GNode; readonly min: number; readonly max: number }
  | { readonly k: 'text'; readonly marker: readonly string[]; readonly fail: readonly number[]; readonly then: GNode };

interface Prop {
  readonly key: GNode;
  readonly value: GNode;
  readonly required: boolean;
}

export interface GrammarLimits {
  /** Longest string when the schema gives no maxLength. Default 256. */
  readonly maxStringLength?: number;
  /** Most array items when the schema gives no maxItems. Default 32. */
  readonly maxItems?: number;
  /** Most keys of a free-form object. Default 16. */
  readonly maxKeys?: number;
  /** Nesting of free-form values ({} schemas, json_object). Default 3. */
  readonly anyDepth?: number;
}

const MAX_INT_DIGITS = 15;
const MAX_FRAC_DIGITS = 6;
const MAX_THREADS = 256;

export const lit = (s: string): GNode => ({ k: 'lit', cs: Array.from(s) });
export const seq = (...parts: GNode[]): GNode => ({ k: 'seq', parts });
export const alt = (opts: GNode[]): GNode => (opts.length === 1 ? opts[0]! : { k: 'alt', opts });
export const rep = (body: GNode, min: number, max: number): GNode => ({ k: 'rep', body, min, max });

/** Free text until `marker` appears, then `then` (e.g. prose, then `<tool_call>` and a forced JSON call). */
export function textThen(marker: string, then: GNode): GNode {
  const m = Array.from(marker);
  const fail = new Array<number>(m.length).fill(0);
  for (let i = 1, k = 0; i < m.length; i++) {
    while (k > 0 && m[i] !== m[k]) k = fail[k - 1]!;
    if (m[i] === m[k]) k++;
    fail[i] = k;
  }
  return { k: 'text', marker: m, fail, then };
}

// ---------------------------------------------------------------- schema → grammar

type Schema = Record<string, unknown>;

/** Compile a JSON schema. Throws InputError for schemas that are malformed or cannot be satisfied. */
export function schemaGrammar(schema: unknown, limits: GrammarLimits = {}): GNode {
  const L = { maxStringLength: 256, maxItems: 32, maxKeys: 16, anyDepth: 3, ...limits };
  let nodes = 0;
  const any = (d: number): GNode => {
    const scalars = [str(0, Math.min(64, L.maxStringLength)), num(false, -Infinity, Infinity), lit('true'), lit('false'), lit('null')];
    if (d <= 0) return alt(scalars);
    const v = any(d - 1);
    return alt([...scalars, { k: 'obj', props: [], free: v, maxKeys: Math.min(8, L.maxKeys) }, { k: 'arr', item: v, min: 0, max: Math.min(8, L.maxItems) }]);
  };

  const compile = (s: unknown, path: string, depth: number): GNode => {
    if (++nodes > 2000 || depth > 24) throw new InputError(`JSON schema too large or too deeply nested (at ${path})`);
    if (s === true || (isObj(s) && Object.keys(s).every((k) => ANNOTATIONS.has(k)))) return any(L.anyDepth);
    if (s === false) throw new InputError(`JSON schema at ${path} is 'false': no value can satisfy it`);
    if (!isObj(s)) throw new InputError(`JSON schema at ${path} must be an object or a boolean`);
    if (typeof s.$ref === 'string') return compile(resolveRef(schema, s.$ref, path), s.$ref, depth + 1);
    if (s.nullable === true) return alt([compile({ ...s, nullable: false }, path, depth + 1), lit('null')]);
    if ('const' in s) return lit(stringify(s.const, path));
    if (Array.isArray(s.enum)) {
      if (!s.enum.length) throw new InputError(`JSON schema at ${path}: enum is empty`);
      return alt(s.enum.map((v) => lit(stringify(v, path))));
    }
    for (const key of ['anyOf', 'oneOf'] as const) {
      const list = s[key];
      if (Array.isArray(list)) {
        if (!list.length) throw new InputError(`JSON schema at ${path}: ${key} is empty`);
        const { [key]: _, ...rest } = s;
        return alt(list.map((x, i) => compile(isObj(x) ? { ...rest, ...x } : x, `${path}/${key}/${i}`, depth + 1)));
      }
    }
    if (Array.isArray(s.allOf)) {
      const { allOf, ...rest } = s;
      return compile(allOf.reduce((acc: Schema, x) => mergeSchemas(acc, x, path), rest), path, depth + 1);
    }
    const type = s.type ?? (s.properties ? 'object' : s.items ? 'array' : undefined);
    if (type === undefined) return any(L.anyDepth);
    if (Array.isArray(type)) return alt(type.map((t) => compile({ ...s, type: t }, path, depth + 1)));
    switch (type) {
      case 'string': {
        const min = nat(s.minLength, 0, `${path}/minLength`);
        const max = Math.min(nat(s.maxLength, L.maxStringLength, `${path}/maxLength`), Math.max(L.maxStringLength, min));
        if (min > max) throw new InputError(`JSON schema at ${path}: minLength ${min} > maxLength ${max}`);
        return str(min, max);
      }
      case 'integer':
      case 'number': {
        const int = type === 'integer';
        let lo = finiteOr(s.minimum, -Infinity, `${path}/minimum`);
        let hi = finiteOr(s.maximum, Infinity, `${path}/maximum`);
        // exclusive bounds: draft-6 numbers, or draft-4 booleans next to minimum/maximum
        const exLo = typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum : s.exclusiveMinimum === true ? lo : null;
        const exHi = typeof s.exclusiveMaximum === 'number' ? s.exclusiveMaximum : s.exclusiveMaximum === true ? hi : null;
        if (exLo !== null) lo = Math.max(lo, int ? Math.floor(exLo) + 1 : exLo + 10 ** -MAX_FRAC_DIGITS);
        if (exHi !== null) hi = Math.min(hi, int ? Math.ceil(exHi) - 1 : exHi - 10 ** -MAX_FRAC_DIGITS);
        if (int) [lo, hi] = [Math.ceil(lo), Math.floor(hi)];
        if (!(lo <= hi)) throw new InputError(`JSON schema at ${path}: no ${type} lies in [${lo}, ${hi}]`);
        return num(int, lo, hi);
      }
      case 'boolean':
        return alt([lit('true'), lit('false')]);
      case 'null':
        return lit('null');
      case 'array': {
        const min = nat(s.minItems, 0, `${path}/minItems`);
        const max = Math.min(nat(s.maxItems, L.maxItems, `${path}/maxItems`), Math.max(L.maxItems, min));
        if (min > max || min > 64) throw new InputError(`JSON schema at ${path}: minItems ${min} is above maxItems ${max} or 64`);
        const item = s.items === undefined ? any(L.anyDepth - 1) : compile(s.items, `${path}/items`, depth + 1);
        return { k: 'arr', item, min, max };
      }
      case 'object': {
        const props = s.properties;
        if (props !== undefined && !isObj(props)) throw new InputError(`JSON schema at ${path}/properties must be an object`);
        const required = s.required === undefined ? [] : s.required;
        if (!Array.isArray(required) || required.some((r) => typeof r !== 'string'))
          throw new InputError(`JSON schema at ${path}/required must be an array of strings`);
        const entries = Object.entries(props ?? {});
        for (const r of required)
          if (!entries.some(([k]) => k === r)) throw new InputError(`JSON schema at ${path}: required property '${r}' is not in properties`);
        if (!entries.length) {
          if (s.additionalProperties === false) return lit('{}');
          const v = isObj(s.additionalProperties) ? compile(s.additionalProperties, `${path}/additionalProperties`, depth + 1) : any(L.anyDepth - 1);
          return { k: 'obj', props: [], free: v, maxKeys: L.maxKeys };
        }
        return {
          k: 'obj', free: null, maxKeys: 0,
          props: entries.map(([key, v]) => ({
            key: lit(JSON.stringify(key)), value: compile(v, `${path}/properties/${key}`, depth + 1), required: required.includes(key),
          })),
        };
      }
      default:
        throw new InputError(`JSON schema at ${path}: unknown type ${JSON.stringify(type)}`);
    }
  };
  return compile(schema, '#', 0);
}

const ANNOTATIONS = new Set(['description', 'title', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly', 'additionalProperties']);

const str = (min: number, max: number): GNode => ({ k: 'str', min, max });
const num = (int: boolean, lo: number, hi: number): GNode => ({ k: 'num', int, lo, hi });
const isObj = (x: unknown): x is Schema => typeof x === 'object' && x !== null && !Array.isArray(x);

function nat(x: unknown, dflt: number, path: string): number {
  if (x === undefined) return dflt;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw new InputError(`JSON schema at ${path} must be an integer ≥ 0`);
  return x;
}

function finiteOr(x: unknown, dflt: number, path: string): number {
  if (x === undefined) return dflt;
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new InputError(`JSON schema at ${path} must be a finite number`);
  return x;
}

function stringify(v: unknown, path: string): string {
  const s = JSON.stringify(v);
  if (s === undefined) throw new InputError(`JSON schema at ${path}: const/enum value is not JSON`);
  return s;
}

function resolveRef(root: unknown, ref: string, path: string): unknown {
  const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
  const defs = m && isObj(root) ? root[m[1]!] : undefined;
  const target = m && isObj(defs) ? defs[decodeURIComponent(m[2]!).replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  if (target === undefined) throw new InputError(`JSON schema at ${path}: cannot resolve $ref '${ref}' (only #/$defs/… and #/definitions/…)`);
  return target;
}

function mergeSchemas(a: Schema, b: unknown, path: string): Schema {
  if (b === true) return a;
  if (!isObj(b)) throw new InputError(`JSON schema at ${path}/allOf: entries must be objects`);
  const out: Schema = { ...a, ...b };
  if (isObj(a.properties) && isObj(b.properties)) out.properties = { ...a.properties, ...b.properties };
  if (Array.isArray(a.required) && Array.isArray(b.required)) out.required = [...new Set([...a.required, ...b.required])];
  return out;
}

// ---------------------------------------------------------------- the matcher

/** One frame of a thread. `st`, `i`, `j` mean what the node kind says; `s` holds a number's characters. */
interface Frame {
  readonly n: GNode;
  readonly st: number;
  readonly i: number;
  readonly j: number;
  readonly s: string;
}
interface Stack {
  readonly top: Frame;
  readonly rest: Stack | null;
}
type Step = { readonly t: 'eat'; readonly f: Frame } | { readonly t: 'push'; readonly f: Frame; readonly c: GNode } | { readonly t: 'pop' };

const frame = (n: GNode, st = 0, i = 0, j = 0, s = ''): Frame => ({ n, st, i, j, s });
const eat = (f: Frame): Step => ({ t: 'eat', f });
const push = (f: Frame, c: GNode): Step => ({ t: 'push', f, c });
const POP: Step = { t: 'pop' };
const NONE: readonly Step[] = [];

// object / array states
const O_OPEN = 0, O_FIRST = 1, O_COLON = 2, O_VALUE = 3, O_AFTER = 4, O_NEXT = 5, DONE = 9;

/** Indices of the properties that may come after property `last` (schema order, no required one skipped). */
function nextKeys(props: readonly Prop[], last: number): number[] {
  const out: number[] = [];
  for (let k = last + 1; k < props.length; k++) {
    out.push(k);
    if (props[k]!.required) break;
  }
  return out;
}
const closable = (props: readonly Prop[], last: number): boolean => props.every((p, k) => k <= last || !p.required);

function feed(f: Frame, ch: string): readonly Step[] {
  const n = f.n;
  switch (n.k) {
    case 'lit':
      if (f.i === n.cs.length) return [POP];
      return n.cs[f.i] === ch ? [eat(frame(n, 0, f.i + 1))] : NONE;
    case 'str':
      return feedString(n, f, ch);
    case 'num': {
      const s = f.s + ch;
      if (numberPrefixOk(n, s)) return [eat(frame(n, 0, 0, 0, s))];
      return numberComplete(n, f.s) ? [POP] : NONE;
    }
    case 'seq':
      return f.i < n.parts.length ? [push(frame(n, 0, f.i + 1), n.parts[f.i]!)] : [POP];
    case 'alt':
      return f.st === 0 ? n.opts.map((o) => push(frame(n, 1), o)) : [POP];
    case 'rep': {
      const out: Step[] = [];
      if (f.i < n.max) out.push(push(frame(n, 0, f.i + 1), n.body));
      if (f.i >= n.min) out.push(POP);
      return out;
    }
    case 'text': {
      if (f.st === 2) return [POP];
      if (f.i === n.marker.length) return [push(frame(n, 2), n.then)];
      let k = f.i;
      while (k > 0 && n.marker[k] !== ch) k = n.fail[k - 1]!;
      if (n.marker[k] === ch) k++;
      return [eat(frame(n, 0, k))];
    }
    case 'obj':
      return feedObject(n, f, ch);
    case 'arr':
      return feedArray(n, f, ch);
  }
}

function feedString(n: Extract<GNode, { k: 'str' }>, f: Frame, ch: string): readonly Step[] {
  switch (f.st) {
    case 0:
      return ch === '"' ? [eat(frame(n, 1))] : NONE;
    case 1: // inside; i = characters so far
      if (ch === '"') return f.i >= n.min ? [eat(frame(n, 3, f.i))] : NONE;
      if (f.i >= n.max || ch < ' ') return NONE;
      return [eat(frame(n, ch === '\\' ? 2 : 1, ch === '\\' ? f.i : f.i + 1))];
    case 2: // after a backslash
      if ('"\\/bfnrt'.includes(ch)) return [eat(frame(n, 1, f.i + 1))];
      return ch === 'u' ? [eat(frame(n, 4, f.i, 4))] : NONE;
    case 4: // \u: j hex digits to go
      if (!/^[0-9a-fA-F]$/.test(ch)) return NONE;
      return [eat(f.j === 1 ? frame(n, 1, f.i + 1) : frame(n, 4, f.i, f.j - 1))];
    default:
      return [POP];
  }
}

function feedObject(n: Extract<GNode, { k: 'obj' }>, f: Frame, ch: string): readonly Step[] {
  // i = index of the last property written (−1 none; free objects: keys written), j = 1 after a space
  switch (f.st) {
    case O_OPEN:
      return ch === '{' ? [eat(frame(n, O_FIRST, -1))] : NONE;
    case O_FIRST:
    case O_NEXT: {
      if (f.st === O_NEXT && f.j === 0 && ch === ' ') return [eat(frame(n, O_NEXT, f.i, 1))];
      const out: Step[] = [];
      if (f.st === O_FIRST && ch === '}' && (n.free || closable(n.props, f.i))) out.push(eat(frame(n, DONE)));
      if (n.free) {
        out.push(push(frame(n, O_COLON, f.i + 1), str(1, 32)));
      } else for (const k of nextKeys(n.props, f.i)) out.push(push(frame(n, O_COLON, k), n.props[k]!.key));
      return out;
    }
    case O_COLON:
      return ch === ':' ? [eat(frame(n, O_VALUE, f.i))] : NONE;
    case O_VALUE:
      if (f.j === 0 && ch === ' ') return [eat(frame(n, O_VALUE, f.i, 1))];
      return [push(frame(n, O_AFTER, f.i), n.free ?? n.props[f.i]!.value)];
    case O_AFTER:
      if (ch === '}' && (n.free || closable(n.props, f.i))) return [eat(frame(n, DONE))];
      if (ch === ',' && (n.free ? f.i + 1 < n.maxKeys : nextKeys(n.props, f.i).length > 0)) return [eat(frame(n, O_NEXT, f.i))];
      return NONE;
    default:
      return [POP];
  }
}

function feedArray(n: Extract<GNode, { k: 'arr' }>, f: Frame, ch: string): readonly Step[] {
  // st: 0 before '[', 1 after '[', 2 after an item, 3 after ','; i = items so far; j = 1 after a space
  switch (f.st) {
    case 0:
      return ch === '[' ? [eat(frame(n, 1))] : NONE;
    case 1:
      if (ch === ']') return n.min === 0 ? [eat(frame(n, DONE))] : NONE;
      return n.max > 0 ? [push(frame(n, 2, 1), n.item)] : NONE;
    case 2:
      if (ch === ']') return f.i >= n.min ? [eat(frame(n, DONE, f.i))] : NONE;
      return ch === ',' && f.i < n.max ? [eat(frame(n, 3, f.i))] : NONE;
    case 3:
      if (f.j === 0 && ch === ' ') return [eat(frame(n, 3, f.i, 1))];
      return [push(frame(n, 2, f.i + 1), n.item)];
    default:
      return [POP];
  }
}

/** Whether `s` (a number's characters so far) is well-formed and can still become a value in range. */
function numberPrefixOk(n: Extract<GNode, { k: 'num' }>, s: string): boolean {
  const m = /^(-?)(0|[1-9][0-9]*)?(?:(\.)([0-9]*))?$/.exec(s);
  if (!m) return false;
  const [, neg, intPart = '', dot, frac = ''] = m;
  if (dot && (n.int || !intPart)) return false;
  if (intPart.length > MAX_INT_DIGITS || frac.length > MAX_FRAC_DIGITS) return false;
  const sign = neg ? -1 : 1;
  const hits = (a: number, b: number): boolean => {
    const [x, y] = sign > 0 ? [a, b] : [-b, -a];
    return x <= n.hi && y >= n.lo;
  };
  const step = n.int ? 1 : 10 ** -MAX_FRAC_DIGITS; // gap below the next prefix
  if (!intPart) return neg ? (n.int ? hits(1, 10 ** MAX_INT_DIGITS) : hits(step, 10 ** MAX_INT_DIGITS)) : n.lo <= n.hi;
  const d = Number(intPart);
  if (dot) {
    const x = Number(`${intPart}.${frac || '0'}`);
    const width = frac.length === MAX_FRAC_DIGITS ? 0 : 10 ** -frac.length - step;
    const low = neg ? Math.max(x, step) : x; // never -0
    return low <= x + width && hits(low, x + width);
  }
  if (neg && d === 0) return !n.int && hits(step, 1 - step); // "-0" must become -0.x
  if (hits(d, d + (n.int ? 0 : 1 - step))) return true;
  if (d === 0) return false; // no digits after a leading 0
  for (let j = 1; j + intPart.length <= MAX_INT_DIGITS; j++) if (hits(d * 10 ** j, (d + 1) * 10 ** j - step)) return true;
  return false;
}

function numberComplete(n: Extract<GNode, { k: 'num' }>, s: string): boolean {
  if (!/^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(s) || s === '-0' || (n.int && s.includes('.'))) return false;
  const v = Number(s);
  return v >= n.lo && v <= n.hi && !(v === 0 && s.startsWith('-'));
}

function canEnd(f: Frame): boolean {
  const n = f.n;
  switch (n.k) {
    case 'lit':
      return f.i === n.cs.length;
    case 'str':
      return f.st === 3;
    case 'num':
      return numberComplete(n, f.s);
    case 'seq':
      return n.parts.every((p, k) => k < f.i || nullable(p));
    case 'alt':
      return f.st === 1 || n.opts.some(nullable);
    case 'rep':
      return f.i >= n.min;
    case 'text':
      return f.st === 2 || f.i < n.marker.length;
    case 'obj':
    case 'arr':
      return f.st === DONE;
  }
}

/** Whether a node matches the empty text (so a sequence may end before it). */
function nullable(n: GNode): boolean {
  switch (n.k) {
    case 'lit':
      return n.cs.length === 0;
    case 'seq':
      return n.parts.every(nullable);
    case 'alt':
      return n.opts.some(nullable);
    case 'rep':
      return n.min === 0;
    case 'text':
      return true;
    default:
      return false;
  }
}

function step(st: Stack, ch: string, out: Stack[], depth: number): void {
  if (depth > 64 || out.length >= MAX_THREADS) return;
  for (const r of feed(st.top, ch)) {
    if (r.t === 'eat') out.push({ top: r.f, rest: st.rest });
    else if (r.t === 'push') step({ top: frame(r.c), rest: { top: r.f, rest: st.rest } }, ch, out, depth + 1);
    else if (st.rest) step(st.rest, ch, out, depth + 1);
  }
}

function accepting(st: Stack | null): boolean {
  for (let s = st; s; s = s.rest) if (!canEnd(s.top)) return false;
  return true;
}

/** Runs text through the grammar. `advance` commits text; `allows` tries text without committing. */
export class GrammarMatcher {
  private threads: Stack[];
  /** Characters committed so far. */
  text = '';

  constructor(readonly grammar: GNode) {
    this.threads = [{ top: frame(grammar), rest: null }];
  }

  private run(threads: readonly Stack[], text: string): Stack[] {
    let cur = threads as Stack[];
    for (const ch of text) {
      const next: Stack[] = [];
      for (const t of cur) step(t, ch, next, 0);
      if (!next.length) return next;
      cur = next;
    }
    return cur;
  }

  allows(text: string): boolean {
    return this.run(this.threads, text).length > 0;
  }

  /** Commit text; false (and no change) if the grammar does not allow it. */
  advance(text: string): boolean {
    const next = this.run(this.threads, text);
    if (!next.length) return false;
    this.threads = next;
    this.text += text;
    return true;
  }

  /** Whether the text so far is a complete sentence of the grammar. */
  accepting(): boolean {
    return this.threads.some(accepting);
  }
}
