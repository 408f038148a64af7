/**
 * Deploy a release to Odoo.sh (runbook order):
 *   1. preflight: the release commit passed the gate; the move of the tracked branch is a fast-forward
 *      (a non-fast-forward is refused unless forced, and says why)
 *   2. a production-stage branch is refused: PROD's approval rules are not wired to this target yet
 *   3. move the branch through the GitHub API
 *   4. wait for Odoo.sh's commit status (`ci/odoo.sh (<stage>)`) with durable timers, bounded
 *   5. record + notify: success, failure (with Odoo.sh's build URL) or timeout
 * Deterministic: all I/O in activities (functions/activities/odoosh.ts).
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler } from 'durable-functions';
import type { OdooShBuild, OdooShRequest, OdooShResult } from '../../shared/domain/odoosh';
import type { OdooShPreflightOut } from '../activities/odoosh';

export const DEPLOY_ODOOSH = 'deployOdooSh';

export interface OdooShCustomStatus {
  kind: 'deployOdooSh';
  step: 'preflight' | 'move' | 'waiting-for-odoo.sh' | 'done';
  branch: string;
  stage: string;
  environment: string;
  version: string;
  sha: string;
  startedAt: string;
  elapsedMs: number;
  build?: string;
  outcome?: string;
  reason?: string;
}

const codeOf = (message: string): string | undefined => /\[([A-Z]+\.[A-Z_]+)\]/.exec(message)?.[1];

export const deployOdooSh: OrchestrationHandler = function* (context: OrchestrationContext) {
  const r = context.df.getInput() as OdooShRequest;
  const started = context.df.currentUtcDateTime.getTime();
  const now = () => context.df.currentUtcDateTime.getTime();
  const status: OdooShCustomStatus = {
    kind: 'deployOdooSh',
    step: 'preflight',
    branch: r.branch,
    stage: r.stage,
    environment: `odoosh-${r.branch}`,
    version: r.version,
    sha: r.sha,
    startedAt: context.df.currentUtcDateTime.toISOString(),
    elapsedMs: 0,
  };
  const show = (step: OdooShCustomStatus['step'], extra: Partial<OdooShCustomStatus> = {}) => {
    Object.assign(status, extra, { step, elapsedMs: now() - started });
    context.df.setCustomStatus(status);
  };
  const retry = new df.RetryOptions(5000, 3);
  const base = { branch: r.branch, stage: r.stage, version: r.version, sha: r.sha };

  function* finish(result: OdooShResult): Generator<df.Task, OdooShResult, unknown> {
    show('done', { outcome: result.outcome, reason: result.reason, ...(result.targetUrl ? { build: result.targetUrl } : {}) });
    try {
      yield context.df.callActivity('odooShFinish', { request: r, result, instanceId: context.df.instanceId });
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
    return yield* finish({ ...base, outcome: 'Failed', code: codeOf(message) ?? 'ODOOSH.PREFLIGHT', reason: `preflight failed: ${message}` });
  }
  if (!pre.ok) return yield* finish({ ...base, outcome: 'Refused', code: pre.code, reason: pre.reason, previousSha: pre.previousSha });

  if (r.stage === 'production') {
    // PROD's approval rules (signed links, allowlist, four-eyes) are not wired to the Odoo.sh target yet:
    // never move a production branch without them
    return yield* finish({ ...base, outcome: 'Refused', code: 'ODOOSH.APPROVAL_UNAVAILABLE', reason: `${r.branch} is an Odoo.sh production branch: production moves need PROD approvals, not available for Odoo.sh yet; move it by hand after approval`, previousSha: pre.previousSha });
  }

  if (pre.plan?.move) {
    show('move', { reason: pre.reason });
    try {
      yield context.df.callActivityWithRetry('odooShMove', retry, { branch: r.branch, sha: r.sha, force: r.force, create: pre.createBranch === true });
    } catch (err) {
      const message = (err as Error).message;
      return yield* finish({ ...base, outcome: 'Failed', code: codeOf(message) ?? 'ODOOSH.MOVE_FAILED', reason: `moving ${r.branch} failed: ${message}`, previousSha: pre.previousSha });
    }
  }

  // wait for Odoo.sh's build of that commit, bounded
  const deadline = started + r.waitMinutes * 60_000;
  show('waiting-for-odoo.sh');
  for (;;) {
    let build: OdooShBuild = { state: 'pending' };
    try {
      build = (yield context.df.callActivityWithRetry('odooShBuild', retry, { sha: r.sha, stage: r.stage })) as OdooShBuild;
    } catch {
      // GitHub unreachable for a while: keep waiting until the deadline
    }
    if (build.state === 'success')
      return yield* finish({ ...base, outcome: 'Succeeded', reason: build.description ?? `Odoo.sh built ${r.version} on ${r.branch}`, previousSha: pre.previousSha, waitedMs: now() - started, ...(build.targetUrl ? { targetUrl: build.targetUrl } : {}) });
    if (build.state === 'failure')
      return yield* finish({ ...base, outcome: 'Failed', code: 'ODOOSH.BUILD_FAILED', reason: `Odoo.sh build failed${build.description ? `: ${build.description}` : ''}${build.targetUrl ? ` (${build.targetUrl})` : ''}`, previousSha: pre.previousSha, waitedMs: now() - started, ...(build.targetUrl ? { targetUrl: build.targetUrl } : {}) });
    if (now() >= deadline)
      return yield* finish({ ...base, outcome: 'TimedOut', code: 'ODOOSH.TIMEOUT', reason: `no ci/odoo.sh (${r.stage}) status for ${r.sha.slice(0, 7)} after ${r.waitMinutes} min`, previousSha: pre.previousSha, waitedMs: now() - started });
    show('waiting-for-odoo.sh', { build: build.description ?? 'pending' });
    // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
    yield context.df.createTimer(new Date(Math.min(deadline, now() + r.pollSeconds * 1000)));
  }
};

df.app.orchestration(DEPLOY_ODOOSH, deployOdooSh);
