/**
 * deployProd — the PROD deploy after human approval, top to bottom like the runbook (deterministic:
 * every side effect is an activity of functions/activities/prod.ts; settings come from `prodPrepare`).
 * Runs in the PROD lane (`lane-prod`, one piece of work at a time), instance id
 * `deploy-prod-<version>-<sha12>[-r<n>]`.
 *
 *  0 prepare: the version succeeded on UAT (ledger), approvers, signing key, Slack, what PROD runs now
 *  1 Slack: one signed link per approver (the ACTIVITY signs; nonces from newGuid, expiry from the
 *    orchestration clock). Four-eyes: the requester gets no link, and a decision of theirs is refused.
 *  (steps 1-2 and the rollback decision of 7 are ./approval-gate.ts, shared with deployOdooSh)
 *  2 wait for `approval-decision` events raced against a durable timer (each timer ≤ 6 days, looped
 *    up to APPROVAL_TIMEOUT_HOURS; the losing timer is cancelled), a reminder before expiry, N distinct
 *    approvals; one reject by an allowed approver ends it. Every decision, accepted or refused, goes to
 *    the output and to the ledger container.
 *  3 promote uat-vX.Y.Z → prod-vX.Y.Z by manifest copy (digest unchanged, checked against UAT's)
 *  4 full backup (DB + filestore + running image reference; ARM data-disk snapshots when configured), verified
 *  5 preflight, pull, stop, migrate, start, health, then stable for PROD_HEALTH_STABLE_SECONDS (several probes)
 *  6 success: ledger, GitHub deployment status, Slack, keep the last PROD tags
 *  7 failure before the stop: Failed, nothing changed. After it: logs saved, alert + one signed ROLLBACK
 *    link per approver, wait (timer-bounded) for a `rollback` decision, which runs the rollback
 *    (stop new, restore step 4's backup, start the previous image, health). PROD_AUTO_ROLLBACK: at once.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import { codeOf, reasonOf, type ReleaseRef } from '../../shared/domain/deploy-plan';
import type { CompensationAction, HealthOut, PreflightOut, PullOut, NotifyEvent } from '../activities/deploy';
import type {
  AnnounceKind,
  ApprovalSummary,
  CommitRange,
  ProdBackupOut,
  ProdPrepareOut,
  UatResult,
} from '../activities/prod';
import { approvalGate, newApprovalState, type DecisionRecord, type PendingApproval } from './approval-gate';
import { vmJobBackup, vmJobId } from '../../shared/domain/vm-job';
import { StepFailure, stepRunner } from './step';
import { awaitVmJob, restoreRestart } from './vm-job';

// the approval contract lives in ./approval-gate (shared with deployOdooSh); re-exported for callers of this module
export {
  APPROVAL_EVENT,
  MAX_TIMER_MS,
  judgeDecision,
  type ApprovalDecision,
  type DecisionRecord,
  type PendingApproval,
} from './approval-gate';

export const DEPLOY_PROD = 'deployProd';

export type ProdStep =
  | 'prepare'
  | 'request-approval'
  | 'awaiting-approval'
  | 'promote'
  | 'preflight'
  | 'backup'
  | 'pull'
  | 'stop'
  | 'migrate'
  | 'start'
  | 'health'
  | 'health-stable'
  | 'record'
  | 'retention'
  | 'awaiting-rollback-decision'
  | 'rollback'
  | 'done';

/** Steps from which on PROD is (or may be) changed: a failure offers the rollback. */
const CHANGED_STEPS: readonly ProdStep[] = ['stop', 'migrate', 'start', 'health', 'health-stable'];
const NO_RETRY: readonly ProdStep[] = ['migrate', 'health', 'health-stable'];

export type ProdOutcome = 'Succeeded' | 'Rejected' | 'Expired' | 'Failed' | 'RolledBack' | 'NeedsAttention';

/** The input: the API's request (the lane passes the whole request). */
export interface ProdDeployInput {
  environment: 'prod';
  version: string;
  sha: string;
  /** the UAT image `…:uat-vX.Y.Z` */
  imageRef: string;
  /** the authenticated caller's canonical id (`entra:<oid>` / `key:<id>`), never a body field */
  requestedBy: string;
  /** the caller's sign-in names (e-mail, UPN), lower case: four-eyes also matches approvers configured by e-mail */
  requesterEmails?: string[];
  /** how the requester is shown (sign-in name, or the key id with its caller's label) */
  requestedByName?: string;
  reason: string;
  requestedAt?: string;
  [extra: string]: unknown;
}

