/**
 * The side effects of a UAT refresh (functions/orchestrators/refreshUat.ts), one activity per runbook
 * step, built by `createRefreshActivities(ports)`. On the VMs every step is an `odoo-ops --json <verb>`
 * call over SSH (docker/ops/odoo-ops: job start restore --blob --into — PROD's backup read from Blob by
 * UAT itself, polled —, run-sql, prune-filestore, swap-db, drop-db, pg-stream).
 *
 * Failure contract (as for deploys): an activity THROWS only transient failures (SSH connect, Blob
 * throttling) so idempotent steps are retried by the orchestrator; a deterministic failure is RETURNED
 * as `{ failed: { code, message } }`.
 *
 * The PII sample: `anonymizeVerify` samples the restored (still PROD-identical) copy, runs the
 * anonymization and verifies, in one activity invocation. The sample is a local variable of that
 * invocation: it is never an activity input or output (so never in the orchestration history), never
 * logged, and gone when the activity returns. Sampling the restored copy rather than live PROD means
 * the pipeline never opens a database session on PROD, and the sample is exactly the data that was
 * copied. A re-delivered invocation finds the copy already anonymized (marker `odoo_mta.anonymized`)
 * and fails rather than sample anonymized values (which would make the verification vacuous).
 *
 * How the verifier reaches the copy: the `pg` client speaks the PostgreSQL protocol through an SSH
 * exec channel running `odoo-ops pg-stream` (a relay to the db container's Unix socket). No port is
 * opened on the VM or on this host, no database password is needed or transported (the socket trusts
 * local connections, like `docker exec db psql`), and the SSH host key pin and key authentication
 * already guard the channel.
 */
import * as df from 'durable-functions';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Duplex, PassThrough, type Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { Client } from 'pg';
import { loadConfig, type Config } from '../../shared/config';
import { BackupStore } from '../../shared/adapters/backup-store';
import { streamVmBackup } from '../../shared/adapters/backup-stream';
import {
  createVerificationStore,
  recordVerification,
  type VerificationStore,
} from '../../shared/adapters/backup-verifications';
import { ensureContainer, ledgerContainer, writeJson } from '../../shared/adapters/ledger';
import { samplePii, verifyNoPii } from '../../shared/adapters/pii-verifier';
import { buildRefreshCommand, extensionScripts, SQL_DIR } from '../../shared/adapters/sql-scripts';
import { createSlack, type SlackPort } from '../../shared/adapters/slack';
import { SshClient, shellQuote, type SshRunOptions } from '../../shared/adapters/ssh';
import { PipelineError, errorCode, isRetryable, messageOf } from '../../shared/domain/errors';
import { formatReport } from '../../shared/domain/pii';
import { parseVmJob, type VmJob } from '../../shared/domain/vm-job';
import {
  FILESTORE_MODES,
  type ColumnReport,
  type FilestoreMode,
  type RefreshResult,
  type RefreshSettings,
  type ScrubOut,
  type SourceMode,
} from '../../shared/domain/refresh';
import { createLogger, registerSecret, type Logger } from '../../shared/log';
import { opsError, parseOpsJson, type ActivityFailure, type OpsResult, type RemoteShell } from './deploy';

// ------------------------------------------------------------------------------------ shapes --

export type Failable<T> = T | { failed: ActivityFailure };
export interface PrepareOut {
  settings: RefreshSettings;
  /** UAT's live database name (odoo-ops status) */
  database: string;
  /** the image UAT runs (started again after the refresh) */
  image: string;
}
export interface UatBackupOut {
  backupId: string;
  bytes: number;
}
export interface SourceOut {
  backupId: string;
  bytes: number;
  fresh: boolean;
  createdAt: string;
  hasFilestore: boolean;
}
export interface RestoreOut {
  tables: number;
  pgUser: string;
}
export interface FilestoreOut {
  files?: number;
  removed?: number;
}

// ------------------------------------------------------------------------------------- ports --

export type VmName = 'uat' | 'prod';

export interface RefreshPorts {
  /** settings without secrets (what `refreshPrepare` hands the orchestrator) */
  settings(request: { filestore?: string; backup?: string }): RefreshSettings;
  /** the UAT password hash (secret: read here, never passed through the orchestration) */
  passwordHash?: string;
  ssh: { connect(vm: VmName): Promise<RemoteShell> };
  backups: BackupStore;
  /** where refresh reports are recorded (`refreshes/<env>/<id>.json`) */
  ledger?: ContainerClient;
  /** where the verifications of the backups the refresh takes or reads are recorded (the backups API's store); none: not recorded */
  verifications?: VerificationStore;
  slack?: SlackPort;
  /** the odoo-ops command on the VMs */
  opsCommand?: string;
  commandTimeoutMs?: number;
  /** how long the read SAS URLs handed to a restore job stay valid (default 180 min: VM_JOB_DEADLINE_MINUTES) */
  readSasMinutes?: number;
  /** folder of sql/ (default SQL_DIR) */
  sqlDir?: string;
  /** values sampled per PII source column (default: the verifier's) */
  samplePerColumn?: number;
  log: Logger;
}

