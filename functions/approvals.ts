/**
 * Approval links — the second door from the internet into the pipeline (issue #6).
 *
 *   GET|HEAD /api/approvals/{token}   anonymous (the signed token is the credential): a confirmation page.
 *                                     NEVER decides anything — Slack's link expander, mail scanners and
 *                                     browsers prefetch links with GET/HEAD.
 *   POST     /api/approvals/{token}   form-urlencoded: decides, once.
 *
 * Checks on POST, in order, each refusal a page that says why (never a 500 for client input):
 *   1. body: form-urlencoded (415), at most 16 KiB (413);
 *   2. the token: signature with the current or previous key, constant time (403 tampered, 400 malformed),
 *      expiry (410);
 *   3. same origin: `Sec-Fetch-Site` must be `same-origin` when sent; `Origin`/`Referer` must be this
 *      app's origin when present (403);
 *   4. CSRF: a synchronizer token `csrf = HMAC(signing key, token + "." + pageNonce)` rendered into the
 *      page with a fresh random pageNonce (403 when missing or wrong). Chosen over a double-submit
 *      cookie because it is stateless, bound to this exact link (a CSRF value from another link's page
 *      is useless), survives key rotation like the token itself, and needs no cookie — Slack's in-app
 *      browser and phones that open links in a different browser than the one they submit from make
 *      cookie flows brittle, and the page's `Referrer-Policy: no-referrer` makes browsers send
 *      `Origin: null` on its own POST, so the Sec-Fetch-Site/CSRF pair carries the proof;
 *   5. the deploy: it must exist (404), still run (410 "has ended"), and list this link's nonce as
 *      pending (409 "already used / no longer pending");
 *   6. the form: Approve needs every checklist box and the typed word APPROVE; Rollback the typed word
 *      ROLLBACK; Reject needs neither (400, the form is shown again with what is missing);
 *   7. the nonce is claimed once — Blob marker `approvals/used/<nonce>.json` created with
 *      `If-None-Match: *` (409 "already used" for a replay or a double click);
 *   8. `raiseEvent(instanceId, 'approval-decision', { nonce, approver, action, comment, ip, userAgent,
 *      decidedAt })`. The orchestration still decides whether it counts (allowlist, four-eyes).
 *
 * Pages: no external assets, inline CSS/JS allowed by a per-response CSP nonce only, `no-store`,
 * `no-referrer`, `X-Frame-Options: DENY`, `frame-ancestors 'none'`, `form-action 'self'`. The form works
 * without JavaScript (HTML validation + server checks); the script only disables Approve until ready.
 * A client that sends `Accept: application/json` gets the same answers as JSON (used by the demo).
 */
import { readInstance } from '../shared/adapters/durable-status';
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { DurableClient, DurableOrchestrationStatus } from 'durable-functions';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { loadConfig } from '../shared/config';
import {
  createApprovalStore,
  NONCE_PATTERN,
  type ApprovalStore,
  type UsedLinkRecord,
} from '../shared/adapters/approval-store';
import { ledgerContainer } from '../shared/adapters/ledger';
import {
  type ApprovalAction,
  type ApprovalClaims,
  type SigningKey,
  signingKeys,
  verifyApprovalToken,
} from '../shared/domain/approval-token';
import { messageOf } from '../shared/domain/errors';
import { entraCaller, isApprover, type Approver, type Caller } from '../shared/domain/identity';
import {
  formatAbsolute,
  formatRelative,
  isTimeZone,
  outcomeText as outcomeWords,
  stepText,
  summarizeFailure,
} from '../shared/domain/status-view';

export const DECISION_EVENT = 'approval-decision';
export const CHECKLIST = [
  { name: 'check_uat', label: 'Tested on UAT?' },
  { name: 'check_backup', label: 'Backup location ready?' },
  { name: 'check_rollback', label: 'Rollback plan documented?' },
] as const;
const MAX_BODY = 16 * 1024;
const MAX_COMMENT = 2000;
const PAGE_NONCE = /^[A-Za-z0-9_-]{22}$/;

export type DecisionAction = 'approve' | 'reject' | 'rollback';
/** The `approval-decision` event payload (the approval contract). */
export interface ApprovalDecision {
  nonce: string;
  /** the approver id the link was issued to */
  approver: string;
  /** who decided, as proven: `entra:<oid>` (page) or `slack:<user id>` (Slack) */
  decidedBy?: string;
  action: DecisionAction;
  comment: string;
  ip: string;
  userAgent: string;
  decidedAt: string;
}

export interface PendingApproval {
  approver: string;
  nonce: string;
  action: ApprovalAction;
  expiresAt: string;
}
/** What deployProd publishes as custom status while it waits (the approval contract) + optional extras. */
export interface WaitingStatus {
  kind?: string;
  step?: string;
  environment?: string;
  version?: string;
  requestedBy?: string;
  reason?: string;
  approvals?: { required?: number; received?: Array<{ approver: string; at: string }> };
  pendingApprovals?: PendingApproval[];
  [extra: string]: unknown;
}

// ------------------------------------------------------------------------------------------------
// The checks shared by the link flow and Slack buttons

export interface Refusal {
  ok: false;
  status: number;
  code: string;
  title: string;
  message: string;
  /** for the log only: what went wrong inside (configuration, storage); never shown to the caller */
  detail?: string;
  /** a link that no longer decides because someone did: who, what and when (shown instead of a status dump) */
  decided?: DecidedView;
  /** the deploy behind the link and what it does now, in words (for the page's "now" line) */
  deploy?: { id: string; now?: string };
}

/** Who decided the request a link belonged to. */
export interface DecidedView {
  /** the approver's display name (APPROVERS), never a raw `entra:<id>` */
  by: string;
  action: DecisionAction;
  /** ISO time of the decision, when known */
  at?: string;
  /** this very link was used for it (by its own approver) */
  thisLink: boolean;
}
export interface LinkState {
  ok: true;
  claims: ApprovalClaims;
  keyId: string;
  status: DurableOrchestrationStatus;
  waiting: WaitingStatus;
  pending: PendingApproval;
}

const refuse = (status: number, code: string, title: string, message: string, detail?: string): Refusal => ({
  ok: false,
  status,
  code,
  title,
  message,
  ...(detail ? { detail } : {}),
});

/** Anonymous routes answer with a generic text and a code; the inside detail goes to the function's log. */
export function logRefusalDetail(context: InvocationContext, r: Refusal): void {
  if (r.detail) context.error(`${r.code}: ${r.detail}`);
}

export interface ApprovalsEnv {
  keys: SigningKey[];
  store: ApprovalStore;
  publicBaseUrl: string;
  /** APPROVERS: whose identity a link's decision must carry */
  approvers: Approver[];
  /** DISPLAY_TIME_ZONE: the zone of the times the pages show */
  displayTimeZone: string;
}