export interface ProdCustomStatus {
  kind: 'deployProd';
  step: ProdStep;
  environment: string;
  version: string;
  sha: string;
  requestedBy: string;
  reason: string;
  imageRef?: string;
  commitRange?: CommitRange;
  uat?: UatResult;
  /** what PROD runs now (before this deploy) */
  previousVersion?: string;
  approvals: { required: number; received: Array<{ approver: string; at: string }> };
  pendingApprovals: PendingApproval[];
  /** when the open links expire */
  expiresAt?: string;
  startedAt: string;
  elapsedMs: number;
  durations: Record<string, number>;
  backupId?: string;
  prodState?: ProdState;
  outcome?: ProdOutcome;
  failure?: string;
  /** the step that failed (the rollback page says what failed while doing what) */
  failedStep?: ProdStep;
}

/** What PROD looks like at the end (or while a rollback decision is awaited). */
export type ProdState =
  | 'unchanged'
  | 'running-new'
  | 'stopped'
  | 'running-new-unhealthy'
  | 'rolled-back'
  | 'unknown';

export interface ProdDeployResult {
  outcome: ProdOutcome;
  environment: string;
  version: string;
  sha: string;
  requestedBy: string;
  reason: string;
  code?: string;
  failure?: string;
  failedStep?: ProdStep;
  prodState: ProdState;
  approvals: Array<{ approver: string; at: string }>;
  decisions: DecisionRecord[];
  previous?: ReleaseRef;
  imageRef?: string;
  imageDigest?: string;
  backupId?: string;
  snapshots?: string[];
  rollback?: { by: string; at: string; auto: boolean; ok: boolean; error?: string };
  logs?: string[];
  durations: Record<string, number>;
  totalMs: number;
  downtimeMs?: number;
}

function validateInput(i: unknown): string[] {
  const r = i as Partial<ProdDeployInput> | null;
  if (!r || typeof r !== 'object') return ['the input must be an object'];
  const p: string[] = [];
  if (r.environment !== 'prod') p.push('environment must be "prod"');
  if (typeof r.version !== 'string' || !/^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$/.test(r.version))
    p.push('version must be like 1.2.3');
  if (typeof r.sha !== 'string' || !/^[0-9a-f]{7,40}$/.test(r.sha)) p.push('sha must be a hex commit id');
  if (typeof r.imageRef !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/.test(r.imageRef))
    p.push('imageRef must be an image reference');
  if (typeof r.requestedBy !== 'string' || !r.requestedBy.trim()) p.push('requestedBy is required');
  if (typeof r.reason !== 'string' || !r.reason.trim()) p.push('reason is required');
  return p;
}