export interface RefreshActivities {
  prepare(i: { filestore?: string; backup?: string }): Promise<Failable<PrepareOut>>;
  backupUat(i: { instanceId: string; reason?: string }): Promise<Failable<UatBackupOut>>;
  source(i: { mode: SourceMode; instanceId: string }): Promise<Failable<SourceOut>>;
  stop(i: Record<string, never>): Promise<Failable<{ changed: boolean }>>;
  /**
   * Start (or find) the restore of PROD's backup into the NEW database on UAT as a detached VM job
   * (`odoo-ops job start restore --id <jobId> --blob <backupId> --into <database> [--no-filestore]`): the
   * backup is confirmed restorable first (manifest present, parts listed with their sizes), the job gets
   * one read-only blob SAS URL per part on stdin, reads the parts itself and checks them against the
   * manifest while it restores. A retried start finds the job. The orchestrator polls `jobStatus`.
   */
  restoreStart(i: {
    environment?: string;
    backupId: string;
    database: string;
    jobId: string;
    /** restore the filestore part too (into the new database's filestore folder) */
    filestore: boolean;
  }): Promise<Failable<VmJob>>;
  /** The state of a VM job on UAT (`odoo-ops job status <jobId>`). */
  jobStatus(i: { environment?: string; jobId: string }): Promise<Failable<VmJob>>;
  neutralize(i: {
    database: string;
    uatUrl?: string;
    keepLogins?: string[];
  }): Promise<Failable<{ rows: Record<string, number> }>>;
  anonymizeVerify(i: {
    database: string;
    pgUser: string;
    keepLogins: string[];
    dropAttachments: boolean;
  }): Promise<Failable<ScrubOut>>;
  /**
   * The filestore staged by the restore job (its files): pruned to what the anonymized copy's
   * attachments refer to with mode `drop-anonymized`.
   */
  filestore(i: {
    database: string;
    mode: FilestoreMode;
    /** files the restore job restored (undefined: the backup had no filestore) */
    files?: number;
  }): Promise<Failable<FilestoreOut>>;
  swap(i: { database: string }): Promise<Failable<{ keptOld?: string }>>;
  start(i: { image?: string }): Promise<Failable<{ changed: boolean }>>;
  health(i: { seconds: number }): Promise<Failable<{ healthy: boolean; failures: string[] }>>;
  dropDb(i: { database?: string }): Promise<Failable<{ existed: boolean }>>;
  report(
    r: RefreshResult & { source?: string; target?: string; requestedBy?: string; requestReason?: string },
  ): Promise<{ slack: boolean; ledger: boolean }>;
}

// ------------------------------------------------------------------------------- helpers --

const DB_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$/;

function checkDb(name: string | undefined): string {
  if (!name || !DB_NAME.test(name))
    throw new PipelineError('REFRESH.BAD_DATABASE', `"${String(name)}" is not a plain database name`);
  return name;
}

async function guarded<T>(
  log: Logger,
  what: string,
  fn: () => Promise<T>,
  transientIsFailure = false,
): Promise<Failable<T>> {
  try {
    return await fn();
  } catch (err) {
    const code = errorCode(err) ?? 'REFRESH.FAILED';
    if (isRetryable(err) && !transientIsFailure) {
      log.warn(`${what}: transient failure, will be retried`, { code, error: messageOf(err) });
      throw err instanceof Error ? err : new Error(String(err));
    }
    log.error(`${what} failed`, { code, error: messageOf(err) });
    const m = messageOf(err);
    return { failed: { code, message: m.startsWith('[') ? m : `[${code}] ${m}` } };
  }
}

/**
 * The psql script the pipeline feeds `odoo-ops run-sql` on the VM: exactly what
 * `buildRefreshCommand` (the operators' command) runs — its `-v` variables as `\set` lines, its stdin
 * (the password hash), then each `-f` file with its `\ir` includes inlined (the VM has no sql/ folder).
 */