/** Settings → keys, store, base URL; a configuration problem is a 503 page, not a 500. */
export function approvalsEnv(env: NodeJS.ProcessEnv = process.env): ApprovalsEnv | Refusal {
  try {
    const config = loadConfig(env);
    const keys = signingKeys(config);
    if (keys.length === 0)
      return refuse(
        503,
        'APPROVAL.NOT_CONFIGURED',
        'Approvals are not configured',
        'No approval signing key is configured on the server (APPROVAL_SIGNING_KEY).',
      );
    return {
      keys,
      store: createApprovalStore(ledgerContainer(config)),
      publicBaseUrl: config.PUBLIC_BASE_URL,
      approvers: config.APPROVERS ?? [],
      displayTimeZone: config.DISPLAY_TIME_ZONE ?? 'UTC',
    };
  } catch (err) {
    return refuse(
      503,
      'APPROVAL.NOT_CONFIGURED',
      'Approvals are unavailable',
      'The server is not fully configured; nothing was decided. Tell the pipeline operators.',
      `configuration: ${messageOf(err)}`,
    );
  }
}

/**
 * The decision must come from the person the link was issued to (issue #15): the caller signed in with
 * Entra ID (App Service Authentication headers; the embedded host's local sign-in) as the link's
 * approver. A link alone is not an identity. A valid link used by someone else is recorded in the audit
 * trail (`approvals/decisions/<instance>/…-refused-identity.json`) and refused.
 */
export async function checkDecider(
  envs: ApprovalsEnv,
  link: LinkState,
  req: HttpRequest,
  context: InvocationContext,
): Promise<{ ok: true; caller: Caller; approver: Approver } | Refusal> {
  const approver = envs.approvers.find((a) => a.id === link.claims.approver);
  if (!approver)
    return refuse(
      403,
      'APPROVAL.NOT_AN_APPROVER',
      'This link no longer counts',
      `${link.claims.approver} is not on the approver list any more.`,
    );
  if (!approver.entra)
    return refuse(
      403,
      'APPROVAL.NO_WEB_IDENTITY',
      'Decide in Slack',
      `${approver.name} has no Entra ID configured (APPROVERS), so this page cannot tell that it is them: use the Approve/Reject buttons Slack sent them.`,
    );
  const caller = entraCaller(req.headers);
  if (!caller) {
    return refuse(
      401,
      'APPROVAL.SIGN_IN',
      'Sign in to decide',
      `Only ${approver.name} can decide with this link: sign in with your organisation's account (Entra ID) and open the link again.`,
    );
  }
  if (!isApprover(approver, caller)) {
    const attempt = {
      instanceId: link.claims.instanceId,
      nonce: link.claims.nonce,
      approver: approver.id,
      attemptedBy: caller.id,
      attemptedByName: caller.name,
      ip: clientIp(req),
      userAgent: (req.headers.get('user-agent') ?? '').slice(0, 300),
      at: new Date().toISOString(),
      why: 'identity-mismatch',
    };
    await envs.store
      .recordRefusal(attempt)
      .catch((err) =>
        context.error(`could not record a refused approval attempt: ${firstLine(messageOf(err))}`),
      );
    context.warn(
      `approval link of ${approver.id} for ${link.claims.instanceId} used by ${caller.id}: refused`,
    );
    return refuse(
      403,
      'APPROVAL.NOT_YOUR_LINK',
      'This link is not yours',
      `This link was issued to ${approver.name}; you are signed in as ${caller.name}. Nothing was decided, and the attempt was recorded.`,
    );
  }
  return { ok: true, caller, approver };
}

function firstLine(s: string): string {
  return s.split('\n')[0].slice(0, 300);
}