export const deployProd: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = context.df.getInput() as ProdDeployInput;
  const id = context.df.instanceId;
  const startedAt = context.df.currentUtcDateTime;
  const now = () => context.df.currentUtcDateTime.getTime();
  // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
  const iso = (ms: number) => new Date(ms).toISOString();
  const durations: Record<string, number> = {};
  const gateState = newApprovalState();
  const { decisions, received } = gateState;
  const status: ProdCustomStatus = {
    kind: 'deployProd',
    step: 'prepare',
    environment: 'prod',
    version: String(input?.version ?? '?'),
    sha: String(input?.sha ?? '?'),
    requestedBy: String(input?.requestedByName ?? input?.requestedBy ?? '?'), // shown; the gate compares input.requestedBy
    reason: String(input?.reason ?? ''),
    approvals: { required: 1, received },
    pendingApprovals: gateState.pending,
    startedAt: startedAt.toISOString(),
    elapsedMs: 0,
    durations,
  };
  const show = (step: ProdStep, extra: Partial<ProdCustomStatus> = {}) => {
    Object.assign(status, extra, {
      step,
      pendingApprovals: gateState.pending,
      elapsedMs: now() - startedAt.getTime(),
    });
    context.df.setCustomStatus(status);
  };
  const log = (msg: string) => {
    if (!context.df.isReplaying) context.info(`[${id}] ${msg}`);
  };
  const result = (outcome: ProdOutcome, extra: Partial<ProdDeployResult>): ProdDeployResult => {
    const r: ProdDeployResult = {
      outcome,
      environment: 'prod',
      version: status.version,
      sha: status.sha,
      requestedBy: status.requestedBy,
      reason: status.reason,
      prodState: 'unchanged',
      approvals: received,
      decisions,
      durations,
      totalMs: now() - startedAt.getTime(),
      ...extra,
    };
    gateState.pending = [];
    show('done', { outcome, failure: r.failure, prodState: r.prodState, expiresAt: undefined });
    return r;
  };

  const problems = validateInput(input);
  if (problems.length)
    return result('Failed', {
      code: 'DEPLOY.BAD_INPUT',
      failure: `[DEPLOY.BAD_INPUT] ${problems.join('; ')}`,
    });

  let retry = new df.RetryOptions(1000, 3);

  /** ./step: every step but NO_RETRY's is retried; failures (thrown or `{ failed }`) become StepFailure */
  const step = stepRunner<ProdStep>(context, {
    show,
    durations,
    retry: () => retry,
    retried: (name) => !NO_RETRY.includes(name),
    codeOf,
    reasonOf,
  });
  /** never fails the deploy (the activities swallow errors, and so do we) */
  function* quiet<T>(activity: string, payload: unknown): Generator<Task, T | undefined, unknown> {
    try {
      return (yield context.df.callActivity(activity, payload)) as T;
    } catch (err) {
      log(`${activity} failed (ignored): ${reasonOf(err)}`);
      return undefined;
    }
  }
  const announce = (kind: AnnounceKind, detail?: string) =>
    quiet('prodAnnounce', {
      kind,
      version: status.version,
      environment: 'prod',
      requestedBy: status.requestedBy,
      detail,
    });

  // ---- 0. prepare -------------------------------------------------------------------------------
  let prep: ProdPrepareOut;
  try {
    prep = yield* step<ProdPrepareOut>('prepare', 'prodPrepare', {
      environment: 'prod',
      version: input.version,
      sha: input.sha,
      imageRef: input.imageRef,
      instanceId: id,
      requestedBy: input.requestedBy,
      requesterEmails: input.requesterEmails,
    });
  } catch (e) {
    const f = e as StepFailure<ProdStep>;
    yield* announce('not-started', f.message);
    return result('Failed', { code: f.code, failure: f.message, failedStep: 'prepare' });
  }
  const settings = prep.settings;
  const policy = prep.policy;
  retry = new df.RetryOptions(Math.max(1, settings.retryFirstMs), Math.max(1, settings.retryAttempts));
  retry.backoffCoefficient = 2;
  retry.maxRetryIntervalInMilliseconds = Math.max(settings.retryFirstMs * 8, 1);
  const previous = prep.running;
  Object.assign(status, {
    imageRef: prep.prodImageRef,
    commitRange: prep.commitRange,
    uat: prep.uat,
    previousVersion: previous?.version,
    approvals: { required: policy.required, received },
  });

  const summary = (expiresAt: string, extra: Partial<ApprovalSummary> = {}): ApprovalSummary => ({
    environment: 'prod',
    version: input.version,
    sha: input.sha,
    requestedBy: status.requestedBy,
    reason: input.reason,
    commitRange: prep.commitRange,
    uat: prep.uat,
    required: policy.required,
    fourEyes: policy.fourEyes,
    expiresAt,
    statusUrl: prep.statusUrl,
    ...extra,
  });

  const gate = approvalGate(context, {
    policy,
    requestedBy: input.requestedBy,
    requestedByName: input.requestedByName,
    state: gateState,
    summary,
    hooks: {
      call: (name, activity, payload) => step(name as ProdStep, activity, payload),
      quiet: (activity, payload) => quiet(activity, payload),
      show: (name, extra) => show((name as ProdStep | undefined) ?? status.step, extra),
      announce,
      log,
    },
  });

  // ---- 1..2 the approval request and the wait (./approval-gate) -----------------------------------
  const approval = yield* gate.requestApproval({ approvedNote: 'deploying now' });
  if (approval.verdict === 'failed')
    return result('Failed', {
      code: approval.code,
      failure: approval.failure,
      failedStep: 'request-approval',
    });
  if (approval.verdict === 'rejected') return result('Rejected', { failure: approval.failure, previous });
  if (approval.verdict === 'expired') return result('Expired', { failure: approval.failure, previous });
  show('promote', { expiresAt: undefined });

  // ---- 3..6 the deploy ---------------------------------------------------------------------------
  let githubDeploymentId: number | undefined;
  let backup: ProdBackupOut | undefined;
  let digest: string | undefined;
  let downStart: number | undefined;
  let downtimeMs: number | undefined;
  let startedNew = false;
  let runningImage: string | undefined;
  const prodRef = prep.prodImageRef;
  const notice = (kind: NotifyEvent['kind'], extra: Partial<NotifyEvent> = {}): NotifyEvent => ({
    kind,
    environment: 'prod',
    version: input.version,
    sha: input.sha,
    imageRef: prodRef,
    mergedBy: input.requestedBy,
    instanceId: id,
    githubDeploymentId,
    url: settings.url,
    previous,
    ...extra,
  });

  try {
    const started = yield* quiet<Record<string, unknown>>('prodNotify', notice('started'));
    if (typeof started?.githubDeploymentId === 'number') githubDeploymentId = started.githubDeploymentId;

    // 3. promote (no rebuild: the digest UAT ran)
    const promoted = yield* step<{ digest: string }>('promote', 'prodPromote', {
      uatImageRef: input.imageRef,
      prodImageRef: prodRef,
      expectDigest: prep.uat.imageDigest,
    });
    digest = promoted.digest;

    const pre = yield* step<PreflightOut>('preflight', 'prodPreflight', { settings, imageRef: prodRef });
    runningImage = previous?.imageRef ?? pre.runningImage;
    const mods = yield* step<{ modules: string; reason: string }>('preflight', 'prodModules', {
      previous,
      sha: input.sha,
      force: false,
    });

    // 4. full backup, verified (+ disk snapshots)
    // a detached job on the VM that uploads straight to Blob, polled with durable timers (as migrate)
    const backupJob = yield* awaitVmJob(context, step, {
      step: 'backup',
      startActivity: 'prodBackupStart',
      startInput: {
        environment: 'prod',
        version: input.version,
        sha: input.sha,
        instanceId: id,
        running: previous,
        prodImageRef: prodRef,
        snapshot: prep.diskSnapshot,
        jobId: vmJobId(id, 'backup'),
        at: context.df.currentUtcDateTime.toISOString(),
      },
      statusActivity: 'prodJobStatus',
      pollSeconds: settings.jobPollSeconds,
      deadlineMinutes: settings.jobDeadlineMinutes,
      what: 'backup',
    });
    const written = vmJobBackup(backupJob);
    if (!written)
      throw new StepFailure(
        'backup',
        'BACKUP.FAILED',
        `[BACKUP.FAILED] the backup job ${backupJob.id} ended without reporting its manifest`,
      );
    // read back and hashed against the manifest (the running image and snapshots come from it)
    backup = yield* step<ProdBackupOut>('backup', 'prodBackupVerify', { backupId: written.backupId });
    runningImage = runningImage ?? backup.runningImage;
    show('backup', { backupId: backup.backupId });

    // 5. pull (nothing stopped yet), stop, migrate, start, health, stability
    const pulled = yield* step<PullOut>('pull', 'prodPull', { environment: 'prod', imageRef: prodRef });
    // the VM reports the first repo digest docker knows for the image: informative, the registry is authoritative
    if (pulled.digest && pulled.digest !== digest)
      log(`the VM reports digest ${pulled.digest} for ${prodRef} (promoted ${digest})`);
    // nothing stops unless the backup that would undo it is readable right now (as deployUat)
    yield* step('backup', 'prodConfirmBackup', { backupId: backup.backupId });
    downStart = now();
    yield* step('stop', 'prodStop', { environment: 'prod' });
    // as a detached job on the VM, polled with durable timers (as deployUat)
    if (mods.modules)
      yield* awaitVmJob(context, step, {
        step: 'migrate',
        startActivity: 'prodMigrateStart',
        startInput: {
          environment: 'prod',
          imageRef: prodRef,
          modules: mods.modules,
          jobId: vmJobId(context.df.instanceId, 'migrate'),
        },
        statusActivity: 'prodJobStatus',
        pollSeconds: settings.jobPollSeconds,
        deadlineMinutes: settings.jobDeadlineMinutes,
        what: 'migration',
      });
    startedNew = true;
    yield* step('start', 'prodStart', { environment: 'prod', imageRef: prodRef });
    const health = yield* step<HealthOut>('health', 'prodHealth', { settings, imageRef: prodRef });
    if (!health.healthy)
      throw new StepFailure(
        'health',
        'DEPLOY.UNHEALTHY',
        `[DEPLOY.UNHEALTHY] ${input.version} is not healthy on PROD: ${health.failures.join('; ')}`,
      );
    const stable = Math.max(0, prep.healthStableSeconds);
    const probes = stable === 0 ? 1 : Math.max(3, Math.min(10, Math.ceil(stable / 10) + 1));
    const gapMs = probes > 1 ? Math.round((stable * 1000) / (probes - 1)) : 0;
    for (let k = 0; k < probes; k++) {
      // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
      if (k > 0 && gapMs > 0) yield context.df.createTimer(new Date(now() + gapMs));
      const p = yield* step<HealthOut>('health-stable', 'prodProbe', { settings, imageRef: prodRef });
      if (!p.healthy)
        throw new StepFailure(
          'health-stable',
          'DEPLOY.UNSTABLE',
          `[DEPLOY.UNSTABLE] ${input.version} became unhealthy on PROD during the ${stable} s stability check (probe ${k + 1}/${probes}): ${p.failures.join('; ')}`,
        );
    }
    downtimeMs = now() - (downStart ?? now());

    // 6. success
    const totalMs = now() - startedAt.getTime();
    yield* step('record', 'prodRecord', {
      ...notice('succeeded'),
      imageDigest: digest,
      coverage: prep.uat.coverage,
      backupId: backup.backupId,
      durations,
      totalMs,
      downtimeMs,
      modules: mods.modules,
      previousVersion: previous?.version,
      approvedBy: received.map((r) => r.approver),
      requestedBy: input.requestedBy,
      reason: input.reason,
    });
    yield* quiet(
      'prodNotify',
      notice('succeeded', { durations, totalMs, downtimeMs, backupId: backup.backupId }),
    );
    show('retention');
    yield* quiet('prodRetention', { settings, running: prodRef, previous: runningImage });
    return result('Succeeded', {
      prodState: 'running-new',
      previous,
      imageRef: prodRef,
      imageDigest: digest,
      backupId: backup.backupId,
      snapshots: backup.snapshots,
      downtimeMs,
    });
  } catch (e) {
    const f: StepFailure<ProdStep> =
      e instanceof StepFailure ? e : new StepFailure(status.step, codeOf(e), reasonOf(e));
    log(`step ${f.step} failed: ${f.message}`);
    const base = {
      code: f.code,
      failure: f.message,
      failedStep: f.step,
      previous,
      imageRef: prodRef,
      imageDigest: digest,
      backupId: backup?.backupId,
      snapshots: backup?.snapshots,
    };
    if (!CHANGED_STEPS.includes(f.step)) {
      yield* quiet(
        'prodNotify',
        notice('failed', {
          reason: f.message,
          code: f.code,
          failedStep: f.step,
          backupId: backup?.backupId,
          durations,
          totalMs: now() - startedAt.getTime(),
        }),
      );
      return result('Failed', { ...base, prodState: 'unchanged' });
    }

    // ---- 7. PROD changed: logs, alert, rollback (offered, or at once when configured) -----------
    const prodState: ProdState = !startedNew
      ? 'stopped'
      : f.step === 'start'
        ? 'unknown'
        : 'running-new-unhealthy';
    const saved = yield* quiet<{ logs?: string[] }>('prodSaveLogs', {
      backupId: backup?.backupId,
      environment: 'prod',
      instanceId: id,
    });
    const logs = saved?.logs ?? [];
    yield* quiet('prodGithubStatus', {
      githubDeploymentId,
      state: 'failure',
      description: `failed at ${f.step}: ${f.message}`,
      logUrl: prep.statusUrl,
    });
    show('awaiting-rollback-decision', { failure: f.message, failedStep: f.step, prodState });

    let rollbackBy = 'PROD_AUTO_ROLLBACK';
    if (!prep.autoRollback) {
      const rbDeadline = now() + policy.timeoutMs;
      try {
        yield* gate.post('rollback', 'awaiting-rollback-decision', policy.approvers, rbDeadline, {
          failure: f.message,
          failedStep: f.step,
          prodState,
          previousVersion: previous?.version ?? runningImage,
          backupId: backup?.backupId,
        });
      } catch (err) {
        // the links could not be posted: the alert still goes out; the operator rolls back by hand
        yield* announce(
          'rollback-expired',
          `the rollback links could not be posted (${reasonOf(err)}); ${f.message}. PROD is ${prodState}: follow docs/ROLLBACK_GUIDE.md by hand`,
        );
        return result('NeedsAttention', {
          ...base,
          prodState,
          logs,
          downtimeMs: now() - (downStart ?? now()),
        });
      }
      show('awaiting-rollback-decision', { expiresAt: iso(rbDeadline) });
      const rb = yield* gate.decide('rollback', rbDeadline);
      gateState.pending = [];
      if (rb.verdict !== 'rollback') {
        yield* announce(
          'rollback-expired',
          `no rollback decision before ${iso(rbDeadline)}; PROD is ${prodState} after: ${f.message}`,
        );
        return result('NeedsAttention', {
          ...base,
          prodState,
          logs,
          downtimeMs: now() - (downStart ?? now()),
        });
      }
      rollbackBy = rb.by ?? '?';
    }
    yield* announce(
      'rollback-started',
      `by ${rollbackBy}: restoring backup ${backup?.backupId ?? '?'} and starting ${previous?.version ?? runningImage ?? 'the previous image'}`,
    );
    show('rollback', { expiresAt: undefined });
    const compensations: CompensationAction[] = [{ action: 'stop-new' }];
    if (backup) compensations.push({ action: 'restore', backupId: backup.backupId });
    compensations.push({ action: 'start-previous', image: runningImage }, { action: 'health' });
    let ok = true;
    let error: string | undefined;
    for (const c of compensations) {
      try {
        if (c.action === 'restore') {
          // stop, then a restore job on the VM reading the backup from Blob, polled with durable timers
          yield* awaitVmJob(context, step, {
            step: 'rollback',
            startActivity: 'prodRestoreStart',
            startInput: {
              environment: 'prod',
              backupId: c.backupId,
              jobId: vmJobId(context.df.instanceId, 'restore'),
            },
            statusActivity: 'prodJobStatus',
            pollSeconds: settings.jobPollSeconds,
            deadlineMinutes: settings.jobDeadlineMinutes,
            what: 'restore',
            restart: restoreRestart((n) => vmJobId(context.df.instanceId, `restore-${n}`)),
          });
          continue;
        }
        const r =
          (yield* step<{ healthy?: boolean; failures?: string[] }>('rollback', 'prodCompensate', {
            ...c,
            settings,
          })) ?? {};
        if (c.action === 'health' && r.healthy === false) {
          ok = false;
          error = `the previous version is not healthy after the rollback: ${(r.failures ?? []).join('; ')}`;
          break;
        }
      } catch (err) {
        ok = false;
        error = `${c.action} failed: ${reasonOf(err)}`;
        break;
      }
    }
    downtimeMs = now() - (downStart ?? now());
    const rollback = { by: rollbackBy, at: iso(now()), auto: prep.autoRollback, ok, error };
    const totalMs = now() - startedAt.getTime();
    yield* quiet(
      'prodNotify',
      notice(ok ? 'rolled-back' : 'needs-attention', {
        reason: ok ? f.message : `${f.message} — ROLLBACK FAILED: ${error}`,
        code: f.code,
        failedStep: f.step,
        logs,
        backupId: backup?.backupId,
        durations,
        totalMs,
        downtimeMs,
      }),
    );
    return result(ok ? 'RolledBack' : 'NeedsAttention', {
      ...base,
      prodState: ok ? 'rolled-back' : 'unknown',
      rollback,
      logs,
      downtimeMs,
    });
  }
};

df.app.orchestration(DEPLOY_PROD, deployProd);
