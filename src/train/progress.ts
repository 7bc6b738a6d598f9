/**
 * Training progress on stderr: a cli-progress bar when stderr is a terminal, otherwise one log line every
 * `every` steps (CI logs, files). Shows step, loss, tokens/s and the ETA.
 */
import cliProgress from 'cli-progress';

export interface ProgressOptions {
  total: number;
  every: number;
  /** false: print nothing (tests) */
  enabled: boolean;
}

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly t0 = performance.now();
  private startStep = -1;

  constructor(private readonly o: ProgressOptions) {
    if (o.enabled && process.stderr.isTTY) {
      this.bar = new cliProgress.SingleBar({
        stream: process.stderr,
        format: '{stage} |{bar}| {value}/{total} loss {loss} | {tps} tok/s | ETA {eta_formatted}',
        hideCursor: true, etaBuffer: 50,
      }, cliProgress.Presets.shades_classic);
    }
  }

  update(step: number, stage: string, loss: number, tokensPerS: number): void {
    if (!this.o.enabled) return;
    if (this.startStep < 0) {
      this.startStep = step - 1;
      this.bar?.start(this.o.total, step - 1, { stage, loss: '-', tps: '-' });
    }
    const payload = { stage, loss: loss.toFixed(4), tps: tokensPerS.toFixed(0) };
    if (this.bar) return this.bar.update(step, payload);
    if (step % this.o.every === 0 || step === this.o.total) {
      const s = (performance.now() - this.t0) / 1000;
      const eta = ((this.o.total - step) * s) / Math.max(step - this.startStep, 1);
      process.stderr.write(`step ${step}/${this.o.total} [${stage}] loss ${payload.loss} | ${payload.tps} tok/s | ETA ${formatSeconds(eta)}\n`);
    }
  }

  /** A message that does not break the bar. */
  log(msg: string): void {
    if (!this.o.enabled) return;
    if (this.bar) this.bar.stop();
    process.stderr.write(`${msg}\n`);
    if (this.bar && this.startStep >= 0) this.bar.start(this.o.total, (this.bar as unknown as { value: number }).value ?? 0);
  }

  stop(): void {
    this.bar?.stop();
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