export function verifyLinkToken(
  token: string,
  keys: SigningKey[],
  nowMs: number,
): { claims: ApprovalClaims; keyId: string } | Refusal {
  const v = verifyApprovalToken(token, keys, nowMs);
  if (v.ok) {
    if (!NONCE_PATTERN.test(v.claims.nonce))
      return refuse(
        400,
        'APPROVAL.MALFORMED',
        'This link is not valid',
        'The link carries an unexpected nonce.',
      );
    return { claims: v.claims, keyId: v.keyId };
  }
  if (v.code === 'APPROVAL.EXPIRED')
    return refuse(410, v.code, 'This link has expired', `${cap(v.message)}. Ask for a new approval request.`);
  if (v.code === 'APPROVAL.TAMPERED')
    return refuse(
      403,
      v.code,
      'This link is not valid',
      `${cap(v.message)}. Use the link exactly as it was posted.`,
    );
  return refuse(400, v.code, 'This link is not valid', `${cap(v.message)}.`);
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const TERMINAL = new Set(['Completed', 'Failed', 'Terminated', 'Canceled']);

/** the deploy behind a link, with its input (an instance that does not exist is undefined) */
const statusOf = (client: DurableClient, id: string): Promise<DurableOrchestrationStatus | undefined> =>
  readInstance(client, id, { showInput: true });

/** Token → deploy → still waiting for this nonce. Used by GET (render) and POST (decide). */
export async function checkLink(
  client: DurableClient,
  envs: ApprovalsEnv,
  token: string,
  nowMs: number,
): Promise<LinkState | Refusal> {
  const v = verifyLinkToken(token, envs.keys, nowMs);
  if ('ok' in v) return v;
  const { claims } = v;
  let status: DurableOrchestrationStatus | undefined;
  try {
    status = await statusOf(client, claims.instanceId);
  } catch (err) {
    return refuse(
      503,
      'APPROVAL.UNAVAILABLE',
      'Try again in a moment',
      'The deployment store did not answer.',
      `deployment store: ${messageOf(err)}`,
    );
  }
  if (!status)
    return refuse(
      404,
      'APPROVAL.UNKNOWN_DEPLOY',
      'No such deploy',
      `There is no deploy ${claims.instanceId}: this link does not belong to a request on this server.`,
    );
  const tz = envs.displayTimeZone;
  const used = await envs.store.get(claims.nonce).catch(() => undefined);
  if (used) {
    const decided: DecidedView = {
      by: nameOf(envs, used.approver),
      action: used.action,
      at: used.decidedAt,
      thisLink: true,
    };
    return {
      ...refuse(
        409,
        'APPROVAL.USED',
        'This link was already used',
        `This link was already used: ${decidedSentence(decided, tz)}. Each link decides once.`,
      ),
      decided,
      deploy: { id: claims.instanceId, now: nowText(status) },
    };
  }
  if (TERMINAL.has(String(status.runtimeStatus))) {
    const decided = await whoDecided(envs, status, claims);
    return {
      ...refuse(
        410,
        'APPROVAL.ENDED',
        'This request has ended',
        `${decided ? `${cap(decidedSentence(decided, tz))}. ` : ''}Deploy ${claims.instanceId} has already ended (${nowText(status)}); nothing is waiting for this link.`,
      ),
      ...(decided ? { decided } : {}),
      deploy: { id: claims.instanceId, now: nowText(status) },
    };
  }
  const waiting = (
    status.customStatus && typeof status.customStatus === 'object' ? status.customStatus : {}
  ) as WaitingStatus;
  const pending = Array.isArray(waiting.pendingApprovals)
    ? waiting.pendingApprovals.find((p) => p && p.nonce === claims.nonce)
    : undefined;
  if (!pending) {
    const decided = await whoDecided(envs, status, claims);
    return {
      ...refuse(
        409,
        'APPROVAL.NOT_PENDING',
        'This link is no longer pending',
        decided
          ? `${cap(decidedSentence(decided, tz))}, so this link is no longer pending; deploy ${claims.instanceId} is now ${nowText(status)}.`
          : `Deploy ${claims.instanceId} is not waiting for this link (it is now ${nowText(status)}): it was replaced by a newer link, or the request moved on.`,
      ),
      ...(decided ? { decided } : {}),
      deploy: { id: claims.instanceId, now: nowText(status) },
    };
  }
  if (pending.approver !== claims.approver || pending.action !== claims.action) {
    return refuse(
      409,
      'APPROVAL.NOT_PENDING',
      'This link is no longer pending',
      `Deploy ${claims.instanceId} is waiting for a different decision than this link carries.`,
    );
  }
  return { ok: true, claims, keyId: v.keyId, status, waiting, pending };
}

/** An approver id → the name people know them by (APPROVERS), the id itself when not configured. */
export function nameOf(envs: Pick<ApprovalsEnv, 'approvers'>, id: string): string {
  return envs.approvers.find((a) => a.id === id)?.name ?? id;
}

const VERB: Record<DecisionAction, string> = {
  approve: 'approved',
  reject: 'rejected',
  rollback: 'started the rollback',
};

/** "Alice approved at 6 Dec 2026, 03:50 CET (Europe/Brussels)" */
export function decidedSentence(d: DecidedView, timeZone: string): string {
  return `${d.by} ${VERB[d.action]}${d.at ? ` at ${timeText(d.at, timeZone)}` : ''}`;
}

/** an absolute time in the display zone, the zone's name added when it is not UTC */
export function timeText(at: string, timeZone: string): string {
  const zone = isTimeZone(timeZone) ? timeZone : 'UTC';
  return `${formatAbsolute(at, zone)}${zone === 'UTC' ? '' : ` (${zone})`}`;
}

/** what the deploy does now, in words: its outcome once ended, else its step */
function nowText(status: DurableOrchestrationStatus): string {
  const out = (status.output && typeof status.output === 'object' ? status.output : {}) as Record<
    string,
    unknown
  >;
  const s = (status.customStatus && typeof status.customStatus === 'object' ? status.customStatus : {}) as {
    step?: unknown;
    outcome?: unknown;
  };
  if (TERMINAL.has(String(status.runtimeStatus))) {
    const outcome =
      typeof out.outcome === 'string' ? out.outcome : typeof s.outcome === 'string' ? s.outcome : undefined;
    return outcome ? outcomeWords(outcome) : outcomeWords(String(status.runtimeStatus));
  }
  return typeof s.step === 'string' ? stepText(s.step) : 'running';
}

/**
 * Who decided the request a link belonged to: the decisions the orchestration accepted (recorded in the
 * ledger container), else what its status and output say. Only decisions of the link's kind count (an
 * approval link is answered by an approve/reject, a rollback link by a rollback).
 */
async function whoDecided(
  envs: ApprovalsEnv,
  status: DurableOrchestrationStatus,
  claims: ApprovalClaims,
): Promise<DecidedView | undefined> {
  const fits = (a: unknown) =>
    claims.action === 'rollback' ? a === 'rollback' : a === 'approve' || a === 'reject';
  const pick = (
    list: Array<{ approver?: unknown; action?: unknown; decidedAt?: unknown; receivedAt?: unknown }>,
  ) => {
    const mine = list.filter((d) => typeof d.approver === 'string' && fits(d.action));
    // a reject or a rollback settles it; for approvals the last one counted is the one that completed it
    const d = mine.find((x) => x.action !== 'approve') ?? mine[mine.length - 1];
    if (!d) return undefined;
    const at =
      typeof d.decidedAt === 'string'
        ? d.decidedAt
        : typeof d.receivedAt === 'string'
          ? d.receivedAt
          : undefined;
    return {
      by: nameOf(envs, d.approver as string),
      action: d.action as DecisionAction,
      ...(at ? { at } : {}),
      thisLink: d.approver === claims.approver,
    } satisfies DecidedView;
  };
  const recorded = await envs.store.acceptedDecisions(claims.instanceId).catch(() => []);
  const fromLedger = pick(recorded);
  if (fromLedger) return fromLedger;
  const out = (status.output && typeof status.output === 'object' ? status.output : {}) as {
    decisions?: unknown;
  };
  if (Array.isArray(out.decisions)) {
    const accepted = (out.decisions as Array<Record<string, unknown>>).filter(
      (d) => d && (d.verdict === 'accepted' || d.accepted === true),
    );
    const fromOutput = pick(accepted);
    if (fromOutput) return fromOutput;
  }
  if (claims.action !== 'rollback') {
    const w = (status.customStatus ?? {}) as WaitingStatus;
    const received = (w.approvals?.received ?? []).map((r) => ({
      approver: r?.approver,
      action: 'approve',
      decidedAt: r?.at,
    }));
    return pick(received);
  }
  return undefined;
}

/**
 * Claim the nonce once, then deliver the decision. A replay loses the claim (409). When delivery fails
 * for a server-side reason, the claim is released so the same link can be used again.
 */
export async function deliverDecision(
  client: DurableClient,
  envs: ApprovalsEnv,
  link: LinkState,
  decision: ApprovalDecision,
  opts: { waitForOutcome?: boolean } = {},
): Promise<Refusal | { ok: true; after?: DurableOrchestrationStatus }> {
  const record: UsedLinkRecord = { ...decision, instanceId: link.claims.instanceId, keyId: link.keyId };
  let claimed: boolean;
  try {
    claimed = await envs.store.claim(record);
  } catch (err) {
    return refuse(
      503,
      'APPROVAL.UNAVAILABLE',
      'Try again in a moment',
      'The decision could not be recorded; nothing was decided.',
      `recording the decision: ${messageOf(err)}`,
    );
  }
  if (!claimed)
    return refuse(
      409,
      'APPROVAL.USED',
      'This link was already used',
      'This link has already been used to decide. Each link decides once.',
    );
  try {
    await client.raiseEvent(link.claims.instanceId, DECISION_EVENT, decision);
  } catch (err) {
    await envs.store.release(decision.nonce).catch(() => undefined);
    return refuse(
      503,
      'APPROVAL.UNAVAILABLE',
      'Try again in a moment',
      'The decision could not be delivered; nothing was decided and the link still works.',
      `delivering the decision: ${messageOf(err)}`,
    );
  }
  if (opts.waitForOutcome === false) return { ok: true };
  // Let the orchestration take it (usually milliseconds) so the answer can say what happened.
  let after: DurableOrchestrationStatus | undefined;
  for (let i = 0; i < 10; i++) {
    after = await statusOf(client, link.claims.instanceId).catch(() => undefined);
    const pend = (after?.customStatus as WaitingStatus | undefined)?.pendingApprovals;
    if (
      !after ||
      TERMINAL.has(String(after.runtimeStatus)) ||
      !Array.isArray(pend) ||
      !pend.some((p) => p?.nonce === decision.nonce)
    )
      break;
    await new Promise((r) => setTimeout(r, 300));
  }
  return { ok: true, after };
}

/** What a decision did, in words, from the status seen right after it was delivered. */
export function outcomeText(
  decision: ApprovalDecision,
  link: LinkState,
  after: DurableOrchestrationStatus | undefined,
): string {
  const id = link.claims.instanceId;
  if (!after) return `Your decision was sent to deploy ${id}.`;
  const s = (after.customStatus ?? {}) as WaitingStatus;
  const received = s.approvals?.received ?? [];
  const stillPending = (s.pendingApprovals ?? []).some((p) => p?.nonce === decision.nonce);
  if (stillPending)
    return `Your decision was sent to deploy ${id}; it has not been processed yet. Follow it in Slack or on the status page.`;
  if (decision.action === 'approve') {
    if (
      received.some((r) => r?.approver === decision.approver) ||
      (typeof s.step === 'string' && !s.step.startsWith('awaiting'))
    )
      return `Approval recorded for deploy ${id}${s.approvals?.required ? ` (${received.length} of ${s.approvals.required} approvals)` : ''}. Now: ${nowText(after)}.`;
    return `Deploy ${id} received your approval but did not count it (the approver list or the four-eyes rule may exclude you). Now: ${nowText(after)}.`;
  }
  if (decision.action === 'reject')
    return `Rejected: deploy ${id} will not ${odooShTarget(s) ? `move the Odoo.sh branch ${odooShTarget(s)!.branch}` : 'go to PROD'}.`;
  return `Rollback requested for deploy ${id}. Now: ${nowText(after)}.`;
}

// ------------------------------------------------------------------------------------------------
// CSRF

function csrfMac(key: SigningKey, token: string, pageNonce: string): Buffer {
  return createHmac('sha256', key.secret)
    .update('odoo-mta/approval-csrf/v1.')
    .update(token)
    .update('.')
    .update(pageNonce)
    .digest();
}
export function issueCsrf(key: SigningKey, token: string): { csrf_nonce: string; csrf: string } {
  const pageNonce = randomBytes(16).toString('base64url');
  return { csrf_nonce: pageNonce, csrf: csrfMac(key, token, pageNonce).toString('base64url') };
}
export function checkCsrf(keys: SigningKey[], token: string, form: URLSearchParams): Refusal | undefined {
  const pageNonce = form.get('csrf_nonce');
  const csrf = form.get('csrf');
  if (!pageNonce || !csrf)
    return refuse(
      403,
      'APPROVAL.CSRF_MISSING',
      'Open the link and use its page',
      "The form's security token is missing: decisions are taken only through the page this link opens.",
    );
  const given = Buffer.from(csrf, 'base64url');
  if (
    !PAGE_NONCE.test(pageNonce) ||
    given.length !== 32 ||
    given.toString('base64url') !== csrf ||
    !keys.some((k) => timingSafeEqual(csrfMac(k, token, pageNonce), given))
  ) {
    return refuse(
      403,
      'APPROVAL.CSRF_INVALID',
      'Open the link again',
      "The form's security token does not match this link: reload the page from the link and try again.",
    );
  }
  return undefined;
}

/** Refuse a POST that a browser says came from another site. */
export function crossOriginProblem(req: HttpRequest, publicBaseUrl: string): Refusal | undefined {
  const allowed = new Set<string>();
  for (const u of [publicBaseUrl, req.url]) {
    try {
      allowed.add(new URL(u).origin);
    } catch {
      /* not a URL: ignore */
    }
  }
  const refused = (from: string) =>
    refuse(
      403,
      'APPROVAL.CROSS_ORIGIN',
      'Refused: sent from another site',
      `This decision was submitted from ${from}, not from the approval page. Open the link and decide there.`,
    );
  const site = req.headers.get('sec-fetch-site');
  if (site && site !== 'same-origin') return refused(`a ${site} page`);
  const origin = req.headers.get('origin');
  if (origin && origin !== 'null') return allowed.has(origin) ? undefined : refused(origin);
  const referer = req.headers.get('referer');
  if (referer) {
    let refOrigin: string;
    try {
      refOrigin = new URL(referer).origin;
    } catch {
      return refused('an unreadable referrer');
    }
    if (!allowed.has(refOrigin)) return refused(refOrigin);
  }
  return undefined;
}

// ------------------------------------------------------------------------------------------------
// Pages

const esc = (v: unknown): string =>
  String(v ?? '').replace(
    /[&<>"'`]/g,
    (c) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' })[c] as string,
  );

const CSS = `
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#f6f7f9;--card:#fff;--mut:#57606a;--bd:#d0d7de;--ok:#1a7f37;--no:#cf222e;--warn:#9a6700;--link:#0550ae}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--card:#161b22;--mut:#9198a1;--bd:#30363d;--link:#79c0ff}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:40rem;margin:0 auto;padding:1rem}.card{background:var(--card);border:1px solid var(--bd);border-radius:12px;padding:1rem 1.25rem;margin:1rem 0}
h1{font-size:1.35rem;margin:.25rem 0 .5rem}h2{font-size:1.05rem;margin:0 0 .5rem}.env{display:inline-block;padding:.1rem .5rem;border-radius:999px;background:var(--no);color:#fff;font-size:.8rem;font-weight:600;letter-spacing:.04em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem .9rem;margin:0}dt{color:var(--mut)}dd{margin:0;overflow-wrap:anywhere}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}pre{white-space:pre-wrap;margin:0}
label.check{display:flex;gap:.6rem;align-items:flex-start;padding:.55rem 0;font-size:1.05rem}label.check input{width:1.4rem;height:1.4rem;margin:.1rem 0 0;flex:none}
textarea,input[type=text]{width:100%;font:inherit;padding:.6rem;border:1px solid var(--bd);border-radius:8px;background:var(--bg);color:var(--fg)}
input[type=text]{font-size:1.1rem;letter-spacing:.08em;text-transform:none}
.buttons{display:flex;gap:.75rem;flex-wrap:wrap;margin-top:1rem}button{flex:1 1 10rem;font:inherit;font-weight:600;padding:.85rem 1rem;border-radius:10px;border:0;color:#fff;cursor:pointer;min-height:3rem}
button.approve{background:var(--ok)}button.reject{background:var(--no)}button.rollback{background:var(--warn)}button[disabled]{opacity:.45;cursor:not-allowed}
.warnings{list-style:none;margin:.5rem 0;padding:0}.warnings li{border:2px solid var(--no);border-radius:12px;padding:.6rem .9rem;margin:.5rem 0;background:var(--card)}
.summary{padding:.75rem 1rem;margin:.6rem 0}.summary dl{gap:.25rem .75rem}.decide{padding:.75rem 1rem;margin:.6rem 0}.envline{margin:0}
@media (max-width:34rem){main{padding:.6rem .75rem}.summary,.decide{padding:.6rem .8rem}.summary dl{display:block}.summary dt{display:inline;font-weight:600;color:var(--fg)}.summary dd{display:inline}.summary dd::after{content:"";display:block;margin-bottom:.25rem}
.warnings li{padding:.45rem .7rem;margin:.4rem 0}.buttons{margin-top:.6rem}h1{font-size:1.25rem}}
fieldset.checks{border:0;margin:0 0 .5rem;padding:0}fieldset.checks legend{font-weight:600;margin-bottom:.1rem}
.checks label.check{padding:.3rem 0;font-size:1rem}.confirm-label{display:block;margin:.25rem 0}
a{color:var(--link)}a.button{flex:1 1 10rem;display:inline-flex;align-items:center;justify-content:center;font-weight:600;padding:.85rem 1rem;border-radius:10px;min-height:3rem;border:1px solid var(--bd);color:var(--fg);text-decoration:none}
details summary{cursor:pointer;min-height:1.5rem}details.comment{margin-top:.75rem}details.comment textarea{margin-top:.5rem}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.errors{border-color:var(--no)}fieldset.card{border:1px solid var(--bd)}legend{float:left;width:100%;padding:0}label.check{clear:both}.spaced{margin-top:1rem}.errors li{color:var(--no)}.muted{color:var(--mut);font-size:.9rem}.status{font-size:2.2rem;font-weight:700;color:var(--mut)}
`;

interface PageOpts {
  status: number;
  title: string;
  body: string;
  script?: string;
}

function page({ status, title, body, script }: PageOpts): HttpResponseInit {
  const nonce = randomBytes(16).toString('base64');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex,nofollow">
<title>${esc(title)}</title>
<style nonce="${nonce}">${CSS}</style>
</head><body><main>
${body}
</main>${script ? `<script nonce="${nonce}">${script}</script>` : ''}</body></html>`;
  return {
    status,
    body: html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      pragma: 'no-cache',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      'x-robots-tag': 'noindex, nofollow',
      'cross-origin-opener-policy': 'same-origin',
      'content-security-policy': `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; img-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    },
  };
}

