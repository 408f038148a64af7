/**
 * Reading one durable instance's status through the client, the same way for every HTTP function and
 * trigger: an instance that does not exist is `undefined` (whether the backend answers "nothing" or
 * throws a 404 / "not found": the Functions host's HTTP API and the local engine differ), any other
 * failure (store unreachable…) is thrown for the caller to map (503, retry). And raising an event on an
 * eternal orchestration until it took it (`raiseUntilTaken`), which reads the instance the same way.
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

/** How `raiseUntilTaken` waits (milliseconds). */
export interface DeliveryTiming {
  /** how often the instance's status is read (the first reads sooner: after 50, 100 ms…) */
  pollMs: number;
  /** the same event is raised again when the instance has not taken it after this long */
  repeatMs: number;
  /** then the sender stops waiting: the event may still sit behind slow work, and is raised again then */
  giveUpMs: number;
}

export const DELIVERY: DeliveryTiming = { pollMs: 200, repeatMs: 10_000, giveUpMs: 60_000 };

/** An instance's input as an object (the HTTP management API may hand it over as a JSON string). */
function inputOf(status: DurableOrchestrationStatus | undefined): Record<string, unknown> | undefined {
  let input: unknown = status?.input;
  if (typeof input === 'string')
    try {
      input = JSON.parse(input);
    } catch {
      return undefined;
    }
  return input && typeof input === 'object' ? (input as Record<string, unknown>) : undefined;
}

/**
 * Whether the durable client's call found nothing listening at the management API: connection refused,
 * the answer of a host that stopped (a storage outage answers 5xx; a slow host answers late).
 */
function hostGone(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  return (
    e?.code === 'ECONNREFUSED' || e?.cause?.code === 'ECONNREFUSED' || /\bECONNREFUSED\b/.test(messageOf(err))
  );
}

/** The runtime statuses of an instance that still runs (events raised on it are delivered). */
export const LIVE = new Set(['Running', 'Pending', 'ContinuedAsNew', 'Suspended']);

/**
 * Raise an event on an eternal orchestration until it shows, in the input of a later generation, that it
 * took it (`taken(input)`). The same event (same payload, so the receiver can recognise a repeat) is
 * raised again every `repeatMs` while it is not taken: an orchestration that continues as new drops an
 * event delivered after its last wait, and only the sender can tell. 'taken' when it was; 'gone' when the
 * instance stopped running (nobody to tell); 'unconfirmed' after `giveUpMs` (the receiver is busy for
 * longer: the event is buffered for its next wait, not lost, since it was raised again meanwhile).
 * Throws when the first raise fails, and when the management API stops accepting connections (hostGone).
 */
export async function raiseUntilTaken(
  client: DurableClient,
  instanceId: string,
  eventName: string,
  payload: unknown,
  taken: (input: Record<string, unknown> | undefined) => boolean,
  timing: DeliveryTiming = DELIVERY,
): Promise<{ outcome: 'taken' | 'gone' | 'unconfirmed'; raised: number }> {
  const t0 = Date.now();
  let raised = 0;
  let lastRaise = -Infinity;
  let reads = 0;
  for (;;) {
    if (Date.now() - lastRaise >= timing.repeatMs) {
      lastRaise = Date.now();
      try {
        await client.raiseEvent(instanceId, eventName, payload);
        raised++;
      } catch (err) {
        // the first raise's failure is the caller's to handle; a repeat's is told by the read below
        // (the instance gone) or tried again at the next repeat
        if (raised === 0) throw err;
      }
    }
    // the first reads sooner (a lane that is idle takes an event within tens of milliseconds)
    await new Promise((r) => setTimeout(r, Math.min(timing.pollMs, 50 * 2 ** reads++)));
    // a failed read says nothing about the event (it was raised): read again until the time is up — unless
    // nothing listens at the management API any more (its host stopped): no later read can answer, and the
    // caller fails now rather than polling a stopped host for the rest of giveUpMs
    const s = await readInstance(client, instanceId).catch((err: unknown) => {
      if (hostGone(err)) throw err;
      return null;
    });
    if (s === undefined || (s && !LIVE.has(String(s.runtimeStatus)))) return { outcome: 'gone', raised };
    if (s && taken(inputOf(s))) return { outcome: 'taken', raised };
    if (Date.now() - t0 >= timing.giveUpMs) return { outcome: 'unconfirmed', raised };
  }
}
