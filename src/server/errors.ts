/**
 * The one place where errors become HTTP responses: every route throws (typed errors from the model layer,
 * zod validation errors, `HttpError`s of its own) and `errorResponse` picks the status and writes the
 * OpenAI-style body `{ error: { message, type, param, code } }`.
 */
import { ZodError } from 'zod';
import { ConfigError, InputError, ModelFormatError, ShapeError, UnsupportedOpError } from '../errors.ts';

/** An error with its HTTP status decided where it is thrown (limits, queue, routing). */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const TYPES: Record<number, string> = {
  400: 'invalid_request_error', 401: 'authentication_error', 404: 'not_found_error', 405: 'invalid_request_error',
  408: 'timeout_error', 413: 'invalid_request_error', 415: 'invalid_request_error', 429: 'rate_limit_error', 503: 'server_overloaded',
};

/** Status, headers and body for any thrown value. Unknown errors are 500 with a generic message (logged by the caller). */
export function errorResponse(e: unknown): { status: number; headers: Record<string, string>; body: ErrorBody } {
  const make = (status: number, message: string, code: string | null = null, param: string | null = null, headers: Record<string, string> = {}) => ({
    status, headers, body: { error: { message, type: TYPES[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error'), param, code } },
  });
  if (e instanceof HttpError) return make(e.status, e.message, e.code, e.param, e.headers);
  if (e instanceof ZodError) {
    const issue = e.issues[0];
    const param = issue?.path.length ? issue.path.map(String).join('.') : null;
    return make(400, `invalid request: ${param ? `${param}: ` : ''}${issue?.message ?? 'malformed body'}`, 'invalid_value', param);
  }
  // user-caused errors of the model layer: bad images, prompts over the context, bad sampler settings, schemas
  if (e instanceof InputError || e instanceof ConfigError || e instanceof ShapeError) return make(400, e.message, 'invalid_value');
  if (e instanceof UnsupportedOpError || e instanceof ModelFormatError) return make(500, `${e.name}: ${e.message}`, 'model_error');
  return make(500, 'internal server error', 'internal_error');
}

export const isInternal = (e: unknown): boolean => errorResponse(e).status >= 500 && !(e instanceof HttpError);
