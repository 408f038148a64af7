/**
 * The deploy lane of one environment: a singleton orchestration (instance id `lane-<env>`) that runs
 * ONE piece of work at a time — `deployUat` (instance id derived from environment + version + sha) or
 * the orchestrator a request names (a refresh, a PROD deploy…). While one runs, `deploy-requested`
 * events queue up in arrival order, at most one per orchestrator: a newer request supersedes the older
 * waiting request OF THE SAME ORCHESTRATOR (a merge's deployUat replaces the deployUat waiting before
 * it, a refresh an older waiting refresh — recorded with the reason); requests of another orchestrator
 * are never superseded by it and keep their place.
 *
 * How it waits (on the Durable Task extension Azure runs, locally as in Azure): the lane
 * is an event-driven state machine. Each generation records the decisions of the previous one, starts
 * the head of the queue when nothing runs, waits for an event with a plain `waitForExternalEvent`,
 * then takes every event already buffered in its history (each through a fresh wait raced against a
 * timer due now) and continues as new with the new state. The drain matters: `continueAsNew` drops
 * every buffered event the generation did not take (the extension's ContinueAsNew without
 * preserveUnprocessedEvents, the one the out-of-proc protocol calls), so a burst of merges that reached
 * the lane together would otherwise lose all but one. It never waits on the work itself: the work runs
 * under `laneWork` (started by the `laneStartWork` activity, instance id `lanework-<work id>`), which
 * runs the orchestrator as its sub-orchestration and then reports the end to the lane as a
 * `deploy-requested` event `{ workEnded: <work id>, outcome }`. So the lane never yields a task twice
 * (the out-of-proc protocol re-schedules every task of a new `Task.any`: azure-functions-durable-js
 * #574). An event taken through the drain's `Task.any` that the extension hands to the next generation
 * again (azure-functions-durable-extension #2606) is ignored there: requests raised by `routeToLane`
 * carry a unique `eventId` that the lane remembers, an end of work that is not the running one is stale.
 * An event delivered in the very batch in which the drain ends is dropped by `continueAsNew`; only the
 * sender can tell, so the senders (`routeToLane`, `laneWorkEnded`) raise the same event again until a
 * later generation lists it in `seen` (a request's `eventId`) or `done` (the ended work): `raiseUntilTaken`.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler } from 'durable-functions';
import type { DeployRequest } from '../activities/intake';
import { deployInstanceId } from '../../shared/domain/coverage-gate';

export const DEPLOY_REQUESTED = 'deploy-requested';
export const DEPLOY_ORCHESTRATOR = 'deployUat';
const DONE_KEEP = 20;
/** enough that a sender waiting for its event to show in `seen` (routeToLane) sees it before it rolls off */
const SEEN_KEEP = 200;
export const LANE_WORK_ORCHESTRATOR = 'laneWork';
/** first retry delay of the lane's own activities when the request does not say (LANE_RETRY_FIRST_SECONDS' default) */
const RETRY_FIRST_SECONDS = 10;
/**
 * The retry policy of the lane's own activities for one piece of work (start it, report its end): the
 * first delay its request carries (`laneRetrySeconds`, stamped by `routeToLane`), doubling, 6 attempts
 * (at 10 s: about 5 minutes).
 */
const retryFor = (r: LaneRequest | undefined) => {
  const s = r?.laneRetrySeconds;
  const first = typeof s === 'number' && Number.isFinite(s) && s >= 1 && s <= 600 ? s : RETRY_FIRST_SECONDS;
  return Object.assign(new df.RetryOptions(first * 1000, 6), { backoffCoefficient: 2 });
};

/**
 * What a lane runs. A plain `DeployRequest` runs `deployUat` with the id derived from environment +
 * version + sha. Other work that must not overlap a deploy on the same environment (a refresh, a PROD
 * deploy) names its orchestrator and its instance id: `{ ...request, orchestrator: 'refreshUat',
 * instanceId: 'refresh-uat-…' }`. The whole request is the sub-orchestration's input.
 */
export type LaneRequest = DeployRequest & {
  orchestrator?: string;
  instanceId?: string;
  /** unique per raised event (set by `routeToLane`): the lane ignores an event it has already taken */
  eventId?: string;
  /**
   * first retry delay (seconds) of the lane's own activities for this work (starting it, reporting its
   * end): LANE_RETRY_FIRST_SECONDS when `routeToLane` routed it; 10 without it
   */
  laneRetrySeconds?: number;
};

