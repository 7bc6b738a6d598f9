/**
 * Chat templates: render a model's `tokenizer.chat_template` (HF Jinja) with `@huggingface/jinja`, or vista's
 * default ChatML template for its own models.
 *
 * @example
 * renderChatTemplate(DEFAULT_CHAT_TEMPLATE, [
 *   { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is this?' }] },
 * ], { addGenerationPrompt: true });
 * // '<|im_start|>user\n<image>What is this?<|im_end|>\n<|im_start|>assistant\n'
 */
import { Template } from '@huggingface/jinja';
import { InputError } from '../errors.ts';

export type ChatContentPart =
  | { type: 'text'; text: string }
  | { type: 'image'; [k: string]: unknown }
  | { type: 'image_url'; image_url: { url: string } };

export interface ChatMessage {
  role: string;
  content: string | ChatContentPart[] | null;
  [k: string]: unknown; // name, tool_calls, tool_call_id, ...
}

export interface ChatTemplateOptions {
  /** Append the opening of an assistant turn. Default false. */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** OpenAI-style tool definitions, passed to the template as `tools`. */
  tools?: unknown[];
  /** Extra template variables (e.g. `enable_thinking`). */
  extra?: Record<string, unknown>;
}

/** Text that stands for one image in vista's prompts; the runtime replaces it with the image embeddings. */
export const IMAGE_PLACEHOLDER = '<image>';

/**
 * vista's default template (ChatML): `<|im_start|>{role}\n{content}<|im_end|>\n` per message, image parts
 * as `<image>`, and `<|im_start|>assistant\n` as the generation prompt. With `tools`, a system turn listing
 * them comes first, one line each as a signature `name(x: integer, y: integer) - description` (a third of the
 * tokens of their JSON, which a small model trained on it pays for in every sample; parameter descriptions, nesting
 * and `required` are left out); an assistant's tool calls are written as
 * `<tool_call>{"name": …, "arguments": {…}}</tool_call>` (the form vista's models are trained to emit).
 */
export const DEFAULT_CHAT_TEMPLATE =
  "{%- if tools -%}" +
  "{{ '<|im_start|>system\\nYou can call these tools:\\n' }}" +
  '{%- for t in tools -%}{%- set f = t.function if t.function else t -%}' +
  "{{ f.name + '(' }}" +
  '{%- if f.parameters and f.parameters.properties -%}{%- for k, v in f.parameters.properties.items() -%}' +
  "{{ k }}{%- if v.type is string -%}{{ ': ' + v.type }}{%- elif v.type -%}{{ ': ' + (v.type | join('|')) }}{%- endif -%}" +
  "{%- if not loop.last -%}{{ ', ' }}{%- endif -%}" +
  '{%- endfor -%}{%- endif -%}' +
  "{{ ')' }}{%- if f.description -%}{{ ' - ' + f.description }}{%- endif -%}{{ '\\n' }}" +
  '{%- endfor -%}' +
  "{{ '<|im_end|>\\n' }}" +
  '{%- endif -%}' +
  '{%- for message in messages -%}' +
  "{{ '<|im_start|>' + message.role + '\\n' }}" +
  '{%- if message.content is string -%}{{ message.content }}' +
  '{%- elif message.content -%}{%- for part in message.content -%}' +
  "{%- if part.type == 'text' -%}{{ part.text }}" +
  "{%- elif part.type == 'image' or part.type == 'image_url' -%}{{ '<image>' }}" +
  '{%- endif -%}{%- endfor -%}{%- endif -%}' +
  "{%- if message.tool_calls -%}{%- for tc in message.tool_calls -%}{%- set f = tc.function if tc.function else tc -%}" +
  "{{ '<tool_call>{\"name\": ' }}{{ f.name | tojson }}{{ ', \"arguments\": ' }}" +
  "{%- if f.arguments is string -%}{{ f.arguments }}{%- else -%}{{ f.arguments | tojson }}{%- endif -%}{{ '}</tool_call>' }}" +
  '{%- endfor -%}{%- endif -%}' +
  "{{ '<|im_end|>\\n' }}" +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}";

/** Renders `template`. Throws InputError for malformed messages, template syntax errors or `raise_exception(...)` (a built-in of
 * @huggingface/jinja, as is `strftime_now`). */
export function renderChatTemplate(template: string, messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
  if (!Array.isArray(messages)) throw new InputError('chat template: messages must be an array');
  messages.forEach((m, i) => {
    if (!m || typeof m.role !== 'string') throw new InputError(`chat template: messages[${i}].role must be a string`);
    const c = m.content;
    if (!(c === null || c === undefined || typeof c === 'string' || Array.isArray(c))) {
      throw new InputError(`chat template: messages[${i}].content must be a string, an array of parts or null`);
    }
  });
  const compiled = compile(template);
  try {
    return compiled.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      bos_token: opts.bosToken ?? '',
      eos_token: opts.eosToken ?? '',
      ...(opts.tools ? { tools: opts.tools } : {}),
      ...opts.extra,
    });
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`chat template failed to render: ${(e as Error).message}`);
  }
}

/** Parsed templates by source: a model renders the same template for every request and training sample, and
 * parsing costs several times what rendering does. A handful of templates is the most a process meets. */
const compiled = new Map<string, Template>();
const COMPILED_MAX = 16;

function compile(template: string): Template {
  const hit = compiled.get(template);
  if (hit) return hit;
  let t: Template;
  try {
    t = new Template(template);
  } catch (e) {
    throw new InputError(`chat template does not parse: ${(e as Error).message}`);
  }
  if (compiled.size >= COMPILED_MAX) compiled.delete(compiled.keys().next().value!);
  compiled.set(template, t);
  return t;
}
