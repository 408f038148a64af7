/**
 * deployUat — the UAT deploy, top to bottom like the runbook (deterministic: every side effect is an
 * activity of functions/activities/deploy.ts; settings come from the `deployPrepare` activity).
 *
 *  1 preflight (VM running, SSH, disk, image in the registry — waited for with a durable timer —, lock)
 *  2 backup DB + filestore: a VM job uploading straight to Blob (polled), read back and verified
 *  3 pull the new image (nothing stopped yet)
 *  4 stop web   5 migrate (changed modules or all)   6 start   7 health + validation
 *  8 record in the ledger, GitHub deployment `success`, Slack, image retention
 *  9 any failure after 4: compensations newest first (stop new, restore DB + filestore — a VM job
 *    reading the backup from Blob, polled —, start the previous image, health), logs to Blob, `failure` + Slack alert → RolledBack. Before 4 → Failed,
 *    nothing stopped. The rollback itself failing → NeedsAttention, loud alert, nothing else touched.
 *
 * Retries: activities throw only retryable failures (callActivityWithRetry retries them with back-off);
 * deterministic failures come back as `{ failed: { code, message } }` values — classified by code.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import {
  DeployCustomStatus,
  DeployInput,
  DeployOutcome,
  DeployResult,
  DeploySettings,
  DeployStep,
  ReleaseRef,
  STEP_RETRY,
  codeOf,
  needsRollback,
  outcomeOfFailure,
  reasonOf,
  validateDeployInput,
} from '../../shared/domain/deploy-plan';
import type {
  BackupOut,
  CompensationAction,
  HealthOut,
  NotifyEvent,
  PreflightOut,
  PrepareOut,
  PullOut,
} from '../activities/deploy';
import { vmJobBackup, vmJobId } from '../../shared/domain/vm-job';
import { StepFailure, stepRunner } from './step';
import { awaitVmJob, restoreRestart } from './vm-job';

export const DEPLOY_UAT = 'deployUat';

export const deployUat: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = context.df.getInput() as DeployInput;
  const startedAt = context.df.currentUtcDateTime;
  const now = () => context.df.currentUtcDateTime.getTime();
  const durations: Record<string, number> = {};
  const status: DeployCustomStatus = {
    step: 'prepare',
    environment: input?.environment ?? '?',
    version: input?.version ?? '?',
    sha: input?.sha ?? '?',
    startedAt: startedAt.toISOString(),
    elapsedMs: 0,
    durations,
  };
  const show = (step: DeployStep, extra: Partial<DeployCustomStatus> = {}) => {
    Object.assign(status, extra, { step, elapsedMs: now() - startedAt.getTime() });
    context.df.setCustomStatus(status);
  };
  const log = (msg: string) => {
    if (!context.df.isReplaying) context.info(`[${context.df.instanceId}] ${msg}`);
  };

  const problems = validateDeployInput(input);
  if (problems.length) {
    show('done', { outcome: 'Failed', reason: `[DEPLOY.BAD_INPUT] ${problems.join('; ')}` });
    return {
      outcome: 'Failed',
      environment: status.environment,
      version: status.version,
      sha: status.sha,
      code: 'DEPLOY.BAD_INPUT',
      reason: problems.join('; '),
      durations,
      totalMs: 0,
    } satisfies DeployResult;
  }

  let settings: DeploySettings | undefined;
  let retry: df.RetryOptions = new df.RetryOptions(1000, 3);

  /** Run one step's activity: retryable failures are retried by the engine; others come back as values. */
  const step = stepRunner<DeployStep>(context, {
    show,
    durations,
    retry: () => retry,
    retried: (name) => STEP_RETRY[name].retry,
    codeOf,
    reasonOf,
  });

  /** Notifications never fail a deploy: the activity swallows errors, and so do we. */
  function* notify(event: NotifyEvent): Generator<Task, Record<string, unknown>, unknown> {
    try {
      return ((yield context.df.callActivity('deployNotify', event)) as Record<string, unknown>) ?? {};
    } catch {
      return {};
    }
  }

  let prep: PrepareOut | undefined;
  let previous: ReleaseRef | undefined;
  let backup: BackupOut | undefined;
  let pulled: PullOut | undefined;
  let modules: string | undefined;
  let downStart: number | undefined;
  let downtimeMs: number | undefined;
  const compensations: CompensationAction[] = [];
  let githubDeploymentId: number | undefined;

  const base = () => ({
    environment: input.environment,
    version: input.version,
    sha: input.sha,
    imageRef: input.imageRef,
    mergedBy: input.mergedBy,
    instanceId: context.df.instanceId,
    githubDeploymentId,
    url: settings?.url,
  });

  try {
    // ---- 0. settings + what runs now (ledger) -------------------------------------------------
    prep = yield* step<PrepareOut>('prepare', 'deployPrepare', { environment: input.environment });
    settings = prep.settings;
    previous = prep.running;
    retry = new df.RetryOptions(Math.max(1, settings.retryFirstMs), Math.max(1, settings.retryAttempts));
    retry.backoffCoefficient = 2;
    retry.maxRetryIntervalInMilliseconds = Math.max(settings.retryFirstMs * 8, 1);
    const started = yield* notify({ kind: 'started', ...base(), previous });
    if (typeof started.githubDeploymentId === 'number') githubDeploymentId = started.githubDeploymentId;

    // ---- 1. preflight ----------------------------------------------------------------------
    const pre: PreflightOut = yield* step<PreflightOut>('preflight', 'deployPreflight', {
      settings,
      imageRef: input.imageRef,
    });
    let digest = pre.imageDigest;
    if (!pre.imagePresent) {
      // the image build may still be running: wait for the tag, bounded, with durable timers
      const deadline = now() + settings.imageWaitMinutes * 60_000;
      while (!digest) {
        if (now() >= deadline)
          throw new StepFailure(
            'wait-image',
            'DEPLOY.IMAGE_MISSING',
            `[DEPLOY.IMAGE_MISSING] image ${input.imageRef} did not appear in the registry within ${settings.imageWaitMinutes} min`,
          );
        show('wait-image');
        // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
        yield context.df.createTimer(new Date(Math.min(deadline, now() + settings.imagePollSeconds * 1000)));
        const chk = yield* step<{ imageDigest?: string }>('wait-image', 'deployCheckImage', {
          imageRef: input.imageRef,
        });
        digest = chk.imageDigest;
      }
    }
    log(`preflight ok (disk ${pre.diskFreeGb ?? '?'} GB, image ${digest})`);

    // which modules to update: decided before anything stops
    const mods = yield* step<{ modules: string; reason: string }>('preflight', 'deployModules', {
      previous,
      sha: input.sha,
      force: !!input.force,
    });
    modules = mods.modules;

    // ---- 2. backup -------------------------------------------------------------------------
    // a detached job on the VM that uploads straight to Blob, polled with durable timers: a recycled
    // worker or a restarted host finds the job (the id is the instance's), never takes a second backup
    const backupJob = yield* awaitVmJob(context, step, {
      step: 'backup',
      startActivity: 'deployBackupStart',
      startInput: {
        environment: input.environment,
        version: input.version,
        sha: input.sha,
        imageDigest: previous?.imageDigest,
        runningVersion: previous?.version,
        instanceId: context.df.instanceId,
        jobId: vmJobId(context.df.instanceId, 'backup'),
        at: context.df.currentUtcDateTime.toISOString(),
      },
      statusActivity: 'deployJobStatus',
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
    // read back and hashed against the manifest: what the status page shows as "verified"
    backup = yield* step<BackupOut>('backup', 'deployBackupVerify', { backupId: written.backupId });
    show('backup', { backupBytes: backup.bytes, backupId: backup.backupId });

    // ---- 3. pull (before anything stops) ----------------------------------------------------
    pulled = yield* step<PullOut>('pull', 'deployPull', {
      environment: input.environment,
      imageRef: input.imageRef,
    });

    // ---- 4. stop: downtime starts; from here a failure is rolled back ----------------------------
    // nothing stops unless the backup that would undo it is readable right now (manifest, parts, sizes)
    yield* step('backup', 'deployConfirmBackup', { backupId: backup.backupId });
    downStart = now();
    compensations.push(
      { action: 'health' },
      { action: 'start-previous', image: previous?.imageRef ?? pre.runningImage },
    );
    yield* step('stop', 'deployStop', { environment: input.environment });

    // ---- 5. migrate (the DB may be half-migrated after a failure: restore it) ---------------------
    compensations.push({ action: 'restore', backupId: backup.backupId });
    // as a detached job on the VM, polled with durable timers: a restart of this host does not run it twice
    if (modules)
      yield* awaitVmJob(context, step, {
        step: 'migrate',
        startActivity: 'deployMigrateStart',
        startInput: {
          environment: input.environment,
          imageRef: input.imageRef,
          modules,
          jobId: vmJobId(context.df.instanceId, 'migrate'),
        },
        statusActivity: 'deployJobStatus',
        pollSeconds: settings.jobPollSeconds,
        deadlineMinutes: settings.jobDeadlineMinutes,
        what: 'migration',
      });

    // ---- 6. start ----------------------------------------------------------------------------
    compensations.push({ action: 'stop-new' });
    yield* step('start', 'deployStart', { environment: input.environment, imageRef: input.imageRef });

    // ---- 7. health + validation ------------------------------------------------------------
    const health = yield* step<HealthOut>('health', 'deployHealth', { settings, imageRef: input.imageRef });
    if (!health.healthy)
      throw new StepFailure(
        'health',
        'DEPLOY.UNHEALTHY',
        `[DEPLOY.UNHEALTHY] ${input.version} is not healthy: ${health.failures.join('; ')}`,
      );
    downtimeMs = now() - downStart;

    // ---- 8. success: ledger, GitHub, Slack, retention -----------------------------------------
    const totalMs = now() - startedAt.getTime();
    const release = {
      ...base(),
      imageDigest: pulled.digest ?? digest,
      coverage: input.coverage,
      backupId: backup.backupId,
      durations,
      totalMs,
      downtimeMs,
      modules,
      previousVersion: previous?.version,
      ...(input.gateOverride ? { gateOverride: input.gateOverride } : {}),
    };
    yield* step('record', 'deployRecord', release);
    yield* notify({
      kind: 'succeeded',
      ...base(),
      previous,
      durations,
      totalMs,
      downtimeMs,
      backupId: backup.backupId,
    });
    show('retention');
    try {
      yield context.df.callActivity('deployRetention', {
        settings,
        running: input.imageRef,
        previous: previous?.imageRef,
      });
    } catch (err) {
      log(`image retention failed (the deploy stands): ${reasonOf(err)}`);
    }
    const result: DeployResult = {
      outcome: 'Succeeded',
      environment: input.environment,
      version: input.version,
      sha: input.sha,
      backupId: backup.backupId,
      previous,
      imageDigest: release.imageDigest,
      modules,
      durations,
      totalMs,
      downtimeMs,
    };
    show('done', { outcome: 'Succeeded', elapsedMs: totalMs });
    return result;
  } catch (e) {
    const f: StepFailure<DeployStep> =
      e instanceof StepFailure ? e : new StepFailure(status.step, codeOf(e), reasonOf(e));
    log(`step ${f.step} failed: ${f.message}`);
    let outcome: DeployOutcome = 'Failed';
    let reason = f.message;
    const logs: string[] = [];
    if (needsRollback(f.step) && settings) {
      // ---- 9. compensations, newest first ---------------------------------------------------
      show('rollback', { reason });
      let rollbackOk = true;
      let rollbackError = '';
      for (const c of [...compensations].reverse()) {
        try {
          if (c.action === 'restore') {
            // stop, then a restore job on the VM reading the backup from Blob, polled with durable
            // timers: a recycled worker never cuts a restore, a retried start never restores twice
            yield* awaitVmJob(context, step, {
              step: 'rollback',
              startActivity: 'deployRestoreStart',
              startInput: {
                environment: input.environment,
                backupId: c.backupId,
                jobId: vmJobId(context.df.instanceId, 'restore'),
              },
              statusActivity: 'deployJobStatus',
              pollSeconds: settings.jobPollSeconds,
              deadlineMinutes: settings.jobDeadlineMinutes,
              what: 'restore',
              restart: restoreRestart((n) => vmJobId(context.df.instanceId, `restore-${n}`)),
            });
            continue;
          }
          const r =
            (yield* step<{ healthy?: boolean; failures?: string[] }>('rollback', 'deployCompensate', {
              ...c,
              settings,
            })) ?? {};
          if (c.action === 'health' && r.healthy === false) {
            rollbackOk = false;
            rollbackError = `previous version is not healthy after the rollback: ${(r.failures ?? []).join('; ')}`;
            break;
          }
        } catch (err) {
          rollbackOk = false;
          rollbackError = `${c.action} failed: ${reasonOf(err)}`;
          break;
        }
      }
      if (downStart !== undefined) downtimeMs = now() - downStart;
      try {
        const saved = (yield context.df.callActivity('deploySaveLogs', {
          backupId: backup?.backupId,
          environment: input.environment,
          instanceId: context.df.instanceId,
        })) as { logs?: string[] };
        logs.push(...(saved?.logs ?? []));
      } catch (err) {
        log(`could not save logs: ${reasonOf(err)}`);
      }
      outcome = outcomeOfFailure(f.step, rollbackOk);
      if (!rollbackOk) reason = `${f.message} — ROLLBACK FAILED: ${rollbackError}`;
    } else {
      outcome = 'Failed';
    }
    const totalMs = now() - startedAt.getTime();
    yield* notify({
      kind:
        outcome === 'NeedsAttention'
          ? 'needs-attention'
          : outcome === 'RolledBack'
            ? 'rolled-back'
            : 'failed',
      ...base(),
      previous,
      reason,
      code: f.code,
      failedStep: f.step,
      logs,
      backupId: backup?.backupId,
      durations,
      totalMs,
      downtimeMs,
    });
    const result: DeployResult = {
      outcome,
      environment: input.environment,
      version: input.version,
      sha: input.sha,
      reason,
      code: f.code,
      failedStep: f.step,
      backupId: backup?.backupId,
      logs,
      previous,
      modules,
      durations,
      totalMs,
      downtimeMs,
    };
    show('done', { outcome, reason, elapsedMs: totalMs });
    return result;
  }
};

df.app.orchestration(DEPLOY_UAT, deployUat);
