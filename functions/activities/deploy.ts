/**
 * The side effects of a UAT deploy, one activity per runbook step. Built by `createDeployActivities(ports)`
 * so tests wire a real SSH server / Azurite / registry or in-memory stand-ins, and production wires
 * Azure (`deployPortsFromConfig`). On the VM every step is one `odoo-ops --json <verb>` call over SSH
 * (docker/ops/odoo-ops: exit codes 4 health, 5 migration, 6 backup, 7 restore, 8 image, 3 lock, 9 state).
 *
 * Failure contract with the orchestrator: an activity THROWS only transient failures (SSH connect,
 * registry 5xx, Blob throttling — `isRetryable`) so `callActivityWithRetry` retries them with back-off;
 * a deterministic failure is RETURNED as `{ failed: { code, message } }` and never retried.
 */
import * as df from 'durable-functions';
import type { Readable } from 'node:stream';
import { loadConfig, type Config } from '../../shared/config';
import { BackupStore, parseBackupId, type BackupManifest } from '../../shared/adapters/backup-store';
import {
  createVerificationStore,
  recordVerification,
  type VerificationStore,
} from '../../shared/adapters/backup-verifications';
import { createLedger, ledgerContainer, type GateOverride, type Ledger } from '../../shared/adapters/ledger';
import { createRegistryClient, keepLastN, type RegistryClient } from '../../shared/adapters/registry';
import { SshClient, shellQuote, type SshRunOptions, type SshRunResult } from '../../shared/adapters/ssh';
import { createVmControl, type VmControl } from '../../shared/adapters/vm';
import { createDeployNotifier, type DeployNotifier } from '../../shared/adapters/deploy-notify';
import { PipelineError, errorCode, isRetryable, messageOf } from '../../shared/domain/errors';
import {
  modulesToUpdate,
  repositoryOf,
  tagOf,
  type DeploySettings,
  type ReleaseRef,
} from '../../shared/domain/deploy-plan';
import { parseVmJob, type VmJob } from '../../shared/domain/vm-job';
import { createLogger, type Logger } from '../../shared/log';

// ------------------------------------------------------------------------------------ shapes --

export interface ActivityFailure {
  code: string;
  message: string;
}
export type Failable<T> = T | { failed: ActivityFailure };

export interface PrepareOut {
  settings: DeploySettings;
  running?: ReleaseRef;
}
export interface PreflightOut {
  vmStarted: boolean;
  diskFreeGb?: number;
  imagePresent: boolean;
  imageDigest?: string;
  /** the image odoo-ops recorded as running (fallback for the rollback when the ledger has none) */
  runningImage?: string;
}
export interface BackupOut {
  backupId: string;
  bytes: number;
  parts: Record<string, { size: number; sha256: string }>;
}
export interface BackupStartInput {
  environment: string;
  version: string;
  sha: string;
  imageDigest?: string;
  runningVersion?: string;
  instanceId: string;
  /** the VM job id (vmJobId(instance, 'backup')) */
  jobId: string;
  /** when the backup starts, from the orchestration clock (ISO): the backup id's timestamp */
  at: string;
  /** why (manifest `reason`, default `pre-deploy`) */
  reason?: string;
  /** the backup id to write (PROD chose it for its image.json); default: the first free one at `at` */
  backupId?: string;
  /** more manifest fields */
  meta?: Record<string, unknown>;
  /** parts the pipeline wrote itself before the job (e.g. PROD's image.json): listed in the manifest */
  extraParts?: Record<string, { size: number; sha256: string }>;
}
export interface PullOut {
  digest?: string;
  version?: string;
}
export interface HealthOut {
  healthy: boolean;
  failures: string[];
}
export type CompensationAction =
  | { action: 'stop-new' }
  | { action: 'restore'; backupId: string }
  | { action: 'start-previous'; image?: string }
  | { action: 'health' };

export type NotifyKind = 'started' | 'succeeded' | 'failed' | 'rolled-back' | 'needs-attention';
export interface NotifyEvent {
  kind: NotifyKind;
  environment: string;
  version: string;
  sha: string;
  imageRef?: string;
  mergedBy?: string;
  instanceId: string;
  githubDeploymentId?: number;
  url?: string;
  previous?: ReleaseRef;
  reason?: string;
  code?: string;
  failedStep?: string;
  logs?: string[];
  backupId?: string;
  durations?: Record<string, number>;
  totalMs?: number;
  downtimeMs?: number;
}

// ------------------------------------------------------------------------------------- ports --

/** What the activities need of an SSH session (SshClient satisfies it). */
export interface RemoteShell {
  run(command: string, o?: SshRunOptions): Promise<SshRunResult>;
  stream(
    command: string,
    o?: Omit<SshRunOptions, 'stdout'>,
  ): { stdout: Readable; done: Promise<SshRunResult> };
  close(): Promise<void>;
}