function wantsJson(req: HttpRequest): boolean {
  const accept = req.headers.get('accept') ?? '';
  return /application\/json/i.test(accept) && !/text\/html/i.test(accept);
}

function refusalResponse(req: HttpRequest, r: Refusal): HttpResponseInit {
  if (wantsJson(req))
    return {
      status: r.status,
      jsonBody: { ok: false, error: r.code, title: r.title, message: r.message },
      headers: { 'cache-control': 'no-store' },
    };
  if (r.decided) {
    const d = r.decided;
    const title = d.thisLink ? r.title : `${d.by} ${VERB[d.action]}`;
    return page({
      status: r.status,
      title,
      body: `<div class="card" role="status" data-decided="${esc(d.action)}"><h1>${esc(title)}</h1><p id="decided">${esc(r.message)}</p>${
        d.thisLink ? '' : '<p>Your link is no longer needed: nothing was decided with it.</p>'
      }${r.deploy ? statusLinks(r.deploy.id) : ''}<p class="muted">Reason code: <code>${esc(r.code)}</code></p></div>`,
    });
  }
  return page({
    status: r.status,
    title: r.title,
    body: `<div class="card"><h1>${esc(r.title)}</h1><p>${esc(r.message)}</p>${r.deploy ? statusLinks(r.deploy.id) : ''}<p class="muted">Nothing was decided. Reason code: <code>${esc(r.code)}</code> (HTTP ${r.status})</p></div>`,
  });
}

