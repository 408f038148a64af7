/**
 * The coverage gate: pure decision logic. Given what GitHub reports for a commit (commit statuses and
 * check runs), the configured thresholds and the coverage of the release UAT runs now, decide:
 *   pass  → deploy, carrying the coverage;
 *   block → post a commit status whose description says exactly why;
 *   wait  → coverage missing or pending; re-run on the next status/check_run event, give up at the deadline.
 *
 * The coverage status the Odoo repository's CI must publish (docs/WEBHOOK_SETUP.md): a commit status
 * with context COVERAGE_CONTEXT (default `coverage`), state `success`, posted by COVERAGE_SOURCE_LOGIN,
 * whose description contains the percentage, e.g. "82.3%" or "Coverage: 82.3 % of lines"; or a check
 * run of that name created by the GitHub App COVERAGE_SOURCE_APP_ID, conclusion `success`, whose output
 * title or summary contains it. Anyone else's `coverage` blocks the merge, naming who posted it.
 */

export interface CommitStatus {
  context: string;
  state: string; // success | failure | error | pending
  description?: string | null;
  updated_at?: string;
  /** who posted it: GitHub's list-statuses payload (`GET /repos/{o}/{r}/commits/{ref}/statuses`) */
  creator?: { login?: string; id?: number } | null;
}

export interface CheckRun {
  name: string;
  status: string; // queued | in_progress | completed
  conclusion?: string | null;
  completed_at?: string | null;
  output?: { title?: string | null; summary?: string | null; text?: string | null } | null;
  /** the GitHub App that created it (check run payload: `app`) */
  app?: { id?: number; slug?: string | null } | null;
}

/**
 * Who may publish the coverage: the status context / check run name, and the CI that posts it — the
 * account (`creator.login`) of a commit status, the GitHub App (`app.id`) of a check run. A source not
 * configured for a kind means no status (or no check run) of that kind is trusted.
 */
export interface CoverageSource {
  context: string;
  login?: string;
  appId?: number;
}

export type CoverageReading =
  | { state: 'present'; percent: number; source: 'status' | 'check_run' }
  | { state: 'pending'; source: 'status' | 'check_run' }
  | { state: 'missing' }
  | { state: 'unreadable'; source: 'status' | 'check_run'; text: string }
  /** found, but it does not count: not from the CI source, or it did not succeed (`reason` says which) */
  | { state: 'refused'; source: 'status' | 'check_run'; reason: string };

/** First "NN.N %" in the text, else a text that is only a number. */
export function parseCoveragePercent(text: string | null | undefined): number | undefined {
  if (!text) return undefined;
  const withPct = /(\d{1,3}(?:[.,]\d+)?)\s*%/.exec(text);
  const bare = /^\s*(\d{1,3}(?:[.,]\d+)?)\s*$/.exec(text);
  const m = withPct ?? bare;
  if (!m) return undefined;
  const n = Number(m[1].replace(',', '.'));
  return Number.isFinite(n) && n >= 0 && n <= 100 ? n : undefined;
}

/** newest first by a timestamp; ties keep the given order (GitHub lists statuses newest first) */
function newest<T>(items: T[], at: (t: T) => string | null | undefined): T | undefined {
  return [...items].sort((a, b) => (at(b) ?? '').localeCompare(at(a) ?? ''))[0];
}

const quoted = (text: string | null | undefined) => (text ? `: "${text}"` : '');

/**
 * The coverage reading for `source.context`, trusting only the CI source: a commit status counts when
 * its creator is `source.login`, a check run when its app is `source.appId`; anything else named
 * `coverage` is refused, naming who posted it. Among the trusted: a commit status takes precedence over
 * a check run; the newest status counts (pending → pending; any state but success → refused); among
 * check runs one still running means pending, else the newest completed one counts (conclusion must be
 * success).
 */
export function readCoverage(
  statuses: CommitStatus[],
  checkRuns: CheckRun[],
  source: CoverageSource,
): CoverageReading {
  const login = source.login?.toLowerCase();
  const named = statuses.filter((s) => s.context === source.context);
  // GitHub logins are case-insensitive
  const status = newest(
    named.filter((s) => login !== undefined && s.creator?.login?.toLowerCase() === login),
    (s) => s.updated_at,
  );
  if (status) {
    if (status.state === 'pending') return { state: 'pending', source: 'status' };
    if (status.state !== 'success')
      return {
        state: 'refused',
        source: 'status',
        reason: `coverage status state ${status.state}${quoted(status.description)}`,
      };
    const percent = parseCoveragePercent(status.description);
    if (percent === undefined)
      return { state: 'unreadable', source: 'status', text: status.description ?? '' };
    return { state: 'present', percent, source: 'status' };
  }
  const runs = checkRuns.filter((r) => r.name === source.context);
  const trusted = runs.filter((r) => source.appId !== undefined && r.app?.id === source.appId);
  if (trusted.length) {
    if (trusted.some((r) => r.status !== 'completed')) return { state: 'pending', source: 'check_run' };
    const run = newest(trusted, (r) => r.completed_at)!;
    const text = [run.output?.title, run.output?.summary].filter(Boolean).join(' ');
    if (run.conclusion !== 'success')
      return {
        state: 'refused',
        source: 'check_run',
        reason: `coverage check run concluded ${run.conclusion ?? '(none)'}${quoted(text)}`,
      };
    const percent = parseCoveragePercent(run.output?.title) ?? parseCoveragePercent(run.output?.summary);
    if (percent === undefined) return { state: 'unreadable', source: 'check_run', text };
    return { state: 'present', percent, source: 'check_run' };
  }
  const forged = newest(named, (s) => s.updated_at);
  if (forged) {
    const who = forged.creator?.login ? `user '${forged.creator.login}'` : 'an unknown user';
    return {
      state: 'refused',
      source: 'status',
      reason: `coverage status from ${who}, not the CI source (${source.login ?? 'no status source configured'})`,
    };
  }
  const foreign = newest(runs, (r) => r.completed_at);
  if (foreign) {
    const app = foreign.app ? `app '${foreign.app.slug ?? '?'}' (id ${foreign.app.id ?? '?'})` : 'no app';
    return {
      state: 'refused',
      source: 'check_run',
      reason: `coverage check run from ${app}, not the CI source (${source.appId !== undefined ? `app ${source.appId}` : 'no check run source configured'})`,
    };
  }
  return { state: 'missing' };
}

