/**
 * The deploy lane of one environment: a singleton orchestration (instance id `lane-<env>`) that runs
 * ONE piece of work at a time as a sub-orchestration — `deployUat` (instance id derived from
 * environment + version + sha) or the orchestrator a request names (a refresh, a PROD deploy…).
 * While one runs, `deploy-requested` events queue up in arrival order, at most one per orchestrator:
 * a newer request supersedes the older waiting request OF THE SAME ORCHESTRATOR (a merge's deployUat
 * replaces the deployUat waiting before it, a refresh an older waiting refresh — recorded with the
 * reason); requests of another orchestrator are never superseded by it and keep their place. When the
 * work ends the lane continues as new with the queue (short history) and runs its head, or idles
 * waiting for the next event.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import type { DeployRequest } from '../activities/intake';
import { deployInstanceId } from '../../shared/domain/coverage-gate';

export const DEPLOY_REQUESTED = 'deploy-requested';
export const DEPLOY_ORCHESTRATOR = 'deployUat';
const DONE_KEEP = 20;

/**
 * What a lane runs. A plain `DeployRequest` runs `deployUat` with the id derived from environment +
 * version + sha. Other work that must not overlap a deploy on the same environment (a refresh, a PROD
 * deploy) names its orchestrator and its instance id: `{ ...request, orchestrator: 'refreshUat',
 * instanceId: 'refresh-uat-…' }`. The whole request is the sub-orchestration's input.
 */
export type LaneRequest = DeployRequest & { orchestrator?: string; instanceId?: string };

export interface LaneInput {
  environment: string;
  /** the request to run first (the one that started the lane, or the head of the queue) */
  next?: LaneRequest;
  /** requests waiting behind `next`, in arrival order (at most one per orchestrator) */
  queue?: LaneRequest[];
  /** sub-orchestration ids already run by this lane (never run twice) */
  done?: string[];
  /** lane decisions of the previous generation still to be recorded (`intakeRecordLaneEvent` inputs) */
  records?: Array<Record<string, unknown>>;
}

export function laneInstanceId(environment: string): string {
  return `lane-${environment}`;
}

const short = (r: LaneRequest) =>
  r.orchestrator && r.orchestrator !== DEPLOY_ORCHESTRATOR
    ? `${r.orchestrator} ${r.instanceId ?? ''}`.trim()
    : `${r.version} (${String(r.sha).slice(0, 7)})`;
/** the orchestrator a request runs: requests of the same one supersede each other while waiting */
const kindOf = (r: LaneRequest) => r.orchestrator ?? DEPLOY_ORCHESTRATOR;
const valid = (r: LaneRequest | undefined): r is LaneRequest =>
  !!r &&
  typeof r === 'object' &&
  (typeof r.instanceId === 'string'
    ? r.instanceId.length > 0
    : typeof r.sha === 'string' && typeof r.version === 'string');