/** What `laneWork` raises on the lane when the work ends (on the same event name as requests). */
export interface LaneWorkEnded {
  /** the instance id of the work that ended */
  workEnded: string;
  /** the work's outcome (`outcome` or `status` of its output, `completed` without one), or `failed` */
  outcome: string;
  /** why the work failed (its error message) */
  error?: string;
  /** the token the lane gave the work when it started it (an end without it is not believed) */
  token?: string;
}

/** The input of `laneWork` (and of the `laneStartWork` activity that starts it). */
export interface LaneWorkInput {
  /** the lane's instance id (where the end is reported) */
  lane: string;
  orchestrator: string;
  /** the work's instance id */
  instanceId: string;
  /** the whole request: the work's input */
  request: LaneRequest;
  /** a fresh token of the lane (`newGuid`), echoed in the end it reports */
  token: string;
}

export interface LaneInput {
  environment: string;
  /** the request to run first (the one that started the lane; older lanes: the head of the queue) */
  next?: LaneRequest;
  /** requests waiting (behind `next`), in arrival order (at most one per orchestrator) */
  queue?: LaneRequest[];
  /** the work running now (started by an earlier generation, its end not yet reported) */
  running?: LaneRequest;
  /** the token `running` was started with: only its `laneWork` knows it */
  token?: string;
  /** `eventId`s of the requests this lane took last (an event seen again is ignored) */
  seen?: string[];
  /** the event the previous generation took, as JSON, when it had no `eventId` */
  last?: string;
  /** sub-orchestration ids already run by this lane (never run twice) */
  done?: string[];
  /** lane decisions of the previous generation still to be recorded (`intakeRecordLaneEvent` inputs) */
  records?: Array<Record<string, unknown>>;
}

export function laneInstanceId(environment: string): string {
  return `lane-${environment}`;
}

/** The instance id of the `laneWork` orchestration that runs (and reports the end of) one piece of work. */
export function laneWorkInstanceId(workId: string): string {
  return `lanework-${workId}`;
}

const short = (r: LaneRequest) =>
  r.orchestrator && r.orchestrator !== DEPLOY_ORCHESTRATOR
    ? `${r.orchestrator} ${r.instanceId ?? ''}`.trim()
    : `${r.version} (${String(r.sha).slice(0, 7)})`;
/** the orchestrator a request runs: requests of the same one supersede each other while waiting */
const kindOf = (r: LaneRequest) => r.orchestrator ?? DEPLOY_ORCHESTRATOR;
// (a string or number has neither field: no `typeof r === 'object'` needed)
const valid = (r: LaneRequest | undefined): r is LaneRequest =>
  !!r &&
  (typeof r.instanceId === 'string'
    ? r.instanceId.length > 0
    : typeof r.sha === 'string' && typeof r.version === 'string');

const isWorkEnded = (e: unknown): e is LaneWorkEnded =>
  !!e &&
  typeof (e as LaneWorkEnded).workEnded === 'string' &&
  typeof (e as LaneWorkEnded).outcome === 'string';

/**
 * What one lane generation holds while it takes events: the pure part of the lane (no durable calls),
 * so that its rules — duplicates, supersede, events seen again, the end of the running work — are judged
 * by unit tests (and mutation testing) without an engine. `takeLaneEvent` changes it in place.
 */
export interface LaneState {
  environment: string;
  /** the lane's instance id (named in every decision) */
  lane: string;
  running?: LaneRequest;
  /** the token `running` was started with */
  token?: string;
  /** requests waiting, in arrival order (at most one per orchestrator) */
  waiting: LaneRequest[];
  /** work ids already run by this lane (the last DONE_KEEP) */
  done: string[];
  /** `eventId`s taken (the last SEEN_KEEP are carried over) */
  seen: string[];
  /** the previous generation's `last` */
  previousLast?: string;
  /** the event without an `eventId` this generation took last, as JSON */
  last?: string;
  /** decisions taken in this generation (recorded by the next one) */
  notes: Array<Record<string, unknown>>;
}

/** The instance id a request runs under in this lane. */
export function laneWorkId(s: Pick<LaneState, 'environment'>, r: LaneRequest): string {
  return r.instanceId ?? deployInstanceId(s.environment, r.version, r.sha);
}

