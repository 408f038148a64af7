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
  /** IANA time zone for the times people read (DISPLAY_TIME_ZONE); UTC when unset */
  displayTimeZone?: string;
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
  /** the step in plain words ("updating the database") */
  text?: string;
  /** the step waits for a person (approval, rollback decision): no progress figure then */
  waitingForPerson?: boolean;
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
  /** the outcome in plain words ("failed and rolled back") */
  outcomeText: string;
  /** why it did not succeed, from the failure itself (never the request's reason): one line */
  failure?: string;
  /** the failure's full text (cleaned: no URLs, secrets or local paths), when longer than the line */
  failureDetail?: string;
  /** the failure's error code, e.g. DEPLOY.MIGRATION_FAILED */
  code?: string;
  failedStep?: string;
  /** the failed step in plain words */
  failedStepText?: string;
  /** a rejection: who rejected, and what they wrote */
  rejectedBy?: string;
  comment?: string;
  /** why it was requested (PROD: the requester's reason) */
  requestReason?: string;
  requestedBy?: string;
  /** PROD: how PROD was left (deployProd's `prodState`) */
  prodState?: string;
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
  /** the outcome in plain words */
  outcomeText?: string;
  /** why it did not succeed (one line, from the failure), and its full text when longer */
  failure?: string;
  failureDetail?: string;
  failedStep?: string;
  /** why it was requested */
  requestReason?: string;
  startedAt: string;
  updatedAt: string;
  counts?: Record<string, number>;
}

/**
 * What runs on an environment and whether it is healthy — the one answer the page, the JSON and the
 * CLI show first. `down`: a deploy or refresh stopped it (in progress: `planned`; or it failed and left
 * it stopped / unhealthy) and nothing has brought it back since. `up`: the newest work that touched it
 * ended healthy (or nothing touched it since the recorded release). `unknown`: nothing recorded, or
 * the sources could not be read.
 */
export interface HealthView {
  state: 'up' | 'down' | 'unknown';
  /** one line in plain words: "PROD is DOWN: 1.2.0 failed while updating the database" */
  headline: string;
  /** what runs (up), or what ran before it was stopped (down) */
  version?: string;
  since?: string;
  /** the deploy / refresh that stopped it */
  deployment?: string;
  /** down on the normal path of a deploy in progress (stop → start), not because of a failure */
  planned?: boolean;
  /** the step it is at (plain words) when a deploy holds it down */
  step?: string;
  /** waiting for a rollback decision */
  awaitingRollback?: boolean;
}

export interface EnvironmentStatus {
  name: string;
  health: Section<HealthView>;
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
  /** what needs a person now, most urgent first: shown at the top of the page and of `status` */
  attention: AttentionItem[];
  /** the IANA time zone the page and the CLI show times in */
  displayTimeZone: string;
}

/** One line of the attention strip: what is wrong or waiting, and what to do next. */
export interface AttentionItem {
  /** down: an environment is not serving; failed: the last run failed; waiting: a person must act; info: for the record */
  severity: 'down' | 'failed' | 'waiting' | 'info';
  environment: string;
  /** plain words, e.g. "PROD is DOWN", "PROD deploy of 1.2.0 waits for approval" */
  title: string;
  /** one line: the cause / who it waits for */
  detail: string;
  /** the deploy or refresh it is about */
  deployment?: string;
  /** a person is awaited until then */
  until?: string;
  /** who may act ("needs 1 of alice, bob") */
  waitingFor?: { people: string[]; needed: number };
  /** what to do next: words, and the command that does / shows it */
  next: { text: string; command?: string };
}

// ------------------------------------------------------------------------------ runbooks --

