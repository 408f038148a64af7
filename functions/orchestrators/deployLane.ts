/**
 * The deploy lane of one environment: a singleton orchestration (instance id `lane-<env>`) that runs
 * ONE deploy at a time as the sub-orchestration `deployUat` (instance id derived from environment +
 * version + sha). While a deploy runs, `deploy-requested` events are collected: only the newest
 * waiting request is kept, older waiting ones are superseded (recorded with the reason). When the
 * deploy ends the lane continues as new with the waiting request (short history), or idles waiting
 * for the next event.
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
  /** the request to run first (the one that started the lane, or the newest waiting one) */
  next?: LaneRequest;
  /** sub-orchestration ids already run by this lane (never run twice) */
  done?: string[];
}

export function laneInstanceId(environment: string): string {
  return `lane-${environment}`;
}

const short = (r: LaneRequest) => (r.orchestrator && r.orchestrator !== DEPLOY_ORCHESTRATOR ? `${r.orchestrator} ${r.instanceId ?? ''}`.trim() : `${r.version} (${String(r.sha).slice(0, 7)})`);
const valid = (r: LaneRequest | undefined): r is LaneRequest =>
  !!r && typeof r === 'object' && (typeof r.instanceId === 'string' ? r.instanceId.length > 0 : typeof r.sha === 'string' && typeof r.version === 'string');


export const deployLane: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = (context.df.getInput() as LaneInput) ?? { environment: 'uat' };
  const env = input.environment;
  const done = input.done ?? [];
  const idOf = (r: LaneRequest) => r.instanceId ?? deployInstanceId(env, r.version, r.sha);
  const record = (decision: string, reason: string, r: LaneRequest, extra: Record<string, unknown> = {}) =>
    context.df.callActivity('intakeRecordLaneEvent', { decision, reason, sha: r.sha, version: r.version, deliveryId: r.deliveryId, instanceId: idOf(r), lane: context.df.instanceId, ...extra });

  let current = input.next;
  while (!current) {
    context.df.setCustomStatus({ environment: env, running: null, waiting: null });
    const r = (yield context.df.waitForExternalEvent(DEPLOY_REQUESTED)) as LaneRequest | undefined;
    if (valid(r)) current = r;
  }
  const currentId = idOf(current);
  let waiting: LaneRequest | undefined;

  if (done.includes(currentId)) {
    yield record('duplicate', `deploy ${currentId} already ran in this lane`, current);
  } else {
    context.df.setCustomStatus({ environment: env, running: currentId, waiting: null });
    yield record('deploy-started', `deploying ${short(current)} to ${env}`, current);
    const deploy = context.df.callSubOrchestrator(current.orchestrator ?? DEPLOY_ORCHESTRATOR, current, currentId);
    let ev = context.df.waitForExternalEvent(DEPLOY_REQUESTED);

    // a request that arrives while the deploy runs: keep only the newest one
    function* take(r: LaneRequest): Generator<Task, void, unknown> {
      if (!valid(r)) return;
      const id = idOf(r);
      if (id === currentId || done.includes(id) || (waiting && idOf(waiting) === id)) {
        yield record('duplicate', `deploy ${id} is already running, done or waiting`, r);
        return;
      }
      if (waiting) yield record('superseded', `superseded by ${short(r)} while ${short(current!)} was deploying`, waiting, { supersededBy: id });
      waiting = r;
      context.df.setCustomStatus({ environment: env, running: currentId, waiting: id });
    }

    for (;;) {
      const winner = (yield context.df.Task.any([deploy, ev])) as Task;
      if (winner === deploy) break;
      yield* take(ev.result as LaneRequest);
      ev = context.df.waitForExternalEvent(DEPLOY_REQUESTED);
    }
    // an event that arrived in the same episode as the deploy's completion
    if (ev.isCompleted && !ev.isFaulted) yield* take(ev.result as LaneRequest);

    if (deploy.isFaulted) {
      const why = deploy.result instanceof Error ? deploy.result.message : 'the deploy orchestration failed';
      yield record('deploy-finished', `deploy of ${short(current)} failed: ${why}`, current, { outcome: 'failed' });
    } else {
      const out = deploy.result as { outcome?: string; status?: string } | undefined;
      const outcome = out?.outcome ?? out?.status ?? 'completed';
      yield record('deploy-finished', `deploy of ${short(current)} ended: ${outcome}`, current, { outcome });
    }
  }

  context.df.continueAsNew({ environment: env, next: waiting, done: [...done.filter((d) => d !== currentId), currentId].slice(-DONE_KEEP) } satisfies LaneInput);
  return undefined;
};

df.app.orchestration('deployLane', deployLane);