export interface GatePolicy {
  min: number;
  tolerance: number;
  waitMinutes: number;
}

export interface GateInput {
  reading: CoverageReading;
  policy: GatePolicy;
  /** coverage recorded for the release UAT runs now (undefined: nothing deployed or not recorded) */
  uatCoverage?: number;
  /** minutes since the merge was first seen */
  waitedMinutes: number;
}

export type GateDecision =
  | { outcome: 'pass'; coverage: number; description: string }
  | { outcome: 'block'; description: string; coverage?: number }
  | { outcome: 'wait'; description: string };

/** "76.4 %" — one decimal for measured values. */
export function fmtPct(n: number): string {
  return `${(Math.round(n * 10) / 10).toFixed(1)} %`;
}
/** "80 %" for a whole-number threshold, "80.5 %" otherwise. */
function fmtThreshold(n: number): string {
  return `${Number.isInteger(n) ? String(n) : String(Math.round(n * 100) / 100)} %`;
}
function fmtMinutes(n: number): string {
  return n % 60 === 0 && n >= 120 ? `${n / 60} h` : `${n} min`;
}

/** GitHub truncates commit status descriptions at 140 characters. */
export function clip(text: string, max = 140): string {
  return text.length <= max ? text : text.slice(0, max - 1) + '…';
}

export function decideGate(input: GateInput): GateDecision {
  const { reading, policy } = input;
  if (reading.state === 'missing' || reading.state === 'pending') {
    if (input.waitedMinutes >= policy.waitMinutes) {
      const what = reading.state === 'missing' ? 'no coverage status' : 'coverage still pending';
      return { outcome: 'block', description: `${what} after ${fmtMinutes(policy.waitMinutes)}` };
    }
    return {
      outcome: 'wait',
      description: reading.state === 'missing' ? 'waiting for the coverage status' : 'coverage pending',
    };
  }
  if (reading.state === 'refused') return { outcome: 'block', description: clip(reading.reason) };
  if (reading.state === 'unreadable') {
    return { outcome: 'block', description: clip(`coverage status has no percentage: "${reading.text}"`) };
  }
  const c = reading.percent;
  // compare on the rounded value that the description shows, so the message never reads "80.0 % < 80 %"
  const shown = Math.round(c * 10) / 10;
  if (shown < policy.min)
    return {
      outcome: 'block',
      coverage: c,
      description: `coverage ${fmtPct(c)} < ${fmtThreshold(policy.min)}`,
    };
  if (input.uatCoverage !== undefined) {
    const floor = input.uatCoverage - policy.tolerance;
    if (shown < Math.round(floor * 10) / 10) {
      const tol =
        policy.tolerance > 0 ? ` - ${fmtThreshold(policy.tolerance).replace(' %', '')} pt tolerance` : '';
      return {
        outcome: 'block',
        coverage: c,
        description: `coverage ${fmtPct(c)} < UAT ${fmtPct(input.uatCoverage)}${tol}`,
      };
    }
  }
  const vsUat = input.uatCoverage !== undefined ? `, UAT ${fmtPct(input.uatCoverage)}` : '';
  return {
    outcome: 'pass',
    coverage: c,
    description: `coverage ${fmtPct(c)} ≥ ${fmtThreshold(policy.min)}${vsUat}`,
  };
}

/** Stable idempotency key of the deploy request for a commit (Service Bus message id). */
export function deployMessageId(environment: string, sha: string): string {
  return `deploy-${environment}-${sha}`;
}

/** Instance id of the deploy sub-orchestration: environment + version + sha (Durable ids: no '/', '\\', '#', '?'). */
export function deployInstanceId(environment: string, version: string, sha: string): string {
  const v = version.replace(/[^A-Za-z0-9._-]/g, '_');
  return `deploy-${environment}-${v}-${sha.slice(0, 12)}`;
}
