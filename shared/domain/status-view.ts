/**
 * The operator's overview (GET /api/status, GET /api/dashboard, `odoo-pipeline status`) as pure data:
 * `assembleStatus(inputs)` turns what functions/status.ts read (ledger, durable instances, lanes,
 * backup listings) into one JSON document. No I/O, no clock (the caller passes `now`).
 *
 * Degrading: every input is a `Read<T>` (a value, or the error met while reading it). A part that
 * could not be read becomes `{ ok: false, error: { code, message } }` in the output; the other parts
 * are still shown. Secrets and approval nonces never reach the output (nonces are dropped here).
 */

export type Read<T> = { ok: true; value: T } | { ok: false; error: unknown };
export type Section<T> = { ok: true; value: T } | { ok: false; error: { code: string; message: string } };

/** What the status page needs of a ledger release (shared/adapters/ledger.ts `Release`). */
export interface LedgerRelease {
  version: string;
  sha: string;
  deployedAt: string;
  imageRef?: string;
  imageDigest?: string;
  backupId?: string;
  [extra: string]: unknown;
}
export interface LedgerRead {
  current?: LedgerRelease;
  /** newest first */
  history: LedgerRelease[];
}

/** A durable instance as the durable client returns it (DurableOrchestrationStatus, loosely typed). */
export interface InstanceInfo {
  name: string;
  instanceId: string;
  runtimeStatus: string;
  createdTime: string | Date;
  lastUpdatedTime: string | Date;
  customStatus?: unknown;
  output?: unknown;
  input?: unknown;
}

/** A backup as BackupStore.list returns it (createdAt may arrive as a string after JSON). */
export interface BackupListing {
  id: string;
  environment: string;
  version: string;
  createdAt: string | Date;
  complete: boolean;
  totalSize?: number;
  parts?: string[];
  /** a verification recorded for this backup (see functions/backups.ts), when one exists */
  verification?: { ok: boolean; at: string; problems?: string[] };
}

export interface StatusInputs {
  now: Date;
  environments: string[];
  ledger: Record<string, Read<LedgerRead>>;
  /** deployUat / deployProd / refreshUat / … instances (any order) */
  instances: Read<InstanceInfo[]>;
  /** lane-<env> status per environment (undefined: no lane yet) */
  lanes: Record<string, Read<InstanceInfo | undefined>>;
  backups: Record<string, Read<BackupListing[]>>;
  /** how many backups to show per environment (default 5) */
  backupCount?: number;
  /** where the pipeline runs (shown in the header), e.g. `local` or `azure` */
  runtime?: string;
  /** app version (shown in the header) */
  appVersion?: string;
}

export interface RunningView {
  version: string;
  sha: string;
  since: string;
  imageRef?: string;
  previousVersion?: string;
}

export type WorkKind = 'deployUat' | 'deployProd' | 'refreshUat' | string;

export interface ProgressView {
  step: string;
  /** 1-based position of the step in the runbook, when the step is a known one */
  index?: number;
  total?: number;
  percent?: number;
}

export interface InProgressView {
  id: string;
  kind: WorkKind;
  runtimeStatus: string;
  version?: string;
  requestedBy?: string;
  startedAt: string;
  elapsedMs?: number;
  progress: ProgressView;
  backupBytes?: number;
  reason?: string;
}

export interface DeployOutcomeView {
  id: string;
  kind: WorkKind;
  version?: string;
  outcome: string;
  reason?: string;
  failedStep?: string;
  finishedAt: string;
  backupId?: string;
  logs?: string[];
}

export interface PendingApprovalView {
  deployment: string;
  environment: string;
  version?: string;
  requestedBy?: string;
  reason?: string;
  approver: string;
  action: string;
  expiresAt: string;
  expired: boolean;
  required?: number;
  received?: number;
  step?: string;
}

export interface BackupView {
  id: string;
  version: string;
  createdAt: string;
  sizeBytes?: number;
  parts: string[];
  /**
   * verified: a re-read of every part matched the manifest (recorded); corrupt: it did not;
   * complete: manifest present (sizes + sha256), no verification recorded; incomplete: no manifest
   * (never offered for a restore).
   */
  state: 'verified' | 'corrupt' | 'complete' | 'incomplete';
  verifiedAt?: string;
  problems?: string[];
}

export interface RefreshView {
  id: string;
  runtimeStatus: string;
  step?: string;
  outcome?: string;
  reason?: string;
  startedAt: string;
  updatedAt: string;
  counts?: Record<string, number>;
}

