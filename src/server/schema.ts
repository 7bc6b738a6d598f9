/**
 * Request bodies, validated with zod at the edge: anything that does not match is a 400 naming the field.
 * Unknown top-level fields are ignored (clients send many optional ones); unknown content part types,
 * wrong types and out-of-range values are refused.
 */
import { z } from 'zod';

const JsonObject = z.record(z.string(), z.unknown());

const TextPart = z.object({ type: z.literal('text'), text: z.string() });
const ImageUrlPart = z.object({
  type: z.literal('image_url'),
  image_url: z.union([z.string(), z.object({ url: z.string(), detail: z.string().optional() })]),
});
const Part = z.discriminatedUnion('type', [TextPart, ImageUrlPart], { error: 'content parts must be {type: "text", text} or {type: "image_url", image_url: {url}}' });

const ToolCall = z.object({
  id: z.string().optional(),
  type: z.literal('function').optional(),
  function: z.object({ name: z.string(), arguments: z.union([z.string(), JsonObject]) }),
});

export const OpenAIMessage = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(Part).max(512), z.null()]).optional(),
  name: z.string().optional(),
  tool_calls: z.array(ToolCall).max(64).nullable().optional(),
  tool_call_id: z.string().optional(),
});

const ToolName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'tool names are 1–64 letters, digits, _ . -');

export const Tool = z.object({
  type: z.literal('function'),
  function: z.object({ name: ToolName, description: z.string().optional(), parameters: JsonObject.optional(), strict: z.boolean().nullable().optional() }),
});

const ToolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) }),
]);

const ResponseFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({ type: z.literal('json_schema'), json_schema: z.object({ name: z.string().optional(), schema: JsonObject.optional(), strict: z.boolean().nullable().optional() }) }),
]);

const opt = <T extends z.ZodType>(t: T) => t.nullable().optional();

export const ChatCompletionRequest = z.object({
  model: opt(z.string()),
  messages: z.array(OpenAIMessage).min(1).max(1024),
  stream: opt(z.boolean()),
  stream_options: opt(z.object({ include_usage: z.boolean().optional() })),
  max_tokens: opt(z.number().int().min(1)),
  max_completion_tokens: opt(z.number().int().min(1)),
  temperature: opt(z.number().min(0).max(2)),
  top_p: opt(z.number().min(0).max(1)),
  top_k: opt(z.number().int().min(0)),
  min_p: opt(z.number().min(0).max(1)),
  seed: opt(z.number().int()),
  frequency_penalty: opt(z.number().min(-2).max(2)),
  presence_penalty: opt(z.number().min(-2).max(2)),
  stop: opt(z.union([z.string(), z.array(z.string()).max(8)])),
  n: opt(z.literal(1, { error: 'only n = 1 is supported' })),
  tools: opt(z.array(Tool).max(128)),
  tool_choice: opt(ToolChoice),
  parallel_tool_calls: opt(z.boolean()),
  response_format: opt(ResponseFormat),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

export const OllamaChatRequest = z.object({
  model: opt(z.string()),
  messages: z.array(z.object({
    role: z.enum(['system', 'user', 'assistant', 'tool']),
    content: z.string().nullable().optional(),
    images: opt(z.array(z.string()).max(64)),
    tool_calls: opt(z.array(z.object({ function: z.object({ name: z.string(), arguments: z.union([JsonObject, z.string()]) }) })).max(64)),
    tool_name: opt(z.string()),
  })).min(1).max(1024),
  stream: opt(z.boolean()),
  format: opt(z.union([z.literal('json'), JsonObject])),
  tools: opt(z.array(Tool).max(128)),
  options: opt(z.object({
    temperature: opt(z.number().min(0).max(2)),
    top_p: opt(z.number().min(0).max(1)),
    top_k: opt(z.number().int().min(0)),
    min_p: opt(z.number().min(0).max(1)),
    seed: opt(z.number().int()),
    num_predict: opt(z.number().int()),
    stop: opt(z.array(z.string()).max(8)),
    repeat_penalty: opt(z.number().gt(0)),
  })),
});
export type OllamaChatRequest = z.infer<typeof OllamaChatRequest>;
