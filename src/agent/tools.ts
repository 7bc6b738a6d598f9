/**
 * Tools an agent can call: a name, an OpenAI function schema, whether it is read-only, and `run`. A
 * `ToolRegistry` holds the tools of one run (built-ins, the caller's own, MCP servers' tools).
 *
 * @example
 * const tools = new ToolRegistry([...imageTools()]);
 * tools.register({ name: 'now', description: 'current time', parameters: { type: 'object', properties: {} },
 *   readOnly: true, run: async () => ({ content: [{ type: 'text', text: new Date().toISOString() }] }) });
 */
import { ConfigError } from '../errors.ts';
import type { RGBImage } from '../image/image.ts';
import type { ToolSpec } from '../runtime/constrain.ts';

/** One piece of a tool's result: text, or an image that is shown to the model as an image part. */
export type ToolContent = { readonly type: 'text'; readonly text: string } | { readonly type: 'image'; readonly image: RGBImage };

export interface ToolResult {
  readonly content: readonly ToolContent[];
  /** The tool ran but failed; the content says why. */
  readonly isError?: boolean;
}

export interface ToolContext {
  /** Every image of the conversation so far, oldest first; the last one is "the current image". */
  readonly images: readonly RGBImage[];
  readonly signal: AbortSignal;
}

/** A JSON schema for a tool's arguments: always an object. */
export interface ObjectSchema {
  readonly type: 'object';
  readonly properties?: Readonly<Record<string, unknown>>;
  readonly required?: readonly string[];
  readonly [k: string]: unknown;
}

export interface AgentTool {
  /** 1–64 letters, digits, `_` or `-` (OpenAI's rule for function names). */
  readonly name: string;
  readonly description: string;
  readonly parameters: ObjectSchema;
  /**
   * True when calling the tool changes nothing outside this run (it only reads or computes). Tools that
   * are not read-only need confirmation when their arguments are tainted (see policy.ts).
   */
  readonly readOnly: boolean;
  /**
   * Where the definition came from when it is not the caller's own code (e.g. `mcp:files`). Such a tool's
   * description is untrusted text in the model's context, so offering it taints the run (`tooldef:<source>`).
   */
  readonly source?: string;
  /** Arguments have been validated against `parameters` before this is called. */
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<ToolResult>;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

export class ToolRegistry {
  private readonly tools = new Map<string, AgentTool>();

  constructor(tools: Iterable<AgentTool> = []) {
    for (const t of tools) this.register(t);
  }

  /** Add a tool. Throws ConfigError for a bad name, a non-object schema or a duplicate. */
  register(tool: AgentTool): this {
    if (typeof tool.name !== 'string' || !NAME.test(tool.name))
      throw new ConfigError(`tool name '${String(tool.name)}' must be 1–64 letters, digits, _ or -`);
    if (this.tools.has(tool.name)) throw new ConfigError(`tool '${tool.name}' is registered twice`);
    if (!tool.parameters || tool.parameters.type !== 'object')
      throw new ConfigError(`tool '${tool.name}': parameters must be a JSON schema of type 'object'`);
    if (typeof tool.readOnly !== 'boolean') throw new ConfigError(`tool '${tool.name}': readOnly must be true or false`);
    this.tools.set(tool.name, Object.freeze({ ...tool }));
    return this;
  }

  get(name: string): AgentTool | undefined {
    return this.tools.get(name);
  }

  list(): AgentTool[] {
    return [...this.tools.values()];
  }

  get size(): number {
    return this.tools.size;
  }
}

/** OpenAI `tools` entries (what the chat template shows the model). */
export function openAITools(tools: readonly AgentTool[]): { type: 'function'; function: { name: string; description: string; parameters: ObjectSchema } }[] {
  return tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }));
}

/** The specs the tool-call grammar is built from. */
export function toolSpecs(tools: readonly AgentTool[]): ToolSpec[] {
  return tools.map((t) => ({ name: t.name, parameters: t.parameters }));
}

export const text = (t: string): ToolContent => ({ type: 'text', text: t });
