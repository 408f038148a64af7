/**
 * The UAT deploy as data (pure; used by the `deployUat` orchestrator, its activities and the API):
 * the step list in runbook order, the retry policy of each step, the outcome of a failure by error
 * code and the custom-status shape that `GET /api/deployments/{id}` returns.
 */
import { errorCode, isRetryable } from './errors';

export const DEPLOY_STEPS = [
  'prepare',
  'preflight',
  'wait-image',
  'backup',
  'pull',
  'stop',
  'migrate',
  'start',
  'health',
  'record',
  'notify',
  'retention',
  'rollback',
  'done',
] as const;
export type DeployStep = (typeof DEPLOY_STEPS)[number];

/** Steps after which the web service is (or may be) down: a failure from here on is rolled back. */
export const DOWNTIME_STEPS: readonly DeployStep[] = ['stop', 'migrate', 'start', 'health'];

export type DeployOutcome = 'Succeeded' | 'Failed' | 'RolledBack' | 'NeedsAttention';

/** What the orchestrator needs from settings (read by the `deployPrepare` activity, never by the orchestrator). */
export interface DeploySettings {
  environment: string;
  /** public URL of the environment (GitHub deployment `environment_url`, Slack links) */
  url?: string;
  minFreeDiskGb: number;
  imageWaitMinutes: number;
  imagePollSeconds: number;
  /** seconds between two status checks of a VM job (migration); default 15 */
  jobPollSeconds?: number;
  /** how long a VM job may run before the step fails with OPS.JOB_DEADLINE; default 180 */
  jobDeadlineMinutes?: number;
  healthTimeoutSeconds: number;
  /** paths under `url` that must answer < 400 after the deploy */
  keyUrls?: string[];
  keepCount: number;
  /** first retry delay (ms) and attempts of transient steps */
  retryFirstMs: number;
  retryAttempts: number;
}

export interface ReleaseRef {
  version: string;
  sha: string;
  imageRef?: string;
  imageDigest?: string;
  coverage?: number;
}

/** The input of `deployUat`: the lane's deploy request (extra fields pass through), plus `force`. */
export interface DeployInput {
  environment: string;
  version: string;
  sha: string;
  imageRef: string;
  coverage?: number;
  mergedBy?: string;
  repository?: string;
  deliveryId?: string;
  requestedAt?: string;
  trigger?: string;
  /** migrate `all` modules */
  force?: boolean;
  /** who asked (manual redeploys) */
  requestedBy?: string;
  /** deployed past the coverage gate: who and why (the ledger keeps it; never eligible for PROD/Odoo.sh) */
  gateOverride?: { by: string; reason: string; at: string };
}

export interface DeployResult {
  outcome: DeployOutcome;
  environment: string;
  version: string;
  sha: string;
  reason?: string;
  code?: string;
  failedStep?: DeployStep;
  backupId?: string;
  logs?: string[];
  previous?: ReleaseRef;
  imageDigest?: string;
  modules?: string;
  durations: Record<string, number>;
  totalMs: number;
  downtimeMs?: number;
}

export interface DeployCustomStatus {
  step: DeployStep;
  environment: string;
  version: string;
  sha: string;
  startedAt: string;
  /** ms since the deploy started (orchestration clock) */
  elapsedMs: number;
  backupBytes?: number;
  backupId?: string;
  outcome?: DeployOutcome;
  reason?: string;
  /** the steps done so far with their duration in ms */
  durations: Record<string, number>;
}

/** Retry policy per step: transient steps retry with back-off; deterministic ones never. */
export interface StepRetry {
  retry: boolean;
}
export const STEP_RETRY: Record<DeployStep, StepRetry> = {
  prepare: { retry: true },
  preflight: { retry: true },
  'wait-image': { retry: true },
  // a VM job uploading straight to Blob (id from the instance): its start and status calls are retried
  // — a second start finds the job, never a second backup — and so is the read-back verification
  backup: { retry: true },
  pull: { retry: true },
  stop: { retry: true },
  // a migration is not idempotent and its failure is deterministic: never run twice, rolled back. It
  // runs as a VM job whose id is the instance's: its start and status calls are retried (a second
  // start finds the job), the migration itself never is (awaitVmJob passes `retried` per call)
  migrate: { retry: false },
  start: { retry: true },
  health: { retry: false },
  record: { retry: true },
  notify: { retry: false },
  retention: { retry: false },
  rollback: { retry: true },
  done: { retry: false },
};

/** Outcome of a failure in `step` (before the stop: nothing changed → Failed; after: RolledBack if the rollback works). */
export function outcomeOfFailure(step: DeployStep, rollbackOk: boolean | undefined): DeployOutcome {
  if (!DOWNTIME_STEPS.includes(step)) return 'Failed';
  return rollbackOk ? 'RolledBack' : 'NeedsAttention';
}

