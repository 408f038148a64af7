/**
 * deployProd — the PROD deploy after human approval, top to bottom like the runbook (deterministic:
 * every side effect is an activity of functions/activities/prod.ts; settings come from `prodPrepare`).
 * Runs in the PROD lane (`lane-prod`, one piece of work at a time), instance id
 * `deploy-prod-<version>-<sha12>[-r<n>]`.
 *
 *  0 prepare: the version succeeded on UAT (ledger), approvers, signing key, Slack, what PROD runs now
 *  1 Slack: one signed link per approver (the ACTIVITY signs; nonces from newGuid, expiry from the
 *    orchestration clock). Four-eyes: the requester gets no link, and a decision of theirs is refused.
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
import type { OrchestrationContext, OrchestrationHandler, Task, TimerTask } from 'durable-functions';
import { codeOf, reasonOf, type ReleaseRef } from '../../shared/domain/deploy-plan';
import type { ApprovalAction } from '../../shared/domain/approval-token';
import type { ActivityFailure, CompensationAction, HealthOut, PreflightOut, PullOut, NotifyEvent } from '../activities/deploy';
import type { AnnounceKind, ApprovalSummary, CommitRange, DecisionLogEntry, LinkRequest, ProdBackupOut, ProdMessageKind, ProdPrepareOut, UatResult } from '../activities/prod';

export const DEPLOY_PROD = 'deployProd';
export const APPROVAL_EVENT = 'approval-decision';
/** durable-functions JS timers are limited to 6 days each: longer waits loop */
export const MAX_TIMER_MS = 6 * 24 * 3600_000;

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
  requestedBy: string;
  reason: string;
  requestedAt?: string;
  [extra: string]: unknown;
}

/** What `POST /api/approvals/{token}` raises (the approval contract). */
export interface ApprovalDecision {
  nonce: string;
  approver: string;
  action: 'approve' | 'reject' | 'rollback';
  comment?: string;
  ip?: string;
  userAgent?: string;
  decidedAt?: string;
}

export interface PendingApproval {
  approver: string;
  nonce: string;
  action: ApprovalAction;
  expiresAt: string;
}

export interface DecisionRecord extends ApprovalDecision {
  verdict: 'accepted' | 'refused';
  /** why a decision was refused: not-pending | wrong-action | approver-mismatch | not-allowlisted | four-eyes | malformed */
  why?: string;
  receivedAt: string;
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
}

/** What PROD looks like at the end (or while a rollback decision is awaited). */
export type ProdState = 'unchanged' | 'running-new' | 'stopped' | 'running-new-unhealthy' | 'rolled-back' | 'unknown';

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