export function refreshScript(cmd: { args: string[]; stdin: string }, sqlDir: string = SQL_DIR): string {
  const parts: string[] = [];
  const inline = (file: string, depth = 0): string => {
    if (depth > 5) throw new PipelineError('SQL.BAD_PARAMETER', `\\ir nesting too deep at ${file}`);
    const text = readFileSync(file, 'utf8');
    return text.replace(/^\\ir\s+(\S+)\s*$/gm, (_, rel: string) =>
      inline(path.resolve(path.dirname(file), rel), depth + 1),
    );
  };
  for (let i = 0; i < cmd.args.length; i++) {
    const a = cmd.args[i];
    if (a === '-v') {
      const [k, ...rest] = cmd.args[++i].split('=');
      if (k === 'ON_ERROR_STOP') continue;
      parts.push(`\\set ${k} '${rest.join('=').replace(/'/g, "''")}'`);
    } else if (a === '-f') {
      const f = cmd.args[++i];
      if (f === '-') parts.push(cmd.stdin.trimEnd());
      else parts.push(inline(path.isAbsolute(f) ? f : path.join(sqlDir, f)));
    }
  }
  return ['\\set ON_ERROR_STOP 1', ...parts, ''].join('\n');
}

/**
 * `column|table.column|rule` lines of anonymize.sql's column report → the columns treated (with their
 * rule: explicit, or the kind found from Odoo's metadata) and the text-like columns left untouched.
 */
export function parseColumnReport(output: string): ColumnReport {
  const treated: ColumnReport['treated'] = [];
  const untouched: string[] = [];
  for (const line of output.split('\n')) {
    // unaligned (odoo-ops: -A -F '|') or aligned psql output
    const parts = line.split('|').map((x) => x.trim());
    if (parts.length !== 3 || parts[0] !== 'column') continue;
    const m = /^([A-Za-z0-9_]{1,128})\.([A-Za-z0-9_]{1,128})$/.exec(parts[1]);
    if (!m || !/^[a-z_]{1,32}$/.test(parts[2])) continue;
    if (parts[2] === 'untouched') untouched.push(parts[1]);
    else treated.push({ table: m[1], column: m[2], rule: parts[2] });
  }
  return { treated, untouched };
}

/** `step|rows` lines of the scripts' summaries → counts (other lines ignored). */
export function parseRowCounts(output: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of output.split('\n')) {
    const m = /^([^|]{1,200})\|(\d+)$/.exec(line.trim());
    if (m) out[m[1].trim()] = (out[m[1].trim()] ?? 0) + Number(m[2]);
  }
  return out;
}

/**
 * A socket-like Duplex carrying the PostgreSQL protocol through an SSH exec channel running
 * `odoo-ops pg-stream`. `pg` calls connect()/setNoDelay()/setKeepAlive() on its stream.
 */
export class PgOverSsh extends Duplex {
  private readonly input = new PassThrough();
  private out?: Readable;
  private ending = false;

  constructor(
    private readonly shell: RemoteShell,
    private readonly command: string,
  ) {
    super();
  }