/** One decision of the lane, as `intakeRecordLaneEvent` records it. */
export function laneDecision(
  s: Pick<LaneState, 'environment' | 'lane'>,
  decision: string,
  reason: string,
  r: LaneRequest,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    decision,
    reason,
    sha: r.sha,
    version: r.version,
    deliveryId: r.deliveryId,
    instanceId: laneWorkId(s, r),
    lane: s.lane,
    ...extra,
  };
}

/** Marks `id` as run in this lane (newest last, the last DONE_KEEP kept). */
function markDone(s: LaneState, id: string): void {
  s.done = [...s.done.filter((d) => d !== id), id].slice(-DONE_KEEP);
}

/** One event: the end of the running work, or a request (anything else is ignored). */
export function takeLaneEvent(s: LaneState, event: unknown): void {
  const idOf = (r: LaneRequest) => laneWorkId(s, r);
  if (isWorkEnded(event)) {
    // the end of the running work, from the laneWork the lane started (it echoes the token); the end of
    // any other work is a repeat (activities run at least once), one without the token is not believed
    if (s.running && event.workEnded === idOf(s.running) && event.token === s.token) {
      const current = s.running;
      s.notes.push(
        event.outcome === 'failed'
          ? laneDecision(
              s,
              'deploy-finished',
              `deploy of ${short(current)} failed: ${event.error ?? 'the deploy orchestration failed'}`,
              current,
              { outcome: 'failed' },
            )
          : laneDecision(
              s,
              'deploy-finished',
              `deploy of ${short(current)} ended: ${event.outcome}`,
              current,
              {
                outcome: event.outcome,
              },
            ),
      );
      markDone(s, idOf(current));
      s.running = undefined;
      s.token = undefined;
    }
    return;
  }
  if (!valid(event as LaneRequest)) return;
  const { eventId, ...r } = event as LaneRequest;
  const again =
    typeof eventId === 'string'
      ? s.seen.includes(eventId)
      : s.previousLast === JSON.stringify(event) || s.last === JSON.stringify(event);
  if (typeof eventId === 'string') s.seen.push(eventId);
  else s.last = JSON.stringify(event);
  if (again) return;
  // a new request: queued at the end; it supersedes the waiting request of its own orchestrator
  // (the newest release wins), never one of another orchestrator
  const id = idOf(r);
  if ((s.running && id === idOf(s.running)) || s.waiting.some((w) => idOf(w) === id)) {
    s.notes.push(laneDecision(s, 'duplicate', `deploy ${id} is already running, done or waiting`, r));
  } else if (s.done.includes(id)) {
    s.notes.push(laneDecision(s, 'duplicate', `deploy ${id} already ran in this lane`, r));
  } else {
    const same = s.waiting.findIndex((w) => kindOf(w) === kindOf(r));
    if (same >= 0) {
      const [older] = s.waiting.splice(same, 1);
      const what = s.running
        ? ` while ${short(s.running)} was ${kindOf(s.running) === DEPLOY_ORCHESTRATOR ? 'deploying' : 'running'}`
        : '';
      s.notes.push(
        laneDecision(s, 'superseded', `superseded by ${short(r)}${what}`, older, { supersededBy: id }),
      );
    }
    s.waiting.push(r);
  }
}