export interface EnvironmentStatus {
  name: string;
  running: Section<RunningView | null>;
  lastDeploy: Section<DeployOutcomeView | null>;
  inProgress: Section<InProgressView | null>;
  /** deploy ids waiting in the environment's lane */
  queued: Section<string[]>;
  pendingApprovals: Section<PendingApprovalView[]>;
  backups: Section<BackupView[]>;
  /** the last refresh that targeted this environment (UAT), null when none */
  lastRefresh: Section<RefreshView | null>;
}

export interface StatusDocument {
  generatedAt: string;
  runtime?: string;
  appVersion?: string;
  environments: EnvironmentStatus[];
  /**
   * Every pending approval of every live deploy, whatever it targets — the environments above are the
   * VMs (uat, prod); an Odoo.sh production branch (`odoosh-<branch>`) asks PROD's approvers too.
   */
  approvals?: Section<PendingApprovalView[]>;
  /** parts that could not be read, in one list (also inline in each section) */
  problems: Array<{ environment: string; part: string; code: string; message: string }>;
}

// ------------------------------------------------------------------------------ runbooks --

/** The UAT deploy's main path (shared/domain/deploy-plan.ts DEPLOY_STEPS without the side paths). */
export const UAT_RUNBOOK = ['prepare', 'preflight', 'backup', 'pull', 'stop', 'migrate', 'start', 'health', 'record', 'retention', 'done'];
/** The PROD deploy's main path (approval first). Unknown steps show without a percentage. */
export const PROD_RUNBOOK = ['prepare', 'awaiting-approval', 'promote', 'backup', 'pull', 'stop', 'migrate', 'start', 'health', 'record', 'retention', 'done'];
/** Steps that map onto a main-path step for the progress figure. */
const STEP_ALIASES: Record<string, string> = { 'wait-image': 'preflight', requested: 'prepare', approved: 'promote', retag: 'promote', snapshot: 'backup', notify: 'record' };

export function progressOf(kind: WorkKind, step: string | undefined): ProgressView {
  const s = step ?? 'starting';
  const book = kind === 'deployProd' ? PROD_RUNBOOK : kind === 'deployUat' ? UAT_RUNBOOK : undefined;
  if (!book) return { step: s };
  const i = book.indexOf(STEP_ALIASES[s] ?? s);
  if (i < 0) return { step: s };
  return { step: s, index: i + 1, total: book.length, percent: Math.round((i / (book.length - 1)) * 100) };
}

// ------------------------------------------------------------------------------ helpers --

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const iso = (v: string | Date): string => (v instanceof Date ? v.toISOString() : String(v));
const time = (v: string | Date): number => (v instanceof Date ? v.getTime() : Date.parse(String(v))) || 0;

const CODE_IN_MESSAGE = /\[([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)+)\]\s*/;

/** Error → `{ code, message }` with URLs and connection-string-like fragments removed. */
export function describeError(err: unknown, fallbackCode = 'STATUS.UNAVAILABLE'): { code: string; message: string } {
  const raw = err instanceof Error ? err.message : typeof err === 'string' ? err : 'unknown error';
  const own = err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string' && /^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$/.test((err as { code: string }).code) ? (err as { code: string }).code : undefined;
  const m = CODE_IN_MESSAGE.exec(raw);
  const code = own ?? m?.[1] ?? fallbackCode;
  const message = raw
    .replace(CODE_IN_MESSAGE, '')
    .replace(/https?:\/\/\S+/g, '<url>')
    .replace(/(AccountKey|SharedAccessSignature|sig|code|key|password|token)=[^;&\s]+/gi, '$1=<redacted>')
    .slice(0, 300);
  return { code, message: message || code };
}

function section<T, U>(r: Read<T> | undefined, map: (v: T) => U, missingCode = 'STATUS.NOT_READ'): Section<U> {
  if (!r) return { ok: false, error: { code: missingCode, message: 'not read' } };
  if (!r.ok) return { ok: false, error: describeError(r.error) };
  try {
    return { ok: true, value: map(r.value) };
  } catch (err) {
    return { ok: false, error: describeError(err, 'STATUS.BAD_DATA') };
  }
}

const DEPLOY_KINDS = new Set(['deployUat', 'deployProd', 'deployOdooSh']);
const LIVE = new Set(['Running', 'Pending', 'ContinuedAsNew', 'Suspended']);

/** The environment a deploy/refresh instance works on. */
export function environmentOf(i: InstanceInfo): string | undefined {
  const cs = obj(i.customStatus);
  const out = obj(i.output);
  const input = obj(i.input);
  if (kindOf(i) === 'refreshUat') return str(cs.target) ?? str(input.target) ?? str(input.environment) ?? 'uat';
  if (kindOf(i) === 'deployProd') return 'prod';
  const m = /^deploy-([a-z0-9]+)-/.exec(i.instanceId);
  return str(cs.environment) ?? str(out.environment) ?? str(input.environment) ?? m?.[1];
}