export interface DeployPorts {
  /** settings of an environment (what `deployPrepare` hands the orchestrator) */
  settings(environment: string): DeploySettings;
  ssh: { connect(environment: string): Promise<RemoteShell> };
  backups: BackupStore;
  /** where verifications of the backups taken are recorded (the backups API's store); none: not recorded */
  verifications?: VerificationStore;
  registry?: RegistryClient;
  vm?: { control: VmControl; resourceId?: string; autoStart: boolean };
  ledger: Ledger;
  notify: DeployNotifier;
  /** files changed between two commits (GitHub compare); undefined when unknown */
  changedFiles?(base: string, head: string): Promise<string[] | undefined>;
  /** HTTP check of the key URLs (defaults to fetch) */
  fetchStatus?(url: string): Promise<number>;
  /** the odoo-ops command on the VM */
  opsCommand?: string;
  /** remote command timeout (ms) */
  commandTimeoutMs?: number;
  /** how long the upload SAS handed to a backup job, and the read SAS handed to a restore job, stay valid (default 180 min: VM_JOB_DEADLINE_MINUTES) */
  backupSasMinutes?: number;
  log: Logger;
}

// -------------------------------------------------------------------------------- helpers --

/** how long a rollback step waits for the VM's odoo-ops lock (an interrupted migration still ending) */
export const ROLLBACK_LOCK_WAIT_SECONDS = 900;

const OPS_EXIT: Record<number, string> = {
  1: 'OPS.ERROR',
  2: 'OPS.USAGE',
  3: 'OPS.LOCKED',
  4: 'DEPLOY.UNHEALTHY',
  5: 'DEPLOY.MIGRATION_FAILED',
  6: 'BACKUP.FAILED',
  7: 'RESTORE.FAILED',
  8: 'REGISTRY.IMAGE_MISSING',
  9: 'OPS.STATE',
  10: 'OPS.CONFIG',
  11: 'OPS.JOB_UNKNOWN',
};

export interface OpsResult {
  code: number;
  json: Record<string, unknown>;
  stderrTail: string;
}

/** The odoo-ops result line: the last line of `text` that parses as a JSON object. */
export function parseOpsJson(text: string): Record<string, unknown> | undefined {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const v = JSON.parse(lines[i]) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      /* not the result line */
    }
  }
  return undefined;
}

/** A failed odoo-ops call as a coded error: lock busy is transient, the rest is deterministic. */
export function opsError(verb: string, r: OpsResult): PipelineError {
  const code = OPS_EXIT[r.code] ?? 'OPS.ERROR';
  const msg =
    typeof r.json.message === 'string'
      ? r.json.message
      : r.stderrTail.trim().split('\n').slice(-3).join(' | ');
  return new PipelineError(
    code,
    `odoo-ops ${verb} failed (exit ${r.code}): ${msg}`.slice(0, 1500),
    code === 'OPS.LOCKED',
  );
}

/** Turn a deterministic failure into a value (never retried); rethrow a transient one (retried). */
async function guarded<T>(log: Logger, what: string, fn: () => Promise<T>): Promise<Failable<T>> {
  try {
    return await fn();
  } catch (err) {
    const code = errorCode(err) ?? 'DEPLOY.FAILED';
    if (isRetryable(err)) {
      log.warn(`${what}: transient failure, will be retried`, { code, error: messageOf(err) });
      throw err instanceof Error ? err : new Error(String(err));
    }
    log.error(`${what} failed`, { code, error: messageOf(err) });
    const m = messageOf(err);
    return { failed: { code, message: m.startsWith('[') ? m : `[${code}] ${m}` } };
  }
}

// ------------------------------------------------------------------------------- activities --

