/**
 * Typed errors. Programmer bugs use `assert`; anything a user can cause (bad files, bad shapes passed
 * through the public API, bad configs) throws one of the classes below so callers — the CLI, the server —
 * can map them to a clear message and status in one place.
 */
export class VistaError extends Error {
  override name = 'VistaError';
}
/** Shapes that do not fit together (matmul inner dims, broadcasting, reshape sizes). */
export class ShapeError extends VistaError {
  override name = 'ShapeError';
}
/** A model file (GGUF, safetensors, checkpoint) that is truncated, malformed or not what was expected. */
export class ModelFormatError extends VistaError {
  override name = 'ModelFormatError';
}
/** A configuration value that is missing, out of range or inconsistent. */
export class ConfigError extends VistaError {
  override name = 'ConfigError';
}
/** An op or dtype combination that no backend implements. */
export class UnsupportedOpError extends VistaError {
  override name = 'UnsupportedOpError';
}
/** Bad user input: corrupt or oversize images, malformed requests, missing files. */
export class InputError extends VistaError {
  override name = 'InputError';
}

/** Internal invariant. The message is built lazily so hot paths pay nothing when the check passes. */
export function assert(cond: unknown, message: () => string): asserts cond {
  if (!cond) throw new Error(`internal: ${message()}`);
}