export const deployLane: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = (context.df.getInput() as LaneInput) ?? { environment: 'uat' };
  const env = input.environment;
  // the state carried over from the previous generation (an input of an older version has no
  // `running`: its `next` is the head of the queue)
  const running = valid(input.running) ? input.running : undefined;
  const s: LaneState = {
    environment: env,
    lane: context.df.instanceId,
    running,
    token: running && typeof input.token === 'string' ? input.token : undefined,
    waiting: [input.next, ...(Array.isArray(input.queue) ? input.queue : [])].filter(valid),
    done: input.done ?? [],
    seen: Array.isArray(input.seen) ? input.seen.filter((x) => typeof x === 'string') : [],
    previousLast: input.last,
    notes: [],
  };
  const idOf = (r: LaneRequest) => laneWorkId(s, r);
  const record = (d: Record<string, unknown>) => context.df.callActivity('intakeRecordLaneEvent', d);
  // What the lane does, shown as soon as it is decided: when nothing runs, the head of the queue is the
  // work it is about to start. A caller that checks whether the lane is busy (a refresh: `running` set)
  // must not see it idle while a generation records the last one's decisions before starting that head,
  // nor between taking a request and starting it.
  const show = () =>
    context.df.setCustomStatus({
      environment: env,
      running: s.running ? idOf(s.running) : s.waiting[0] ? idOf(s.waiting[0]) : null,
      waiting: (s.running ? s.waiting : s.waiting.slice(1)).map(idOf),
    });
  show();

  // A request must never be lost: events that arrive while the lane records or starts work wait (in
  // the library and in the extension) for the next waitForExternalEvent, and the decisions taken in
  // the last generation are recorded by this one (`records`), so nothing but continueAsNew follows
  // the wait.
  for (const d of Array.isArray(input.records) ? input.records : []) yield record(d);

  // nothing runs: start the head of the queue (skipping work that already ran here)
  while (!s.running && s.waiting.length) {
    const head = s.waiting.shift()!;
    const id = idOf(head);
    if (s.done.includes(id)) {
      yield record(laneDecision(s, 'duplicate', `deploy ${id} already ran in this lane`, head));
      continue;
    }
    s.running = head;
    s.token = context.df.newGuid(`${id}:${s.done.length}`);
    show();
    yield record(laneDecision(s, 'deploy-started', `deploying ${short(head)} to ${env}`, head));
    try {
      yield context.df.callActivityWithRetry('laneStartWork', retryFor(head), {
        lane: context.df.instanceId,
        orchestrator: kindOf(head),
        instanceId: id,
        request: head,
        token: s.token,
      } satisfies LaneWorkInput);
    } catch (err) {
      // the work could not be started (storage down through every retry): it ends here, failed
      const why = err instanceof Error ? err.message : String(err);
      yield record(
        laneDecision(
          s,
          'deploy-finished',
          `deploy of ${short(head)} failed: could not start it: ${why}`,
          head,
          {
            outcome: 'failed',
          },
        ),
      );
      markDone(s, id);
      s.running = undefined;
      s.token = undefined;
    }
  }
  show();

  takeLaneEvent(s, yield context.df.waitForExternalEvent(DEPLOY_REQUESTED));
  // Drain: events that arrived while this generation recorded or started work are buffered in the
  // history, and continueAsNew drops every buffered event it did not take (the extension's
  // ContinueAsNew without preserveUnprocessedEvents, the one the out-of-proc protocol calls). So take
  // them all, each through a fresh wait raced against a timer due now: a buffered event wins at once,
  // the timer only when none is left. Fresh tasks each time (never a task yielded twice: durable-js
  // #574); an event taken this way that the extension hands to the next generation again (#2606) is
  // recognised there (eventId, token).
  for (;;) {
    const now = context.df.createTimer(context.df.currentUtcDateTime);
    const next = context.df.waitForExternalEvent(DEPLOY_REQUESTED);
    const first: unknown = yield context.df.Task.any([next, now]);
    if (first === now) break;
    now.cancel();
    takeLaneEvent(s, next.result);
  }

  // what the lane does from now on (the next generation starts the head of the queue when nothing runs)
  show();

  // no yield from the wait to here: the next generation records `notes` first
  context.df.continueAsNew({
    environment: env,
    running: s.running,
    ...(s.running && s.token ? { token: s.token } : {}),
    queue: s.waiting,
    done: s.done,
    records: s.notes,
    seen: s.seen.slice(-SEEN_KEEP),
    ...(s.last !== undefined ? { last: s.last } : {}),
  } satisfies LaneInput);
  return undefined;
};

/**
 * Runs one piece of work of a lane as its sub-orchestration (same instance id and input as ever),
 * then reports its end to the lane. The lane starts it through `laneStartWork` and never waits on it.
 */
export const laneWork: OrchestrationHandler = function* (context: OrchestrationContext) {
  const w = context.df.getInput() as LaneWorkInput;
  let ended: LaneWorkEnded;
  try {
    const out = (yield context.df.callSubOrchestrator(w.orchestrator, w.request, w.instanceId)) as
      | { outcome?: string; status?: string }
      | undefined;
    ended = {
      workEnded: w.instanceId,
      outcome: String(out?.outcome ?? out?.status ?? 'completed'),
      token: w.token,
    };
  } catch (err) {
    ended = {
      workEnded: w.instanceId,
      outcome: 'failed',
      error: err instanceof Error ? err.message : String(err),
      token: w.token,
    };
  }
  yield context.df.callActivityWithRetry('laneWorkEnded', retryFor(w.request), { lane: w.lane, ...ended });
  return ended;
};

df.app.orchestration('deployLane', deployLane);
df.app.orchestration(LANE_WORK_ORCHESTRATOR, laneWork);