export interface DeployActivities {
  prepare(i: { environment: string }): Promise<Failable<PrepareOut>>;
  preflight(i: { settings: DeploySettings; imageRef: string }): Promise<Failable<PreflightOut>>;
  checkImage(i: { imageRef: string }): Promise<{ imageDigest?: string }>;
  modules(i: {
    previous?: ReleaseRef;
    sha: string;
    force: boolean;
  }): Promise<{ modules: string; reason: string }>;
  /**
   * Start the backup as a detached job on the VM that uploads its parts and manifest straight to Blob
   * Storage (`odoo-ops job start backup --id <jobId> --blob <backupId>`), handing it a short-lived
   * write-only SAS of the backups container on stdin. The backup id is `<env>/<at>-<running version>`,
   * `at` the orchestration's clock: a retried or replayed start asks for the job first and finds it (no
   * second backup, no new SAS). The orchestrator then polls `jobStatus` with durable timers.
   */
  backupStart(i: BackupStartInput): Promise<Failable<VmJob>>;
  /**
   * The backup a finished backup job wrote, re-read and hashed against its manifest (the verification
   * the backups API and the status page show); [BACKUP.CORRUPT] when a part differs.
   */
  backupVerify(i: { backupId: string }): Promise<Failable<BackupOut & { manifest: BackupManifest }>>;
  pull(i: { environment: string; imageRef: string }): Promise<Failable<PullOut>>;
  /** the backup that would undo the deploy, confirmed readable right before the stop (manifest + parts with their sizes) */
  confirmBackup(i: {
    backupId: string;
  }): Promise<Failable<{ backupId: string; parts: Record<string, number> }>>;
  stop(i: { environment: string }): Promise<Failable<{ changed: boolean }>>;
  /**
   * Start the migration as a detached job on the VM (`odoo-ops job start migrate --id <jobId>`) and return
   * its state at once. Starting an id that exists returns that job: a retried or replayed start never
   * migrates twice. The orchestrator then polls `jobStatus` with durable timers.
   */
  migrateStart(i: {
    environment: string;
    imageRef: string;
    modules: string;
    jobId: string;
  }): Promise<Failable<VmJob>>;
  /**
   * The rollback's restore, as a detached job on the VM: stop web (waiting for the odoo-ops lock), confirm
   * the backup is restorable (manifest present, parts listed with their sizes), then `odoo-ops job start
   * restore --id <jobId> --blob <backupId>` with one short-lived read-only blob SAS URL per blob of that
   * backup on stdin. The job reads the parts itself from Blob, hashes them against the manifest while it
   * restores into a fresh database and swaps it in only when every part matched. A retried or replayed
   * start finds the job (running or ended) and starts nothing. The orchestrator polls `jobStatus`.
   */
  restoreStart(i: { environment: string; backupId: string; jobId: string }): Promise<Failable<VmJob>>;
  /** The state of a VM job (`odoo-ops job status <jobId>`); an unknown id is `OPS.JOB_UNKNOWN`. */
  jobStatus(i: { environment: string; jobId: string }): Promise<Failable<VmJob>>;
  start(i: { environment: string; imageRef: string }): Promise<Failable<{ changed: boolean }>>;
  health(i: { settings: DeploySettings; imageRef: string }): Promise<Failable<HealthOut>>;
  record(
    i: NotifyEvent & {
      imageDigest?: string;
      coverage?: number;
      backupId: string;
      modules?: string;
      previousVersion?: string;
      gateOverride?: GateOverride;
    },
  ): Promise<Failable<{ recorded: true }>>;
  retention(i: {
    settings: DeploySettings;
    running: string;
    previous?: string;
  }): Promise<{ kept: string[]; deleted: string[] }>;
  compensate(
    i: CompensationAction & { settings: DeploySettings },
  ): Promise<Failable<{ healthy?: boolean; failures?: string[] }>>;
  saveLogs(i: { backupId?: string; environment: string; instanceId: string }): Promise<{ logs: string[] }>;
  notify(e: NotifyEvent): Promise<Record<string, unknown>>;
}

