/**
 * MCP servers as agent tools, through `@modelcontextprotocol/sdk` clients: stdio (a command the client
 * spawns) or Streamable HTTP (a URL). Each server tool becomes `<server>__<tool>` with its JSON schema; a
 * call goes through the SDK and its result content becomes text and image parts (images decoded, links and
 * resources never fetched — a `resource_link` stays a line of text).
 *
 * Trust: a server's tools are side-effecting unless the config lists them in `readOnly` (the protocol's
 * `readOnlyHint` is the server's own claim, so it is not used), and their descriptions are untrusted text
 * (`source: 'mcp:<server>'`, a taint source for the whole run).
 *
 * Config file (JSON):
 * { "servers": { "files": { "command": "node", "args": ["server.js"], "readOnly": ["list"] },
 *                "web": { "url": "http://127.0.0.1:8931/mcp" } },
 *   "policy": { "tools": { "files__delete": "deny" } } }
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ConfigError } from '../errors.ts';
import { decodeImage } from '../image/index.ts';
import { createPolicy, type Policy } from './policy.ts';
import { text, type AgentTool, type ObjectSchema, type ToolContent, type ToolResult } from './tools.ts';

const ServerName = z.string().regex(/^[A-Za-z0-9_-]{1,24}$/, 'server names are 1–24 letters, digits, _ or -');
const Common = { readOnly: z.array(z.string()).optional() };
const StdioServer = z.strictObject({
  command: z.string().min(1), args: z.array(z.string()).optional(), env: z.record(z.string(), z.string()).optional(), cwd: z.string().optional(), ...Common,
});
const HttpServer = z.strictObject({ url: z.url({ protocol: /^https?$/ }), headers: z.record(z.string(), z.string()).optional(), ...Common });
const ServerConfig = z.union([StdioServer, HttpServer]);
const AgentConfigSchema = z.strictObject({
  servers: z.record(ServerName, ServerConfig).optional(),
  policy: z.unknown().optional(),
});

export type McpServerConfig = z.infer<typeof ServerConfig>;

export interface AgentConfig {
  readonly servers: Readonly<Record<string, McpServerConfig>>;
  readonly policy: Policy;
}

/** Parse an agent config (MCP servers and the policy); ConfigError names what is wrong. */
export function parseAgentConfig(json: unknown, where = 'config'): AgentConfig {
  const r = AgentConfigSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new ConfigError(`${where}: ${i.path.join('.') || '(top level)'}: ${i.message}`);
  }
  const policy = createPolicy((r.data.policy ?? {}) as Parameters<typeof createPolicy>[0]);
  return { servers: Object.freeze({ ...r.data.servers }), policy };
}

/** Read and parse an agent config file. */
export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`cannot read agent config ${file}: ${(e as Error).message}`);
  }
  return parseAgentConfig(json, file);
}

export interface McpConnection {
  readonly tools: readonly AgentTool[];
  /** Tools a server offered that could not be registered (bad names), with why. */
  readonly skipped: readonly string[];
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** Per request (connect, list, call). Default 30 s. */
  readonly timeoutMs?: number;
  /** stdio servers' stderr. Default 'inherit'. */
  readonly stderr?: 'inherit' | 'ignore';
  /** Longest text kept from one tool result (the rest is cut). Default 16 000 characters. */
  readonly maxTextChars?: number;
}

