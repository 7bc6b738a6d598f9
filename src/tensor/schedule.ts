/** Learning-rate schedules: functions from a step number to a learning rate. */
import { ConfigError } from '../errors.ts';

export interface WarmupCosineOptions {
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
  /** floor of the cosine (default 0) */
  minLr?: number;
}

/**
 * Linear warmup from 0 to `baseLr` over `warmupSteps`, then cosine decay to `minLr` at `totalSteps`
 * (constant `minLr` after). lr(0) = 0, lr(warmupSteps) = baseLr, lr(totalSteps) = minLr; with no warmup
 * lr(0) = baseLr. Pass the 1-based number of the step about to be taken so the first step learns.
 * @example
 * const sched = warmupCosine({ baseLr: 3e-4, warmupSteps: 100, totalSteps: 5000, minLr: 3e-5 });
 * opt.setLr(sched(opt.stepCount + 1)); opt.step();
 */
export function warmupCosine(o: WarmupCosineOptions): (step: number) => number {
  const minLr = o.minLr ?? 0;
  const { baseLr, warmupSteps, totalSteps } = o;
  if (!(warmupSteps >= 0 && Number.isInteger(warmupSteps) && totalSteps >= warmupSteps && Number.isInteger(totalSteps)))
    throw new ConfigError(`warmupCosine: need integers 0 ≤ warmupSteps (${warmupSteps}) ≤ totalSteps (${totalSteps})`);
  if (!(baseLr >= 0 && minLr >= 0 && minLr <= baseLr))
    throw new ConfigError(`warmupCosine: need 0 ≤ minLr (${minLr}) ≤ baseLr (${baseLr})`);
  const decaySteps = totalSteps - warmupSteps;
  return (step: number): number => {
    if (step < warmupSteps) return (baseLr * Math.max(step, 0)) / warmupSteps;
    if (step >= totalSteps) return decaySteps === 0 && step === warmupSteps ? baseLr : minLr;
    const progress = (step - warmupSteps) / decaySteps;
    return minLr + 0.5 * (baseLr - minLr) * (1 + Math.cos(Math.PI * progress));
  };
}
