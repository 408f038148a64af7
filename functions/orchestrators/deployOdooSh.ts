/**
 * Deploy a release to Odoo.sh (runbook order):
 *   1. preflight: the release commit passed the gate; the move of the tracked branch is a fast-forward
 *      (a non-fast-forward is refused unless forced, and says why)
 *   2. a production-stage branch gets PROD's approval rules (./approval-gate, the same code deployProd
 *      runs): PROD's policy from PROD's settings (`odooShApproval`), one signed single-use link per
 *      approver posted to Slack (`prodRequestLinks`; four-eyes: none for the requester), the
 *      `approval-decision` events, a reminder, expiry. Rejected / Expired: the branch is not touched.
 *      Approved: the branch head is read again — if it moved while people decided, the approved commit
 *      range is no longer what would move, and the deploy is refused (request again)
 *   3. move the branch through the GitHub API
 *   4. wait for Odoo.sh's commit status (`ci/odoo.sh (<stage>)`) with durable timers, bounded
 *   5. record + notify: success, failure (with Odoo.sh's build URL) or timeout
 * Deterministic: all I/O in activities (functions/activities/odoosh.ts, ./prod.ts for the links).
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import { codeOf as codeOfError, reasonOf } from '../../shared/domain/deploy-plan';
import {
  odooShWaitText,
  type OdooShBuild,
  type OdooShRequest,
  type OdooShResult,
} from '../../shared/domain/odoosh';
import type { ActivityFailure } from '../activities/deploy';
import type { OdooShApprovalOut, OdooShPreflightOut } from '../activities/odoosh';
import type { AnnounceInput, AnnounceKind, ApprovalSummary, CommitRange } from '../activities/prod';
import { approvalGate, newApprovalState, type PendingApproval } from './approval-gate';
import { stepRunner } from './step';

export const DEPLOY_ODOOSH = 'deployOdooSh';

export type OdooShStep =
  | 'preflight'
  | 'prepare-approval'
  | 'request-approval'
  | 'awaiting-approval'
  | 'recheck'
  | 'move'
  | 'waiting-for-odoo.sh'
  | 'done';

export interface OdooShCustomStatus {
  kind: 'deployOdooSh';
  step: OdooShStep;
  branch: string;
  stage: string;
  repository: string;
  environment: string;
  version: string;
  sha: string;
  requestedBy: string;
  reason?: string;
  startedAt: string;
  elapsedMs: number;
  build?: string;
  outcome?: string;
  /** production branches (the approval contract of functions/approvals.ts, as deployProd publishes it) */
  approvals?: { required: number; received: Array<{ approver: string; at: string }> };
  pendingApprovals: PendingApproval[];
  expiresAt?: string;
  commitRange?: CommitRange;
}

const codeOf = (message: string): string | undefined => /\[([A-Z]+\.[A-Z_]+)\]/.exec(message)?.[1];

