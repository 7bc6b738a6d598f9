/**
 * The loss curve as a PNG: an SVG drawn here (one polyline per stage, log-scaled loss) rasterised by
 * sharp at the edge.
 */
import sharp from 'sharp';
import type { EvalEntry, HistoryEntry } from './checkpoint.ts';

const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

/** SVG text of the training (and validation) loss against the step. */
export function lossCurveSvg(history: readonly HistoryEntry[], evals: readonly EvalEntry[] = [], title = 'training loss'): string {
  const W = 800, H = 450, L = 60, R = 20, T = 40, Bm = 40;
  const pts = history.filter((h) => Number.isFinite(h.loss) && h.loss > 0);
  const all = [...pts.map((p) => p.loss), ...evals.map((e) => e.valLoss).filter((v) => v > 0)];
  const maxStep = Math.max(1, ...history.map((h) => h.step));
  const lo = Math.log(Math.max(1e-4, Math.min(...all, 1)));
  const hi = Math.log(Math.max(...all, 1e-3) * 1.05);
  const x = (s: number): number => L + ((W - L - R) * s) / maxStep;
  const y = (v: number): number => T + ((H - T - Bm) * (hi - Math.log(v))) / Math.max(hi - lo, 1e-9);
  const stages = [...new Set(pts.map((p) => p.stage))];
  const lines = stages.map((st, i) => {
    const d = pts.filter((p) => p.stage === st).map((p) => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(' ');
    return `<polyline fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5" points="${d}"/>` +
      `<text x="${W - R - 120}" y="${T + 16 * i}" font-size="13" font-family="sans-serif" fill="${COLOURS[i % COLOURS.length]}">${st}</text>`;
  });
  const dots = evals.filter((e) => e.valLoss > 0).map((e) => `<circle cx="${x(e.step).toFixed(1)}" cy="${y(e.valLoss).toFixed(1)}" r="3.5" fill="black"/>`);
  const ticks: string[] = [];
  for (let k = Math.floor(lo / Math.LN10 * 2) / 2; k <= hi / Math.LN10 + 1e-9; k += 0.5) {
    const v = 10 ** k;
    if (Math.log(v) < lo) continue;
    ticks.push(`<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>` +
      `<text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end" font-family="sans-serif">${+v.toPrecision(2)}</text>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">` +
    `<rect width="100%" height="100%" fill="white"/>${ticks.join('')}` +
    `<line x1="${L}" y1="${H - Bm}" x2="${W - R}" y2="${H - Bm}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - Bm}" stroke="black"/>` +
    `<text x="${W / 2}" y="24" font-size="15" text-anchor="middle" font-family="sans-serif">${title}</text>` +
    `<text x="${W / 2}" y="${H - 10}" font-size="12" text-anchor="middle" font-family="sans-serif">step (${maxStep}); dots: validation loss</text>` +
    `${lines.join('')}${dots.join('')}</svg>`;
}

/** Write the loss curve to `file` (PNG). */
export async function writeLossCurve(file: string, history: readonly HistoryEntry[], evals: readonly EvalEntry[] = [], title?: string): Promise<void> {
  await sharp(Buffer.from(lossCurveSvg(history, evals, title))).png().toFile(file);
}