class StepFailure extends Error {
  constructor(
    readonly step: ProdStep,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Judge one decision against what is pending (pure). Order: shape, allowlist, four-eyes, nonce pending,
 * action matches the link, approver matches the link.
 */
export function judgeDecision(
  d: unknown,
  pending: readonly PendingApproval[],
  policy: { approvers: readonly string[]; fourEyes: boolean; requestedBy: string },
): { ok: true; decision: ApprovalDecision; pending: PendingApproval } | { ok: false; why: string; decision: ApprovalDecision } {
  const r = (d && typeof d === 'object' ? d : {}) as Partial<Record<keyof ApprovalDecision, unknown>>;
  const str = (v: unknown, max: number) => (typeof v === 'string' ? v.slice(0, max) : undefined);
  const decision: ApprovalDecision = {
    nonce: str(r.nonce, 100) ?? '',
    approver: str(r.approver, 200) ?? '',
    action: (['approve', 'reject', 'rollback'].includes(r.action as string) ? r.action : 'reject') as ApprovalDecision['action'],
    comment: str(r.comment, 2000),
    ip: str(r.ip, 100),
    userAgent: str(r.userAgent, 400),
    decidedAt: str(r.decidedAt, 40),
  };
  if (!decision.nonce || !decision.approver || !['approve', 'reject', 'rollback'].includes(r.action as string)) return { ok: false, why: 'malformed', decision };
  if (!policy.approvers.includes(decision.approver)) return { ok: false, why: 'not-allowlisted', decision };
  if (policy.fourEyes && decision.action === 'approve' && decision.approver === policy.requestedBy) return { ok: false, why: 'four-eyes', decision };
  const p = pending.find((x) => x.nonce === decision.nonce);
  if (!p) return { ok: false, why: 'not-pending', decision };
  const fits = p.action === 'approval' ? decision.action === 'approve' || decision.action === 'reject' : decision.action === 'rollback';
  if (!fits) return { ok: false, why: 'wrong-action', decision };
  if (p.approver !== decision.approver) return { ok: false, why: 'approver-mismatch', decision };
  return { ok: true, decision, pending: p };
}

function validateInput(i: unknown): string[] {
  const r = i as Partial<ProdDeployInput> | null;
  if (!r || typeof r !== 'object') return ['the input must be an object'];
  const p: string[] = [];
  if (r.environment !== 'prod') p.push('environment must be "prod"');
  if (typeof r.version !== 'string' || !/^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$/.test(r.version)) p.push('version must be like 1.2.3');
  if (typeof r.sha !== 'string' || !/^[0-9a-f]{7,40}$/.test(r.sha)) p.push('sha must be a hex commit id');
  if (typeof r.imageRef !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/.test(r.imageRef)) p.push('imageRef must be an image reference');
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
  const decisions: DecisionRecord[] = [];
  const received: Array<{ approver: string; at: string }> = [];
  let pending: PendingApproval[] = [];
  const status: ProdCustomStatus = {
    kind: 'deployProd',
    step: 'prepare',
    environment: 'prod',
    version: String(input?.version ?? '?'),
    sha: String(input?.sha ?? '?'),
    requestedBy: String(input?.requestedBy ?? '?'),
    reason: String(input?.reason ?? ''),
    approvals: { required: 1, received },
    pendingApprovals: pending,
    startedAt: startedAt.toISOString(),
    elapsedMs: 0,
    durations,
  };
  const show = (step: ProdStep, extra: Partial<ProdCustomStatus> = {}) => {
    Object.assign(status, extra, { step, pendingApprovals: pending, elapsedMs: now() - startedAt.getTime() });
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
    pending = [];
    show('done', { outcome, failure: r.failure, prodState: r.prodState, expiresAt: undefined });
    return r;
  };

  const problems = validateInput(input);
  if (problems.length) return result('Failed', { code: 'DEPLOY.BAD_INPUT', failure: `[DEPLOY.BAD_INPUT] ${problems.join('; ')}` });

  let retry = new df.RetryOptions(1000, 3);

  function* step<T>(name: ProdStep, activity: string, payload: unknown): Generator<Task, T, unknown> {
    show(name);
    const t0 = now();
    let out: unknown;
    try {
      out = NO_RETRY.includes(name) ? yield context.df.callActivity(activity, payload) : yield context.df.callActivityWithRetry(activity, retry, payload);
    } catch (err) {
      durations[name] = (durations[name] ?? 0) + now() - t0;
      throw new StepFailure(name, codeOf(err), reasonOf(err));
    }
    durations[name] = (durations[name] ?? 0) + now() - t0;
    const failed = (out as { failed?: ActivityFailure } | null)?.failed;
    if (failed) throw new StepFailure(name, failed.code, failed.message);
    return out as T;
  }
  /** never fails the deploy (the activities swallow errors, and so do we) */
  function* quiet<T>(activity: string, payload: unknown): Generator<Task, T | undefined, unknown> {
    try {
      return (yield context.df.callActivity(activity, payload)) as T;
    } catch (err) {
      log(`${activity} failed (ignored): ${reasonOf(err)}`);
      return undefined;
    }
  }
  const announce = (kind: AnnounceKind, detail?: string) => quiet('prodAnnounce', { kind, version: status.version, environment: 'prod', requestedBy: status.requestedBy, detail });

  // ---- 0. prepare -------------------------------------------------------------------------------
  let prep: ProdPrepareOut;
  try {
    prep = yield* step<ProdPrepareOut>('prepare', 'prodPrepare', { environment: 'prod', version: input.version, sha: input.sha, imageRef: input.imageRef, instanceId: id });
  } catch (e) {
    const f = e as StepFailure;
    yield* announce('not-started', f.message);
    return result('Failed', { code: f.code, failure: f.message, failedStep: 'prepare' });
  }
  const settings = prep.settings;
  const policy = prep.policy;
  retry = new df.RetryOptions(Math.max(1, settings.retryFirstMs), Math.max(1, settings.retryAttempts));
  retry.backoffCoefficient = 2;
  retry.maxRetryIntervalInMilliseconds = Math.max(settings.retryFirstMs * 8, 1);
  const previous = prep.running;
  Object.assign(status, { imageRef: prep.prodImageRef, commitRange: prep.commitRange, uat: prep.uat, previousVersion: previous?.version, approvals: { required: policy.required, received } });

  const summary = (expiresAt: string, extra: Partial<ApprovalSummary> = {}): ApprovalSummary => ({
    environment: 'prod',
    version: input.version,
    sha: input.sha,
    requestedBy: input.requestedBy,
    reason: input.reason,
    commitRange: prep.commitRange,
    uat: prep.uat,
    required: policy.required,
    fourEyes: policy.fourEyes,
    expiresAt,
    statusUrl: prep.statusUrl,
    ...extra,
  });

  function newLinks(action: ApprovalAction, approvers: string[], expMs: number): PendingApproval[] {
    return approvers.map((approver) => ({ approver, action, nonce: context.df.newGuid(id), expiresAt: iso(expMs) }));
  }
  const linkRequests = (ps: PendingApproval[], exp: number): LinkRequest[] => ps.map((x) => ({ approver: x.approver, nonce: x.nonce, action: x.action, exp }));

  /**
   * Wait for decisions until one settles it or the deadline passes. Approvals: 'approved' once
   * `required` distinct approvers approved, 'rejected' on a reject; rollback links: 'rollback'.
   */
  function* decide(kind: 'approval' | 'rollback', deadline: number, reminderAt?: number): Generator<Task, { verdict: 'approved' | 'rejected' | 'rollback' | 'expired'; by?: string }, unknown> {
    let reminded = reminderAt === undefined || reminderAt >= deadline;
    let ev = context.df.waitForExternalEvent(APPROVAL_EVENT);
    for (;;) {
      if (!reminded && now() >= reminderAt!) {
        reminded = true;
        if (pending.length) {
          try {
            yield* step('awaiting-approval', 'prodRequestLinks', { kind: 'reminder' satisfies ProdMessageKind, instanceId: id, links: linkRequests(pending, deadline), summary: summary(iso(deadline)) });
          } catch (err) {
            log(`reminder failed (ignored): ${reasonOf(err)}`);
          }
        }
        continue;
      }
      if (now() >= deadline) return { verdict: 'expired' };
      let wake = Math.min(deadline, now() + MAX_TIMER_MS);
      if (!reminded) wake = Math.min(wake, reminderAt!);
      // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
      const timer: TimerTask = context.df.createTimer(new Date(wake));
      const winner = (yield context.df.Task.any([ev, timer])) as Task;
      if (winner !== ev) continue; // the timer fired: reminder, expiry or just the next ≤ 6-day leg
      timer.cancel();
      const raw = ev.result;
      ev = context.df.waitForExternalEvent(APPROVAL_EVENT);
      const j = judgeDecision(raw, pending, { approvers: policy.approvers, fourEyes: policy.fourEyes, requestedBy: input.requestedBy });
      const rec: DecisionRecord = { ...j.decision, verdict: j.ok ? 'accepted' : 'refused', why: j.ok ? undefined : j.why, receivedAt: iso(now()) };
      decisions.push(rec);
      yield* quiet('prodRecordDecision', { instanceId: id, ...rec } satisfies DecisionLogEntry);
      if (!j.ok) {
        log(`decision by ${rec.approver} refused: ${j.why}`);
        show(status.step);
        continue;
      }
      pending = pending.filter((x) => x.nonce !== j.pending.nonce); // a link decides once
      if (kind === 'rollback') return { verdict: 'rollback', by: rec.approver };
      if (j.decision.action === 'reject') return { verdict: 'rejected', by: rec.approver };
      if (!received.some((x) => x.approver === rec.approver)) received.push({ approver: rec.approver, at: rec.receivedAt });
      log(`approved by ${rec.approver} (${received.length}/${policy.required})`);
      if (received.length >= policy.required) return { verdict: 'approved' };
      show(status.step);
    }
  }

  // ---- 1. the approval request --------------------------------------------------------------------
  const linkTo = policy.fourEyes ? policy.approvers.filter((a) => a !== input.requestedBy) : policy.approvers;
  if (linkTo.length < policy.required) {
    const why = `[APPROVAL.NOT_ENOUGH_APPROVERS] ${policy.required} approval(s) needed but only ${linkTo.length} approver(s) may approve${policy.fourEyes ? ` (four-eyes: ${input.requestedBy} cannot approve their own request)` : ''}`;
    yield* announce('not-started', why);
    return result('Failed', { code: 'APPROVAL.NOT_ENOUGH_APPROVERS', failure: why, failedStep: 'request-approval' });
  }
  const deadline = now() + policy.timeoutMs;
  pending = newLinks('approval', linkTo, deadline);
  try {
    yield* step('request-approval', 'prodRequestLinks', { kind: 'approval' satisfies ProdMessageKind, instanceId: id, links: linkRequests(pending, deadline), summary: summary(iso(deadline)) });
  } catch (e) {
    const f = e as StepFailure;
    pending = [];
    return result('Failed', { code: f.code, failure: f.message, failedStep: 'request-approval' });
  }
  show('awaiting-approval', { expiresAt: iso(deadline) });
  const reminderAt = policy.reminderMs > 0 && policy.reminderMs < policy.timeoutMs ? deadline - policy.reminderMs : undefined;
  const verdict = yield* decide('approval', deadline, reminderAt);
  pending = [];
  if (verdict.verdict === 'rejected') {
    const last = decisions[decisions.length - 1];
    yield* announce('rejected', `by ${verdict.by}${last?.comment ? `: ${last.comment}` : ''}`);
    return result('Rejected', { failure: `rejected by ${verdict.by}`, previous });
  }
  if (verdict.verdict === 'expired') {
    yield* announce('expired', `no decision before ${iso(deadline)} (${received.length}/${policy.required} approvals)`);
    return result('Expired', { failure: `approval expired at ${iso(deadline)}`, previous });
  }
  yield* announce('approved', `by ${received.map((r) => r.approver).join(', ')}; deploying now`);
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
    const promoted = yield* step<{ digest: string }>('promote', 'prodPromote', { uatImageRef: input.imageRef, prodImageRef: prodRef, expectDigest: prep.uat.imageDigest });
    digest = promoted.digest;

    const pre = yield* step<PreflightOut>('preflight', 'prodPreflight', { settings, imageRef: prodRef });
    runningImage = previous?.imageRef ?? pre.runningImage;
    const mods = yield* step<{ modules: string; reason: string }>('preflight', 'prodModules', { previous, sha: input.sha, force: false });

    // 4. full backup, verified (+ disk snapshots)
    backup = yield* step<ProdBackupOut>('backup', 'prodBackup', { environment: 'prod', version: input.version, sha: input.sha, instanceId: id, running: previous, prodImageRef: prodRef, snapshot: prep.diskSnapshot });
    runningImage = runningImage ?? backup.runningImage;
    show('backup', { backupId: backup.backupId });

    // 5. pull (nothing stopped yet), stop, migrate, start, health, stability
    const pulled = yield* step<PullOut>('pull', 'prodPull', { environment: 'prod', imageRef: prodRef });
    // the VM reports the first repo digest docker knows for the image: informative, the registry is authoritative
    if (pulled.digest && pulled.digest !== digest) log(`the VM reports digest ${pulled.digest} for ${prodRef} (promoted ${digest})`);
    downStart = now();
    yield* step('stop', 'prodStop', { environment: 'prod' });
    if (mods.modules) yield* step('migrate', 'prodMigrate', { environment: 'prod', imageRef: prodRef, modules: mods.modules });
    startedNew = true;
    yield* step('start', 'prodStart', { environment: 'prod', imageRef: prodRef });
    const health = yield* step<HealthOut>('health', 'prodHealth', { settings, imageRef: prodRef });
    if (!health.healthy) throw new StepFailure('health', 'DEPLOY.UNHEALTHY', `[DEPLOY.UNHEALTHY] ${input.version} is not healthy on PROD: ${health.failures.join('; ')}`);
    const stable = Math.max(0, prep.healthStableSeconds);
    const probes = stable === 0 ? 1 : Math.max(3, Math.min(10, Math.ceil(stable / 10) + 1));
    const gapMs = probes > 1 ? Math.round((stable * 1000) / (probes - 1)) : 0;
    for (let k = 0; k < probes; k++) {
      // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
      if (k > 0 && gapMs > 0) yield context.df.createTimer(new Date(now() + gapMs));
      const p = yield* step<HealthOut>('health-stable', 'prodProbe', { settings, imageRef: prodRef });
      if (!p.healthy) throw new StepFailure('health-stable', 'DEPLOY.UNSTABLE', `[DEPLOY.UNSTABLE] ${input.version} became unhealthy on PROD during the ${stable} s stability check (probe ${k + 1}/${probes}): ${p.failures.join('; ')}`);
    }
    downtimeMs = now() - (downStart ?? now());

    // 6. success
    const totalMs = now() - startedAt.getTime();
    yield* step('record', 'prodRecord', { ...notice('succeeded'), imageDigest: digest, coverage: prep.uat.coverage, backupId: backup.backupId, durations, totalMs, downtimeMs, modules: mods.modules, previousVersion: previous?.version, approvedBy: received.map((r) => r.approver), requestedBy: input.requestedBy, reason: input.reason });
    yield* quiet('prodNotify', notice('succeeded', { durations, totalMs, downtimeMs, backupId: backup.backupId }));
    show('retention');
    yield* quiet('prodRetention', { settings, running: prodRef, previous: runningImage });
    return result('Succeeded', { prodState: 'running-new', previous, imageRef: prodRef, imageDigest: digest, backupId: backup.backupId, snapshots: backup.snapshots, downtimeMs });
  } catch (e) {
    const f = e instanceof StepFailure ? e : new StepFailure(status.step, codeOf(e), reasonOf(e));
    log(`step ${f.step} failed: ${f.message}`);
    const base = { code: f.code, failure: f.message, failedStep: f.step, previous, imageRef: prodRef, imageDigest: digest, backupId: backup?.backupId, snapshots: backup?.snapshots };
    if (!CHANGED_STEPS.includes(f.step)) {
      yield* quiet('prodNotify', notice('failed', { reason: f.message, code: f.code, failedStep: f.step, backupId: backup?.backupId, durations, totalMs: now() - startedAt.getTime() }));
      return result('Failed', { ...base, prodState: 'unchanged' });
    }

    // ---- 7. PROD changed: logs, alert, rollback (offered, or at once when configured) -----------
    const prodState: ProdState = !startedNew ? 'stopped' : f.step === 'start' ? 'unknown' : 'running-new-unhealthy';
    const saved = yield* quiet<{ logs?: string[] }>('prodSaveLogs', { backupId: backup?.backupId, environment: 'prod', instanceId: id });
    const logs = saved?.logs ?? [];
    yield* quiet('prodGithubStatus', { githubDeploymentId, state: 'failure', description: `failed at ${f.step}: ${f.message}`, logUrl: prep.statusUrl });
    show('awaiting-rollback-decision', { failure: f.message, prodState });

    let rollbackBy = 'PROD_AUTO_ROLLBACK';
    if (!prep.autoRollback) {
      const rbDeadline = now() + policy.timeoutMs;
      pending = newLinks('rollback', policy.approvers, rbDeadline);
      try {
        yield* step('awaiting-rollback-decision', 'prodRequestLinks', {
          kind: 'rollback' satisfies ProdMessageKind,
          instanceId: id,
          links: linkRequests(pending, rbDeadline),
          summary: summary(iso(rbDeadline), { failure: f.message, failedStep: f.step, prodState, previousVersion: previous?.version ?? runningImage, backupId: backup?.backupId }),
        });
      } catch (err) {
        // the links could not be posted: the alert still goes out; the operator rolls back by hand
        pending = [];
        yield* announce('rollback-expired', `the rollback links could not be posted (${reasonOf(err)}); ${f.message}. PROD is ${prodState}: follow docs/ROLLBACK_GUIDE.md by hand`);
        return result('NeedsAttention', { ...base, prodState, logs, downtimeMs: now() - (downStart ?? now()) });
      }
      show('awaiting-rollback-decision', { expiresAt: iso(rbDeadline) });
      const rb = yield* decide('rollback', rbDeadline);
      pending = [];
      if (rb.verdict !== 'rollback') {
        yield* announce('rollback-expired', `no rollback decision before ${iso(rbDeadline)}; PROD is ${prodState} after: ${f.message}`);
        return result('NeedsAttention', { ...base, prodState, logs, downtimeMs: now() - (downStart ?? now()) });
      }
      rollbackBy = rb.by ?? '?';
    }
    yield* announce('rollback-started', `by ${rollbackBy}: restoring backup ${backup?.backupId ?? '?'} and starting ${previous?.version ?? runningImage ?? 'the previous image'}`);
    show('rollback', { expiresAt: undefined });
    const compensations: CompensationAction[] = [{ action: 'stop-new' }];
    if (backup) compensations.push({ action: 'restore', backupId: backup.backupId });
    compensations.push({ action: 'start-previous', image: runningImage }, { action: 'health' });
    let ok = true;
    let error: string | undefined;
    for (const c of compensations) {
      try {
        const r = (yield* step<{ healthy?: boolean; failures?: string[] }>('rollback', 'prodCompensate', { ...c, settings })) ?? {};
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
    yield* quiet('prodNotify', notice(ok ? 'rolled-back' : 'needs-attention', { reason: ok ? f.message : `${f.message} — ROLLBACK FAILED: ${error}`, code: f.code, failedStep: f.step, logs, backupId: backup?.backupId, durations, totalMs, downtimeMs }));
    return result(ok ? 'RolledBack' : 'NeedsAttention', { ...base, prodState: ok ? 'rolled-back' : 'unknown', rollback, logs, downtimeMs });
  }
};

df.app.orchestration(DEPLOY_PROD, deployProd);
