/**
 * Long work on a VM (migrate, backup, restore) runs as an `odoo-ops job` detached from the SSH session
 * (docker/ops/odoo-ops, "jobs"): the orchestration starts it with a short activity, then polls it with
 * durable timers and a short status activity. Pure: used by activities and orchestrators alike.
 */

export type VmJobKind = 'migrate' | 'backup' | 'restore';
export type VmJobState = 'starting' | 'running' | 'succeeded' | 'failed' | 'lost';

/** A job as `odoo-ops --json job status|start` reports it. */
export interface VmJob {
  id: string;
  kind: string;
  state: VmJobState;
  /** true when this call started it; false when it existed (a retried or replayed start) */
  started?: boolean;
  exitCode?: number;
  startedAt?: string;
  endedAt?: string;
  /** odoo-ops' sentence about the job */
  message: string;
  /** the job's log file on the VM */
  log?: string;
  /** each step's JSON result line, in order */
  steps: Record<string, unknown>[];
  /** the failing step's own error code when it gives one (e.g. `BLOB.FORBIDDEN` from an upload) */
  failureCode?: string;
}

/** A backup a `backup --blob` job completed: its id, total bytes and parts (from its `manifest` step). */
export interface VmJobBackup {
  backupId: string;
  bytes: number;
  parts: Record<string, { size: number; sha256: string }>;
}

/** What odoo-ops accepts as a job id (the same rule as `valid_job_id` in the script). */
export const VM_JOB_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** FNV-1a 32-bit, hex: a short deterministic tag (orchestrators may not import node:crypto). */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * The job id of one step of one orchestration: `<instance id>.<step>`, the same on every replay and
 * retry, so a second start finds the first job. An instance id with characters odoo-ops refuses, or too
 * long, is replaced by a readable prefix plus a hash of the whole id (two instances never share one).
 */
export function vmJobId(instanceId: string, step: string): string {
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(step)) throw new Error(`invalid job step name '${step}'`);
  const plain = `${instanceId}.${step}`;
  if (VM_JOB_ID.test(plain)) return plain;
  const clean = instanceId.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]+/, '');
  const head = clean.slice(0, 128 - step.length - 11);
  return `${head || 'job'}-${fnv1a(instanceId)}.${step}`;
}

/** The error code of a finished job that failed, from the failing verb's exit code. */
export function vmJobFailureCode(job: Pick<VmJob, 'state' | 'exitCode' | 'kind' | 'failureCode'>): string {
  if (job.state === 'lost') return 'OPS.JOB_LOST';
  if (job.failureCode) return job.failureCode;
  switch (job.exitCode) {
    case 3:
      return 'OPS.LOCKED';
    case 5:
      return 'DEPLOY.MIGRATION_FAILED';
    case 6:
      return 'BACKUP.FAILED';
    case 7:
      return 'RESTORE.FAILED';
    case 8:
      return 'REGISTRY.IMAGE_MISSING';
    case 9:
      return 'OPS.STATE';
    case 10:
      return 'OPS.CONFIG';
    default:
      return 'OPS.JOB_FAILED';
  }
}

export function vmJobDone(job: Pick<VmJob, 'state'>): boolean {
  return job.state === 'succeeded' || job.state === 'failed' || job.state === 'lost';
}

/** A VmJob from an odoo-ops `job` JSON line (fields: id, kind, state, exit_code, steps, ...). */
export function parseVmJob(json: Record<string, unknown>): VmJob | undefined {
  const state = json.state;
  if (typeof json.id !== 'string' || typeof state !== 'string') return undefined;
  if (!['starting', 'running', 'succeeded', 'failed', 'lost'].includes(state)) return undefined;
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const steps = Array.isArray(json.steps)
    ? json.steps.filter((s): s is Record<string, unknown> => !!s && typeof s === 'object')
    : [];
  const lastCode = state === 'failed' ? steps[steps.length - 1]?.code : undefined;
  return {
    id: json.id,
    kind: typeof json.kind === 'string' ? json.kind : '',
    state: state as VmJobState,
    ...(typeof json.started === 'boolean' ? { started: json.started } : {}),
    ...(typeof json.exit_code === 'number' ? { exitCode: json.exit_code } : {}),
    ...(str(json.started_at) ? { startedAt: str(json.started_at) } : {}),
    ...(str(json.ended_at) ? { endedAt: str(json.ended_at) } : {}),
    message: typeof json.message === 'string' ? json.message : '',
    ...(str(json.log) ? { log: str(json.log) } : {}),
    steps,
    ...(typeof lastCode === 'string' && ERROR_CODE.test(lastCode) ? { failureCode: lastCode } : {}),
  };
}

const ERROR_CODE = /^[A-Z][A-Z0-9]*\.[A-Z0-9_]+$/;
const SHA256 = /^[0-9a-f]{64}$/;

/**
 * The backup a succeeded `odoo-ops job start backup --blob` job wrote, from its last step (`manifest`:
 * backup_id, bytes, parts with size and sha256); undefined when the job is not such a job.
 */
export function vmJobBackup(job: Pick<VmJob, 'state' | 'steps'>): VmJobBackup | undefined {
  if (job.state !== 'succeeded') return undefined;
  const last = job.steps[job.steps.length - 1];
  if (!last || last.verb !== 'manifest' || typeof last.backup_id !== 'string') return undefined;
  const raw = last.parts;
  if (!raw || typeof raw !== 'object') return undefined;
  const parts: VmJobBackup['parts'] = {};
  for (const [name, p] of Object.entries(raw as Record<string, unknown>)) {
    const { size, sha256 } = (p ?? {}) as { size?: unknown; sha256?: unknown };
    if (!Number.isSafeInteger(size) || typeof sha256 !== 'string' || !SHA256.test(sha256)) return undefined;
    parts[name] = { size: size as number, sha256 };
  }
  if (!Object.keys(parts).length) return undefined;
  const bytes = Object.values(parts).reduce((a, x) => a + x.size, 0);
  return { backupId: last.backup_id, bytes, parts };
}

/** What a succeeded `odoo-ops job start restore --blob` job restored (from its steps' result lines). */
export interface VmJobRestore {
  backupId?: string;
  /** the database restored into (the Odoo database itself after a swap) */
  database?: string;
  /** tables in the restored database (restore-db's `tables`) */
  tables: number;
  /** the PostgreSQL role that owns it (restore-db's `pg_user`, `--into` only) */
  pgUser?: string;
  /** files of the restored filestore; undefined when no filestore was restored */
  files?: number;
}

export function vmJobRestore(job: Pick<VmJob, 'state' | 'steps'>): VmJobRestore | undefined {
  if (job.state !== 'succeeded') return undefined;
  const find = (verb: string) => [...job.steps].reverse().find((s) => s.verb === verb);
  const db = find('restore-db');
  if (!db) return undefined;
  const fs = find('restore-filestore');
  const last = find('restore');
  const num = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
  return {
    ...(typeof last?.backup_id === 'string' ? { backupId: last.backup_id } : {}),
    ...(typeof last?.database === 'string' ? { database: last.database } : {}),
    tables: num(db.tables) ?? 0,
    ...(typeof db.pg_user === 'string' && db.pg_user ? { pgUser: db.pg_user } : {}),
    ...(fs ? { files: num(fs.files) ?? 0 } : {}),
  };
}