/** The orchestrator name, or the `kind` its custom status declares (the deployProd contract carries one). */
function kindOf(i: InstanceInfo): WorkKind {
  return str(obj(i.customStatus).kind) ?? i.name;
}

function inProgressView(i: InstanceInfo, now: Date): InProgressView {
  const cs = obj(i.customStatus);
  const input = obj(i.input);
  const startedAt = str(cs.startedAt) ?? iso(i.createdTime);
  // the orchestration updates elapsedMs only when a step starts: count from its start instead
  const since = time(startedAt);
  return {
    id: i.instanceId,
    kind: kindOf(i),
    runtimeStatus: i.runtimeStatus,
    version: str(cs.version) ?? str(input.version),
    requestedBy: str(cs.requestedBy) ?? str(input.requestedBy) ?? str(input.mergedBy),
    startedAt,
    elapsedMs: since ? Math.max(0, now.getTime() - since) : num(cs.elapsedMs),
    progress: progressOf(kindOf(i), str(cs.step)),
    backupBytes: num(cs.backupBytes),
    reason: str(cs.reason),
  };
}

function outcomeView(i: InstanceInfo): DeployOutcomeView {
  const out = obj(i.output);
  const cs = obj(i.customStatus);
  const input = obj(i.input);
  const outcome = str(out.outcome) ?? str(cs.outcome) ?? (i.runtimeStatus === 'Completed' ? 'Completed' : i.runtimeStatus);
  const logs = Array.isArray(out.logs) ? out.logs.filter((l): l is string => typeof l === 'string') : undefined;
  return {
    id: i.instanceId,
    kind: kindOf(i),
    version: str(out.version) ?? str(cs.version) ?? str(input.version),
    outcome,
    reason: str(out.reason) ?? str(cs.reason) ?? (typeof i.output === 'string' && i.runtimeStatus === 'Failed' ? i.output : undefined),
    failedStep: str(out.failedStep),
    finishedAt: iso(i.lastUpdatedTime),
    backupId: str(out.backupId) ?? str(cs.backupId),
    logs: logs?.length ? logs : undefined,
  };
}

function approvalsOf(i: InstanceInfo, now: Date): PendingApprovalView[] {
  const cs = obj(i.customStatus);
  const input = obj(i.input);
  const pending = Array.isArray(cs.pendingApprovals) ? cs.pendingApprovals : [];
  const approvals = obj(cs.approvals);
  const received = Array.isArray(approvals.received) ? approvals.received.length : num(approvals.received);
  const out: PendingApprovalView[] = [];
  for (const p of pending) {
    const a = obj(p);
    const expiresAt = str(a.expiresAt);
    const approver = str(a.approver);
    if (!approver || !expiresAt) continue;
    // the nonce is what makes a link single-use: it is never copied into the view
    out.push({
      deployment: i.instanceId,
      environment: environmentOf(i) ?? 'prod',
      version: str(cs.version) ?? str(input.version),
      requestedBy: str(cs.requestedBy) ?? str(input.requestedBy),
      reason: str(cs.reason) ?? str(input.reason),
      approver,
      action: str(a.action) ?? 'approval',
      expiresAt,
      expired: time(expiresAt) <= now.getTime(),
      required: num(approvals.required),
      received,
      step: str(cs.step),
    });
  }
  return out;
}

function refreshView(i: InstanceInfo): RefreshView {
  const cs = obj(i.customStatus);
  const out = obj(i.output);
  const counts: Record<string, number> = {};
  // counts by name: `counts` or `rows` (refreshUat), numbers only (one level of nesting is flattened: a.b)
  for (const src of [obj(cs.counts), obj(cs.rows), obj(out.counts), obj(out.rows)])
    for (const [k, v] of Object.entries(src)) {
      if (typeof v === 'number') counts[k] = v;
      else for (const [k2, v2] of Object.entries(obj(v))) if (typeof v2 === 'number') counts[`${k}.${k2}`] = v2;
    }
  return {
    id: i.instanceId,
    runtimeStatus: i.runtimeStatus,
    step: str(cs.step),
    outcome: str(out.outcome) ?? str(cs.outcome) ?? (LIVE.has(i.runtimeStatus) ? undefined : i.runtimeStatus),
    reason: str(out.reason) ?? str(cs.reason) ?? str(cs.error),
    startedAt: iso(i.createdTime),
    updatedAt: iso(i.lastUpdatedTime),
    counts: Object.keys(counts).length ? counts : undefined,
  };
}

export function backupView(b: BackupListing): BackupView {
  const v = b.verification;
  const state: BackupView['state'] = !b.complete ? 'incomplete' : v ? (v.ok ? 'verified' : 'corrupt') : 'complete';
  return {
    id: b.id,
    version: b.version,
    createdAt: iso(b.createdAt),
    sizeBytes: b.totalSize,
    parts: b.parts ?? [],
    state,
    ...(v && b.complete ? { verifiedAt: v.at } : {}),
    ...(v && !v.ok && v.problems?.length ? { problems: v.problems.slice(0, 5) } : {}),
  };
}