function asText(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** An Odoo.sh production branch move (deployOdooSh's status) rather than a PROD VM deploy. */
function odooShTarget(s: WaitingStatus): { branch: string; stage: string; repository?: string } | undefined {
  if (s.kind !== 'deployOdooSh' || typeof s.branch !== 'string') return undefined;
  return {
    branch: s.branch,
    stage: typeof s.stage === 'string' ? s.stage : 'production',
    repository: typeof s.repository === 'string' ? s.repository : undefined,
  };
}

const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

function inputOf(link: LinkState): Record<string, unknown> {
  return obj(link.status.input);
}

/** The link's request as people read it: a title, warnings first, a short summary, the rest folded. */
interface RequestView {
  title: string;
  /** what changes: "Approve PROD deploy of …" words for the after-decision page */
  what: string;
  version: string;
  /** what PROD runs now / returns to on a rollback */
  prodVersion?: string;
  requester: string;
  warnings: string[];
  summary: Array<[string, string]>;
  details: Array<[string, string | undefined]>;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "alice, bob and carol" */
function listText(names: string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

function requestView(link: LinkState, envs: ApprovalsEnv, nowMs: number): RequestView {
  const s = link.waiting;
  const input = inputOf(link);
  const tz = envs.displayTimeZone;
  const rollback = link.claims.action === 'rollback';
  const t = odooShTarget(s);
  const version = asText(s.version ?? input.version) ?? '?';
  const range = obj(s.commitRange ?? input.commitRange);
  const uat = obj(s.uat ?? s.uatResult ?? input.uat);
  const prodVersion = asText(s.previousVersion) ?? asText(range.fromVersion);
  const requester = asText(s.requestedBy ?? input.requestedByName ?? input.requestedBy) ?? 'someone';
  const reason = asText(s.reason ?? input.reason);
  const when = (at: string) => `${timeText(at, tz)}, ${formatRelative(at, new Date(nowMs))}`;

  const title = rollback
    ? `Roll back PROD from ${version}${prodVersion ? ` to ${prodVersion}` : ''}?`
    : t
      ? `Approve Odoo.sh ${t.stage} move of ${version}?`
      : `Approve PROD deploy of ${version}?`;
  const what = t ? `the Odoo.sh ${t.stage} move of ${version}` : `the PROD deploy of ${version}`;

  const warnings: string[] = [];
  if (rollback) {
    const state = asText(s.prodState);
    if (state === 'stopped')
      warnings.push(
        '<strong>PROD is down.</strong> Odoo is stopped since the failed deploy; nobody can use it until it is rolled back.',
      );
    else if (state === 'unknown')
      warnings.push(
        '<strong>PROD may be down.</strong> Starting the new version failed, so whether Odoo runs is unknown.',
      );
    else if (state === 'running-new-unhealthy')
      warnings.push(
        `<strong>PROD is not healthy.</strong> It runs ${esc(version)}, which fails its health checks.`,
      );
    warnings.push(
      `Rolling back returns PROD to <strong data-returns-to>${esc(prodVersion ?? 'the version it ran before')}</strong>: database and files are restored from the backup taken before this deploy (later changes on PROD are lost).`,
    );
  } else if (prodVersion && prodVersion === version) {
    warnings.push(
      `<strong>PROD already runs ${esc(version)}.</strong> Approving re-deploys the same version: Odoo stops for a backup and module update, and nothing new reaches PROD.`,
    );
  }

  const summary: Array<[string, string]> = [];
  if (rollback) {
    const f = summarizeFailure(asText(s.failure ?? s.error));
    const failedStep = asText(s.failedStep);
    summary.push([
      'What failed',
      `${f ? esc(f.summary) : 'the deploy failed'}${failedStep ? ` <span class="muted">(while ${esc(stepText(failedStep))})</span>` : ''}`,
    ]);
  } else {
    const count = typeof range.count === 'number' && Number.isFinite(range.count) ? range.count : undefined;
    const compare = asText(range.compareUrl);
    const commits =
      compare && /^https:\/\//.test(compare)
        ? `<a href="${esc(compare)}" rel="noreferrer noopener" target="_blank" data-compare>${count !== undefined ? plural(count, 'commit') : 'see the commits'}</a>`
        : count !== undefined
          ? plural(count, 'commit')
          : undefined;
    const from = prodVersion ? esc(prodVersion) : 'nothing yet (first deploy)';
    summary.push([
      'Changes',
      `${t ? `branch <code>${esc(t.branch)}</code>: ` : 'PROD '}${from} → <strong>${esc(version)}</strong>${commits ? `, ${commits}` : ''}`,
    ]);
    const cov = typeof uat.coverage === 'number' ? uat.coverage : undefined;
    if (cov !== undefined) summary.push(['Tests', `cover ${esc(Math.round(cov * 10) / 10)} % of the code`]);
    const deployedAt = asText(uat.deployedAt);
    const uatOutcome = asText(uat.outcome);
    if (deployedAt || uatOutcome)
      summary.push([
        'On UAT',
        `${uatOutcome && uatOutcome !== 'Succeeded' ? esc(outcomeWords(uatOutcome)) : 'deployed, healthy'}${deployedAt ? ` since ${esc(when(deployedAt))}` : ''}`,
      ]);
    summary.push(['Asked by', `${esc(requester)}${reason ? `: “${esc(reason)}”` : ''}`]);
  }
  const required = s.approvals?.required ?? 1;
  const people = (s.pendingApprovals ?? []).map((p) => nameOf(envs, String(p?.approver ?? '')));
  // approvals counted so far (a rollback link is a new decision: the approvals before it do not apply)
  const received = rollback
    ? []
    : (s.approvals?.received ?? []).map((r) => nameOf(envs, String(r?.approver ?? '')));
  summary.push([
    'Decision',
    `${rollback ? 'one of' : `needs ${required} of`} ${esc(listText(people))}${received.length ? ` (approved so far: ${esc(listText(received))})` : ''}; until ${esc(formatAbsolute(new Date(link.claims.exp).toISOString(), isTimeZone(tz) ? tz : 'UTC'))}`,
  ]);

  const details: Array<[string, string | undefined]> = [
    ['Deploy id', `<code>${esc(link.claims.instanceId)}</code>`],
    ['Environment', esc(asText(s.environment) ?? asText(input.environment) ?? 'prod')],
    ['Asked by', rollback ? `${esc(requester)}${reason ? `: “${esc(reason)}”` : ''}` : undefined],
    [
      'Odoo.sh branch',
      t &&
        `<code>${esc(t.branch)}</code> (${esc(t.stage)})${t.repository ? ` of ${esc(t.repository)}` : ''}; Odoo.sh rebuilds it as soon as it moves`,
    ],
    ['Commit', asText(input.sha) && `<code>${esc(String(input.sha).slice(0, 12))}</code>`],
    [
      'Compared with',
      asText(range.from) &&
        `<code>${esc(String(range.from).slice(0, 12))}</code>${prodVersion ? ` (${esc(prodVersion)})` : ''}`,
    ],
    ['Compare view', asText(range.compareUrl) && esc(asText(range.compareUrl))],
    [
      'Image',
      asText(s.imageRef ?? input.imageRef) && `<code>${esc(asText(s.imageRef ?? input.imageRef))}</code>`,
    ],
    ['Image digest', asText(uat.imageDigest) && `<code>${esc(asText(uat.imageDigest))}</code>`],
    ['UAT deploy', asText(uat.instanceId) && `<code>${esc(asText(uat.instanceId))}</code>`],
    ['Backup', asText(s.backupId) && `<code>${esc(asText(s.backupId))}</code>`],
    [
      'Failure',
      rollback && asText(s.failure ?? s.error)
        ? `<pre>${esc(summarizeFailure(asText(s.failure ?? s.error))?.detail ?? summarizeFailure(asText(s.failure ?? s.error))?.summary)}</pre>`
        : undefined,
    ],
    ['This link is for', esc(nameOf(envs, link.claims.approver))],
  ];
  return { title, what, version, prodVersion, requester, warnings, summary, details };
}

function dl(rows: Array<[string, string | undefined]>): string {
  return `<dl>${rows
    .filter((r): r is [string, string] => !!r[1])
    .map(([k, v]) => `<dt>${esc(k)}</dt> <dd>${v}</dd>`)
    .join('')}</dl>`;
}

function head(view: RequestView): string {
  return `<p class="envline"><span class="env">PRODUCTION</span></p>
<h1>${esc(view.title)}</h1>
${view.warnings.length ? `<ul class="warnings" data-warnings aria-label="Read first">${view.warnings.map((w) => `<li>${w}</li>`).join('')}</ul>` : ''}
<section class="card summary" data-summary aria-label="Summary">${dl(view.summary)}</section>`;
}

interface FormState {
  errors?: string[];
  comment?: string;
  checked?: Set<string>;
}

function confirmWord(action: ApprovalAction): 'APPROVE' | 'ROLLBACK' {
  return action === 'rollback' ? 'ROLLBACK' : 'APPROVE';
}

const csrfFields = (csrf: { csrf_nonce: string; csrf: string }) =>
  `<input type="hidden" name="csrf_nonce" value="${esc(csrf.csrf_nonce)}">
<input type="hidden" name="csrf" value="${esc(csrf.csrf)}">`;

/**
 * The decision page. Order for a phone (390×844): the title, warnings, the summary card, then the
 * decision (checklist, the typed word, the buttons) — all on the first screen; the comment and the
 * internal fields are folded below the buttons.
 */
function formPage(
  link: LinkState,
  envs: ApprovalsEnv,
  csrf: { csrf_nonce: string; csrf: string },
  state: FormState = {},
  status = 200,
): HttpResponseInit {
  const { action } = link.claims;
  const word = confirmWord(action);
  const view = requestView(link, envs, Date.now());
  const errors = state.errors?.length
    ? `<div class="card errors" role="alert"><h2>Not decided yet</h2><ul>${state.errors.map((e) => `<li>${esc(e)}</li>`).join('')}</ul></div>`
    : '';
  const checklist =
    action === 'approval'
      ? `<fieldset class="checks"><legend>Before you approve (all required)</legend>${CHECKLIST.map(
          (c) =>
            `<label class="check"><input type="checkbox" name="${c.name}" value="yes" required${state.checked?.has(c.name) ? ' checked' : ''}> ${esc(c.label)}</label>`,
        ).join('')}</fieldset>`
      : '';
  const buttons =
    action === 'approval'
      ? `<button class="approve" type="submit" name="decision" value="approve" id="approve">Approve</button><button class="reject" type="submit" name="decision" value="reject" id="reject" formnovalidate aria-describedby="reject-help">Reject…</button>`
      : `<button class="rollback" type="submit" name="decision" value="rollback" id="rollback">Roll back PROD</button>`;
  const body = `
${head(view)}
${errors}
<form method="post" action="" id="decide" class="card decide" autocomplete="off">
${csrfFields(csrf)}
${checklist}
<label for="confirm" class="confirm-label">Type ${word} to ${action === 'rollback' ? 'roll back' : 'approve'}</label>
<input type="text" id="confirm" name="confirm" required pattern="\\s*${word}\\s*" autocapitalize="characters" spellcheck="false" inputmode="text" placeholder="${word}">
<div class="buttons">${buttons}</div>
${action === 'approval' ? '<p id="reject-help" class="muted">Reject asks you to confirm; it needs neither the checklist nor the word.</p>' : ''}
<details class="comment"${state.comment ? ' open' : ''}><summary>Add a comment (optional)</summary>
<label for="comment" class="visually-hidden">Comment</label>
<textarea id="comment" name="comment" rows="3" maxlength="${MAX_COMMENT}" placeholder="Recorded with your decision">${esc(state.comment ?? '')}</textarea>
</details>
</form>
<details class="card more"><summary>Details</summary>${dl(view.details)}</details>
<p class="muted">Opening this page decides nothing; only the buttons do. Each link can decide once.</p>`;
  const script = `(function(){var f=document.getElementById('decide'),b=document.getElementById('${action === 'rollback' ? 'rollback' : 'approve'}'),c=document.getElementById('confirm');
function ready(){if(c.value.trim()!=='${word}')return false;var k=f.querySelectorAll('input[type=checkbox]');for(var i=0;i<k.length;i++)if(!k[i].checked)return false;return true}
function upd(){b.disabled=!ready()}f.addEventListener('input',upd);f.addEventListener('change',upd);upd();
f.addEventListener('submit',function(){setTimeout(function(){var x=f.querySelectorAll('button');for(var i=0;i<x.length;i++)x[i].disabled=true},0)})})();`;
  return page({ status, title: view.title, body, script });
}

/**
 * Reject's second step (works without JavaScript): the first press of Reject shows this page, which
 * says what a rejection does and asks again; only its "Yes, reject" (`reject_confirmed=yes`) decides.
 */
function rejectConfirmPage(
  link: LinkState,
  envs: ApprovalsEnv,
  csrf: { csrf_nonce: string; csrf: string },
  comment: string,
): HttpResponseInit {
  const view = requestView(link, envs, Date.now());
  const title = `Reject ${view.what}?`;
  const body = `<p><span class="env">PRODUCTION</span></p>
<h1>${esc(cap(title))}</h1>
<form method="post" action="" class="card decide" id="reject-form" data-reject-confirm autocomplete="off">
<p>Nothing is deployed: ${esc(view.requester)} and the deployments channel are told that you rejected it, with your comment. Deploying ${esc(view.version)} later needs a new request.</p>
${csrfFields(csrf)}
<input type="hidden" name="decision" value="reject">
<input type="hidden" name="reject_confirmed" value="yes">
<label for="comment" class="confirm-label">Why (optional, shown with your decision)</label>
<textarea id="comment" name="comment" rows="3" maxlength="${MAX_COMMENT}">${esc(comment)}</textarea>
<div class="buttons"><button class="reject" type="submit" id="reject-confirm">Yes, reject</button><a class="button secondary" href="" id="reject-back">No, go back</a></div>
</form>`;
  return page({ status: 200, title: cap(title), body });
}

function donePage(
  req: HttpRequest,
  envs: ApprovalsEnv,
  link: LinkState,
  decision: ApprovalDecision,
  text: string,
  after: DurableOrchestrationStatus | undefined,
): HttpResponseInit {
  const next = nextText(envs, link, decision, after);
  if (wantsJson(req))
    return {
      status: 200,
      jsonBody: {
        ok: true,
        decision: { ...decision, ip: undefined, userAgent: undefined },
        message: text,
        next,
      },
      headers: { 'cache-control': 'no-store' },
    };
  const title =
    decision.action === 'approve'
      ? 'Approved'
      : decision.action === 'reject'
        ? 'Rejected'
        : 'Rollback requested';
  return page({
    status: 200,
    title,
    body: `<p><span class="env">PRODUCTION</span></p>
<div class="card" role="status"><h1>${esc(title)}</h1><p id="outcome">${esc(text)}</p>
<h2 class="spaced">What happens next</h2><p id="next">${esc(next)}</p>
<dl><dt>By</dt><dd>${esc(nameOf(envs, decision.approver))}</dd><dt>At</dt><dd data-decided-at>${esc(timeText(decision.decidedAt, envs.displayTimeZone))}</dd>${
      decision.comment ? `<dt>Comment</dt><dd>${esc(decision.comment)}</dd>` : ''
    }</dl>
${statusLinks(link.claims.instanceId)}
<p class="muted">This link is now used; opening it again shows who decided and when.</p></div>`,
  });
}

/** where to follow a deploy: the status page (it asks for its read-only link when opened without) and the CLI */
function statusLinks(instanceId: string): string {
  return `<p><a href="/api/dashboard" id="status-link">Follow it on the status page</a> (your bookmarked status link), or run <code>odoo-pipeline status</code> / <code>odoo-pipeline logs ${esc(instanceId)}</code>.</p>`;
}

/** What happens after this decision, in words. */
function nextText(
  envs: ApprovalsEnv,
  link: LinkState,
  decision: ApprovalDecision,
  after: DurableOrchestrationStatus | undefined,
): string {
  const view = requestView(link, envs, Date.now());
  const s = (after?.customStatus ?? link.waiting) as WaitingStatus;
  const t = odooShTarget(link.waiting);
  if (decision.action === 'reject')
    return t
      ? `The Odoo.sh branch ${t.branch} stays where it is. ${view.requester} and the deployments channel are told.`
      : `Nothing changes on PROD. ${view.requester} and the deployments channel are told; deploying ${view.version} later needs a new request.`;
  if (decision.action === 'rollback')
    return `PROD goes back to ${view.prodVersion ?? 'the version it ran before'}: the database and files are restored from the backup taken before the deploy, then that version is started and checked. The deployments channel is told when PROD is back.`;
  const stillWaiting =
    typeof s.step === 'string' &&
    s.step.startsWith('awaiting') &&
    after &&
    !TERMINAL.has(String(after.runtimeStatus));
  if (stillWaiting) {
    const required = s.approvals?.required ?? 1;
    const got = (s.approvals?.received ?? []).length;
    const left = (s.pendingApprovals ?? []).map((p) => nameOf(envs, String(p?.approver ?? '')));
    return `It still needs ${plural(Math.max(required - got, 1), 'more approval')}${left.length ? ` from ${listText(left)}` : ''}. The deploy starts as soon as ${required - got > 1 ? 'they approve' : 'one of them approves'}; if nobody does before ${timeText(new Date(link.claims.exp).toISOString(), envs.displayTimeZone)}, the request expires and nothing changes.`;
  }
  if (t)
    return `The Odoo.sh branch ${t.branch} moves to ${view.version} now, and Odoo.sh rebuilds ${t.stage}. The deployments channel is told when it is done.`;
  return `The deploy of ${view.version} to PROD starts now: PROD is backed up, Odoo stops for the module update, then ${view.version} is started and checked. The deployments channel is told when it ends.`;
}

// ------------------------------------------------------------------------------------------------
// Handlers

/**
 * The client address for the decision record: the X-Forwarded-For chain as the platform passed it
 * (App Service's front end appends the address it saw, with a port for IPv4), ports removed. The
 * rightmost entry is the one the platform saw; entries left of it are what the client claimed.
 */
export function clientIp(req: HttpRequest): string {
  const fwd = req.headers.get('x-forwarded-for') ?? req.headers.get('x-client-ip');
  if (!fwd) return 'unknown';
  return fwd
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .map(
      (e) => /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(e)?.[1] ?? /^\[([0-9a-fA-F:.]+)\]:\d+$/.exec(e)?.[1] ?? e,
    )
    .join(', ')
    .slice(0, 100);
}

/** What a link holder may see of the deploy: no other link's nonce, no decision records. */
export function linkView(w: WaitingStatus): Record<string, unknown> {
  const { pendingApprovals, decisions, ...rest } = w as WaitingStatus & { decisions?: unknown };
  void decisions;
  return {
    ...rest,
    pendingApprovals: Array.isArray(pendingApprovals)
      ? pendingApprovals.map((p) => ({ approver: p?.approver, action: p?.action, expiresAt: p?.expiresAt }))
      : undefined,
  };
}

export async function showApproval(req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const token = req.params.token ?? '';
  const envs = approvalsEnv();
  if ('ok' in envs) {
    logRefusalDetail(context, envs);
    return refusalResponse(req, envs);
  }
  const link = await checkLink(df.getClient(context), envs, token, Date.now());
  if (!link.ok) {
    logRefusalDetail(context, link);
    context.log(`approval link refused on ${req.method}: ${link.code}`);
    return refusalResponse(req, link);
  }
  const csrf = issueCsrf(envs.keys[0], token);
  if (wantsJson(req)) {
    return {
      status: 200,
      jsonBody: {
        ok: true,
        instanceId: link.claims.instanceId,
        approver: link.claims.approver,
        action: link.claims.action,
        expiresAt: new Date(link.claims.exp).toISOString(),
        status: linkView(link.waiting),
        signedInAs: entraCaller(req.headers)?.name ?? null,
        form: {
          ...csrf,
          confirmWord: confirmWord(link.claims.action),
          checklist: CHECKLIST.map((c) => c.name),
          /** Reject decides only with this field set to `yes` (the page's second step) */
          rejectConfirmField: 'reject_confirmed',
        },
      },
      headers: { 'cache-control': 'no-store' },
    };
  }
  return formPage(link, envs, csrf);
}

export async function decideApproval(
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const token = req.params.token ?? '';
  const contentType = (req.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (contentType !== 'application/x-www-form-urlencoded') {
    return refusalResponse(
      req,
      refuse(
        415,
        'APPROVAL.BAD_FORM',
        'Use the approval page',
        "A decision is sent as the approval page's form (application/x-www-form-urlencoded).",
      ),
    );
  }
  let text: string;
  try {
    const buf = Buffer.from(await req.arrayBuffer());
    if (buf.length > MAX_BODY)
      return refusalResponse(
        req,
        refuse(413, 'APPROVAL.TOO_LARGE', 'Too much data', `The form is limited to ${MAX_BODY / 1024} KiB.`),
      );
    text = buf.toString('utf8');
  } catch {
    return refusalResponse(
      req,
      refuse(400, 'APPROVAL.BAD_FORM', 'The form could not be read', 'The request body could not be read.'),
    );
  }
  const form = new URLSearchParams(text);
  const envs = approvalsEnv();
  if ('ok' in envs) {
    logRefusalDetail(context, envs);
    return refusalResponse(req, envs);
  }

  // token first: a broken link is reported as such, whatever else is wrong
  const v = verifyLinkToken(token, envs.keys, Date.now());
  if ('ok' in v) return refusalResponse(req, v);
  const cross = crossOriginProblem(req, envs.publicBaseUrl);
  if (cross) return refusalResponse(req, cross);
  const csrfProblem = checkCsrf(envs.keys, token, form);
  if (csrfProblem) return refusalResponse(req, csrfProblem);

  const client = df.getClient(context);
  const link = await checkLink(client, envs, token, Date.now());
  if (!link.ok) {
    logRefusalDetail(context, link);
    return refusalResponse(req, link);
  }

  const who = await checkDecider(envs, link, req, context);
  if (!who.ok) return refusalResponse(req, who);

  const action = link.claims.action;
  const requested = form.get('decision');
  const allowed: DecisionAction[] = action === 'approval' ? ['approve', 'reject'] : ['rollback'];
  if (!requested || !allowed.includes(requested as DecisionAction)) {
    return refusalResponse(
      req,
      refuse(400, 'APPROVAL.BAD_DECISION', 'Unknown decision', `This link can only ${allowed.join(' or ')}.`),
    );
  }
  const decisionAction = requested as DecisionAction;
  const comment = (form.get('comment') ?? '').trim();
  const checked = new Set(
    CHECKLIST.filter((c) => form.get(c.name) !== null && form.get(c.name) !== '').map((c) => c.name),
  );
  const errors: string[] = [];
  if (comment.length > MAX_COMMENT) errors.push(`The comment is limited to ${MAX_COMMENT} characters.`);
  if (decisionAction !== 'reject') {
    const word = confirmWord(action);
    if ((form.get('confirm') ?? '').trim() !== word) errors.push(`Type ${word} in the confirmation box.`);
    if (decisionAction === 'approve')
      for (const c of CHECKLIST) if (!checked.has(c.name)) errors.push(`Tick "${c.label}"`);
  }
  // Reject is two steps: the first press shows what a rejection does and asks again (no JavaScript needed)
  if (decisionAction === 'reject' && form.get('reject_confirmed') !== 'yes' && !errors.length) {
    if (!wantsJson(req))
      return rejectConfirmPage(link, envs, issueCsrf(envs.keys[0], token), comment.slice(0, MAX_COMMENT));
    errors.push('Confirm the rejection (reject_confirmed=yes): nothing was decided yet.');
  }
  if (errors.length) {
    if (wantsJson(req))
      return {
        status: 400,
        jsonBody: { ok: false, error: 'APPROVAL.INCOMPLETE', message: errors.join(' '), errors },
        headers: { 'cache-control': 'no-store' },
      };
    return formPage(
      link,
      envs,
      issueCsrf(envs.keys[0], token),
      { errors, comment: comment.slice(0, MAX_COMMENT), checked },
      400,
    );
  }

  const decision: ApprovalDecision = {
    nonce: link.claims.nonce,
    approver: link.claims.approver,
    decidedBy: who.caller.id,
    action: decisionAction,
    comment,
    ip: clientIp(req),
    userAgent: (req.headers.get('user-agent') ?? '').slice(0, 300),
    decidedAt: new Date().toISOString(),
  };
  const result = await deliverDecision(client, envs, link, decision);
  if (!result.ok) {
    logRefusalDetail(context, result);
    return refusalResponse(req, result);
  }
  context.log(
    `approval decision delivered: ${decision.action} by ${decision.approver} for ${link.claims.instanceId}`,
  );
  return donePage(req, envs, link, decision, outcomeText(decision, link, result.after), result.after);
}

/** Whatever goes wrong inside is a 503 page that decides nothing, never a bare 500. */
export function safely(handler: (req: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>) {
  return async (req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      return await handler(req, context);
    } catch (err) {
      context.error(`approval ${req.method} failed: ${firstLine(messageOf(err))}`);
      return refusalResponse(
        req,
        refuse(
          503,
          'APPROVAL.UNAVAILABLE',
          'Try again in a moment',
          'The server could not handle this request; nothing was decided and the link still works.',
        ),
      );
    }
  };
}

const client = [df.input.durableClient()];
// GET and HEAD only render; POST is a separate function so no prefetch can ever reach the decision code.
app.http('approvalsShow', {
  route: 'approvals/{token}',
  methods: ['GET', 'HEAD'],
  authLevel: 'anonymous',
  extraInputs: client,
  handler: safely(showApproval),
});
app.http('approvalsDecide', {
  route: 'approvals/{token}',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: client,
  handler: safely(decideApproval),
});