/** Connect to every server and list its tools. On any failure, closes what was opened and throws ConfigError. */
export async function connectMcp(servers: Readonly<Record<string, McpServerConfig>>, opts: ConnectOptions = {}): Promise<McpConnection> {
  const clients: Client[] = [];
  const tools: AgentTool[] = [];
  const skipped: string[] = [];
  const close = async (): Promise<void> => {
    await Promise.allSettled(clients.map((c) => c.close()));
  };
  try {
    for (const [name, cfg] of Object.entries(servers)) {
      const client = new Client({ name: 'vista-agent', version: '0.1.0' });
      try {
        await client.connect(transportFor(cfg, opts), { timeout: opts.timeoutMs ?? 30_000 });
      } catch (e) {
        throw new ConfigError(`MCP server '${name}': cannot connect: ${(e as Error).message}`);
      }
      clients.push(client);
      const listed = await listAll(client, name, opts);
      for (const t of listed) {
        const full = `${name}__${t.name}`;
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(full)) skipped.push(`${name}: tool '${t.name}' (the name must be letters, digits, _ or -, at most 64 with the server prefix)`);
        else tools.push(mcpTool(client, name, full, t, (cfg.readOnly ?? []).includes(t.name), opts));
      }
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { tools, skipped, close };
}

function transportFor(cfg: McpServerConfig, opts: ConnectOptions): Transport {
  if ('command' in cfg)
    return new StdioClientTransport({ command: cfg.command, args: cfg.args ?? [], stderr: opts.stderr ?? 'inherit', ...(cfg.env ? { env: cfg.env } : {}), ...(cfg.cwd ? { cwd: cfg.cwd } : {}) });
  return new StreamableHTTPClientTransport(new URL(cfg.url), cfg.headers ? { requestInit: { headers: cfg.headers } } : undefined);
}

interface ListedTool {
  name: string;
  description?: string | undefined;
  inputSchema: { type: 'object'; [k: string]: unknown };
}

async function listAll(client: Client, server: string, opts: ConnectOptions): Promise<ListedTool[]> {
  const out: ListedTool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 50; page++) {
    let r;
    try {
      r = await client.listTools(cursor ? { cursor } : undefined, { timeout: opts.timeoutMs ?? 30_000 });
    } catch (e) {
      throw new ConfigError(`MCP server '${server}': cannot list tools: ${(e as Error).message}`);
    }
    out.push(...r.tools);
    cursor = r.nextCursor;
    if (!cursor) break;
  }
  return out;
}

function mcpTool(client: Client, server: string, name: string, t: ListedTool, readOnly: boolean, opts: ConnectOptions): AgentTool {
  return {
    name, readOnly, source: `mcp:${server}`,
    description: t.description ?? `${t.name} (MCP server ${server})`,
    parameters: t.inputSchema as ObjectSchema,
    async run(args, ctx): Promise<ToolResult> {
      const r = await client.callTool({ name: t.name, arguments: args }, undefined, { signal: ctx.signal, timeout: opts.timeoutMs ?? 30_000 });
      return fromMcpResult(r, opts.maxTextChars ?? 16_000);
    },
  };
}

type McpContent = { type: string; text?: string; data?: string; mimeType?: string; uri?: string; name?: string; resource?: { uri: string; text?: string; blob?: string; mimeType?: string } };

/** An MCP tool result → agent content: text stays text, images are decoded, nothing is fetched. */
export async function fromMcpResult(r: Record<string, unknown>, maxTextChars = 16_000): Promise<ToolResult> {
  const items = (Array.isArray(r.content) ? r.content : []) as McpContent[];
  const content: ToolContent[] = [];
  for (const c of items) {
    if (c.type === 'text' && typeof c.text === 'string') content.push(text(c.text));
    else if (c.type === 'image' && typeof c.data === 'string') content.push(await imageOrNote(c.data, c.mimeType));
    else if (c.type === 'resource' && c.resource) {
      if (typeof c.resource.text === 'string') content.push(text(`[resource ${c.resource.uri}]\n${c.resource.text}`));
      else if (c.resource.blob && c.resource.mimeType?.startsWith('image/')) content.push(await imageOrNote(c.resource.blob, c.resource.mimeType));
      else content.push(text(`[resource ${c.resource.uri} (${c.resource.mimeType ?? 'binary'}) not shown]`));
    } else if (c.type === 'resource_link') content.push(text(`[link ${c.name ?? ''} ${c.uri ?? ''} (not opened)]`));
    else content.push(text(`[${String(c.type)} content not shown]`));
  }
  if (!content.length && r.structuredContent !== undefined) content.push(text(JSON.stringify(r.structuredContent)));
  if (!content.length && 'toolResult' in r) content.push(text(JSON.stringify(r.toolResult)));
  let budget = maxTextChars;
  const cut = content.map((c) => {
    if (c.type !== 'text') return c;
    const t = c.text.length > budget ? `${c.text.slice(0, Math.max(0, budget))}… [cut]` : c.text;
    budget = Math.max(0, budget - c.text.length);
    return text(t);
  });
  return { content: cut, ...(r.isError === true ? { isError: true } : {}) };
}

async function imageOrNote(base64: string, mime: string | undefined): Promise<ToolContent> {
  try {
    return { type: 'image', image: await decodeImage(Buffer.from(base64, 'base64'), { maxPixels: 16e6, maxBytes: 16 * 1024 * 1024 }) };
  } catch (e) {
    return text(`[${mime ?? 'image'} could not be decoded: ${(e as Error).message}]`);
  }
}
