/**
 * Refresh UAT from PROD (issue #7): the request, its validation, and the shapes the `refreshUat`
 * orchestrator, its activities and the HTTP API share. Pure: no I/O (the orchestrator imports it).
 */
import type { PiiKind, PiiReport } from './pii';

/** `filestore` of the API → REFRESH_FILESTORE value */
export const FILESTORE_MODES = { copy: 'copy', drop: 'drop-anonymized', skip: 'none' } as const;
export type FilestoreRequest = keyof typeof FILESTORE_MODES;
export type FilestoreMode = (typeof FILESTORE_MODES)[FilestoreRequest];
export type SourceMode = 'fresh' | 'latest';

/** What `POST /api/refresh` accepts. */
export interface RefreshBody {
  source: 'prod';
  target: 'uat';
  /** default REFRESH_FILESTORE */
  filestore?: FilestoreRequest;
  /** default REFRESH_SOURCE */
  backup?: SourceMode;
  reason: string;
}

/** The orchestrator's input (the lane passes the whole request). */
export interface RefreshInput extends RefreshBody {
  type: 'refresh';
  environment: 'uat';
  requestedBy: string;
  requestedAt: string;
  /** lane fields */
  orchestrator?: string;
  instanceId?: string;
  /** DeployRequest fields the lane reads (it records them): not meaningful for a refresh */
  version: string;
  sha: string;
  deliveryId: string;
}

export const REFRESH_ORCHESTRATOR = 'refreshUat';
export const REFRESH_ID = /^refresh-uat-[0-9]{8}t[0-9]{6}z-[a-z0-9]{4,12}$/;

/** Validate a parsed JSON body: the list of problems (empty = valid). Each message names the field. */
export function validateRefreshBody(body: unknown): string[] {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return ['the body must be a JSON object'];
  const b = body as Record<string, unknown>;
  const problems: string[] = [];
  const known = new Set(['source', 'target', 'filestore', 'backup', 'reason']);
  for (const k of Object.keys(b))
    if (!known.has(k)) problems.push(`unknown field "${k}" (accepted: ${[...known].join(', ')})`);
  if (b.source !== 'prod')
    problems.push('source must be "prod" (the only environment UAT is refreshed from)');
  if (b.target === 'prod')
    problems.push('target may not be "prod": a refresh overwrites its target, and PROD is never overwritten');
  else if (b.target !== 'uat') problems.push('target must be "uat"');
  if (
    b.filestore !== undefined &&
    !(typeof b.filestore === 'string' && Object.hasOwn(FILESTORE_MODES, b.filestore))
  )
    problems.push('filestore must be "copy", "drop" (drop attachments of anonymized records) or "skip"');
  if (b.backup !== undefined && b.backup !== 'fresh' && b.backup !== 'latest')
    problems.push(
      'backup must be "fresh" (take a PROD backup now) or "latest" (the latest verified PROD backup)',
    );
  if (typeof b.reason !== 'string' || b.reason.trim().length < 3)
    problems.push('reason must say why (at least 3 characters)');
  else if (b.reason.length > 500) problems.push('reason must be at most 500 characters');
  return problems;
}

/** The instance id of a refresh requested at `at` (`refresh-uat-20260101t120000z-<suffix>`). */
export function refreshInstanceId(at: Date, suffix: string): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'z')
    .toLowerCase();
  return `refresh-uat-${stamp}-${suffix
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 12)
    .padEnd(4, '0')}`;
}

/** Name of the database a refresh restores into: `<live>_refresh_<yyyymmddhhmmss>` (≤ 63 characters). */
export function refreshDatabaseName(live: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${live.slice(0, 63 - 9 - stamp.length)}_refresh_${stamp}`;
}

export type RefreshStep =
  | 'prepare'
  | 'backup-uat'
  | 'source'
  | 'stop'
  | 'restore'
  | 'neutralize'
  | 'anonymize+verify'
  | 'filestore'
  | 'swap'
  | 'start'
  | 'health'
  | 'cleanup'
  | 'recover'
  | 'report'
  | 'done';

/**
 * Succeeded: UAT serves the refreshed copy. Failed: a failure before the swap; UAT runs on its old
 * database (or never stopped). LeakFound: the verifier found PROD data; UAT is kept STOPPED (old
 * database untouched). RolledBack: the refreshed copy did not come up; the old database is back.
 * NeedsAttention: restarting/rolling back failed too.
 */
export type RefreshOutcome = 'Succeeded' | 'Failed' | 'LeakFound' | 'RolledBack' | 'NeedsAttention';

export interface RefreshSettings {
  source: SourceMode;
  filestore: FilestoreMode;
  uatUrl?: string;
  keepLogins: string[];
  healthTimeoutSeconds: number;
  retryFirstMs: number;
  retryAttempts: number;
  /** how often a VM job (the restore) is polled, and how long it may run (VM_JOB_POLL_SECONDS, VM_JOB_DEADLINE_MINUTES) */
  jobPollSeconds?: number;
  jobDeadlineMinutes?: number;
}

export interface RefreshCustomStatus {
  step: RefreshStep;
  source: string;
  target: string;
  reason: string;
  requestedBy: string;
  startedAt: string;
  elapsedMs: number;
  durations: Record<string, number>;
  /** rows changed per neutralize/anonymize step, rows per table restored */
  rows: Record<string, number>;
  settings?: Pick<RefreshSettings, 'source' | 'filestore'>;
  database?: string;
  sourceBackupId?: string;
  uatBackupId?: string;
  outcome?: RefreshOutcome;
  error?: string;
}

/** anonymize.sql's column report: names and rules only, never a value. */
export interface ColumnReport {
  treated: Array<{ table: string; column: string; rule: string }>;
  untouched: string[];
}

/** What the verifier step returns: counts only, never a value. */
export interface ScrubOut {
  /** every table.column the anonymization treated (with its rule) and every text column it left */
  columns?: ColumnReport;
  sampled: Record<PiiKind, number>;
  neutralizeRows?: Record<string, number>;
  anonymizeRows: Record<string, number>;
  report: PiiReport;
  ms: { sample: number; anonymize: number; verify: number };
}

export interface RefreshResult {
  outcome: RefreshOutcome;
  instanceId: string;
  reason?: string;
  code?: string;
  failedStep?: RefreshStep;
  sourceBackupId?: string;
  uatBackupId?: string;
  database?: string;
  keptOld?: string;
  /** table.column and counts of a leak (no values) */
  leaks?: string[];
  sampled?: Record<string, number>;
  /** anonymize.sql's column report (recorded in the ledger; no values) */
  columns?: ColumnReport;
  rows: Record<string, number>;
  filestore?: { mode: FilestoreMode; files?: number; removed?: number };
  durations: Record<string, number>;
  totalMs: number;
  uatStopped: boolean;
}
