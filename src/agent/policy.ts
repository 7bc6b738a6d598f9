/**
 * Which tool calls run. A `Policy` is built once from the caller's configuration (code or the config
 * file) and frozen; the agent loop only ever reads it. Nothing in a conversation — prompts, images, tool
 * results, model output — is parsed as policy, so no text can change a decision.
 *
 * A decision depends on the tool and on whether the call's arguments are tainted (taint.ts):
 * - tools that are not registered: always `deny` (no configuration can allow them);
 * - tools named in `tools`: that rule;
 * - other read-only tools: `readOnly` (default `allow`);
 * - other tools (side effects): `sideEffecting` (default: `allow` when trusted, `confirm` when tainted).
 * `confirm` runs the call only if the confirmer says yes; without a confirmer it is refused.
 *
 * @example
 * const policy = createPolicy({ tools: { delete_files: 'deny', fetch_url: { trusted: 'confirm', tainted: 'deny' } } });
 * decide(policy, registry.get('fetch_url'), taintOf('image:user#0')); // { decision: 'deny', reason: … }
 */
import { ConfigError } from '../errors.ts';
import { isTainted, type Taint } from './taint.ts';
import type { AgentTool } from './tools.ts';

export type Decision = 'allow' | 'confirm' | 'deny';

/** A decision for calls with trusted arguments and one for calls with tainted arguments. */
export interface Rule {
  readonly trusted: Decision;
  readonly tainted: Decision;
}

export interface PolicyConfig {
  /** Per tool name: one decision, or one per argument trust. */
  readonly tools?: Readonly<Record<string, Decision | Rule>>;
  /** Read-only tools not named in `tools`. Default 'allow'. */
  readonly readOnly?: Decision | Rule;
  /** Side-effecting tools not named in `tools`. Default { trusted: 'allow', tainted: 'confirm' }. */
  readonly sideEffecting?: Decision | Rule;
}

export interface Policy {
  /** Frozen, without a prototype: only the configured names are keys. */
  readonly tools: Readonly<Record<string, Rule>>;
  readonly readOnly: Rule;
  readonly sideEffecting: Rule;
}

export interface Verdict {
  readonly decision: Decision;
  readonly reason: string;
}

const DECISIONS: readonly string[] = ['allow', 'confirm', 'deny'];
const built = new WeakSet<Policy>();

function rule(v: unknown, where: string): Rule {
  if (typeof v === 'string') {
    if (!DECISIONS.includes(v)) throw new ConfigError(`policy ${where}: '${v}' is not allow, confirm or deny`);
    return Object.freeze({ trusted: v as Decision, tainted: v as Decision });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`policy ${where}: expected 'allow' | 'confirm' | 'deny' or { trusted, tainted }`);
  const extra = Object.keys(v).filter((k) => k !== 'trusted' && k !== 'tainted');
  if (extra.length) throw new ConfigError(`policy ${where}: unknown key(s) ${extra.join(', ')} (expected trusted, tainted)`);
  const { trusted, tainted } = v as Record<string, unknown>;
  return Object.freeze({ trusted: rule(trusted, `${where}.trusted`).trusted, tainted: rule(tainted, `${where}.tainted`).tainted });
}

/** Validate `config` and build a frozen policy (a ConfigError names any bad entry). */
export function createPolicy(config: PolicyConfig = {}): Policy {
  if (!config || typeof config !== 'object' || Array.isArray(config)) throw new ConfigError('policy must be an object');
  const extra = Object.keys(config).filter((k) => !['tools', 'readOnly', 'sideEffecting'].includes(k));
  if (extra.length) throw new ConfigError(`policy: unknown key(s) ${extra.join(', ')} (expected tools, readOnly, sideEffecting)`);
  const tools: Record<string, Rule> = Object.create(null);
  if (config.tools !== undefined) {
    if (!config.tools || typeof config.tools !== 'object' || Array.isArray(config.tools)) throw new ConfigError('policy.tools must be an object of tool name → rule');
    for (const [name, r] of Object.entries(config.tools)) tools[name] = rule(r, `tools.${name}`);
  }
  const policy: Policy = Object.freeze({
    tools: Object.freeze(tools),
    readOnly: config.readOnly === undefined ? rule('allow', 'readOnly') : rule(config.readOnly, 'readOnly'),
    sideEffecting: config.sideEffecting === undefined ? rule({ trusted: 'allow', tainted: 'confirm' }, 'sideEffecting') : rule(config.sideEffecting, 'sideEffecting'),
  });
  built.add(policy);
  return policy;
}

/** Whether `p` was built by createPolicy (validated and frozen). */
export function isPolicy(p: unknown): p is Policy {
  return typeof p === 'object' && p !== null && built.has(p as Policy);
}

/** The decision for calling `tool` (undefined = not registered) with arguments of taint `taint`. */
export function decide(policy: Policy, tool: AgentTool | undefined, name: string, taint: Taint): Verdict {
  if (!tool) return { decision: 'deny', reason: `'${name}' is not a registered tool` };
  const named = ruleFor(policy, tool.name);
  const r = named ?? (tool.readOnly ? policy.readOnly : policy.sideEffecting);
  const tainted = isTainted(taint);
  const decision = tainted ? r.tainted : r.trusted;
  const kind = named ? 'its policy rule' : tool.readOnly ? 'the rule for read-only tools' : 'the rule for tools with side effects';
  return { decision, reason: `${kind} says '${decision}' for ${tainted ? 'arguments derived from untrusted content' : 'trusted arguments'}` };
}

/** Whether a tool can ever run under `policy` (tools that are always denied are not offered to the model). */
export function mayRun(policy: Policy, tool: AgentTool): boolean {
  const r = ruleFor(policy, tool.name) ?? (tool.readOnly ? policy.readOnly : policy.sideEffecting);
  return r.trusted !== 'deny' || r.tainted !== 'deny';
}

function ruleFor(policy: Policy, name: string): Rule | undefined {
  return Object.hasOwn(policy.tools, name) ? policy.tools[name] : undefined;
}