export function needsRollback(step: DeployStep): boolean {
  return DOWNTIME_STEPS.includes(step);
}

/** Whether an activity failure is worth another attempt (by `[CODE]`, never instanceof). */
export function shouldRetry(step: DeployStep, err: unknown): boolean {
  return STEP_RETRY[step].retry && isRetryable(err);
}

/** The `[CODE]` of a failure, or DEPLOY.FAILED. */
export function codeOf(err: unknown): string {
  return errorCode(err) ?? 'DEPLOY.FAILED';
}

/** The message of a failure without the durable-functions wrapper text, short enough for Slack / GitHub. */
export function reasonOf(err: unknown, max = 500): string {
  const msg = err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err);
  const m = /\[[A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)+\][^\n]*/.exec(msg ?? '');
  const text = (m ? m[0] : (msg ?? 'unknown error')).trim();
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

const MODULE = /^[a-z0-9_]+$/;
/** Top-level folders of an Odoo repository that are not addons. */
const NOT_MODULES = new Set([
  'docker',
  'docs',
  'doc',
  'test',
  'tests',
  'scripts',
  'infrastructure',
  'bench',
  'sql',
  'node_modules',
  'odoo',
  'setup',
  'tools',
  'ci',
]);

/**
 * Modules to update (`-u`) from the files changed between the running release and the new one:
 * `<addons-dir>/<module>/...` or `<module>/...` where the folder is a module name. Returns `all` when
 * the change set is unknown (no running release, compare failed) or `force`; `''` when no module changed.
 * Mirrors what click-odoo-update decides by per-module hashes, from the diff instead.
 */
export function modulesToUpdate(
  files: string[] | undefined,
  o: { force?: boolean; addonsDirs?: string[] } = {},
): string {
  if (o.force || !files) return 'all';
  const addonsDirs = new Set(o.addonsDirs ?? ['addons', 'custom-addons', 'custom_addons', 'src']);
  const mods = new Set<string>();
  for (const f of files) {
    const parts = f.split('/').filter(Boolean);
    if (parts.length < 2 || parts[0].startsWith('.')) continue;
    if (addonsDirs.has(parts[0])) {
      if (parts.length >= 3 && MODULE.test(parts[1])) mods.add(parts[1]);
      continue;
    }
    if (MODULE.test(parts[0]) && !NOT_MODULES.has(parts[0])) mods.add(parts[0]);
  }
  return [...mods].sort().join(',');
}

/** Image tag of a reference (`host/repo:tag` → tag; digest references have none). */
export function tagOf(imageRef: string): string | undefined {
  const at = imageRef.indexOf('@');
  const ref = at >= 0 ? imageRef.slice(0, at) : imageRef;
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(colon + 1) : undefined;
}

/** Repository path of a reference without registry host and tag (`host:5000/a/b:t` → `a/b`). */
export function repositoryOf(imageRef: string): string {
  const at = imageRef.indexOf('@');
  let ref = at >= 0 ? imageRef.slice(0, at) : imageRef;
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) ref = ref.slice(0, colon);
  const first = ref.split('/')[0];
  if (ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost'))
    ref = ref.slice(first.length + 1);
  return ref;
}

/** Registry host of a reference (`host:5000/a/b:t` → `host:5000`; `a/b:t` → '' — Docker Hub). */
export function registryOf(imageRef: string): string {
  const at = imageRef.indexOf('@');
  const ref = (at >= 0 ? imageRef.slice(0, at) : imageRef).toLowerCase();
  const first = ref.split('/')[0];
  return ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')
    ? first
    : '';
}

/** Validate the deploy input (bad input gets a clear error before anything runs). */
export function validateDeployInput(i: unknown): string[] {
  const p: string[] = [];
  const r = i as Partial<DeployInput> | null;
  if (!r || typeof r !== 'object') return ['the deploy input must be an object'];
  if (typeof r.environment !== 'string' || !/^[a-z0-9][a-z0-9-]{0,30}$/.test(r.environment))
    p.push('environment must be a lowercase name');
  if (typeof r.version !== 'string' || !/^[0-9A-Za-z.+-]{1,64}$/.test(r.version))
    p.push('version must be like 1.2.3');
  if (typeof r.sha !== 'string' || !/^[0-9a-f]{7,40}$/.test(r.sha)) p.push('sha must be a hex commit id');
  if (typeof r.imageRef !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/.test(r.imageRef))
    p.push('imageRef must be an image reference');
  return p;
}
