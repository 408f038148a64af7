/**
 * The coverage gate: pure decision logic. Given what GitHub reports for a commit (commit statuses and
 * check runs), the configured thresholds and the coverage of the release UAT runs now, decide:
 *   pass  → deploy, carrying the coverage;
 *   block → post a commit status whose description says exactly why;
 *   wait  → coverage missing or pending; re-run on the next status/check_run event, give up at the deadline.
 *
 * The coverage status the Odoo repository's CI must publish (docs/WEBHOOK_SETUP.md): a commit status
 * with context COVERAGE_CONTEXT (default `coverage`) whose description contains the percentage, e.g.
 * "82.3%" or "Coverage: 82.3 % of lines"; or a check run of that name whose output title or summary
 * contains it.
 */

export interface CommitStatus {
  context: string;
  state: string; // success | failure | error | pending
  description?: string | null;
  updated_at?: string;
}

export interface CheckRun {
  name: string;
  status: string; // queued | in_progress | completed
  conclusion?: string | null;
  completed_at?: string | null;
  output?: { title?: string | null; summary?: string | null; text?: string | null } | null;
}

export type CoverageReading =
  | { state: 'present'; percent: number; source: 'status' | 'check_run' }
  | { state: 'pending'; source: 'status' | 'check_run' }
  | { state: 'missing' }
  | { state: 'unreadable'; source: 'status' | 'check_run'; text: string };

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

/**
 * The coverage reading for `context`: a commit status (GitHub's combined status already holds the
 * latest per context) takes precedence over a check run of the same name; among check runs the
 * latest completed one counts, and a newer one still running means pending.
 */
export function readCoverage(statuses: CommitStatus[], checkRuns: CheckRun[], context: string): CoverageReading {
  const status = statuses
    .filter((s) => s.context === context)
    .sort((a, b) => (b.updated_at ?? '').localeCompare(a.updated_at ?? ''))[0];
  if (status) {
    if (status.state === 'pending') return { state: 'pending', source: 'status' };
    const percent = parseCoveragePercent(status.description);
    if (percent === undefined) return { state: 'unreadable', source: 'status', text: status.description ?? '' };
    return { state: 'present', percent, source: 'status' };
  }
  const runs = checkRuns.filter((r) => r.name === context);
  if (!runs.length) return { state: 'missing' };
  if (runs.some((r) => r.status !== 'completed')) return { state: 'pending', source: 'check_run' };
  const run = [...runs].sort((a, b) => (b.completed_at ?? '').localeCompare(a.completed_at ?? ''))[0];
  const text = [run.output?.title, run.output?.summary].filter(Boolean).join(' ');
  const percent = parseCoveragePercent(run.output?.title) ?? parseCoveragePercent(run.output?.summary);
  if (percent === undefined) return { state: 'unreadable', source: 'check_run', text };
  return { state: 'present', percent, source: 'check_run' };
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
    return { outcome: 'wait', description: reading.state === 'missing' ? 'waiting for the coverage status' : 'coverage pending' };
  }
  if (reading.state === 'unreadable') {
    return { outcome: 'block', description: clip(`coverage status has no percentage: "${reading.text}"`) };
  }
  const c = reading.percent;
  // compare on the rounded value that the description shows, so the message never reads "80.0 % < 80 %"
  const shown = Math.round(c * 10) / 10;
  if (shown < policy.min) return { outcome: 'block', coverage: c, description: `coverage ${fmtPct(c)} < ${fmtThreshold(policy.min)}` };
  if (input.uatCoverage !== undefined) {
    const floor = input.uatCoverage - policy.tolerance;
    if (shown < Math.round(floor * 10) / 10) {
      const tol = policy.tolerance > 0 ? ` - ${fmtThreshold(policy.tolerance).replace(' %', '')} pt tolerance` : '';
      return { outcome: 'block', coverage: c, description: `coverage ${fmtPct(c)} < UAT ${fmtPct(input.uatCoverage)}${tol}` };
    }
  }
  const vsUat = input.uatCoverage !== undefined ? `, UAT ${fmtPct(input.uatCoverage)}` : '';
  return { outcome: 'pass', coverage: c, description: `coverage ${fmtPct(c)} ≥ ${fmtThreshold(policy.min)}${vsUat}` };
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