export function createDeployActivities(p: DeployPorts): DeployActivities {
  const ops = p.opsCommand ?? 'odoo-ops';
  const timeoutMs = p.commandTimeoutMs ?? 3600_000;
  const fetchStatus =
    p.fetchStatus ??
    (async (url: string) => {
      const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer().catch(() => undefined);
      return res.status;
    });

  async function withShell<T>(env: string, fn: (sh: RemoteShell) => Promise<T>): Promise<T> {
    const sh = await p.ssh.connect(env);
    try {
      return await fn(sh);
    } finally {
      await sh.close().catch(() => undefined);
    }
  }

  async function runOps(sh: RemoteShell, args: string, o: SshRunOptions = {}): Promise<OpsResult> {
    const r = await sh.run(`${ops} --json ${args}`, { timeoutMs, ...o });
    const json = parseOpsJson(r.stdout ?? '') ?? parseOpsJson(r.stderrTail) ?? {};
    return { code: r.code, json, stderrTail: r.stderrTail };
  }
  /** `odoo-ops --json [global options] <verb> <args>`; a non-zero exit is a coded error */
  async function mustOps(
    sh: RemoteShell,
    verb: string,
    args: string,
    o: SshRunOptions = {},
    globalOptions = '',
  ): Promise<OpsResult> {
    const r = await runOps(sh, `${globalOptions} ${verb} ${args}`.trim(), o);
    if (r.code !== 0) throw opsError(verb, r);
    return r;
  }

  /** `odoo-ops --json job <args>` as a VmJob; a non-zero exit is a coded error (SSH errors stay retryable) */
  async function jobCall(sh: RemoteShell, args: string, stdin?: string, globalOptions = ''): Promise<VmJob> {
    const r = await mustOps(
      sh,
      'job',
      args,
      { timeoutMs: 120_000, ...(stdin ? { stdin } : {}) },
      globalOptions,
    );
    const job = parseVmJob(r.json);
    if (!job)
      throw new PipelineError(
        'OPS.ERROR',
        `odoo-ops job ${args.split(' ')[0]} gave no job state: ${r.stderrTail.slice(-300)}`,
      );
    if (job.state === 'failed' || job.state === 'lost') {
      // the failing step's own sentence (odoo-ops' message quotes it, cut at the first quote)
      const last = job.steps[job.steps.length - 1];
      if (job.state === 'failed' && last && typeof last.message === 'string' && last.message)
        job.message = `odoo-ops ${typeof last.verb === 'string' ? last.verb : job.kind} failed (exit ${job.exitCode ?? '?'}): ${last.message}`;
    }
    return job;
  }

  async function resolveImage(imageRef: string): Promise<string | undefined> {
    const tag = tagOf(imageRef);
    if (!p.registry || !tag)
      return imageRef.includes('@') ? imageRef.slice(imageRef.indexOf('@') + 1) : undefined;
    const r = await p.registry.resolve(repositoryOf(imageRef), tag);
    return r?.digest;
  }

  /** the job of that id on the VM (a retried or replayed start), or undefined when there is none */
  async function findJob(sh: RemoteShell, jobId: string): Promise<VmJob | undefined> {
    try {
      const known = await jobCall(sh, `status ${shellQuote(jobId)}`);
      p.log.info('job found on the VM', { job: known.id, state: known.state });
      return { ...known, started: false };
    } catch (err) {
      if (errorCode(err) !== 'OPS.JOB_UNKNOWN') throw err;
      return undefined;
    }
  }

  /**
   * Start (or find) the restore job of `backupId` on the VM: the backup is first confirmed restorable
   * (manifest present, parts listed with the manifest's sizes — no byte downloaded here: the job hashes
   * every part against the manifest itself), then the job gets one read-only blob SAS URL per blob on
   * stdin (never in the command line, the job's spec or a log).
   */
  async function restoreJob(
    sh: RemoteShell,
    i: { backupId: string; jobId: string; into?: string; noFilestore?: boolean },
    globalOptions = '',
  ): Promise<VmJob> {
    const known = await findJob(sh, i.jobId);
    if (known) return known;
    const manifest = await p.backups.assertListed(i.backupId);
    const names = Object.keys(manifest.parts).filter(
      (n) => n === 'db.dump' || (n === 'filestore.tar' && !i.noFilestore),
    );
    const urls = await p.backups.readSasUrls(i.backupId, p.backupSasMinutes ?? 180, names);
    const job = await jobCall(
      sh,
      `start restore --id ${shellQuote(i.jobId)} --blob ${shellQuote(i.backupId)}${
        i.into ? ` --into ${shellQuote(i.into)}` : ''
      }${i.noFilestore ? ' --no-filestore' : ''}`,
      `${urls.join(' ')}\n`,
      globalOptions,
    );
    p.log.info(job.started ? 'restore job started on the VM' : 'restore job found on the VM', {
      job: job.id,
      state: job.state,
      backup: i.backupId,
    });
    return job;
  }

  async function checkHealth(
    sh: RemoteShell,
    settings: DeploySettings,
    waitSeconds: number,
  ): Promise<HealthOut> {
    const r = await runOps(sh, `health --wait ${Math.max(0, Math.round(waitSeconds))} --interval 1`, {
      timeoutMs: (waitSeconds + 120) * 1000,
    });
    if (r.code !== 0 && r.code !== 4) throw opsError('health', r);
    const failures: string[] = [];
    if (r.code === 4)
      failures.push(
        typeof r.json.failures === 'string' && r.json.failures
          ? r.json.failures
          : String(r.json.message ?? 'unhealthy'),
      );
    if (r.code === 0) {
      // validation: DB reachable and no module left mid-migration (odoo-ops status), key URLs answer
      const st = await mustOps(sh, 'status', '');
      if (st.json.db_reachable !== true) failures.push('database not reachable');
      if (typeof st.json.pending_modules === 'string' && st.json.pending_modules)
        failures.push(`modules left mid-migration: ${st.json.pending_modules}`);
      if (settings.url) {
        for (const path of settings.keyUrls ?? []) {
          const url = new URL(path, settings.url).toString();
          try {
            const status = await fetchStatus(url);
            if (status >= 400) failures.push(`${path} answered ${status}`);
          } catch (err) {
            failures.push(`${path}: ${messageOf(err)}`);
          }
        }
      }
    }
    return { healthy: failures.length === 0, failures };
  }

  return {
    prepare: (i) =>
      guarded(p.log, 'prepare', async () => {
        const settings = p.settings(i.environment);
        const cur = await p.ledger.current(i.environment);
        const running: ReleaseRef | undefined = cur
          ? {
              version: cur.version,
              sha: cur.sha,
              imageRef: cur.imageRef,
              imageDigest: cur.imageDigest,
              coverage: cur.coverage,
            }
          : undefined;
        return { settings, running };
      }),

    preflight: (i) =>
      guarded(p.log, 'preflight', async () => {
        let vmStarted = false;
        if (p.vm?.resourceId) {
          const state = await p.vm.control.powerState(p.vm.resourceId);
          if (state !== 'running') {
            if (!p.vm.autoStart)
              throw new PipelineError(
                'PREFLIGHT.VM_NOT_RUNNING',
                `the ${i.settings.environment} VM is ${state} and VM_AUTO_START is off`,
              );
            p.log.info('starting the VM', { state });
            await p.vm.control.start(p.vm.resourceId);
            vmStarted = true;
          }
        }
        const imageDigest = await resolveImage(i.imageRef);
        return withShell(i.settings.environment, async (sh) => {
          const st = await mustOps(sh, 'status', '');
          if (typeof st.json.lock === 'string' && st.json.lock)
            throw new PipelineError(
              'PREFLIGHT.LOCKED',
              `another odoo-ops run holds the lock on ${i.settings.environment}: ${st.json.lock}`,
              true,
            );
          if (typeof st.json.pending_modules === 'string' && st.json.pending_modules)
            throw new PipelineError(
              'PREFLIGHT.HALF_MIGRATED',
              `the running database is half-migrated (${st.json.pending_modules}): fix it before deploying`,
            );
          const df = await sh.run('df -Pk "${ODOO_OPS_DIR:-/opt/odoo}" 2>/dev/null | tail -n 1', {
            timeoutMs: 30000,
          });
          const avail = Number((df.stdout ?? '').trim().split(/\s+/)[3]);
          const diskFreeGb = Number.isFinite(avail) ? +(avail / 1024 / 1024).toFixed(2) : undefined;
          if (diskFreeGb !== undefined && diskFreeGb < i.settings.minFreeDiskGb)
            throw new PipelineError(
              'PREFLIGHT.DISK_LOW',
              `only ${diskFreeGb} GB free on the ${i.settings.environment} VM (minimum ${i.settings.minFreeDiskGb} GB)`,
            );
          const runningImage = typeof st.json.image === 'string' && st.json.image ? st.json.image : undefined;
          return { vmStarted, diskFreeGb, imagePresent: !!imageDigest, imageDigest, runningImage };
        });
      }),

    checkImage: async (i) => ({ imageDigest: await resolveImage(i.imageRef) }),

    modules: async (i) => {
      if (i.force) return { modules: 'all', reason: 'forced' };
      if (!i.previous?.sha || !p.changedFiles) return { modules: 'all', reason: 'no running release known' };
      if (i.previous.sha === i.sha) return { modules: 'all', reason: 'redeploy of the running commit' };
      try {
        const files = await p.changedFiles(i.previous.sha, i.sha);
        const m = modulesToUpdate(files);
        return {
          modules: m,
          reason: files
            ? `${files.length} files changed since ${i.previous.sha.slice(0, 7)}`
            : 'compare unavailable',
        };
      } catch (err) {
        p.log.warn('compare failed: updating all modules', { error: messageOf(err) });
        return { modules: 'all', reason: 'compare failed' };
      }
    },

    backupStart: (i) =>
      guarded(p.log, 'backup', () =>
        withShell(i.environment, async (sh) => {
          const version =
            i.runningVersion && /^[0-9A-Za-z.+_-]+$/.test(i.runningVersion) ? i.runningVersion : i.version;
          // a retried or replayed start: the job exists (running or ended) — report it, start nothing
          try {
            const known = await jobCall(sh, `status ${shellQuote(i.jobId)}`);
            p.log.info('backup job found on the VM', { job: known.id, state: known.state });
            return { ...known, started: false };
          } catch (err) {
            if (errorCode(err) !== 'OPS.JOB_UNKNOWN') throw err;
          }
          await p.backups.ensureContainer();
          // the orchestration's clock; a backup of the same version in that second already: the next one
          // (the job reports the id it wrote, so a retry that finds the job never needs this again)
          const backupId = i.backupId
            ? (parseBackupId(i.backupId), i.backupId)
            : await p.backups.freeIdAt(i.environment, version, new Date(i.at));
          const sas = await p.backups.uploadSasUrl(p.backupSasMinutes ?? 180);
          const meta = {
            version,
            gitSha: i.sha,
            imageDigest: i.imageDigest,
            deployInstance: i.instanceId,
            reason: i.reason ?? 'pre-deploy',
            ...i.meta,
          };
          const parts = Object.entries(i.extraParts ?? {})
            .map(([n, x]) => ` --part ${shellQuote(`${n}=${x.size}:${x.sha256}`)}`)
            .join('');
          // the SAS travels on stdin only: never in the command line, the job's spec or a log
          const job = await jobCall(
            sh,
            `start backup --id ${shellQuote(i.jobId)} --blob ${shellQuote(backupId)}${parts}`,
            `${sas}\n${JSON.stringify(meta)}\n`,
          );
          p.log.info(job.started ? 'backup job started on the VM' : 'backup job found on the VM', {
            job: job.id,
            state: job.state,
            backup: backupId,
          });
          return job;
        }),
      ),

    backupVerify: (i) =>
      guarded(p.log, 'backup', async () => {
        const v = await p.backups.verify(i.backupId);
        // the status page and GET /api/backups show it "verified" (or "corrupt") from this record
        await recordVerification(p.verifications, i.backupId, v, p.log);
        if (!v.ok || !v.manifest)
          throw new PipelineError(
            'BACKUP.CORRUPT',
            `backup ${i.backupId} failed verification: ${v.problems.join('; ')}`,
          );
        const bytes = Object.values(v.manifest.parts).reduce((a, x) => a + x.size, 0);
        return { backupId: v.manifest.id, bytes, parts: v.manifest.parts, manifest: v.manifest };
      }),

    confirmBackup: (i) =>
      guarded(p.log, 'backup check', async () => {
        const unreadable = (why: string) =>
          new PipelineError(
            'BACKUP.UNREADABLE',
            `backup ${i.backupId} can no longer be read (${why}): it could not undo the deploy, so nothing was stopped`,
          );
        let manifest: BackupManifest;
        try {
          manifest = await p.backups.manifest(i.backupId);
        } catch (err) {
          if (isRetryable(err)) throw err;
          throw unreadable(messageOf(err));
        }
        // list the parts as stored right now (one listing, no download) and compare their sizes
        const stored = new Map<string, number | undefined>();
        for await (const b of p.backups.container.listBlobsFlat({ prefix: `${i.backupId}/` }))
          stored.set(b.name.slice(i.backupId.length + 1), b.properties.contentLength);
        const problems = Object.entries(manifest.parts).flatMap(([name, info]) => {
          if (!stored.has(name)) return [`${name} is missing`];
          const size = stored.get(name);
          return size === info.size
            ? []
            : [`${name} is ${String(size)} bytes, the manifest says ${info.size}`];
        });
        if (problems.length) throw unreadable(problems.join('; '));
        return {
          backupId: i.backupId,
          parts: Object.fromEntries(Object.entries(manifest.parts).map(([n, x]) => [n, x.size])),
        };
      }),

    pull: (i) =>
      guarded(p.log, 'pull', () =>
        withShell(i.environment, async (sh) => {
          const r = await mustOps(sh, 'pull', shellQuote(i.imageRef));
          const d = typeof r.json.digest === 'string' ? r.json.digest : '';
          return {
            digest: d.includes('@') ? d.slice(d.indexOf('@') + 1) : d || undefined,
            version: typeof r.json.version === 'string' ? r.json.version : undefined,
          };
        }),
      ),

    stop: (i) =>
      guarded(p.log, 'stop', () =>
        withShell(i.environment, async (sh) => ({
          changed: (await mustOps(sh, 'stop', '')).json.changed === true,
        })),
      ),

    migrateStart: (i) =>
      guarded(p.log, 'migrate', () =>
        withShell(i.environment, async (sh) => {
          const job = await jobCall(
            sh,
            `start migrate --id ${shellQuote(i.jobId)} ${shellQuote(i.imageRef)} ${shellQuote(i.modules)}`,
          );
          p.log.info(job.started ? 'migration job started on the VM' : 'migration job found on the VM', {
            job: job.id,
            state: job.state,
          });
          return job;
        }),
      ),

    restoreStart: (i) =>
      guarded(p.log, 'rollback restore', () =>
        withShell(i.environment, async (sh) => {
          // waits for the VM's odoo-ops lock (an interrupted migration may still be ending); the job's
          // own steps wait for it as well (the job keeps the start's --lock-wait)
          const wait = `--lock-wait ${ROLLBACK_LOCK_WAIT_SECONDS}`;
          // a retried start finds its job first: the running restore holds the lock a stop would wait for
          const known = await findJob(sh, i.jobId);
          if (known) return known;
          await mustOps(sh, 'stop', '', {}, wait);
          return restoreJob(sh, { backupId: i.backupId, jobId: i.jobId }, wait);
        }),
      ),

    jobStatus: (i) =>
      guarded(p.log, 'job status', () =>
        withShell(i.environment, (sh) => jobCall(sh, `status ${shellQuote(i.jobId)}`)),
      ),

    start: (i) =>
      guarded(p.log, 'start', () =>
        withShell(i.environment, async (sh) => ({
          changed: (await mustOps(sh, 'start', shellQuote(i.imageRef))).json.changed === true,
        })),
      ),

    health: (i) =>
      guarded(p.log, 'health', () =>
        withShell(i.settings.environment, (sh) =>
          checkHealth(sh, i.settings, i.settings.healthTimeoutSeconds),
        ),
      ),

    record: (i) =>
      guarded(p.log, 'record', async () => {
        await p.ledger.record(i.environment, {
          version: i.version,
          sha: i.sha,
          imageRef: i.imageRef,
          imageDigest: i.imageDigest,
          coverage: i.coverage,
          backupId: i.backupId,
          deployedAt: new Date().toISOString(),
          instanceId: i.instanceId,
          mergedBy: i.mergedBy,
          durations: i.durations,
          totalMs: i.totalMs,
          downtimeMs: i.downtimeMs,
          modules: i.modules,
          previousVersion: i.previousVersion,
          ...(i.gateOverride ? { gateOverride: i.gateOverride } : {}),
        });
        return { recorded: true as const };
      }),

    retention: async (i) => {
      if (!p.registry) return { kept: [], deleted: [] };
      const protect = [tagOf(i.running), i.previous ? tagOf(i.previous) : undefined].filter(
        (t): t is string => !!t,
      );
      const r = await keepLastN(p.registry, repositoryOf(i.running), 'uat-v', i.settings.keepCount, protect);
      p.log.info('image retention', { kept: r.kept, deleted: r.deleted });
      return r;
    },

    compensate: (i) =>
      guarded(p.log, `rollback ${i.action}`, () =>
        withShell(i.settings.environment, async (sh) => {
          // A rollback waits for the VM's odoo-ops lock instead of failing on it: after a dropped SSH
          // connection the interrupted `odoo-ops migrate` (and its odoo -u) may still be running on the VM,
          // and the database must be restored only once it has ended.
          const wait = `--lock-wait ${ROLLBACK_LOCK_WAIT_SECONDS}`;
          switch (i.action) {
            case 'stop-new':
              await mustOps(sh, 'stop', '', {}, wait);
              return {};
            case 'restore':
              // a restore is a VM job the orchestrator starts (restoreStart) and polls: never held open here
              throw new PipelineError(
                'ROLLBACK.RESTORE_IS_A_JOB',
                'the restore of a rollback runs as a VM job: start it with restoreStart and poll jobStatus',
              );
            case 'start-previous': {
              const img = i.image ?? (await mustOps(sh, 'current', '')).json.previous;
              if (typeof img !== 'string' || !img)
                throw new PipelineError('ROLLBACK.NO_PREVIOUS', 'no previous image known to roll back to');
              await mustOps(sh, 'start', shellQuote(img), {}, wait);
              return {};
            }
            case 'health':
              return checkHealth(sh, i.settings, i.settings.healthTimeoutSeconds);
          }
        }),
      ),

    saveLogs: async (i) => {
      const saved: string[] = [];
      if (!i.backupId) return { logs: saved };
      try {
        await withShell(i.environment, async (sh) => {
          for (const [args, name] of [
            ['logs --migration --tail 2000', 'migration.log'],
            ['logs --tail 2000', 'container.log'],
            ['history --tail 50', 'ops-history.log'],
          ] as const) {
            try {
              const r = await runOps(sh, args, { timeoutMs: 60000 });
              const text =
                typeof r.json.text === 'string' ? r.json.text : String(r.json.message ?? r.stderrTail);
              await p.backups.saveLog(
                i.backupId!,
                name,
                `# ${i.instanceId}: odoo-ops ${args} (exit ${r.code})\n${text}\n`,
              );
              saved.push(`${i.backupId}/logs/${name}`);
            } catch (err) {
              p.log.warn('could not save a log', { name, error: messageOf(err) });
            }
          }
        });
      } catch (err) {
        p.log.warn('could not save logs', { error: messageOf(err) });
      }
      return { logs: saved };
    },

    notify: async (e) => {
      try {
        return await p.notify.notify(e);
      } catch (err) {
        p.log.warn('notification failed (ignored)', { kind: e.kind, error: messageOf(err) });
        return {};
      }
    },
  };
}

