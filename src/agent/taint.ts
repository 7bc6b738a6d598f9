/**
 * Taint tracking: which text an agent run may not trust. A `Taint` is the set of untrusted sources a piece
 * of content derives from; the empty set means trusted (written by the caller: system text, the user's
 * prompt).
 *
 * Sources are images (anything read from pixels can carry instructions), tool outputs (OCR, web pages,
 * MCP servers) and messages of unknown origin passed in as history. Taint flows through the model
 * coarsely: a model's output can depend on any token of its context, so every assistant turn produced while
 * anything untrusted is in context — and every tool argument it writes — carries the union of the context's
 * sources. Nothing ever removes a source.
 *
 * @example
 * const t = join(taintOf('image:user#0'), taintOf('tool:crop#c1'));
 * isTainted(t); // true
 * describeTaint(t); // 'image:user#0, tool:crop#c1'
 */

/** The untrusted sources a piece of content derives from (sorted, no duplicates; empty = trusted). */
export interface Taint {
  readonly sources: readonly string[];
}

export const TRUSTED: Taint = Object.freeze({ sources: Object.freeze([]) as readonly string[] });

/** A taint with the given sources. */
export function taintOf(...sources: string[]): Taint {
  if (!sources.length) return TRUSTED;
  return Object.freeze({ sources: Object.freeze([...new Set(sources)].sort()) });
}

/** The union of several taints. */
export function join(...taints: readonly Taint[]): Taint {
  const all = taints.flatMap((t) => t.sources);
  return all.length ? taintOf(...all) : TRUSTED;
}

export function isTainted(t: Taint): boolean {
  return t.sources.length > 0;
}

/** For people: the sources, shortened when there are many. */
export function describeTaint(t: Taint, max = 4): string {
  if (!isTainted(t)) return 'trusted';
  const shown = t.sources.slice(0, max).join(', ');
  return t.sources.length > max ? `${shown} and ${t.sources.length - max} more` : shown;
}
