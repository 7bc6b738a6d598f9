/**
 * `vista act`: run the agent on images — built-in click / crop / zoom plus MCP tools from a config file —
 * printing each tool call as it happens, writing the images the tools produce to --out, then the answer.
 * Calls the policy marks 'confirm' are refused unless --confirm is given and a person types y on the
 * terminal. Model output and tool text are printed with control characters made visible, and nothing in
 * them is ever opened or fetched.
 */
import { mkdirSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { InputError } from '../../errors.ts';
import { VisionLanguageModel } from '../../runtime/vlm.ts';
import { encodePng } from '../../data/render.ts';
import { runAgent, type AgentEvent, type ConfirmRequest } from '../../agent/loop.ts';
import { ToolRegistry } from '../../agent/tools.ts';
import { imageTools } from '../../agent/tools/image-tools.ts';
import { createPolicy, type Policy } from '../../agent/policy.ts';
import { connectMcp, loadAgentConfig, type McpConnection } from '../../agent/mcp.ts';
import { describeTaint, isTainted } from '../../agent/taint.ts';
import { printable } from '../../agent/display.ts';
import { parse } from '../args.ts';
import { resolveModelPaths } from './chat.ts';

const USAGE = `Usage: vista act --image a.png [--model LM.gguf --mmproj P.gguf] [options] "instruction"

Runs the model as an agent: it may call click({x, y}), crop({x0, y0, x1, y1}) and zoom({x, y, factor})
on the image (0-1000 coordinates) and the tools of MCP servers, until it answers.

Options:
  --image FILE          the image (repeatable; tools work on the latest image)
  --mcp FILE            agent config (JSON): { "servers": { name: { "command", "args" } | { "url" } }, "policy": {...} }
  --confirm             ask y/N on this terminal for calls that need confirmation (otherwise they are refused)
  --max-steps N         most model turns (default 6)
  --out DIR             where images made by tools are written (default ./act-out)
  --tool-choice C       auto (default), required (a call on the first turn) or none
  --system TEXT         a system message
  --max-tokens N        most tokens per turn (default 512)
  --temperature T       0 = greedy (default 0); --seed S
  --verbose             stack traces on errors`;

export interface ActIO {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  /** Where --confirm reads answers; must be a terminal. */
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

function num(v: string | undefined, name: string, int = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (int && !Number.isInteger(n))) throw new InputError(`--${name} must be ${int ? 'an integer' : 'a number'}, got '${v}'`);
  return n;
}

/** `vista act`. Returns the exit code. */
export async function runAct(argv: string[], io: ActIO = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string' }, mmproj: { type: 'string' }, image: { type: 'string', multiple: true }, mcp: { type: 'string' },
    confirm: { type: 'boolean' }, 'max-steps': { type: 'string' }, out: { type: 'string' }, 'tool-choice': { type: 'string' },
    system: { type: 'string' }, 'max-tokens': { type: 'string' }, temperature: { type: 'string' }, seed: { type: 'string' },
  }, USAGE);
  if (values.help) return void io.stdout.write(`${USAGE}\n`), 0;
  const prompt = positionals.join(' ').trim();
  if (!prompt) throw new InputError(`missing the instruction\n${USAGE}`);
  const images = values.image ?? [];
  if (!images.length) throw new InputError(`missing --image\n${USAGE}`);
  for (const f of images) if (!existsSync(f)) throw new InputError(`image not found: ${f}`);
  const choice = values['tool-choice'] ?? 'auto';
  if (choice !== 'auto' && choice !== 'required' && choice !== 'none') throw new InputError(`--tool-choice must be auto, required or none, got '${choice}'`);
  const { model, mmproj } = resolveModelPaths(values.model, values.mmproj);
  if (!mmproj) throw new InputError('--image needs --mmproj (the vision part of the model)');

  const config = values.mcp ? await loadAgentConfig(values.mcp) : null;
  const policy: Policy = config?.policy ?? createPolicy();
  const vlm = await VisionLanguageModel.load({ model, mmproj });
  const outDir = path.resolve(values.out ?? 'act-out');
  let mcp: McpConnection | null = null;
  try {
    if (config && Object.keys(config.servers).length) {
      mcp = await connectMcp(config.servers, { stderr: 'ignore' });
      for (const s of mcp.skipped) io.stderr.write(`vista act: skipped MCP tool ${printable(s)}\n`);
    }
    const tools = new ToolRegistry([...imageTools(), ...(mcp?.tools ?? [])]);
    let written = 0;
    const pendingWrites: Promise<void>[] = [];
    const onEvent = (e: AgentEvent): void => {
      if (e.type === 'tool_call') io.stdout.write(`→ ${printable(e.call.name || '?')} ${printable(e.call.raw)}  [${e.decision}]\n`);
      else if (e.type === 'tool_result') {
        const r = e.record;
        const texts = r.result.content.flatMap((c) => (c.type === 'text' ? [c.text] : []));
        const files = r.result.content.flatMap((c) => {
          if (c.type !== 'image') return [];
          mkdirSync(outDir, { recursive: true });
          const file = path.join(outDir, `${String(++written).padStart(2, '0')}-${r.name.replace(/[^A-Za-z0-9_-]/g, '_')}.png`);
          pendingWrites.push(encodePng(c.image).then((png) => writeFileSync(file, png)));
          return [path.relative(process.cwd(), file) || file];
        });
        const shown = printable(texts.join(' ').replace(/\s+/g, ' ').slice(0, 300));
        io.stdout.write(`← ${r.status}${shown ? `: ${shown}` : ''}${files.length ? ` (image → ${files.join(', ')})` : ''}\n`);
      }
    };
    const result = await runAgent({
      model: vlm, prompt, images, tools, policy, onEvent,
      ...(values.system !== undefined ? { system: values.system } : {}),
      maxSteps: num(values['max-steps'], 'max-steps', true) ?? 6, maxTokens: num(values['max-tokens'], 'max-tokens', true) ?? 512,
      toolChoice: choice, sampler: { temperature: num(values.temperature, 'temperature') ?? 0, seed: num(values.seed, 'seed', true) },
      ...(values.confirm ? { confirm: (c: ConfirmRequest) => askOnTerminal(c, io) } : {}),
    });
    await Promise.all(pendingWrites);
    // the answer is text: links and markdown images in it are printed, never opened
    io.stdout.write(`${printable(result.answer.trim())}\n`);
    const note = result.stopReason === 'answer' ? '' : ` stopped: ${result.stopReason}.`;
    const taint = isTainted(result.answerTaint) ? ` The answer derives from untrusted content (${describeTaint(result.answerTaint)}).` : '';
    if (note || taint) io.stderr.write(`vista act:${note}${taint}\n`);
    return 0;
  } finally {
    await mcp?.close();
  }
}

/** y/N on the terminal; anything but y/yes — or no terminal at all — is no. */
async function askOnTerminal(c: ConfirmRequest, io: ActIO): Promise<boolean> {
  if (!io.stdin.isTTY) {
    io.stderr.write(`vista act: ${printable(c.name)} needs confirmation but stdin is not a terminal; refused\n`);
    return false;
  }
  const why = isTainted(c.taint) ? `its arguments derive from untrusted content (${describeTaint(c.taint)})` : c.reason;
  const rl = createInterface({ input: io.stdin, output: process.stderr, terminal: true });
  try {
    const a = await rl.question(`Run ${printable(c.name)} ${printable(JSON.stringify(c.arguments))}? ${c.readOnly ? '' : 'It has side effects; '}${printable(why)}. [y/N] `);
    return /^(y|yes)$/i.test(a.trim());
  } finally {
    rl.close();
  }
}