export const deployOdooSh: OrchestrationHandler = function* (context: OrchestrationContext) {
  const r = context.df.getInput() as OdooShRequest;
  const id = context.df.instanceId;
  const started = context.df.currentUtcDateTime.getTime();
  const now = () => context.df.currentUtcDateTime.getTime();
  const gateState = newApprovalState();
  const status: OdooShCustomStatus = {
    kind: 'deployOdooSh',
    step: 'preflight',
    branch: r.branch,
    stage: r.stage,
    repository: r.repository,
    environment: `odoosh-${r.branch}`,
    version: r.version,
    sha: r.sha,
    requestedBy: r.requestedByName ?? r.requestedBy,
    ...(r.reason ? { reason: r.reason } : {}),
    startedAt: context.df.currentUtcDateTime.toISOString(),
    elapsedMs: 0,
    pendingApprovals: gateState.pending,
  };
  const show = (step: OdooShStep, extra: Partial<OdooShCustomStatus> = {}) => {
    Object.assign(status, extra, { step, pendingApprovals: gateState.pending, elapsedMs: now() - started });
    context.df.setCustomStatus(status);
  };
  const log = (msg: string) => {
    if (!context.df.isReplaying) context.info(`[${id}] ${msg}`);
  };
  const retry = new df.RetryOptions(5000, 3);
  /** the approval gate's steps (./step): always retried, not timed (this status has no durations) */
  const step = stepRunner<OdooShStep>(context, {
    show,
    retry: () => retry,
    retried: () => true,
    codeOf: codeOfError,
    reasonOf,
  });
  const base = { branch: r.branch, stage: r.stage, version: r.version, sha: r.sha };
  let announced = false;

  function* finish(result: OdooShResult): Generator<df.Task, OdooShResult, unknown> {
    if (r.stage === 'production')
      Object.assign(result, {
        requestedBy: r.requestedByName ?? r.requestedBy,
        approvals: gateState.received,
        decisions: gateState.decisions,
      });
    gateState.pending = [];
    show('done', {
      outcome: result.outcome,
      reason: result.reason,
      expiresAt: undefined,
      ...(result.targetUrl ? { build: result.targetUrl } : {}),
    });
    try {
      yield context.df.callActivity('odooShFinish', { request: r, result, instanceId: id, announced });
    } catch {
      // recording and notifying never change the outcome
    }
    return result;
  }

  show('preflight');
  let pre: OdooShPreflightOut;
  try {
    pre = (yield context.df.callActivityWithRetry('odooShPreflight', retry, r)) as OdooShPreflightOut;
  } catch (err) {
    const message = (err as Error).message;
    return yield* finish({
      ...base,
      outcome: 'Failed',
      code: codeOf(message) ?? 'ODOOSH.PREFLIGHT',
      reason: `preflight failed: ${message}`,
    });
  }
  if (!pre.ok)
    return yield* finish({
      ...base,
      outcome: 'Refused',
      code: pre.code,
      reason: pre.reason,
      previousSha: pre.previousSha,
    });

  if (r.stage === 'production' && pre.plan?.move) {
    // ---- PROD's approval rules before a production branch moves -----------------------------------
    show('prepare-approval', { reason: r.reason });
    let prep: OdooShApprovalOut;
    try {
      const out = (yield context.df.callActivityWithRetry('odooShApproval', retry, {
        request: r,
        instanceId: id,
        previousSha: pre.previousSha,
      })) as OdooShApprovalOut | { failed: ActivityFailure };
      if ('failed' in out)
        return yield* finish({
          ...base,
          outcome: 'Failed',
          code: out.failed.code,
          reason: out.failed.message,
          previousSha: pre.previousSha,
        });
      prep = out;
    } catch (err) {
      return yield* finish({
        ...base,
        outcome: 'Failed',
        code: codeOfError(err),
        reason: reasonOf(err),
        previousSha: pre.previousSha,
      });
    }
    const policy = prep.policy;
    show('prepare-approval', {
      approvals: { required: policy.required, received: gateState.received },
      commitRange: prep.commitRange,
    });

    const subject = `Odoo.sh ${r.stage} move`;
    const where = `${r.branch} (${r.repository})`;
    const summary = (expiresAt: string, extra: Partial<ApprovalSummary> = {}): ApprovalSummary => ({
      environment: status.environment,
      target: { kind: 'odoosh', branch: r.branch, repository: r.repository, stage: r.stage },
      version: r.version,
      sha: r.sha,
      requestedBy: r.requestedByName ?? r.requestedBy,
      reason: r.reason ?? '',
      commitRange: prep.commitRange,
      required: policy.required,
      fourEyes: policy.fourEyes,
      expiresAt,
      statusUrl: prep.statusUrl,
      ...extra,
    });
    const gate = approvalGate(context, {
      policy,
      requestedBy: r.requestedBy,
      requestedByName: r.requestedByName,
      state: gateState,
      summary,
      hooks: {
        call: (name, activity, payload) => step(name as OdooShStep, activity, payload),
        *quiet(activity, payload) {
          try {
            return yield context.df.callActivity(activity, payload);
          } catch (err) {
            log(`${activity} failed (ignored): ${reasonOf(err)}`);
            return undefined;
          }
        },
        show: (step, extra) => show((step as OdooShStep | undefined) ?? status.step, extra),
        *announce(kind: AnnounceKind, detail?: string): Generator<Task, unknown, unknown> {
          announced = true;
          try {
            return yield context.df.callActivity('prodAnnounce', {
              kind,
              version: r.version,
              environment: status.environment,
              requestedBy: r.requestedByName ?? r.requestedBy,
              detail,
              subject,
              where,
            } satisfies AnnounceInput);
          } catch (err) {
            log(`prodAnnounce failed (ignored): ${reasonOf(err)}`);
            return undefined;
          }
        },
        log,
      },
    });
    const approval = yield* gate.requestApproval({ approvedNote: `moving ${r.branch} now` });
    if (approval.verdict === 'failed')
      return yield* finish({
        ...base,
        outcome: 'Failed',
        code: approval.code,
        reason: approval.failure,
        previousSha: pre.previousSha,
      });
    if (approval.verdict === 'rejected')
      return yield* finish({
        ...base,
        outcome: 'Rejected',
        code: 'APPROVAL.REJECTED',
        reason: `${approval.failure}: ${r.branch} not moved`,
        previousSha: pre.previousSha,
      });
    if (approval.verdict === 'expired')
      return yield* finish({
        ...base,
        outcome: 'Expired',
        code: 'APPROVAL.EXPIRED',
        reason: `${approval.failure}: ${r.branch} not moved`,
        previousSha: pre.previousSha,
      });
    announced = false;

    // what was approved is `previousSha → sha`: the branch must still be where it was
    show('recheck', { expiresAt: undefined });
    let again: OdooShPreflightOut;
    try {
      again = (yield context.df.callActivityWithRetry('odooShPreflight', retry, r)) as OdooShPreflightOut;
    } catch (err) {
      const message = (err as Error).message;
      return yield* finish({
        ...base,
        outcome: 'Failed',
        code: codeOf(message) ?? 'ODOOSH.PREFLIGHT',
        reason: `preflight after the approval failed: ${message}`,
        previousSha: pre.previousSha,
      });
    }
    if (!again.ok)
      return yield* finish({
        ...base,
        outcome: 'Refused',
        code: again.code,
        reason: again.reason,
        previousSha: again.previousSha,
      });
    if (again.previousSha !== pre.previousSha || !again.plan?.move)
      return yield* finish({
        ...base,
        outcome: 'Refused',
        code: 'ODOOSH.BRANCH_MOVED',
        reason: `${r.branch} moved from ${(pre.previousSha ?? '?').slice(0, 7)} to ${(again.previousSha ?? '?').slice(0, 7)} while the approval was pending: the approved commit range is not what would move now; request the deploy again`,
        previousSha: again.previousSha,
      });
  }

  if (pre.plan?.move) {
    show('move', { reason: pre.reason });
    try {
      yield context.df.callActivityWithRetry('odooShMove', retry, {
        branch: r.branch,
        sha: r.sha,
        force: r.force,
        create: pre.createBranch === true,
      });
    } catch (err) {
      const message = (err as Error).message;
      return yield* finish({
        ...base,
        outcome: 'Failed',
        code: codeOf(message) ?? 'ODOOSH.MOVE_FAILED',
        reason: `moving ${r.branch} failed: ${message}`,
        previousSha: pre.previousSha,
      });
    }
  }

  // wait for Odoo.sh's build of that commit, bounded (from the move: an approval may have taken hours)
  const waitStart = now();
  const deadline = waitStart + r.waitMinutes * 60_000;
  show('waiting-for-odoo.sh');
  for (;;) {
    let build: OdooShBuild = { state: 'pending' };
    try {
      build = (yield context.df.callActivityWithRetry('odooShBuild', retry, {
        sha: r.sha,
        stage: r.stage,
      })) as OdooShBuild;
    } catch {
      // GitHub unreachable for a while: keep waiting until the deadline
    }
    if (build.state === 'success')
      return yield* finish({
        ...base,
        outcome: 'Succeeded',
        reason: build.description ?? `Odoo.sh built ${r.version} on ${r.branch}`,
        previousSha: pre.previousSha,
        waitedMs: now() - waitStart,
        ...(build.targetUrl ? { targetUrl: build.targetUrl } : {}),
      });
    if (build.state === 'failure')
      return yield* finish({
        ...base,
        outcome: 'Failed',
        code: 'ODOOSH.BUILD_FAILED',
        reason: `Odoo.sh build failed${build.description ? `: ${build.description}` : ''}${build.targetUrl ? ` (${build.targetUrl})` : ''}`,
        previousSha: pre.previousSha,
        waitedMs: now() - waitStart,
        ...(build.targetUrl ? { targetUrl: build.targetUrl } : {}),
      });
    if (now() >= deadline)
      return yield* finish({
        ...base,
        outcome: 'TimedOut',
        code: 'ODOOSH.TIMEOUT',
        reason: `no ci/odoo.sh (${r.stage}) status for ${r.sha.slice(0, 7)} after ${odooShWaitText(r.waitMinutes)}`,
        previousSha: pre.previousSha,
        waitedMs: now() - waitStart,
      });
    show('waiting-for-odoo.sh', { build: build.description ?? 'pending' });
    // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
    yield context.df.createTimer(new Date(Math.min(deadline, now() + r.pollSeconds * 1000)));
  }
};

df.app.orchestration(DEPLOY_ODOOSH, deployOdooSh);
