/** Flag parsing shared by the commands: node's parseArgs with errors turned into one clear line. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InputError } from '../errors.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

type Values<O extends Options> = {
  [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : O[K] extends { multiple: true } ? string[] : string;
} & { help?: boolean; verbose?: boolean };

export function parse<O extends Options>(argv: string[], options: O, usage: string): { values: Values<O>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' }, verbose: { type: 'boolean' } }, allowPositionals: true, strict: true });
    return { values: r.values as Values<O>, positionals: r.positionals };
  } catch (e) {
    throw new InputError(`${(e as Error).message}\n${usage}`);
  }
}

export function requireFlag(v: string | undefined, name: string, usage: string): string {
  if (!v) throw new InputError(`missing --${name}\n${usage}`);
  return v;
}

export function intList(s: string, what: string): number[] {
  const parts = s.split(',').map((x) => x.trim()).filter(Boolean);
  const out = parts.map(Number);
  const bad = out.findIndex((x) => !Number.isInteger(x) || x < 0);
  if (!parts.length || bad >= 0) throw new InputError(`${what}: expected comma-separated non-negative integers, got '${s}'`);
  return out;
}
