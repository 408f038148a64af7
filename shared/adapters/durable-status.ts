/**
 * Reading one durable instance's status through the client, the same way for every HTTP function and
 * trigger: an instance that does not exist is `undefined` (whether the backend answers "nothing" or
 * throws a 404 / "not found": the Functions host's HTTP API and the local engine differ), any other
 * failure (store unreachable…) is thrown for the caller to map (503, retry).
 */
import type { DurableClient, DurableOrchestrationStatus, GetStatusOptions } from 'durable-functions';
import { messageOf } from '../domain/errors';

const NOT_FOUND = /404|not found|not find|No instance/i;

/** The status of instance `id` (with its input unless told otherwise), or undefined when there is none. */
export async function readInstance(
  client: DurableClient,
  id: string,
  options: GetStatusOptions = { showInput: true },
): Promise<DurableOrchestrationStatus | undefined> {
  try {
    const s = await client.getStatus(id, options);
    return s?.instanceId ? s : undefined;
  } catch (err) {
    if (NOT_FOUND.test(messageOf(err))) return undefined;
    throw err;
  }
}

/**
 * A copy of an orchestration's custom status or output without any approval nonce (issue #15): a nonce
 * leaves the server only inside its own approver's signed link. Every key named `nonce`, at any depth,
 * is dropped (pending approvals, decision records); everything else is kept as it was.
 */
export function withoutNonces<T>(value: T, depth = 0): T {
  if (depth > 20 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => withoutNonces(v, depth + 1)) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>))
    if (k !== 'nonce') out[k] = withoutNonces(v, depth + 1);
  return out as T;
}
