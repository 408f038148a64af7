/**
 * Errors carry a string `code` (e.g. `SSH.AUTH_FAILED`) and a `retryable` flag. Activity errors reach
 * orchestrators as plain `Error(message)`, so the code is also embedded in the message as
 * `[CODE] text` and recovered with `errorCode()` — classify by code, never by `instanceof`.
 */
export class PipelineError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable = false,
    readonly details?: Record<string, unknown>,
  ) {
    super(`[${code}] ${message}`);
    this.name = 'PipelineError';
  }
}

const CODE_IN_MESSAGE = /\[([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)+)\]/;

/** The error code carried by an error or its message, or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string') {
    const c = (err as { code: string }).code;
    if (CODE_IN_MESSAGE.test(`[${c}]`)) return c;
  }
  const msg = err instanceof Error ? err.message : typeof err === 'string' ? err : '';
  return CODE_IN_MESSAGE.exec(msg)?.[1];
}

/** Codes whose failures are transient (worth an activity retry). */
const RETRYABLE_PREFIXES = [
  'SSH.CONNECT',
  'SSH.TIMEOUT',
  'SSH.DISCONNECTED',
  'REGISTRY.UNAVAILABLE',
  'BLOB.THROTTLED',
  'BLOB.UNAVAILABLE',
  'GITHUB.UNAVAILABLE',
  'ARM.UNAVAILABLE',
  'NET.',
];

export function isRetryable(err: unknown): boolean {
  if (err instanceof PipelineError) return err.retryable;
  const code = errorCode(err);
  return code !== undefined && RETRYABLE_PREFIXES.some((p) => code.startsWith(p));
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
