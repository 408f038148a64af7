/**
 * Odoo.sh as a deploy target (pure logic). Odoo.sh has no deploy API: it builds whatever its tracked
 * branch points to. Deploying a release there means moving that branch to the release commit
 * (fast-forward only unless forced) and waiting for the commit status Odoo.sh posts for the branch's
 * stage (`ci/odoo.sh (staging)` …).
 */
export type OdooShStage = 'dev' | 'staging' | 'production';

export interface OdooShBranch {
  branch: string;
  stage: OdooShStage;
}

const STAGES: readonly OdooShStage[] = ['dev', 'staging', 'production'];
const BRANCH = /^(?!-)(?!\/|.*\/\/|.*\/$|.*\.\.|.*\.lock$|.*@\{)[A-Za-z0-9._/-]{1,100}$/;
export const SHA40 = /^[0-9a-f]{40}$/;

/** `ODOOSH_BRANCHES` (`name:stage` pairs) → the branches a deploy may move. Throws on a bad entry. */
export function parseOdooShBranches(entries: readonly string[]): OdooShBranch[] {
  const out: OdooShBranch[] = [];
  for (const raw of entries) {
    const entry = raw.trim();
    if (!entry) continue;
    const i = entry.lastIndexOf(':');
    const branch = i > 0 ? entry.slice(0, i) : entry;
    const stage = (i > 0 ? entry.slice(i + 1) : '') as OdooShStage;
    if (!BRANCH.test(branch)) throw new Error(`ODOOSH_BRANCHES: "${entry}" does not name a valid branch`);
    if (!STAGES.includes(stage))
      throw new Error(`ODOOSH_BRANCHES: "${entry}" must end with :dev, :staging or :production`);
    if (out.some((b) => b.branch === branch))
      throw new Error(`ODOOSH_BRANCHES: branch ${branch} is listed twice`);
    out.push({ branch, stage });
  }
  return out;
}

/** The commit status context Odoo.sh posts for a build of this stage. */
export function odooShContext(stage: OdooShStage): string {
  return `ci/odoo.sh (${stage})`;
}

/** The ledger's name for an Odoo.sh branch (kept apart from the VM environments). */
export function odooShEnvironment(branch: string): string {
  return `odoosh-${branch.toLowerCase().replace(/[^a-z0-9-]+/g, '-')}`.slice(0, 31).replace(/-+$/, '');
}

export type CompareStatus = 'ahead' | 'behind' | 'identical' | 'diverged';

export type MovePlan =
  | { move: true; fastForward: boolean; why: string }
  | { move: false; code: 'ODOOSH.UP_TO_DATE' | 'ODOOSH.NOT_FAST_FORWARD'; why: string };

/**
 * Whether to move `branch` from `from` to `to`, given GitHub's compare status of `from...to`
 * (`ahead`: `to` contains `from`, a fast-forward).
 */
export function planMove(
  branch: string,
  from: string,
  to: string,
  status: CompareStatus,
  force: boolean,
): MovePlan {
  const s = (x: string) => x.slice(0, 7);
  if (status === 'identical')
    return { move: false, code: 'ODOOSH.UP_TO_DATE', why: `${branch} is already at ${s(to)}` };
  if (status === 'ahead')
    return { move: true, fastForward: true, why: `fast-forward ${branch} ${s(from)} → ${s(to)}` };
  const what =
    status === 'behind'
      ? `${s(to)} is older than ${branch}'s head ${s(from)} (moving back)`
      : `${s(to)} and ${branch}'s head ${s(from)} have diverged`;
  if (!force)
    return {
      move: false,
      code: 'ODOOSH.NOT_FAST_FORWARD',
      why: `not a fast-forward: ${what}; pass "force": true to move it anyway`,
    };
  return { move: true, fastForward: false, why: `forced: ${what}` };
}

export type OdooShBuild =
  | { state: 'pending'; description?: string }
  | { state: 'success' | 'failure'; description?: string; targetUrl?: string };

/** Odoo.sh's build outcome from the commit's statuses (latest per context), or pending when none yet. */
export function readOdooShBuild(
  statuses: ReadonlyArray<{
    context: string;
    state: string;
    description?: string | null;
    target_url?: string | null;
  }>,
  stage: OdooShStage,
): OdooShBuild {
  const s = statuses.find((x) => x.context === odooShContext(stage));
  if (!s || s.state === 'pending')
    return { state: 'pending', ...(s?.description ? { description: s.description } : {}) };
  const base = {
    ...(s.description ? { description: s.description } : {}),
    ...(s.target_url ? { targetUrl: s.target_url } : {}),
  };
  return s.state === 'success' ? { state: 'success', ...base } : { state: 'failure', ...base };
}

export interface OdooShRequest {
  type: 'deploy-odoosh';
  branch: string;
  stage: OdooShStage;
  repository: string;
  version: string;
  sha: string;
  force: boolean;
  /** the authenticated caller's canonical id (`entra:<oid>` / `key:<id>`) */
  requestedBy: string;
  /** the caller's sign-in names, lower case (four-eyes against approvers configured by e-mail) */
  requesterEmails?: string[];
  /** how the requester is shown (sign-in name, or the key id with its caller's label) */
  requestedByName?: string;
  reason?: string;
  requestedAt: string;
  /** how long to wait for Odoo.sh's status (ODOOSH_WAIT_MINUTES), and how often to look (ODOOSH_POLL_SECONDS) */
  waitMinutes: number;
  pollSeconds: number;
}

/** Rejected / Expired: a production branch's approval said no or ran out (the branch did not move). */
export type OdooShOutcome = 'Succeeded' | 'Failed' | 'TimedOut' | 'Refused' | 'Rejected' | 'Expired';

/** One decision on an approval link as the orchestration judged it (production branches). */
export interface OdooShDecision {
  nonce: string;
  approver: string;
  action: string;
  verdict: 'accepted' | 'refused';
  why?: string;
  comment?: string;
  receivedAt: string;
}

export interface OdooShResult {
  outcome: OdooShOutcome;
  branch: string;
  stage: OdooShStage;
  version: string;
  sha: string;
  previousSha?: string;
  code?: string;
  reason: string;
  targetUrl?: string;
  waitedMs?: number;
  /** production branches: who approved (distinct approvers, in order) and every decision received */
  approvals?: Array<{ approver: string; at: string }>;
  decisions?: OdooShDecision[];
  requestedBy?: string;
}

/** ODOOSH_WAIT_MINUTES as a reason says it: whole minutes as minutes, a shorter or fractional wait in seconds */
export function odooShWaitText(minutes: number): string {
  return Number.isInteger(minutes) ? `${minutes} min` : `${Math.round(minutes * 60)} s`;
}

export function odooShInstanceId(branch: string, version: string, sha: string): string {
  return `deploy-odoosh-${branch.toLowerCase().replace(/[^a-z0-9-]+/g, '-')}-${version}-${sha.slice(0, 12)}`;
}
