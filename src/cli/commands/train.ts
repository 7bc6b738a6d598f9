/** `vista train CONFIG.json [--resume] [--max-steps N]`: run (or resume) a training config. */
import { InputError } from '../../errors.ts';
import { loadTrainConfig } from '../../train/config.ts';
import { train } from '../../train/loop.ts';
import { formatSeconds } from '../../train/progress.ts';
import { parse } from '../args.ts';

const USAGE = `Usage: vista train CONFIG.json [--resume] [--max-steps N] [--quiet]

Trains the stages of CONFIG.json (see src/train/config.ts for the format), writing checkpoints to
checkpoint.dir and, at the end, the LM + mmproj GGUF files, a loss-curve PNG and a JSON summary to output.dir.

Options:
  --resume        continue exactly from checkpoint.dir/checkpoint.safetensors
  --max-steps N   stop after N steps in total (a checkpoint is written; continue with --resume)
  --quiet         no progress output`;

export async function trainCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { resume: { type: 'boolean' }, 'max-steps': { type: 'string' }, quiet: { type: 'boolean' } }, USAGE);
  if (values.help) return void console.log(USAGE), 0;
  if (positionals.length !== 1) throw new InputError(`expected one CONFIG.json\n${USAGE}`);
  let maxSteps: number | undefined;
  if (values['max-steps'] !== undefined) {
    maxSteps = Number(values['max-steps']);
    if (!Number.isInteger(maxSteps) || maxSteps < 0) throw new InputError(`--max-steps must be a non-negative integer, got '${values['max-steps']}'`);
  }
  const config = await loadTrainConfig(positionals[0]!);
  const r = await train(config, { resume: values.resume, maxSteps, progress: !values.quiet });
  const last = r.state.history[r.state.history.length - 1];
  if (!r.outputs) {
    console.log(`stopped after step ${r.state.step} (loss ${last?.loss.toFixed(4) ?? '-'}); checkpoint in ${config.checkpoint.dir} — continue with --resume`);
    return 0;
  }
  console.log(`trained ${r.state.step} steps in ${formatSeconds(r.state.seconds)} (${(r.state.samples / r.state.seconds).toFixed(2)} samples/s); final loss ${last?.loss.toFixed(4) ?? '-'}`);
  for (const [k, f] of Object.entries(r.outputs)) console.log(`  ${k.padEnd(8)} ${f}`);
  return 0;
}