const newestFirst = (a: InstanceInfo, b: InstanceInfo) => time(b.createdTime) - time(a.createdTime) || (a.instanceId < b.instanceId ? 1 : -1);
const newestUpdatedFirst = (a: InstanceInfo, b: InstanceInfo) => time(b.lastUpdatedTime) - time(a.lastUpdatedTime) || (a.instanceId < b.instanceId ? 1 : -1);

// ------------------------------------------------------------------------------ assembly --

export function assembleStatus(inp: StatusInputs): StatusDocument {
  const backupCount = inp.backupCount ?? 5;
  const environments = inp.environments.map((env): EnvironmentStatus => {
    const mine = (all: InstanceInfo[]) => all.filter((i) => environmentOf(i) === env);
    const deploys = (all: InstanceInfo[]) => mine(all).filter((i) => DEPLOY_KINDS.has(kindOf(i)));
    const lane = inp.lanes[env];
    const laneStatus = lane?.ok ? obj(lane.value?.customStatus) : {};

    const inProgress = section(inp.instances, (all) => {
      const live = mine(all)
        .filter((i) => (DEPLOY_KINDS.has(kindOf(i)) || kindOf(i) === 'refreshUat') && LIVE.has(i.runtimeStatus))
        .sort(newestFirst);
      // the lane's running work first (it is the one holding the environment)
      const running = str(laneStatus.running);
      const pick = (running && live.find((i) => i.instanceId === running)) || live[0];
      return pick ? inProgressView(pick, inp.now) : null;
    });

    const queued: Section<string[]> = !lane
      ? { ok: true, value: [] }
      : section(lane, (l) => {
          const w = obj(l?.customStatus).waiting;
          return Array.isArray(w) ? w.filter((x): x is string => typeof x === 'string') : str(w) ? [w as string] : [];
        });

    return {
      name: env,
      running: section(inp.ledger[env], (l) =>
        l.current
          ? {
              version: l.current.version,
              sha: l.current.sha,
              since: l.current.deployedAt,
              imageRef: l.current.imageRef,
              previousVersion: l.history.find((h) => h.version !== l.current!.version)?.version,
            }
          : null,
      ),
      lastDeploy: section(inp.instances, (all) => {
        const done = deploys(all)
          .filter((i) => !LIVE.has(i.runtimeStatus))
          .sort(newestUpdatedFirst);
        return done[0] ? outcomeView(done[0]) : null;
      }),
      inProgress,
      queued,
      pendingApprovals: section(inp.instances, (all) =>
        deploys(all)
          .filter((i) => LIVE.has(i.runtimeStatus))
          .sort(newestFirst)
          .flatMap((i) => approvalsOf(i, inp.now)),
      ),
      backups: section(inp.backups[env], (list) =>
        [...list]
          .sort((a, b) => time(b.createdAt) - time(a.createdAt))
          .slice(0, backupCount)
          .map(backupView),
      ),
      lastRefresh: section(inp.instances, (all) => {
        const r = mine(all)
          .filter((i) => kindOf(i) === 'refreshUat')
          .sort(newestFirst);
        return r[0] ? refreshView(r[0]) : null;
      }),
    };
  });

  const problems: StatusDocument['problems'] = [];
  for (const e of environments)
    for (const part of ['running', 'lastDeploy', 'inProgress', 'queued', 'pendingApprovals', 'backups', 'lastRefresh'] as const) {
      const s = e[part];
      if (!s.ok) problems.push({ environment: e.name, part, ...s.error });
    }

  const approvals = section(inp.instances, (all) =>
    all
      .filter((i) => DEPLOY_KINDS.has(kindOf(i)) && LIVE.has(i.runtimeStatus))
      .sort(newestFirst)
      .flatMap((i) => approvalsOf(i, inp.now)),
  );

  return { generatedAt: inp.now.toISOString(), runtime: inp.runtime, appVersion: inp.appVersion, environments, approvals, problems };
}

// ------------------------------------------------------------------------- formatting --

/** 1536 → "1.5 KiB" (binary units, one decimal). */
export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** A duration in ms → "1h 02m", "3m 05s", "42s". */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** "3m 05s ago" / "in 2h 10m" relative to now. */
export function formatRelative(at: string, now: Date): string {
  const t = Date.parse(at);
  if (!Number.isFinite(t)) return '?';
  const d = t - now.getTime();
  return d >= 0 ? `in ${formatDuration(d)}` : `${formatDuration(-d)} ago`;
}
