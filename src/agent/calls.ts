/**
 * Tool calls in model output — the `<tool_call>{"name": …, "arguments": {…}}</tool_call>` form of vista's
 * chat template — split from the answer text. Unlike the server's `parseToolCalls` (which drops calls it
 * cannot validate), every call block is kept with what is wrong with it, so the agent can refuse it and say
 * why: a model that was not constrained (or a scripted one) must not make a call vanish silently.
 */
import { TOOL_CLOSE, TOOL_OPEN, validatesAgainst } from '../runtime/constrain.ts';
import type { ToolRegistry } from './tools.ts';

export interface ProposedCall {
  readonly id: string;
  /** '' when the block has no string name */
  readonly name: string;
  /** the arguments as JSON text (as the model wrote them, re-serialised when they parsed) */
  readonly raw: string;
  /** parsed arguments, or null when they are unusable (see `problem`) */
  readonly arguments: Record<string, unknown> | null;
  /** why the call cannot run before the policy is even asked (malformed, wrong schema) */
  readonly problem?: string;
}

const BLOCK = new RegExp(`${escape(TOOL_OPEN)}([\\s\\S]*?)${escape(TOOL_CLOSE)}`, 'g');

/**
 * Split `text` into the answer (text before the first call) and the calls. Without a complete call block,
 * all of `text` is the answer. Calls to unregistered tools are kept (the policy denies them).
 */
export function splitToolCalls(text: string, tools: ToolRegistry, idPrefix: string): { content: string; calls: ProposedCall[] } {
  const start = text.indexOf(TOOL_OPEN);
  if (start < 0) return { content: text, calls: [] };
  const calls: ProposedCall[] = [];
  for (const m of text.slice(start).matchAll(BLOCK)) calls.push(parseBlock(m[1]!, tools, `${idPrefix}_${calls.length}`));
  return calls.length ? { content: text.slice(0, start), calls } : { content: text, calls: [] };
}

function parseBlock(body: string, tools: ToolRegistry, id: string): ProposedCall {
  let obj: unknown;
  try {
    obj = JSON.parse(body);
  } catch {
    return { id, name: '', raw: body, arguments: null, problem: 'the call is not valid JSON' };
  }
  if (!isObject(obj)) return { id, name: '', raw: body, arguments: null, problem: 'the call must be a JSON object {"name", "arguments"}' };
  const name = typeof obj.name === 'string' ? obj.name : '';
  let args: unknown = obj.arguments ?? {};
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args); // OpenAI style: arguments as a JSON string
    } catch {
      return { id, name, raw: args as string, arguments: null, problem: 'the arguments are not valid JSON' };
    }
  }
  const raw = JSON.stringify(args) ?? '';
  if (!name) return { id, name, raw, arguments: null, problem: 'the call has no tool name' };
  if (!isObject(args)) return { id, name, raw, arguments: null, problem: 'the arguments must be a JSON object' };
  const tool = tools.get(name);
  if (tool && !validatesAgainst(tool.parameters, args)) return { id, name, raw, arguments: null, problem: `the arguments do not match ${name}'s schema` };
  return { id, name, raw, arguments: args };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