  connect(): this {
    const s = this.shell.stream(this.command, { stdin: this.input, timeoutMs: 0 });
    this.out = s.stdout;
    s.stdout.on('data', (d: Buffer) => {
      if (!this.push(d)) s.stdout.pause();
    });
    s.stdout.on('end', () => this.push(null));
    const fail = (e: Error) => (this.ending ? this.destroy() : this.destroy(e));
    s.stdout.on('error', fail);
    s.done.then(
      () => this.push(null),
      (e: Error) =>
        fail(
          new PipelineError(
            'PII.DB_UNREACHABLE',
            `the database stream over SSH ended: ${messageOf(e).split('\n')[0]}`,
          ),
        ),
    );
    process.nextTick(() => this.emit('connect'));
    return this;
  }
  override _read(): void {
    this.out?.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.input.write(chunk, cb);
  }
  override _final(cb: (e?: Error | null) => void): void {
    this.ending = true;
    this.input.end();
    cb();
  }
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.input.destroy();
    this.out?.destroy();
    cb(err);
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

// ------------------------------------------------------------------------------- activities --

export function createRefreshActivities(p: RefreshPorts): RefreshActivities {
  const ops = p.opsCommand ?? 'odoo-ops';
  const timeoutMs = p.commandTimeoutMs ?? 3600_000;
  const sqlDir = p.sqlDir ?? SQL_DIR;

  async function withShell<T>(vm: VmName, fn: (sh: RemoteShell) => Promise<T>): Promise<T> {
    const sh = await p.ssh.connect(vm);
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
  async function mustOps(
    sh: RemoteShell,
    verb: string,
    args: string,
    o: SshRunOptions = {},
  ): Promise<OpsResult> {
    const r = await runOps(sh, `${verb} ${args}`.trim(), o);
    if (r.code !== 0) throw opsError(verb, r);
    return r;
  }
  /** `odoo-ops --json job <args>` as a VmJob (a non-zero exit is a coded error) */
  async function jobCall(sh: RemoteShell, args: string, stdin?: string): Promise<VmJob> {
    const r = await mustOps(sh, 'job', args, { timeoutMs: 120_000, ...(stdin ? { stdin } : {}) });
    const job = parseVmJob(r.json);
    if (!job) throw new PipelineError('OPS.ERROR', `odoo-ops job ${args.split(' ')[0]} gave no job state`);
    const last = job.steps[job.steps.length - 1];
    if (job.state === 'failed' && last && typeof last.message === 'string' && last.message)
      job.message = `odoo-ops ${typeof last.verb === 'string' ? last.verb : job.kind} failed (exit ${job.exitCode ?? '?'}): ${last.message}`;
    return job;
  }

  /** backup-db + backup-filestore of a VM streamed to Blob, verified. */
  async function backupVm(
    vm: VmName,
    meta: Record<string, string>,
  ): Promise<{ backupId: string; bytes: number; hasFilestore: boolean; createdAt: string }> {
    await p.backups.ensureContainer();
    for (let attempt = 0; ; attempt++) {
      try {
        const version = (meta.version ?? 'refresh').replace(/[^0-9A-Za-z.+_-]/g, '') || 'refresh';
        const writer = p.backups.begin(vm, { ...meta, version });
        await withShell(vm, (sh) => streamVmBackup(writer, sh, { ops, timeoutMs, where: vm }));
        const manifest = await writer.finish();
        const v = await p.backups.verify(manifest.id);
        // the status page and GET /api/backups show it "verified" (or "corrupt") from this record;
        // a failure to record is logged and never fails the refresh
        await recordVerification(p.verifications, manifest.id, v, p.log);
        if (!v.ok)
          throw new PipelineError(
            'BACKUP.CORRUPT',
            `backup ${manifest.id} failed verification: ${v.problems.join('; ')}`,
          );
        return {
          backupId: manifest.id,
          bytes: Object.values(manifest.parts).reduce((a, x) => a + x.size, 0),
          hasFilestore: !!manifest.parts['filestore.tar'],
          createdAt: manifest.startedAt,
        };
      } catch (err) {
        // backup ids have a one-second stamp: take the next second's id on a collision
        if (errorCode(err) !== 'BACKUP.EXISTS' || attempt >= 2) throw err;
        await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
      }
    }
  }

  async function runSql(database: string, script: string): Promise<Record<string, number>> {
    return parseRowCounts(await runSqlOutput(database, script));
  }

  async function runSqlOutput(database: string, script: string): Promise<string> {
    return withShell('uat', async (sh) => {
      const r = await runOps(sh, `run-sql --db ${shellQuote(database)}`, { stdin: script });
      if (r.code !== 0) {
        const msg = typeof r.json.message === 'string' ? r.json.message : 'psql failed';
        throw new PipelineError('REFRESH.SQL_FAILED', `${msg}`.slice(0, 1500));
      }
      return typeof r.json.output === 'string' ? r.json.output : '';
    });
  }

  /** A pg client on a UAT database through `odoo-ops pg-stream` over its own SSH session. */
  async function pgOnUat(
    database: string,
    user: string,
  ): Promise<{ client: Client; close(): Promise<void> }> {
    const sh = await p.ssh.connect('uat');
    const client = new Client({
      user,
      database,
      stream: () => new PgOverSsh(sh, `${ops} pg-stream`) as unknown as import('node:net').Socket,
    });
    client.on('error', (e) => p.log.warn('verifier connection error', { error: e.message }));
    try {
      await client.connect();
    } catch (err) {
      await sh.close().catch(() => undefined);
      throw new PipelineError(
        'PII.DB_UNREACHABLE',
        `cannot reach ${database} on UAT through odoo-ops pg-stream: ${messageOf(err)}`,
      );
    }
    return {
      client,
      close: async () => {
        await client.end().catch(() => undefined);
        await sh.close().catch(() => undefined);
      },
    };
  }

  return {
    prepare: (i) =>
      guarded(p.log, 'prepare', async () => {
        const settings = p.settings(i);
        return withShell('uat', async (sh) => {
          const st = await mustOps(sh, 'status', '');
          if (typeof st.json.lock === 'string' && st.json.lock)
            throw new PipelineError(
              'REFRESH.LOCKED',
              `another odoo-ops run holds the lock on UAT: ${st.json.lock}`,
              true,
            );
          const database = String(st.json.database ?? '');
          const image = String(st.json.image || st.json.web_image || '');
          checkDb(database);
          if (!image)
            throw new PipelineError(
              'REFRESH.NO_IMAGE',
              'odoo-ops on UAT knows no running image to start again after the refresh',
            );
          return { settings, database, image };
        });
      }),

    backupUat: (i) =>
      guarded(p.log, 'backup UAT', async () => {
        const b = await backupVm('uat', {
          version: 'pre-refresh',
          reason: 'pre-refresh',
          refreshInstance: i.instanceId,
        });
        return { backupId: b.backupId, bytes: b.bytes };
      }),

    source: (i) =>
      guarded(p.log, 'PROD dump', async () => {
        if (i.mode === 'fresh') {
          const b = await backupVm('prod', {
            version: 'refresh-source',
            reason: 'refresh-source',
            refreshInstance: i.instanceId,
          });
          return { ...b, fresh: true };
        }
        // the latest PROD backup that passes verification (every part's size and sha256)
        const list = (await p.backups.list('prod')).filter((b) => b.complete && b.parts?.includes('db.dump'));
        for (const b of list.slice(0, 5)) {
          const v = await p.backups.verify(b.id);
          await recordVerification(p.verifications, b.id, v, p.log);
          if (v.ok)
            return {
              backupId: b.id,
              bytes: b.totalSize ?? 0,
              fresh: false,
              createdAt: b.createdAt.toISOString(),
              hasFilestore: !!b.parts?.includes('filestore.tar'),
            };
          p.log.warn('PROD backup failed verification: trying an older one', {
            backupId: b.id,
            problems: v.problems.join('; '),
          });
        }
        throw new PipelineError(
          'REFRESH.NO_SOURCE',
          list.length
            ? 'no recent PROD backup passes verification: request backup "fresh"'
            : 'there is no PROD backup yet: request backup "fresh"',
        );
      }),

    stop: () =>
      guarded(p.log, 'stop UAT', () =>
        withShell('uat', async (sh) => ({ changed: (await mustOps(sh, 'stop', '')).json.changed === true })),
      ),

    restoreStart: (i) =>
      guarded(
        p.log,
        'restore',
        () =>
          withShell('uat', async (sh) => {
            const database = checkDb(i.database);
            // a retried or replayed start: the job exists (running or ended) — report it, start nothing
            try {
              const known = await jobCall(sh, `status ${shellQuote(i.jobId)}`);
              return { ...known, started: false };
            } catch (err) {
              if (errorCode(err) !== 'OPS.JOB_UNKNOWN') throw err;
            }
            const manifest = await p.backups.assertListed(i.backupId);
            const names = Object.keys(manifest.parts).filter(
              (n) => n === 'db.dump' || (n === 'filestore.tar' && i.filestore),
            );
            const urls = await p.backups.readSasUrls(i.backupId, p.readSasMinutes ?? 180, names);
            // the read SAS URLs travel on stdin only: never in the command line, the job's spec or a log
            const job = await jobCall(
              sh,
              `start restore --id ${shellQuote(i.jobId)} --blob ${shellQuote(i.backupId)} --into ${shellQuote(database)}${i.filestore ? '' : ' --no-filestore'}`,
              `${urls.join(' ')}\n`,
            );
            p.log.info(job.started ? 'restore job started on UAT' : 'restore job found on UAT', {
              job: job.id,
              state: job.state,
              backup: i.backupId,
              database,
            });
            return job;
          }),
        true,
      ),

    jobStatus: (i) =>
      guarded(
        p.log,
        'job status',
        () => withShell('uat', (sh) => jobCall(sh, `status ${shellQuote(i.jobId)}`)),
        true,
      ),

    neutralize: (i) =>
      guarded(
        p.log,
        'neutralize',
        async () => {
          const database = checkDb(i.database);
          const cmd = buildRefreshCommand({
            database,
            uatUrl: i.uatUrl,
            passwordHash: p.passwordHash,
            keepLogins: i.keepLogins,
            sqlDir,
            neutralizeOnly: true,
          });
          return { rows: await runSql(database, refreshScript(cmd, sqlDir)) };
        },
        true,
      ),

    anonymizeVerify: (i) =>
      guarded(
        p.log,
        'anonymize + verify',
        async () => {
          const database = checkDb(i.database);
          // the anonymization command without neutralize.sql (done by the previous step)
          const full = buildRefreshCommand({
            database,
            passwordHash: p.passwordHash,
            keepLogins: i.keepLogins,
            dropAttachments: i.dropAttachments,
            sqlDir,
            extensions: extensionScripts(sqlDir),
          });
          const fIdx = full.args.findIndex(
            (a, k) => a === '-f' && full.args[k + 1]?.endsWith('neutralize.sql'),
          );
          const cmd = { args: full.args.filter((_, k) => k !== fIdx && k !== fIdx + 1), stdin: full.stdin };
          const t0 = Date.now();
          // 1. sample: held in this variable only (see the header)
          let sample: Awaited<ReturnType<typeof samplePii>> | undefined;
          {
            const db = await pgOnUat(database, i.pgUser);
            try {
              const marker = await db.client.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM information_schema.tables t WHERE t.table_schema = current_schema() AND t.table_name = 'ir_config_parameter'`,
              );
              if (marker.rows[0].n > 0) {
                const m = await db.client.query(
                  `SELECT 1 FROM ir_config_parameter WHERE key = 'odoo_mta.anonymized'`,
                );
                if (m.rowCount)
                  throw new PipelineError(
                    'REFRESH.ALREADY_ANONYMIZED',
                    `${database} is already anonymized: its PROD values cannot be sampled any more; run the refresh again`,
                  );
              }
              sample = await samplePii(db.client, { keepLogins: i.keepLogins, perColumn: p.samplePerColumn });
            } finally {
              await db.close();
            }
          }
          const sampled = { ...sample.counts };
          const t1 = Date.now();
          // 2. anonymize (one transaction on the VM)
          const output = await runSqlOutput(database, refreshScript(cmd, sqlDir));
          const anonymizeRows = parseRowCounts(output);
          // every table.column treated with its rule, every text column left untouched (odoo-ops keeps the
          // output's last 20 kB: on a big database the list can be cut, the counts above never are)
          const columns = parseColumnReport(output);
          const t2 = Date.now();
          // 3. verify every text column of every table against the sample
          const db = await pgOnUat(database, i.pgUser);
          let report;
          try {
            // a second pg-stream session lets the two biggest tables be searched at the same time
            // and, on the same connection, the secret catalogue (sql/lib/secrets.sql): a place still
            // holding a catalogued credential fails the refresh like a PII leak (place and count only)
            report = await verifyNoPii(db.client, sample, {
              parallel: 2,
              connect: () => pgOnUat(database, i.pgUser),
              secrets: true,
            });
          } finally {
            await db.close();
            sample = undefined;
          }
          const t3 = Date.now();
          (report.ok ? p.log.info : p.log.error).call(p.log, formatReport(report), { database });
          return {
            sampled,
            anonymizeRows,
            columns,
            report,
            ms: { sample: t1 - t0, anonymize: t2 - t1, verify: t3 - t2 },
          };
        },
        true,
      ),

    filestore: (i) =>
      guarded(
        p.log,
        'filestore',
        async () => {
          const database = checkDb(i.database);
          if (i.mode === 'none') return {};
          // the restore job staged it under the new database's name (restore-filestore --into)
          if (i.files === undefined)
            p.log.warn('the PROD backup has no filestore: nothing copied', { database });
          if (i.mode !== 'drop-anonymized') return { files: i.files ?? 0 };
          return withShell('uat', async (sh) => {
            const pr = await mustOps(sh, 'prune-filestore', shellQuote(database));
            return { files: Number(pr.json.kept ?? 0), removed: Number(pr.json.removed ?? 0) };
          });
        },
        true,
      ),

    swap: (i) =>
      guarded(
        p.log,
        'swap',
        () =>
          withShell('uat', async (sh) => {
            const r = await mustOps(sh, 'swap-db', shellQuote(checkDb(i.database)));
            return {
              keptOld: typeof r.json.kept_old === 'string' && r.json.kept_old ? r.json.kept_old : undefined,
            };
          }),
        true,
      ),

    start: (i) =>
      guarded(p.log, 'start UAT', () =>
        withShell('uat', async (sh) => {
          let image = i.image;
          if (!image) image = String((await mustOps(sh, 'current', '')).json.image ?? '');
          if (!image) throw new PipelineError('REFRESH.NO_IMAGE', 'no image known to start UAT with');
          return { changed: (await mustOps(sh, 'start', shellQuote(image))).json.changed === true };
        }),
      ),

    health: (i) =>
      guarded(p.log, 'health', () =>
        withShell('uat', async (sh) => {
          const secs = Math.max(0, Math.round(i.seconds));
          const r = await runOps(sh, `health --wait ${secs} --interval 1`, {
            timeoutMs: (secs + 120) * 1000,
          });
          if (r.code !== 0 && r.code !== 4) throw opsError('health', r);
          return {
            healthy: r.code === 0,
            failures: r.code === 0 ? [] : [String(r.json.failures || r.json.message || 'unhealthy')],
          };
        }),
      ),

    dropDb: (i) =>
      guarded(p.log, 'drop database', async () => {
        if (!i.database) return { existed: false };
        const database = checkDb(i.database);
        return withShell('uat', async (sh) => ({
          existed: (await mustOps(sh, 'drop-db', shellQuote(database))).json.existed === true,
        }));
      }),

    report: async (r) => {
      const out = { slack: false, ledger: false };
      const secs = (ms?: number) => (ms === undefined ? '?' : `${Math.round(ms / 100) / 10} s`);
      const icon =
        r.outcome === 'Succeeded'
          ? ':white_check_mark:'
          : r.outcome === 'LeakFound' || r.outcome === 'NeedsAttention'
            ? ':rotating_light:'
            : ':warning:';
      const headline =
        r.outcome === 'Succeeded'
          ? `UAT refreshed from PROD in ${secs(r.totalMs)}`
          : r.outcome === 'LeakFound'
            ? 'UAT refresh STOPPED: PROD personal data found after anonymization — UAT is kept stopped'
            : r.outcome === 'RolledBack'
              ? 'UAT refresh rolled back: UAT runs on its previous database'
              : r.outcome === 'NeedsAttention'
                ? 'UAT refresh failed and UAT could not be restored: needs attention'
                : 'UAT refresh failed before the swap: UAT runs on its previous database';
      const mainRows = Object.entries(r.rows)
        .filter(([, n]) => n > 0)
        .slice(0, 15)
        .map(([k, n]) => `${k}: ${n}`);
      const lines = [
        `${icon} *${headline}* (${r.instanceId})`,
        r.requestReason ? `reason: ${r.requestReason} — by ${r.requestedBy ?? '?'}` : '',
        r.sourceBackupId
          ? `source: ${r.sourceBackupId}${r.uatBackupId ? ` · UAT backup before: ${r.uatBackupId}` : ''}`
          : '',
        r.reason
          ? `${r.code ? `[${r.code}] ` : ''}${r.reason.replace(/^\[[A-Z0-9_.]+\]\s*/, '')}`.slice(0, 2500)
          : '',
        r.leaks?.length ? `leaks (table.column: count):\n${r.leaks.map((l) => `• ${l}`).join('\n')}` : '',
        mainRows.length ? `rows: ${mainRows.join(', ')}` : '',
        `durations: ${Object.entries(r.durations)
          .map(([k, ms]) => `${k} ${secs(ms)}`)
          .join(', ')}`,
      ].filter(Boolean);
      if (p.slack?.enabled) out.slack = await p.slack.postQuietly({ text: lines.join('\n') });
      if (p.ledger) {
        try {
          await ensureContainer(p.ledger)();
          out.ledger = await writeJson(p.ledger, `refreshes/uat/${r.instanceId}.json`, {
            ...r,
            recordedAt: new Date().toISOString(),
          });
        } catch (err) {
          p.log.warn('could not record the refresh in the ledger', { error: messageOf(err) });
        }
      }
      return out;
    },
  };
}

// ------------------------------------------------------------------------- production wiring --

export function refreshSettingsFromConfig(
  config: Config,
  request: { filestore?: string; backup?: string } = {},
): RefreshSettings {
  const fsReq = request.filestore;
  return {
    source:
      request.backup === 'fresh' || request.backup === 'latest' ? request.backup : config.REFRESH_SOURCE,
    // own keys only: `in` would take 'toString' or 'constructor' from Object.prototype as a mode
    filestore:
      fsReq !== undefined && Object.hasOwn(FILESTORE_MODES, fsReq)
        ? FILESTORE_MODES[fsReq as keyof typeof FILESTORE_MODES]
        : config.REFRESH_FILESTORE,
    uatUrl: config.UAT_URL,
    keepLogins: config.REFRESH_KEEP_LOGINS,
    healthTimeoutSeconds: config.HEALTH_TIMEOUT_SECONDS ?? 300,
    retryFirstMs: Math.round((config.DEPLOY_RETRY_FIRST_SECONDS ?? 5) * 1000),
    retryAttempts: config.DEPLOY_RETRY_ATTEMPTS ?? 4,
    jobPollSeconds: config.VM_JOB_POLL_SECONDS ?? 15,
    jobDeadlineMinutes: config.VM_JOB_DEADLINE_MINUTES ?? 180,
  };
}

export function refreshPortsFromConfig(config: Config, log: Logger = createLogger()): RefreshPorts {
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
  if (config.UAT_PASSWORD_HASH) registerSecret(config.UAT_PASSWORD_HASH);
  return {
    settings: (request) => refreshSettingsFromConfig(config, request),
    passwordHash: config.UAT_PASSWORD_HASH,
    ssh: {
      async connect(vm) {
        const t =
          vm === 'uat'
            ? {
                host: config.UAT_SSH_HOST,
                port: config.UAT_SSH_PORT ?? 22,
                username: config.UAT_SSH_USER ?? 'odoo-ops',
                fp: config.UAT_SSH_HOST_KEY,
              }
            : {
                host: config.PROD_SSH_HOST,
                port: config.PROD_SSH_PORT ?? 22,
                username: config.PROD_SSH_USER ?? 'odoo-ops',
                fp: config.PROD_SSH_HOST_KEY,
              };
        const P = vm.toUpperCase();
        if (!t.host || !t.fp || !config.SSH_PRIVATE_KEY)
          throw new PipelineError(
            'CONFIG.SSH_MISSING',
            `${P}_SSH_HOST, ${P}_SSH_HOST_KEY and SSH_PRIVATE_KEY must be set`,
          );
        return SshClient.connect(
          {
            host: t.host,
            port: t.port,
            username: t.username,
            privateKey: config.SSH_PRIVATE_KEY,
            hostKeyFingerprint: t.fp,
          },
          { connectTimeoutMs: (config.SSH_CONNECT_TIMEOUT_SECONDS ?? 20) * 1000, log },
        );
      },
    },
    backups,
    ledger: ledgerContainer(config),
    verifications: createVerificationStore(ledgerContainer(config)),
    slack: createSlack({
      webhookUrl: config.SLACK_WEBHOOK_URL,
      botToken: config.SLACK_BOT_TOKEN,
      channel: config.SLACK_CHANNEL,
      apiUrl: config.SLACK_API_URL,
      log,
    }),
    commandTimeoutMs: (config.SSH_COMMAND_TIMEOUT_SECONDS ?? 3600) * 1000,
    readSasMinutes: config.VM_JOB_DEADLINE_MINUTES ?? 180,
    log,
  };
}

// ------------------------------------------------------------------------------ registration --

let current: RefreshActivities | undefined;

/** Wire the activities to other ports (tests); production builds them from settings on first use. */
export function setRefreshPorts(ports: RefreshPorts | undefined): void {
  current = ports ? createRefreshActivities(ports) : undefined;
}
function acts(): RefreshActivities {
  current ??= createRefreshActivities(refreshPortsFromConfig(loadConfig(process.env)));
  return current;
}

type In<K extends keyof RefreshActivities> = Parameters<RefreshActivities[K]>[0];
df.app.activity('refreshPrepare', { handler: (i: In<'prepare'>) => acts().prepare(i) });
df.app.activity('refreshBackupUat', { handler: (i: In<'backupUat'>) => acts().backupUat(i) });
df.app.activity('refreshSource', { handler: (i: In<'source'>) => acts().source(i) });
df.app.activity('refreshStop', { handler: () => acts().stop({}) });
df.app.activity('refreshRestoreStart', { handler: (i: In<'restoreStart'>) => acts().restoreStart(i) });
df.app.activity('refreshJobStatus', { handler: (i: In<'jobStatus'>) => acts().jobStatus(i) });
df.app.activity('refreshNeutralize', { handler: (i: In<'neutralize'>) => acts().neutralize(i) });
df.app.activity('refreshAnonymizeVerify', {
  handler: (i: In<'anonymizeVerify'>) => acts().anonymizeVerify(i),
});
df.app.activity('refreshFilestore', { handler: (i: In<'filestore'>) => acts().filestore(i) });
df.app.activity('refreshSwap', { handler: (i: In<'swap'>) => acts().swap(i) });
df.app.activity('refreshStart', { handler: (i: In<'start'>) => acts().start(i) });
df.app.activity('refreshHealth', { handler: (i: In<'health'>) => acts().health(i) });
df.app.activity('refreshDropDb', { handler: (i: In<'dropDb'>) => acts().dropDb(i) });
df.app.activity('refreshReport', { handler: (i: In<'report'>) => acts().report(i) });
