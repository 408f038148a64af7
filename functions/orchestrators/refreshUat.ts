/**
 * refreshUat — refresh UAT from PROD, top to bottom like the runbook (deterministic: every side effect
 * is an activity of functions/activities/refresh.ts; settings come from `refreshPrepare`). It runs as
 * the sub-orchestration of UAT's deploy lane, so a refresh and a deploy never overlap.
 *
 *   1 prepare (settings, UAT's live database and image)     2 back up UAT to Blob (db + filestore)
 *   3 PROD's dump: a fresh PROD backup, or the latest verified one
 *   4 stop UAT — from here a failure before the swap drops the new database and restarts UAT on its
 *     untouched database
 *   5 restore PROD's dump into a NEW database              6 neutralize (sql/neutralize.sql)
 *   7 ONE activity: sample PROD's identifying values from the restored copy → anonymize
 *     (sql/anonymize.sql + anonymize.d) → verify every text column. The sample lives only in that
 *     activity's memory: it is never an activity input/output, so never in the orchestration history.
 *     A leak → LeakFound: the copy is dropped, UAT stays STOPPED, the report lists table.column + count.
 *   8 filestore staged under the new database's name (copy, or copy then prune what dropped
 *     attachments referenced), so the swap moves database and files together
 *   9 swap (old database kept)   10 start UAT   11 health   12 drop the old database
 *   13 Slack + ledger report with row counts and durations (also on failure)
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import {
  refreshDatabaseName,
  validateRefreshBody,
  type RefreshCustomStatus,
  type RefreshInput,
  type RefreshOutcome,
  type RefreshResult,
  type RefreshSettings,
  type RefreshStep,
  type ScrubOut,
} from '../../shared/domain/refresh';
import type { FilestoreOut, PrepareOut, RestoreOut, SourceOut, UatBackupOut } from '../activities/refresh';
import { vmJobId, vmJobRestore } from '../../shared/domain/vm-job';
import { StepFailure, stepRunner } from './step';
import { awaitVmJob, restoreRestart } from './vm-job';

export const REFRESH_UAT = 'refreshUat';

const codeOf = (err: unknown): string =>
  /\[([A-Z][A-Z0-9_]*\.[A-Z0-9_.]+)\]/.exec(err instanceof Error ? err.message : String(err))?.[1] ??
  'REFRESH.FAILED';
const reasonOf = (err: unknown): string =>
  (err instanceof Error ? err.message : String(err)).split('\n')[0].slice(0, 1500);

export const refreshUat: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = (context.df.getInput() ?? {}) as RefreshInput;
  const instanceId = context.df.instanceId;
  const startedAt = context.df.currentUtcDateTime;
  const now = () => context.df.currentUtcDateTime.getTime();
  const durations: Record<string, number> = {};
  const rows: Record<string, number> = {};
  const status: RefreshCustomStatus = {
    step: 'prepare',
    source: String(input.source ?? '?'),
    target: String(input.target ?? '?'),
    reason: String(input.reason ?? ''),
    requestedBy: String(input.requestedBy ?? '?'),
    startedAt: startedAt.toISOString(),
    elapsedMs: 0,
    durations,
    rows,
  };
  const show = (step: RefreshStep, extra: Partial<RefreshCustomStatus> = {}) => {
    Object.assign(status, extra, { step, elapsedMs: now() - startedAt.getTime() });
    context.df.setCustomStatus(status);
  };
  const log = (msg: string) => {
    if (!context.df.isReplaying) context.info(`[${instanceId}] ${msg}`);
  };

  const problems = validateRefreshBody({
    source: input.source,
    target: input.target,
    filestore: input.filestore,
    backup: input.backup,
    reason: input.reason,
  });
  if (problems.length) {
    const reason = `[REFRESH.BAD_INPUT] ${problems.join('; ')}`;
    show('done', { outcome: 'Failed', error: reason });
    return {
      outcome: 'Failed',
      instanceId,
      reason,
      code: 'REFRESH.BAD_INPUT',
      rows,
      durations,
      totalMs: 0,
      uatStopped: false,
    } satisfies RefreshResult;
  }

  let retry = new df.RetryOptions(2000, 3);
  /** Run one step (./step). `retried` (4th argument) only for idempotent steps; other failures come back as values. */
  const step = stepRunner<RefreshStep>(context, {
    show,
    durations,
    retry: () => retry,
    retried: () => false,
    codeOf,
    reasonOf,
  });
  /** A best-effort step (recovery, cleanup): its failure is returned as text, never thrown. */
  function* attempt(
    name: RefreshStep,
    activity: string,
    payload: unknown,
  ): Generator<Task, string | undefined, unknown> {
    try {
      yield* step(name, activity, payload, true);
      return undefined;
    } catch (err) {
      return reasonOf(err);
    }
  }

  let settings: RefreshSettings | undefined;
  let prep: PrepareOut | undefined;
  let newDb: string | undefined;
  let src: SourceOut | undefined;
  let uatBackup: UatBackupOut | undefined;
  let stopped = false;
  let restoreTried = false;
  let swappedKeptOld: string | undefined;
  let swapped = false;
  let scrub: ScrubOut | undefined;
  let fs: FilestoreOut | undefined;
  let outcome: RefreshOutcome = 'Succeeded';
  let failure: StepFailure<RefreshStep> | undefined;
  let leaks: string[] | undefined;
  const notes: string[] = [];

  try {
    // ---- 1. settings, UAT's live database and image ------------------------------------------------
    prep = yield* step<PrepareOut>(
      'prepare',
      'refreshPrepare',
      { filestore: input.filestore, backup: input.backup },
      true,
    );
    settings = prep.settings;
    retry = new df.RetryOptions(Math.max(1, settings.retryFirstMs), Math.max(1, settings.retryAttempts));
    retry.backoffCoefficient = 2;
    newDb = refreshDatabaseName(prep.database, startedAt);
    show('prepare', {
      settings: { source: settings.source, filestore: settings.filestore },
      database: newDb,
    });

    // ---- 2. back up UAT ----------------------------------------------------------------------------
    uatBackup = yield* step<UatBackupOut>(
      'backup-uat',
      'refreshBackupUat',
      { instanceId, reason: input.reason },
      true,
    );
    show('backup-uat', { uatBackupId: uatBackup.backupId });

    // ---- 3. PROD's dump: fresh or the latest verified -----------------------------------------------
    src = yield* step<SourceOut>('source', 'refreshSource', { mode: settings.source, instanceId }, true);
    show('source', { sourceBackupId: src.backupId });

    // ---- 4. stop UAT: from here a failure before the swap restarts UAT on its untouched database -----
    stopped = true;
    yield* step('stop', 'refreshStop', {}, true);

    // ---- 5. restore into a NEW database -------------------------------------------------------------
    // a detached job on UAT reading PROD's backup from Blob itself (its parts checked against the
    // manifest while they are restored), polled with durable timers: a recycled worker never cuts it
    restoreTried = true;
    const restoreJob = yield* awaitVmJob(context, step, {
      step: 'restore',
      startActivity: 'refreshRestoreStart',
      startInput: {
        environment: 'uat',
        backupId: src.backupId,
        database: newDb,
        jobId: vmJobId(instanceId, 'restore'),
        filestore: settings.filestore !== 'none',
      },
      statusActivity: 'refreshJobStatus',
      pollSeconds: settings.jobPollSeconds,
      deadlineMinutes: settings.jobDeadlineMinutes,
      what: 'restore',
      restart: restoreRestart((n) => vmJobId(instanceId, `restore-${n}`)),
    });
    const done = vmJobRestore(restoreJob);
    const restored: RestoreOut = { tables: done?.tables ?? 0, pgUser: done?.pgUser ?? 'odoo' };
    rows['tables restored'] = restored.tables;

    // ---- 6. neutralize -----------------------------------------------------------------------------
    const neut = yield* step<{ rows: Record<string, number> }>('neutralize', 'refreshNeutralize', {
      database: newDb,
      uatUrl: settings.uatUrl,
      keepLogins: settings.keepLogins,
    });
    for (const [k, v] of Object.entries(neut.rows)) rows[`neutralize: ${k}`] = v;

    // ---- 7. sample → anonymize → verify (one activity: the sample never leaves its memory) ------------
    scrub = yield* step<ScrubOut>('anonymize+verify', 'refreshAnonymizeVerify', {
      database: newDb,
      pgUser: restored.pgUser,
      keepLogins: settings.keepLogins,
      dropAttachments: settings.filestore === 'drop-anonymized',
    });
    for (const [k, v] of Object.entries(scrub.anonymizeRows)) rows[`anonymize: ${k}`] = v;
    durations.sample = scrub.ms.sample;
    durations.anonymize = scrub.ms.anonymize;
    durations.verify = scrub.ms.verify;
    if (!scrub.report.ok) {
      leaks = [
        ...scrub.report.hits.map((h) => `${h.table}.${h.column}: ${h.count} rows with PROD values`),
        ...scrub.report.foreignEmails.map(
          (h) => `${h.table}.${h.column}: ${h.count} rows with e-mail addresses outside the allowed domains`,
        ),
        ...(scrub.report.patterns ?? []).map(
          (h) =>
            `${h.table}.${h.column}: ${h.count} rows with ${h.kind === 'email' ? 'encoded e-mail addresses' : h.kind === 'phone' ? 'phone numbers' : `valid ${h.kind.toUpperCase()}s`}`,
        ),
        ...(scrub.report.secrets ?? []).map(
          (h) => `${h.place}: ${h.count} live credential(s) left (catalogue rule: ${h.rule})`,
        ),
      ];
      throw new StepFailure(
        'anonymize+verify',
        'REFRESH.PII_LEAK',
        `[REFRESH.PII_LEAK] the verifier found PROD personal data or live credentials in ${leaks.length} place(s): ${leaks.join('; ')}`,
      );
    }

    // ---- 8. filestore, staged under the new database's name -------------------------------------------
    if (settings.filestore !== 'none') {
      fs = yield* step<FilestoreOut>('filestore', 'refreshFilestore', {
        database: newDb,
        mode: settings.filestore,
        files: done?.files,
      });
    }

    // ---- 9. swap (the old database is kept until the refresh succeeded) -------------------------------
    const sw = yield* step<{ keptOld?: string }>('swap', 'refreshSwap', { database: newDb });
    swapped = true;
    swappedKeptOld = sw.keptOld;

    // ---- 10-11. start + health ----------------------------------------------------------------------
    yield* step('start', 'refreshStart', { image: prep.image }, true);
    const health = yield* step<{ healthy: boolean; failures: string[] }>('health', 'refreshHealth', {
      seconds: settings.healthTimeoutSeconds,
    });
    if (!health.healthy)
      throw new StepFailure(
        'health',
        'REFRESH.UNHEALTHY',
        `[REFRESH.UNHEALTHY] UAT is not healthy on the refreshed database: ${health.failures.join('; ')}`,
      );
    stopped = false;

    // ---- 12. the old database is no longer needed ----------------------------------------------------
    if (swappedKeptOld) {
      const err = yield* attempt('cleanup', 'refreshDropDb', { database: swappedKeptOld });
      if (err)
        notes.push(
          `the previous database ${swappedKeptOld} could not be dropped (drop it by hand: odoo-ops drop-db ${swappedKeptOld}): ${err}`,
        );
      else swappedKeptOld = undefined;
    }
  } catch (e) {
    failure = e instanceof StepFailure ? e : new StepFailure(status.step, codeOf(e), reasonOf(e));
    log(`step ${failure.step} failed: ${failure.message}`);
    outcome = 'Failed';
    if (failure.code === 'REFRESH.PII_LEAK') {
      // the copy holds PROD personal data: drop it; UAT stays STOPPED on its untouched database
      outcome = 'LeakFound';
      const err = yield* attempt('recover', 'refreshDropDb', { database: newDb });
      if (err)
        notes.push(
          `the leaking copy ${newDb} could not be dropped — DROP IT BY HAND (odoo-ops drop-db ${newDb}): ${err}`,
        );
    } else if (swapped && swappedKeptOld) {
      // the refreshed copy did not come up: put the old database back, drop the copy, start, check
      show('recover', { error: failure.message });
      let err = yield* attempt('recover', 'refreshStop', {});
      let back: { keptOld?: string } | undefined;
      if (!err) {
        try {
          back = yield* step<{ keptOld?: string }>('recover', 'refreshSwap', { database: swappedKeptOld });
        } catch (x) {
          err = reasonOf(x);
        }
      }
      if (!err && back?.keptOld) {
        const dropErr = yield* attempt('recover', 'refreshDropDb', { database: back.keptOld });
        if (dropErr) notes.push(`the failed copy (now ${back.keptOld}) could not be dropped: ${dropErr}`);
      }
      if (!err) err = yield* restart();
      outcome = err ? 'NeedsAttention' : 'RolledBack';
      if (err) notes.push(`ROLLBACK FAILED: ${err}`);
      else stopped = false;
    } else if (stopped) {
      // before the swap: UAT's database is untouched; drop what was restored and start UAT again
      show('recover', { error: failure.message });
      if (restoreTried) {
        const dropErr = yield* attempt('recover', 'refreshDropDb', { database: newDb });
        if (dropErr)
          notes.push(
            `the partial copy ${newDb} could not be dropped (odoo-ops drop-db ${newDb}): ${dropErr}`,
          );
      }
      const err = yield* restart();
      if (err) {
        outcome = 'NeedsAttention';
        notes.push(`RESTARTING UAT FAILED: ${err}`);
      } else stopped = false;
    }
  }

  /** start UAT on the image it ran, then check it */
  function* restart(): Generator<Task, string | undefined, unknown> {
    const err = yield* attempt('recover', 'refreshStart', { image: prep?.image });
    if (err) return err;
    try {
      const h = yield* step<{ healthy: boolean; failures: string[] }>('recover', 'refreshHealth', {
        seconds: settings?.healthTimeoutSeconds ?? 120,
      });
      return h.healthy ? undefined : `UAT is not healthy after the restart: ${h.failures.join('; ')}`;
    } catch (x) {
      return reasonOf(x);
    }
  }

  const totalMs = now() - startedAt.getTime();
  const reason = failure
    ? [failure.message, ...notes].join(' — ')
    : notes.length
      ? notes.join(' — ')
      : undefined;
  const result: RefreshResult = {
    outcome,
    instanceId,
    reason,
    code: failure?.code,
    failedStep: failure?.step,
    sourceBackupId: src?.backupId,
    uatBackupId: uatBackup?.backupId,
    database: newDb,
    keptOld: swappedKeptOld,
    leaks,
    sampled: scrub?.sampled,
    columns: scrub?.columns,
    rows,
    filestore: settings ? { mode: settings.filestore, files: fs?.files, removed: fs?.removed } : undefined,
    durations,
    totalMs,
    uatStopped: stopped,
  };
  // ---- 13. report: Slack + ledger (never fails the refresh) ----------------------------------------
  show('report');
  try {
    yield context.df.callActivity('refreshReport', {
      ...result,
      source: input.source,
      target: input.target,
      requestedBy: input.requestedBy,
      requestReason: input.reason,
    });
  } catch (err) {
    log(`report failed: ${reasonOf(err)}`);
  }
  show('done', { outcome, error: reason, elapsedMs: totalMs });
  return result;
};

df.app.orchestration(REFRESH_UAT, refreshUat);