/** The UAT deploy's main path (shared/domain/deploy-plan.ts DEPLOY_STEPS without the side paths). */
export const UAT_RUNBOOK = [
  'prepare',
  'preflight',
  'backup',
  'pull',
  'stop',
  'migrate',
  'start',
  'health',
  'record',
  'retention',
  'done',
];
/** The PROD deploy's main path (approval first). Unknown steps show without a percentage. */
export const PROD_RUNBOOK = [
  'prepare',
  'awaiting-approval',
  'promote',
  'backup',
  'pull',
  'stop',
  'migrate',
  'start',
  'health',
  'record',
  'retention',
  'done',
];
/** Steps that map onto a main-path step for the progress figure. */
const STEP_ALIASES: Record<string, string> = {
  'wait-image': 'preflight',
  requested: 'prepare',
  approved: 'promote',
  retag: 'promote',
  snapshot: 'backup',
  notify: 'record',
};

export function progressOf(kind: WorkKind, step: string | undefined): ProgressView {
  const s = step ?? 'starting';
  const text = stepText(s);
  const waiting = PERSON_STEPS.has(s);
  const book = kind === 'deployProd' ? PROD_RUNBOOK : kind === 'deployUat' ? UAT_RUNBOOK : undefined;
  const base: ProgressView = {
    step: s,
    ...(text !== s ? { text } : {}),
    ...(waiting ? { waitingForPerson: true } : {}),
  };
  if (!book) return base;
  const i = book.indexOf(STEP_ALIASES[s] ?? s);
  if (i < 0) return base;
  // a person is awaited: the position is kept, the percentage is not (it would stand still for hours)
  return {
    ...base,
    index: i + 1,
    total: book.length,
    ...(waiting ? {} : { percent: Math.round((i / (book.length - 1)) * 100) }),
  };
}

// -------------------------------------------------------------------------- plain words --

/** Steps that wait for a person, not for the machine. */
const PERSON_STEPS = new Set(['awaiting-approval', 'awaiting-rollback-decision']);

const STEP_WORDS: Record<string, string> = {
  starting: 'starting',
  requested: 'requested',
  prepare: 'preparing',
  'request-approval': 'asking for approval',
  'awaiting-approval': 'waiting for approval',
  approved: 'approved',
  promote: 'promoting the UAT image to PROD',
  retag: 'promoting the UAT image to PROD',
  preflight: 'checking the server',
  'wait-image': 'waiting for the image',
  backup: 'backing up the database and files',
  snapshot: 'snapshotting the disk',
  pull: 'downloading the new image',
  stop: 'stopping Odoo',
  migrate: 'updating the database (module upgrade)',
  start: 'starting Odoo',
  health: 'checking that Odoo answers',
  'health-stable': 'watching that Odoo stays healthy',
  record: 'recording the release',
  notify: 'sending notifications',
  retention: 'removing old images',
  'awaiting-rollback-decision': 'waiting for the rollback decision',
  rollback: 'rolling back',
  done: 'finished',
  'backup-uat': 'backing up UAT',
  source: 'taking the PROD copy',
  restore: 'restoring the PROD copy',
  neutralize: 'neutralizing (mail, crons, payments off)',
  'anonymize+verify': 'anonymizing personal data and checking none is left',
  filestore: 'copying the files',
  swap: 'switching UAT to the new database',
  cleanup: 'cleaning up',
  recover: 'bringing UAT back',
  report: 'writing the report',
};

/** A step name → plain words (unknown names pass through with dashes as spaces). */
export function stepText(step: string | undefined): string {
  if (!step) return 'starting';
  return STEP_WORDS[step] ?? step.replace(/[-_]+/g, ' ');
}

const OUTCOME_WORDS: Record<string, string> = {
  Succeeded: 'succeeded',
  Completed: 'finished',
  Failed: 'failed',
  RolledBack: 'failed, rolled back',
  NeedsAttention: 'failed, needs attention',
  Rejected: 'rejected',
  Expired: 'approval expired',
  TimedOut: 'timed out',
  Terminated: 'stopped by an operator',
  LeakFound: 'stopped: personal data left in the copy',
  Running: 'running',
  Pending: 'waiting to start',
};