export const deployLane: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = (context.df.getInput() as LaneInput) ?? { environment: 'uat' };
  const env = input.environment;
  const done = input.done ?? [];
  const idOf = (r: LaneRequest) => r.instanceId ?? deployInstanceId(env, r.version, r.sha);
  const decision = (
    decision: string,
    reason: string,
    r: LaneRequest,
    extra: Record<string, unknown> = {},
  ): Record<string, unknown> => ({
    decision,
    reason,
    sha: r.sha,
    version: r.version,
    deliveryId: r.deliveryId,
    instanceId: idOf(r),
    lane: context.df.instanceId,
    ...extra,
  });
  const record = (d: Record<string, unknown>) => context.df.callActivity('intakeRecordLaneEvent', d);

  // A request must never be lost: a `deploy-requested` event is consumed only by an open
  // waitForExternalEvent task (events that arrive while none is open wait in the library until one is),
  // and whatever the last generation consumed is gone after continueAsNew. So while work runs, every
  // yield includes the open event task, and the decisions taken at the end are recorded by the next
  // generation (`records`), not between the last look at the events and continueAsNew.
  for (const d of Array.isArray(input.records) ? input.records : []) yield record(d);

  // the queue carried over from the previous generation (an input of an older version has none)
  const waiting: LaneRequest[] = (Array.isArray(input.queue) ? input.queue : []).filter(valid);
  let current = input.next ?? waiting.shift();
  while (!current) {
    context.df.setCustomStatus({ environment: env, running: null, waiting: [] });
    const r = (yield context.df.waitForExternalEvent(DEPLOY_REQUESTED)) as LaneRequest | undefined;
    if (valid(r)) current = r;
  }
  const currentId = idOf(current);
  const show = () =>
    context.df.setCustomStatus({ environment: env, running: currentId, waiting: waiting.map(idOf) });

  /** decisions taken and not yet recorded */
  const notes: Array<Record<string, unknown>> = [];
  if (done.includes(currentId)) {
    notes.push(decision('duplicate', `deploy ${currentId} already ran in this lane`, current));
  } else {
    show();
    yield record(decision('deploy-started', `deploying ${short(current)} to ${env}`, current));
    const deploy = context.df.callSubOrchestrator(
      current.orchestrator ?? DEPLOY_ORCHESTRATOR,
      current,
      currentId,
    );
    let ev = context.df.waitForExternalEvent(DEPLOY_REQUESTED);

    // a request that arrives while the work runs: queued at the end; it supersedes the waiting request
    // of its own orchestrator (the newest release wins), never one of another orchestrator
    const take = (r: LaneRequest) => {
      if (!valid(r)) return;
      const id = idOf(r);
      if (id === currentId || done.includes(id) || waiting.some((w) => idOf(w) === id)) {
        notes.push(decision('duplicate', `deploy ${id} is already running, done or waiting`, r));
        return;
      }
      const same = waiting.findIndex((w) => kindOf(w) === kindOf(r));
      if (same >= 0) {
        const [older] = waiting.splice(same, 1);
        notes.push(
          decision(
            'superseded',
            `superseded by ${short(r)} while ${short(current!)} was ${kindOf(current!) === DEPLOY_ORCHESTRATOR ? 'deploying' : 'running'}`,
            older,
            { supersededBy: id },
          ),
        );
      }
      waiting.push(r);
      show();
    };

    const ended = (t: Task) => t.isCompleted || t.isFaulted;
    let recording: Task | undefined;
    let finished = false;
    for (;;) {
      if (!recording && notes.length && !finished)
        recording = context.df.Task.all(notes.splice(0).map(record));
      if (finished) break;
      yield context.df.Task.any([ev, ...(ended(deploy) ? [] : [deploy]), ...(recording ? [recording] : [])]);
      if (ended(ev)) {
        if (ev.isCompleted) take(ev.result as LaneRequest);
        ev = context.df.waitForExternalEvent(DEPLOY_REQUESTED);
      }
      if (recording && ended(recording)) recording = undefined;
      // the work ended: wait for decisions being recorded (still taking requests), then hand on
      if (ended(deploy) && !recording) finished = true;
    }

    if (deploy.isFaulted) {
      const why = deploy.result instanceof Error ? deploy.result.message : 'the deploy orchestration failed';
      notes.push(
        decision('deploy-finished', `deploy of ${short(current)} failed: ${why}`, current, {
          outcome: 'failed',
        }),
      );
    } else {
      const out = deploy.result as { outcome?: string; status?: string } | undefined;
      const outcome = out?.outcome ?? out?.status ?? 'completed';
      notes.push(
        decision('deploy-finished', `deploy of ${short(current)} ended: ${outcome}`, current, { outcome }),
      );
    }
  }

  // no yield from the last look at the events to here: the next generation records `notes` first
  context.df.continueAsNew({
    environment: env,
    next: waiting[0],
    queue: waiting.slice(1),
    done: [...done.filter((d) => d !== currentId), currentId].slice(-DONE_KEEP),
    records: notes,
  } satisfies LaneInput);
  return undefined;
};

df.app.orchestration('deployLane', deployLane);