// ------------------------------------------------------------------------- production wiring --

export function deploySettingsFromConfig(config: Config, environment: string): DeploySettings {
  return {
    environment,
    url: environment === 'prod' ? config.PROD_URL : config.UAT_URL,
    minFreeDiskGb: config.MIN_FREE_DISK_GB ?? 5,
    imageWaitMinutes: config.IMAGE_WAIT_MINUTES ?? 30,
    imagePollSeconds: config.IMAGE_POLL_SECONDS ?? 30,
    jobPollSeconds: config.VM_JOB_POLL_SECONDS ?? 15,
    jobDeadlineMinutes: config.VM_JOB_DEADLINE_MINUTES ?? 180,
    healthTimeoutSeconds: config.HEALTH_TIMEOUT_SECONDS ?? 300,
    keyUrls: config.HEALTH_KEY_URLS ?? [],
    keepCount: config.IMAGE_KEEP_COUNT ?? 5,
    retryFirstMs: Math.round((config.DEPLOY_RETRY_FIRST_SECONDS ?? 5) * 1000),
    retryAttempts: config.DEPLOY_RETRY_ATTEMPTS ?? 4,
  };
}

export function deployPortsFromConfig(config: Config, log: Logger = createLogger()): DeployPorts {
  const registry = config.REGISTRY_URL
    ? createRegistryClient({
        kind: config.REGISTRY_KIND ?? 'oci',
        url: config.REGISTRY_URL,
        username: config.REGISTRY_USERNAME,
        password: config.REGISTRY_PASSWORD,
        log,
      })
    : undefined;
  const backups = config.BACKUP_STORAGE_CONNECTION
    ? new BackupStore({
        connectionString: config.BACKUP_STORAGE_CONNECTION,
        container: config.BACKUP_CONTAINER ?? 'backups',
        log,
      })
    : new BackupStore({
        accountUrl: config.BACKUP_STORAGE_ACCOUNT_URL ?? '',
        container: config.BACKUP_CONTAINER ?? 'backups',
        log,
      });
  const notify = createDeployNotifier(config, log);
  return {
    settings: (env) => deploySettingsFromConfig(config, env),
    ssh: {
      async connect(env) {
        if (env !== 'uat')
          throw new PipelineError('DEPLOY.BAD_ENVIRONMENT', `deployUat targets uat only (got ${env})`);
        if (!config.UAT_SSH_HOST || !config.UAT_SSH_HOST_KEY || !config.SSH_PRIVATE_KEY)
          throw new PipelineError(
            'CONFIG.SSH_MISSING',
            'UAT_SSH_HOST, UAT_SSH_HOST_KEY and SSH_PRIVATE_KEY must be set',
          );
        return SshClient.connect(
          {
            host: config.UAT_SSH_HOST,
            port: config.UAT_SSH_PORT ?? 22,
            username: config.UAT_SSH_USER ?? 'odoo-ops',
            privateKey: config.SSH_PRIVATE_KEY,
            hostKeyFingerprint: config.UAT_SSH_HOST_KEY,
          },
          { connectTimeoutMs: (config.SSH_CONNECT_TIMEOUT_SECONDS ?? 20) * 1000, log },
        );
      },
    },
    backups,
    registry,
    vm: config.UAT_VM_RESOURCE_ID
      ? {
          control: createVmControl({ endpoint: config.ARM_ENDPOINT, log }),
          resourceId: config.UAT_VM_RESOURCE_ID,
          autoStart: config.VM_AUTO_START ?? true,
        }
      : undefined,
    ledger: createLedger(ledgerContainer(config)),
    verifications: createVerificationStore(ledgerContainer(config)),
    notify,
    changedFiles: notify.changedFiles,
    commandTimeoutMs: (config.SSH_COMMAND_TIMEOUT_SECONDS ?? 3600) * 1000,
    backupSasMinutes: config.VM_JOB_DEADLINE_MINUTES ?? 180,
    log,
  };
}