/** An outcome → plain words. */
export function outcomeText(outcome: string | undefined): string {
  return outcome
    ? (OUTCOME_WORDS[outcome] ?? outcome.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase())
    : 'unknown';
}

const KIND_WORDS: Record<string, string> = {
  deployUat: 'UAT deploy',
  deployProd: 'PROD deploy',
  refreshUat: 'UAT refresh from PROD',
  deployOdooSh: 'Odoo.sh deploy',
};
/** An orchestration name → plain words. */
export function kindText(kind: string, environment?: string): string {
  return KIND_WORDS[kind] ?? (environment ? `${environment.toUpperCase()} deploy` : kind);
}

/**
 * A failure text as people read it: the `[CODE]` prefix out (kept apart), URLs, secrets and local file
 * paths removed (a sandbox or temp path says nothing to an operator: only the file name stays), the
 * first line / sentence as the summary (≤ 160 characters) and the whole cleaned text as detail when
 * it says more.
 */
export function summarizeFailure(
  raw: string | undefined,
): { summary: string; detail?: string; code?: string } | undefined {
  if (!raw || !raw.trim()) return undefined;
  const code = CODE_IN_MESSAGE.exec(raw)?.[1];
  const clean = raw
    .replace(new RegExp(CODE_IN_MESSAGE.source, 'g'), '')
    .replace(/https?:\/\/\S+/g, '<url>')
    .replace(/(AccountKey|SharedAccessSignature|sig|code|key|password|token)=[^;&\s]+/gi, '$1=<redacted>')
    // absolute paths with two or more folders: keep the file name only
    .replace(
      /(^|[\s'"(=:])\/(?:[\w.+@-]+\/){2,}([\w.+@-]*)/g,
      (_m, pre: string, file: string) => `${pre}${file ? `…/${file}` : '…'}`,
    )
    .replace(/[ \t]+/g, ' ')
    .trim()
    .slice(0, 4000);
  const first = clean.split('\n')[0].trim();
  let summary = first.length > 160 ? `${first.slice(0, 157).replace(/\s+\S*$/, '')}…` : first;
  if (!summary) summary = code ?? 'failed';
  return { summary, ...(clean !== summary ? { detail: clean } : {}), ...(code ? { code } : {}) };
}

// ------------------------------------------------------------------------------ helpers --

const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const iso = (v: string | Date): string => (v instanceof Date ? v.toISOString() : String(v));
const time = (v: string | Date): number => (v instanceof Date ? v.getTime() : Date.parse(String(v))) || 0;

const CODE_IN_MESSAGE = /\[([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)+)\]\s*/;

/** Error → `{ code, message }` with URLs and connection-string-like fragments removed. */
export function describeError(
  err: unknown,
  fallbackCode = 'STATUS.UNAVAILABLE',
): { code: string; message: string } {
  const raw = err instanceof Error ? err.message : typeof err === 'string' ? err : 'unknown error';
  const own =
    err &&
    typeof err === 'object' &&
    typeof (err as { code?: unknown }).code === 'string' &&
    /^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$/.test((err as { code: string }).code)
      ? (err as { code: string }).code
      : undefined;
  const m = CODE_IN_MESSAGE.exec(raw);
  const code = own ?? m?.[1] ?? fallbackCode;
  const message = raw
    .replace(CODE_IN_MESSAGE, '')
    .replace(/https?:\/\/\S+/g, '<url>')
    .replace(/(AccountKey|SharedAccessSignature|sig|code|key|password|token)=[^;&\s]+/gi, '$1=<redacted>')
    .slice(0, 300);
  return { code, message: message || code };
}

function section<T, U>(
  r: Read<T> | undefined,
  map: (v: T) => U,
  missingCode = 'STATUS.NOT_READ',
): Section<U> {
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
  if (kindOf(i) === 'refreshUat')
    return str(cs.target) ?? str(input.target) ?? str(input.environment) ?? 'uat';
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

/**
 * Why a deploy did not succeed, from the failure: deployProd keeps the requester's words in `reason` and
 * the failure in `failure`; deployUat and deployOdooSh put the failure in `reason`. A rejection names
 * who rejected and what they wrote (the accepted `reject` decision of deployProd's output).
 */
export function failureOf(i: InstanceInfo): {
  text?: string;
  code?: string;
  failedStep?: string;
  rejectedBy?: string;
  comment?: string;
} {
  const out = obj(i.output);
  const cs = obj(i.customStatus);
  const prod = kindOf(i) === 'deployProd';
  const outcome = str(out.outcome) ?? str(cs.outcome);
  let rejectedBy: string | undefined;
  let comment: string | undefined;
  if (outcome === 'Rejected') {
    const decisions = Array.isArray(out.decisions) ? out.decisions.map(obj) : [];
    const rej = [...decisions].reverse().find((d) => d.action === 'reject' && d.verdict === 'accepted');
    rejectedBy =
      str(rej?.approver) ?? /rejected by ([^:;,\s]+)/.exec(str(out.failure) ?? str(out.reason) ?? '')?.[1];
    comment = str(rej?.comment)?.slice(0, 500);
  }
  const raw = prod
    ? (str(out.failure) ?? (out.outcome === undefined ? str(cs.failure) : undefined))
    : (str(out.failure) ?? str(out.reason) ?? str(cs.failure));
  const crashed =
    typeof i.output === 'string' && (i.runtimeStatus === 'Failed' || i.runtimeStatus === 'Terminated')
      ? i.output
      : undefined;
  const text = rejectedBy ? `rejected by ${rejectedBy}${comment ? `: ${comment}` : ''}` : (raw ?? crashed);
  return { text, code: str(out.code), failedStep: str(out.failedStep), rejectedBy, comment };
}

function outcomeView(i: InstanceInfo): DeployOutcomeView {
  const out = obj(i.output);
  const cs = obj(i.customStatus);
  const input = obj(i.input);
  const outcome =
    str(out.outcome) ?? str(cs.outcome) ?? (i.runtimeStatus === 'Completed' ? 'Completed' : i.runtimeStatus);
  const logs = Array.isArray(out.logs)
    ? out.logs.filter((l): l is string => typeof l === 'string')
    : undefined;
  const f = outcome === 'Succeeded' ? {} : failureOf(i);
  const sum = summarizeFailure(f.text);
  const prod = kindOf(i) === 'deployProd';
  const failedStep = f.failedStep;
  return {
    id: i.instanceId,
    kind: kindOf(i),
    version: str(out.version) ?? str(cs.version) ?? str(input.version),
    outcome,
    outcomeText: outcomeText(outcome),
    ...(sum ? { failure: sum.summary, ...(sum.detail ? { failureDetail: sum.detail } : {}) } : {}),
    ...((f.code ?? sum?.code) ? { code: f.code ?? sum?.code } : {}),
    ...(failedStep ? { failedStep, failedStepText: stepText(failedStep) } : {}),
    ...(f.rejectedBy ? { rejectedBy: f.rejectedBy } : {}),
    ...(f.comment ? { comment: f.comment } : {}),
    ...(prod && (str(out.reason) ?? str(cs.reason) ?? str(input.reason))
      ? { requestReason: str(out.reason) ?? str(cs.reason) ?? str(input.reason) }
      : {}),
    ...((str(out.requestedBy) ?? str(cs.requestedBy) ?? str(input.requestedBy))
      ? { requestedBy: str(out.requestedBy) ?? str(cs.requestedBy) ?? str(input.requestedBy) }
      : {}),
    ...(str(out.prodState) ? { prodState: str(out.prodState) } : {}),
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
      else
        for (const [k2, v2] of Object.entries(obj(v))) if (typeof v2 === 'number') counts[`${k}.${k2}`] = v2;
    }
  const outcome =
    str(out.outcome) ?? str(cs.outcome) ?? (LIVE.has(i.runtimeStatus) ? undefined : i.runtimeStatus);
  // refreshUat: `reason` of the RESULT is the failure; `reason` of the custom status is the request's
  const sum =
    outcome === 'Succeeded'
      ? undefined
      : summarizeFailure(
          str(out.reason) ?? str(cs.error) ?? (typeof i.output === 'string' ? i.output : undefined),
        );
  return {
    id: i.instanceId,
    runtimeStatus: i.runtimeStatus,
    step: str(cs.step),
    outcome,
    ...(outcome ? { outcomeText: outcomeText(outcome) } : {}),
    ...(sum ? { failure: sum.summary, ...(sum.detail ? { failureDetail: sum.detail } : {}) } : {}),
    ...(str(out.failedStep) ? { failedStep: str(out.failedStep) } : {}),
    ...((str(cs.reason) ?? str(obj(i.input).reason))
      ? { requestReason: str(cs.reason) ?? str(obj(i.input).reason) }
      : {}),
    startedAt: iso(i.createdTime),
    updatedAt: iso(i.lastUpdatedTime),
    counts: Object.keys(counts).length ? counts : undefined,
  };
}

export function backupView(b: BackupListing): BackupView {
  const v = b.verification;
  const state: BackupView['state'] = !b.complete
    ? 'incomplete'
    : v
      ? v.ok
        ? 'verified'
        : 'corrupt'
      : 'complete';
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

const newestFirst = (a: InstanceInfo, b: InstanceInfo) =>
  time(b.createdTime) - time(a.createdTime) || (a.instanceId < b.instanceId ? 1 : -1);
const newestUpdatedFirst = (a: InstanceInfo, b: InstanceInfo) =>
  time(b.lastUpdatedTime) - time(a.lastUpdatedTime) || (a.instanceId < b.instanceId ? 1 : -1);

// ---------------------------------------------------------------------------- health --

/** Steps during which the work holds the environment stopped (deploy: stop → health; refresh: stop → health). */
const STOPPED_STEPS: Record<string, ReadonlySet<string>> = {
  deployUat: new Set(['stop', 'migrate', 'start', 'health', 'rollback']),
  deployProd: new Set([
    'stop',
    'migrate',
    'start',
    'health',
    'health-stable',
    'awaiting-rollback-decision',
    'rollback',
  ]),
  refreshUat: new Set([
    'stop',
    'restore',
    'neutralize',
    'anonymize+verify',
    'filestore',
    'swap',
    'start',
    'health',
    'recover',
  ]),
};
/** Steps that are not the normal path: the environment is down because something failed. */
const FAILURE_STEPS = new Set(['awaiting-rollback-decision', 'rollback', 'recover']);
/** deployProd's `prodState` values that mean PROD is not serving the way it should. */
const PROD_DOWN = new Set(['stopped', 'unknown', 'running-new-unhealthy']);

type Touch =
  | { kind: 'up' }
  | { kind: 'down'; planned: boolean; step?: string; awaitingRollback?: boolean; cause?: string }
  | { kind: 'none' };

/** Did this deploy / refresh leave (or hold) the environment up, down, or not touch it at all? */
function touchOf(i: InstanceInfo): Touch {
  const k = kindOf(i);
  const cs = obj(i.customStatus);
  const out = obj(i.output);
  const step = str(cs.step);
  const stopped = STOPPED_STEPS[k];
  if (!stopped) return { kind: 'none' };
  if (LIVE.has(i.runtimeStatus)) {
    const prodState = str(cs.prodState);
    if ((step && stopped.has(step)) || (prodState && PROD_DOWN.has(prodState))) {
      const planned = !(step && FAILURE_STEPS.has(step)) && !(prodState && PROD_DOWN.has(prodState));
      return {
        kind: 'down',
        planned,
        step,
        awaitingRollback: step === 'awaiting-rollback-decision',
        cause: planned ? undefined : (str(cs.failure) ?? str(cs.error)),
      };
    }
    return { kind: 'none' };
  }
  const outcome = str(out.outcome) ?? str(cs.outcome);
  if (k === 'deployProd') {
    const ps = str(out.prodState) ?? str(cs.prodState);
    if (ps && PROD_DOWN.has(ps)) return { kind: 'down', planned: false, cause: str(out.failure) };
    if (ps === 'running-new' || ps === 'rolled-back') return { kind: 'up' };
    if (!outcome && step && stopped.has(step))
      return {
        kind: 'down',
        planned: false,
        step,
        cause: typeof i.output === 'string' ? i.output : undefined,
      };
    return { kind: 'none' };
  }
  if (outcome === 'Succeeded' || outcome === 'RolledBack') return { kind: 'up' };
  if (outcome === 'NeedsAttention' || outcome === 'LeakFound')
    return { kind: 'down', planned: false, cause: str(out.reason) ?? str(cs.error) };
  if (k === 'refreshUat' && outcome === 'Failed')
    return out.uatStopped === true ? { kind: 'up' } : { kind: 'none' };
  // crashed / terminated inside the stopped steps: nobody brought it back
  if (!outcome && step && stopped.has(step) && i.runtimeStatus !== 'Completed')
    return { kind: 'down', planned: false, step, cause: typeof i.output === 'string' ? i.output : undefined };
  return { kind: 'none' };
}

function healthOf(
  env: string,
  mine: InstanceInfo[],
  ledger: Read<LedgerRead> | undefined,
): Section<HealthView> {
  const E = env.toUpperCase();
  const current = ledger?.ok ? ledger.value.current : undefined;
  for (const i of [...mine].sort(newestFirst)) {
    const t = touchOf(i);
    if (t.kind === 'none') continue;
    if (t.kind === 'up') break;
    const v = obj(i.customStatus).version ?? obj(i.output).version ?? obj(i.input).version;
    const version = typeof v === 'string' ? v : undefined;
    const what = `${kindText(kindOf(i), env)}${version ? ` of ${version}` : ''}`;
    const out = obj(i.output);
    const failedStep = str(out.failedStep);
    const cause = summarizeFailure(t.cause)?.summary;
    const headline = t.planned
      ? `${E} is DOWN for the ${what}: ${stepText(t.step)}`
      : `${E} is DOWN: the ${what} failed${failedStep ? ` while ${stepText(failedStep)}` : ''}${cause ? ` (${cause})` : ''}${t.awaitingRollback ? '; waiting for the rollback decision' : t.step === 'rollback' ? '; rolling back' : ''}`;
    return {
      ok: true,
      value: {
        state: 'down',
        headline,
        ...(current ? { version: current.version } : {}),
        since: iso(i.lastUpdatedTime),
        deployment: i.instanceId,
        ...(t.planned ? { planned: true } : {}),
        ...(t.step ? { step: stepText(t.step) } : {}),
        ...(t.awaitingRollback ? { awaitingRollback: true } : {}),
      },
    };
  }
  if (!ledger || !ledger.ok)
    return {
      ok: true,
      value: {
        state: 'unknown',
        headline: `${E}: what runs is unknown (its release record could not be read)`,
      },
    };
  if (!current)
    return {
      ok: true,
      value: { state: 'unknown', headline: `${E}: nothing deployed through the pipeline yet` },
    };
  return {
    ok: true,
    value: {
      state: 'up',
      headline: `${E} runs ${current.version}`,
      version: current.version,
      since: current.deployedAt,
    },
  };
}

// --------------------------------------------------------------------------- attention --

/** "needs 1 of alice, bob" */
export function needsText(w: { people: string[]; needed: number }): string {
  return `needs ${w.needed} of ${w.people.join(', ')}`;
}

function attentionOf(
  environments: EnvironmentStatus[],
  approvals: Section<PendingApprovalView[]>,
  now: Date,
): AttentionItem[] {
  const items: AttentionItem[] = [];
  const aboutDown = new Set<string>();
  for (const e of environments) {
    const h = e.health.ok ? e.health.value : undefined;
    if (h?.state !== 'down') continue;
    if (h.deployment) aboutDown.add(h.deployment);
    const pendingRb = approvals.ok
      ? approvals.value.filter((a) => a.deployment === h.deployment && a.action === 'rollback' && !a.expired)
      : [];
    const next: AttentionItem['next'] = h.planned
      ? { text: 'wait for the deploy to finish; follow it with', command: 'odoo-pipeline status' }
      : h.awaitingRollback
        ? {
            text: `decide the rollback (the approvers have a signed rollback link in Slack)${h.deployment ? '; see the logs with' : ''}`,
            command: h.deployment ? `odoo-pipeline logs ${h.deployment}` : 'odoo-pipeline rollback prod',
          }
        : {
            text: 'see the logs, then restore by hand (docs/ROLLBACK_GUIDE.md)',
            command: h.deployment ? `odoo-pipeline logs ${h.deployment}` : 'odoo-pipeline status',
          };
    items.push({
      severity: 'down',
      environment: e.name,
      title: `${e.name.toUpperCase()} is DOWN`,
      detail: h.headline.replace(/^[A-Z0-9-]+ is DOWN:? ?/, ''),
      ...(h.deployment ? { deployment: h.deployment } : {}),
      ...(pendingRb.length
        ? {
            until: pendingRb[0].expiresAt,
            waitingFor: { people: [...new Set(pendingRb.map((a) => a.approver))], needed: 1 },
          }
        : {}),
      next,
    });
  }
  // what waits for a person (one item per deploy and kind of decision)
  if (approvals.ok) {
    const groups = new Map<string, PendingApprovalView[]>();
    for (const a of approvals.value) {
      if (a.expired) continue;
      if (a.action === 'rollback' && aboutDown.has(a.deployment)) continue; // already in the DOWN line
      const key = `${a.deployment}\u0000${a.action}`;
      groups.set(key, [...(groups.get(key) ?? []), a]);
    }
    for (const list of groups.values()) {
      const a = list[0];
      const people = [...new Set(list.map((x) => x.approver))];
      const needed = Math.max(1, (a.required ?? 1) - (a.received ?? 0));
      const rollback = a.action === 'rollback';
      const until = list.map((x) => x.expiresAt).sort()[0];
      items.push({
        severity: 'waiting',
        environment: a.environment,
        title: rollback
          ? `${a.environment.toUpperCase()} rollback waits for a decision`
          : `${a.environment.toUpperCase()} deploy of ${a.version ?? '?'} waits for approval`,
        detail: `${needsText({ people, needed })}${a.requestedBy ? ` · requested by ${a.requestedBy}` : ''}${a.reason && !rollback ? `: ${a.reason.slice(0, 120)}` : ''}`,
        deployment: a.deployment,
        until,
        waitingFor: { people, needed },
        next: {
          text: 'the approvers have their signed link in Slack; list who may decide with',
          command: 'odoo-pipeline approvals',
        },
      });
    }
  }
  // the last run that failed (not already the cause of a DOWN line)
  for (const e of environments) {
    const d = e.lastDeploy.ok ? e.lastDeploy.value : undefined;
    if (d && d.outcome !== 'Succeeded' && d.outcome !== 'Completed' && !aboutDown.has(d.id)) {
      const rejected = d.outcome === 'Rejected' || d.outcome === 'Expired';
      items.push({
        severity: rejected ? 'info' : 'failed',
        environment: e.name,
        title: `${kindText(d.kind, e.name)} of ${d.version ?? '?'} ${d.outcomeText}`,
        detail:
          `${d.failedStepText ? `while ${d.failedStepText}: ` : ''}${d.failure ?? ''}`.trim() ||
          d.outcomeText,
        deployment: d.id,
        next: d.logs?.length
          ? { text: 'see the saved logs with', command: `odoo-pipeline logs ${d.id}` }
          : rejected
            ? { text: 'request it again when ready' }
            : { text: 'see the deploy with', command: `odoo-pipeline logs ${d.id}` },
      });
    }
    const r = e.lastRefresh.ok ? e.lastRefresh.value : undefined;
    if (r?.outcome && r.outcome !== 'Succeeded' && r.outcome !== 'Completed' && !aboutDown.has(r.id))
      items.push({
        severity: 'failed',
        environment: e.name,
        title: `${kindText('refreshUat')} ${r.outcomeText ?? r.outcome}`,
        detail: `${r.failedStep ? `while ${stepText(r.failedStep)}: ` : ''}${r.failure ?? ''}`.trim(),
        deployment: r.id,
        next: { text: 'see it with', command: 'odoo-pipeline status --json' },
      });
  }
  const rank = { down: 0, waiting: 1, failed: 2, info: 3 } as const;
  void now;
  return items.sort((x, y) => rank[x.severity] - rank[y.severity]);
}

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
        .filter(
          (i) => (DEPLOY_KINDS.has(kindOf(i)) || kindOf(i) === 'refreshUat') && LIVE.has(i.runtimeStatus),
        )
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
          return Array.isArray(w)
            ? w.filter((x): x is string => typeof x === 'string')
            : str(w)
              ? [w as string]
              : [];
        });

    return {
      name: env,
      health: inp.instances.ok
        ? healthOf(
            env,
            mine(inp.instances.value).filter(
              (i) => DEPLOY_KINDS.has(kindOf(i)) || kindOf(i) === 'refreshUat',
            ),
            inp.ledger[env],
          )
        : { ok: false, error: describeError(inp.instances.error) },
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
    for (const part of [
      'running',
      'lastDeploy',
      'inProgress',
      'queued',
      'pendingApprovals',
      'backups',
      'lastRefresh',
    ] as const) {
      const s = e[part];
      if (!s.ok) problems.push({ environment: e.name, part, ...s.error });
    }

  const approvals = section(inp.instances, (all) =>
    all
      .filter((i) => DEPLOY_KINDS.has(kindOf(i)) && LIVE.has(i.runtimeStatus))
      .sort(newestFirst)
      .flatMap((i) => approvalsOf(i, inp.now)),
  );

  return {
    generatedAt: inp.now.toISOString(),
    runtime: inp.runtime,
    appVersion: inp.appVersion,
    displayTimeZone: inp.displayTimeZone ?? 'UTC',
    attention: attentionOf(environments, approvals, inp.now),
    environments,
    approvals,
    problems,
  };
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

/** Whether `tz` is an IANA time zone this runtime knows (Intl decides). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** "6 Dec 2026, 05:42 CET" in the display time zone (UTC when the zone is unknown). */
export function formatAbsolute(at: string, timeZone = 'UTC'): string {
  const t = Date.parse(at);
  if (!Number.isFinite(t)) return '?';
  const tz = isTimeZone(timeZone) ? timeZone : 'UTC';
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: tz,
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).formatToParts(new Date(t));
  const p = (type: string) => parts.find((x) => x.type === type)?.value ?? '';
  return `${p('day')} ${p('month')} ${p('year')}, ${p('hour')}:${p('minute')} ${p('timeZoneName')}`;
}

/** "6 Dec 2026, 05:42 CET (3m 05s ago)" — absolute in the display zone, then relative to now. */
export function formatWhen(at: string | undefined, now: Date, timeZone = 'UTC'): string {
  if (!at) return '-';
  if (!Number.isFinite(Date.parse(at))) return at;
  return `${formatAbsolute(at, timeZone)} (${formatRelative(at, now)})`;
}
