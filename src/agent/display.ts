/**
 * Untrusted text on a terminal. Model answers and tool results can carry escape sequences (ANSI colours,
 * cursor moves, OSC 8 hyperlinks, window titles) that could fake a confirmation prompt or hide text; before
 * printing, every control character except newline and tab is shown as a visible escape instead.
 *
 * @example printable('ok\x1b[2J') // 'ok\\x1b[2J'
 */
export function printable(s: string): string {
  // C0 controls (but \t \n), DEL, C1 controls, and the bidi overrides that reorder what is shown
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const n = c.charCodeAt(0);
    return n > 0xff ? `\\u${n.toString(16)}` : `\\x${n.toString(16).padStart(2, '0')}`;
  });
}