// ------------------------------------------------------------------------------ registration --

let current: DeployActivities | undefined;

/** Wire the activities to other ports (tests); production builds them from settings on first use. */
export function setDeployPorts(ports: DeployPorts | undefined): void {
  current = ports ? createDeployActivities(ports) : undefined;
}
function acts(): DeployActivities {
  current ??= createDeployActivities(deployPortsFromConfig(loadConfig(process.env)));
  return current;
}

df.app.activity('deployPrepare', { handler: (i: { environment: string }) => acts().prepare(i) });
df.app.activity('deployPreflight', {
  handler: (i: Parameters<DeployActivities['preflight']>[0]) => acts().preflight(i),
});
df.app.activity('deployCheckImage', { handler: (i: { imageRef: string }) => acts().checkImage(i) });
df.app.activity('deployModules', {
  handler: (i: Parameters<DeployActivities['modules']>[0]) => acts().modules(i),
});
df.app.activity('deployBackupStart', {
  handler: (i: BackupStartInput) => acts().backupStart(i),
});
df.app.activity('deployRestoreStart', {
  handler: (i: Parameters<DeployActivities['restoreStart']>[0]) => acts().restoreStart(i),
});
df.app.activity('deployBackupVerify', {
  handler: (i: { backupId: string }) => acts().backupVerify(i),
});
df.app.activity('deployPull', { handler: (i: Parameters<DeployActivities['pull']>[0]) => acts().pull(i) });
df.app.activity('deployConfirmBackup', {
  handler: (i: Parameters<DeployActivities['confirmBackup']>[0]) => acts().confirmBackup(i),
});
df.app.activity('deployStop', { handler: (i: { environment: string }) => acts().stop(i) });
df.app.activity('deployMigrateStart', {
  handler: (i: Parameters<DeployActivities['migrateStart']>[0]) => acts().migrateStart(i),
});
df.app.activity('deployJobStatus', {
  handler: (i: Parameters<DeployActivities['jobStatus']>[0]) => acts().jobStatus(i),
});
df.app.activity('deployStart', { handler: (i: Parameters<DeployActivities['start']>[0]) => acts().start(i) });
df.app.activity('deployHealth', {
  handler: (i: Parameters<DeployActivities['health']>[0]) => acts().health(i),
});
df.app.activity('deployRecord', {
  handler: (i: Parameters<DeployActivities['record']>[0]) => acts().record(i),
});
df.app.activity('deployRetention', {
  handler: (i: Parameters<DeployActivities['retention']>[0]) => acts().retention(i),
});
df.app.activity('deployCompensate', {
  handler: (i: Parameters<DeployActivities['compensate']>[0]) => acts().compensate(i),
});
df.app.activity('deploySaveLogs', {
  handler: (i: Parameters<DeployActivities['saveLogs']>[0]) => acts().saveLogs(i),
});
df.app.activity('deployNotify', { handler: (e: NotifyEvent) => acts().notify(e) });
