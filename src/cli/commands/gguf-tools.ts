/** `vista info`, `vista quantize`, `vista tokenize`, `vista logits`: inspection and conformance tools. */
import { readFileSync } from 'node:fs';
import { InputError } from '../../errors.ts';
import { readGGUF, writeGGUF, GGMLType, ggmlTypeName, GGUFValueType, type GGUFFile, type GGUFWriteTensor } from '../../formats/gguf.ts';
import { ggufTensorToTensor } from '../../formats/dequant.ts';
import { quantize } from '../../tensor/quant.ts';
import { dtypeToGGML } from '../../formats/ggml-types.ts';
import { Tokenizer } from '../../tokenizer/index.ts';
import { loadLlamaGGUF } from '../../runtime/gguf-llama.ts';
import { noGrad, slice } from '../../tensor/index.ts';
import { initBackend } from '../../backend/index.ts';
import { writeFileAtomic, readFileChecked } from '../../platform/fs.ts';
import { openGGUF } from '../../platform/gguf-file.ts';
import { intList, parse, requireFlag } from '../args.ts';

async function readGGUFFile(path: string): Promise<GGUFFile> {
  return readGGUF(await readFileChecked(path));
}

function show(v: unknown): string {
  if (Array.isArray(v)) {
    const head = v.slice(0, 8).map((x) => JSON.stringify(typeof x === 'bigint' ? x.toString() : x)).join(', ');
    return `[${head}${v.length > 8 ? `, … (${v.length} items)` : ''}]`;
  }
  if (typeof v === 'string') return JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}…` : v);
  return String(v);
}

const fmtBytes = (n: number): string => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);

export async function info(argv: string[]): Promise<number> {
  const usage = 'Usage: vista info FILE.gguf [--json]';
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage), 0;
  const file = positionals[0];
  if (!file) throw new InputError(`missing FILE\n${usage}`);
  const h = openGGUF(file);
  h.close();
  const f = h.file;
  if (values.json) {
    console.log(JSON.stringify({
      version: f.version, alignment: f.alignment,
      metadata: Object.fromEntries(Object.entries(f.metadata).map(([k, v]) => [k, Array.isArray(v) && v.length > 64 ? { length: v.length, head: v.slice(0, 8) } : v])),
      tensors: f.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.typeName, bytes: t.byteSize })),
    }, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
    return 0;
  }
  console.log(`${file}: GGUF v${f.version}, ${Object.keys(f.metadata).length} metadata keys, ${f.tensors.length} tensors`);
  for (const [k, v] of Object.entries(f.metadata)) console.log(`  ${k} = ${show(v)}`);
  let total = 0;
  const w = Math.max(...f.tensors.map((t) => t.name.length), 4);
  console.log(`\n  ${'name'.padEnd(w)}  ${'shape'.padEnd(18)} ${'type'.padEnd(6)} size`);
  for (const t of f.tensors) {
    total += t.byteSize;
    console.log(`  ${t.name.padEnd(w)}  ${`[${t.shape.join(', ')}]`.padEnd(18)} ${t.typeName.padEnd(6)} ${fmtBytes(t.byteSize)}`);
  }
  console.log(`\n  total tensor data: ${fmtBytes(total)}`);
  return 0;
}

/** Which tensors a quantizer converts: 2-D weight matrices whose rows are whole blocks (not norms or embeddings of positions). */
function quantizable(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 && name.endsWith('.weight') && !/norm|position_embd|patch_embd/.test(name) && shape[1]! % 32 === 0;
}

export async function quantizeCmd(argv: string[]): Promise<number> {
  const usage = 'Usage: vista quantize IN.gguf OUT.gguf --type q8_0|q4_0';
  const { values, positionals } = parse(argv, { type: { type: 'string' } }, usage);
  if (values.help) return void console.log(usage), 0;
  const [input, output] = positionals;
  if (!input || !output) throw new InputError(`missing IN or OUT\n${usage}`);
  const type = requireFlag(values.type, 'type', usage);
  if (type !== 'q8_0' && type !== 'q4_0') throw new InputError(`--type must be q8_0 or q4_0, got '${type}'`);
  const f = await readGGUFFile(input);
  initBackend({ name: 'ref' });
  let converted = 0;
  const tensors: GGUFWriteTensor[] = f.tensors.map((info) => {
    const keep = (): GGUFWriteTensor => ({ name: info.name, shape: info.shape, type: info.type, data: f.bytes.subarray(f.dataOffset + info.offset, f.dataOffset + info.offset + info.byteSize) });
    if (!quantizable(info.name, info.shape)) return keep();
    const q = quantize(ggufTensorToTensor(f, info, { keep: 'f32' }), type);
    converted++;
    return { name: info.name, shape: info.shape, type: dtypeToGGML(q.dtype), data: q.bytes };
  });
  const metadata = { ...f.metadata, 'general.file_type': type === 'q8_0' ? 7 : 2 };
  const metadataTypes = { ...f.metadataTypes, 'general.file_type': { type: GGUFValueType.UINT32 } };
  const bytes = writeGGUF({ metadata, metadataTypes, tensors, alignment: f.alignment });
  await writeFileAtomic(output, bytes);
  console.log(`${output}: ${converted} of ${f.tensors.length} tensors as ${ggmlTypeName(type === 'q8_0' ? GGMLType.Q8_0 : GGMLType.Q4_0)}, ${fmtBytes(bytes.length)}`);
  return 0;
}

export async function tokenize(argv: string[]): Promise<number> {
  const usage = 'Usage: vista tokenize --model LM.gguf [--special] (TEXT | --file STRINGS.json)';
  const { values, positionals } = parse(argv, { model: { type: 'string' }, special: { type: 'boolean' }, file: { type: 'string' } }, usage);
  if (values.help) return void console.log(usage), 0;
  const f = await readGGUFFile(requireFlag(values.model, 'model', usage));
  const tok = Tokenizer.fromGGUFMetadata(f.metadata);
  const opts = { addBos: false, parseSpecial: !!values.special };
  if (values.file) {
    let strings: unknown;
    try {
      strings = JSON.parse(readFileSync(values.file, 'utf8'));
    } catch (e) {
      throw new InputError(`--file ${values.file}: ${(e as Error).message}`);
    }
    if (!Array.isArray(strings) || strings.some((s) => typeof s !== 'string')) throw new InputError(`--file ${values.file}: expected a JSON array of strings`);
    console.log(JSON.stringify((strings as string[]).map((s) => tok.encode(s, opts))));
    return 0;
  }
  if (positionals.length !== 1) throw new InputError(`give exactly one TEXT (quote it) or --file\n${usage}`);
  console.log(JSON.stringify(tok.encode(positionals[0]!, opts)));
  return 0;
}

export async function logits(argv: string[]): Promise<number> {
  const usage = 'Usage: vista logits --model LM.gguf --tokens 1,2,3 [--top N | --last]';
  const { values } = parse(argv, { model: { type: 'string' }, tokens: { type: 'string' }, top: { type: 'string' }, last: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage), 0;
  const h = openGGUF(requireFlag(values.model, 'model', usage));
  const ids = intList(requireFlag(values.tokens, 'tokens', usage), '--tokens');
  initBackend();
  let model;
  try {
    model = loadLlamaGGUF(h.file, h.read.bind(h));
  } finally {
    h.close();
  }
  const V = model.config.vocab_size;
  const bad = ids.find((i) => i >= V);
  if (bad !== undefined) throw new InputError(`token ${bad} is outside the vocabulary (size ${V})`);
  const out = noGrad(() => model.forward(ids));
  if (values.last) {
    console.log(JSON.stringify(Array.from(slice(out, 1, ids.length - 1, ids.length).toArray())));
    return 0;
  }
  const top = values.top !== undefined ? Number(values.top) : V;
  if (!Number.isInteger(top) || top < 1) throw new InputError(`--top must be a positive integer, got '${values.top}'`);
  const all = out.toArray();
  const rows = ids.map((_, p) => Array.from(all.subarray(p * V, p * V + Math.min(top, V))));
  console.log(JSON.stringify(rows));
  return 0;
}
