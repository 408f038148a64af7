/**
 * The approval gate — PROD's approval rules as one orchestrator-side piece, used with `yield*` by every
 * orchestration that must not change production without people saying yes: `deployProd` (the approval
 * AND its rollback decision) and `deployOdooSh` (a production-stage Odoo.sh branch).
 *
 *  - one signed link per approver, posted to Slack by the `prodRequestLinks` activity (the ACTIVITY
 *    signs; nonces come from `newGuid`, expiry from the orchestration clock). Four-eyes: the requester
 *    gets no link, and a decision of theirs is refused.
 *  - wait for `approval-decision` events raced against a durable timer (each timer ≤ 6 days, looped up
 *    to the policy's timeout; the losing timer is cancelled), a reminder before expiry, N distinct
 *    approvals; one reject by an allowed approver ends it. Every decision, accepted or refused, goes to
 *    `state.decisions` and to the ledger container (`prodRecordDecision`).
 *  - the custom-status contract (read by functions/approvals.ts, Slack buttons, the status API and the
 *    CLI) is the caller's: it publishes `state.pending` as `pendingApprovals` and `state.received` as
 *    `approvals.received` whenever `hooks.show()` is called.
 *
 * Deterministic: only context.df.* (no I/O, no clock, no configuration) — the orchestrator lint rules
 * apply to this file.
 */
import type { OrchestrationContext, Task, TimerTask } from 'durable-functions';
import { codeOf, reasonOf } from '../../shared/domain/deploy-plan';
import type { ApprovalAction } from '../../shared/domain/approval-token';
import type {
  AnnounceKind,
  ApprovalPolicy,
  ApprovalSummary,
  DecisionLogEntry,
  LinkRequest,
  ProdMessageKind,
  ProgressInput,
  RequestLinksOut,
} from '../activities/prod';

export const APPROVAL_EVENT = 'approval-decision';
/** durable-functions JS timers are limited to 6 days each: longer waits loop */
export const MAX_TIMER_MS = 6 * 24 * 3600_000;

/**
 * When the gate's wait wakes next (pure): at the deadline, or at the reminder while it is not yet sent,
 * but never more than MAX_TIMER_MS after `now` — a longer window is waited in legs, the loop re-arming
 * a timer each time one fires before the deadline.
 */
export function nextWake(now: number, deadline: number, reminderAt?: number): number {
  const wake = Math.min(deadline, now + MAX_TIMER_MS);
  return reminderAt === undefined ? wake : Math.min(wake, reminderAt);
}

/**
 * The least lead a timer of the gate gets (ms). The Azure Storage provider delivers a timer when its
 * queue message becomes visible, and a message's delay is counted in whole seconds (cut, not rounded): a
 * timer due in under a second fires at once, one due in 1.9 s after 1 s. Re-armed at the wake itself
 * after such an early fire, the gate looped every few tens of ms until the wake (20–40 timers per wake
 * seen on the real engine); with this lead it re-arms about once and wakes at most 2 s late.
 */
export const MIN_TIMER_LEAD_MS = 2000;

/** When the gate's timer for `wake` is set to fire, at `now` (pure): the wake, or MIN_TIMER_LEAD_MS ahead. */
export function timerFireAt(now: number, wake: number): number {
  return Math.max(wake, now + MIN_TIMER_LEAD_MS);
}

/** What `POST /api/approvals/{token}` raises (the approval contract). */
export interface ApprovalDecision {
  nonce: string;
  /** the approver id the link was issued to */
  approver: string;
  /** who decided, as proven by the door it came through: `entra:<oid>` or `slack:<user id>` */
  decidedBy?: string;
  action: 'approve' | 'reject' | 'rollback';
  comment?: string;
  ip?: string;
  userAgent?: string;
  decidedAt?: string;
}

export interface PendingApproval {
  approver: string;
  nonce: string;
  action: ApprovalAction;
  expiresAt: string;
}

export interface DecisionRecord extends ApprovalDecision {
  verdict: 'accepted' | 'refused';
  /** why a decision was refused: not-pending | wrong-action | approver-mismatch | not-allowlisted | four-eyes | malformed */
  why?: string;
  receivedAt: string;
}

/**
 * Judge one decision against what is pending (pure). Order: shape, allowlist, four-eyes, nonce pending,
 * action matches the link, approver matches the link.
 */
export function judgeDecision(
  d: unknown,
  pending: readonly PendingApproval[],
  policy: {
    approvers: readonly string[];
    fourEyes: boolean;
    requestedBy: string;
    requesterApprovers?: readonly string[];
  },
):
  | { ok: true; decision: ApprovalDecision; pending: PendingApproval }
  | { ok: false; why: string; decision: ApprovalDecision } {
  const r = (d && typeof d === 'object' ? d : {}) as Partial<Record<keyof ApprovalDecision, unknown>>;
  const str = (v: unknown, max: number) => (typeof v === 'string' ? v.slice(0, max) : undefined);
  const decision: ApprovalDecision = {
    nonce: str(r.nonce, 100) ?? '',
    approver: str(r.approver, 200) ?? '',
    decidedBy: str(r.decidedBy, 200),
    action: (['approve', 'reject', 'rollback'].includes(r.action as string)
      ? r.action
      : 'reject') as ApprovalDecision['action'],
    comment: str(r.comment, 2000),
    ip: str(r.ip, 100),
    userAgent: str(r.userAgent, 400),
    decidedAt: str(r.decidedAt, 40),
  };
  if (
    !decision.nonce ||
    !decision.approver ||
    !['approve', 'reject', 'rollback'].includes(r.action as string)
  )
    return { ok: false, why: 'malformed', decision };
  if (!policy.approvers.includes(decision.approver)) return { ok: false, why: 'not-allowlisted', decision };
  if (policy.fourEyes && decision.action === 'approve' && isRequester(decision.approver, policy))
    return { ok: false, why: 'four-eyes', decision };
  const p = pending.find((x) => x.nonce === decision.nonce);
  if (!p) return { ok: false, why: 'not-pending', decision };
  const fits =
    p.action === 'approval'
      ? decision.action === 'approve' || decision.action === 'reject'
      : decision.action === 'rollback';
  if (!fits) return { ok: false, why: 'wrong-action', decision };
  if (p.approver !== decision.approver) return { ok: false, why: 'approver-mismatch', decision };
  return { ok: true, decision, pending: p };
}

/** Four-eyes on canonical ids: the requester's own identity, or an approver bound to it (prodPrepare matched them). */
export function isRequester(
  approver: string,
  policy: { requestedBy: string; requesterApprovers?: readonly string[] },
): boolean {
  return approver === policy.requestedBy || (policy.requesterApprovers ?? []).includes(approver);
}

/** The gate's mutable state, owned by the orchestration (its custom status points at these). */
export interface ApprovalState {
  /** the links that may still decide (published as `pendingApprovals`) */
  pending: PendingApproval[];
  /** distinct approvals counted so far (published as `approvals.received`) */
  received: Array<{ approver: string; at: string }>;
  /** every decision that arrived, accepted or refused (the output's `decisions`) */
  decisions: DecisionRecord[];
  /** the channel's request message of the open request (its progress is updated with chat.update) */
  request?: {
    kind: ProdMessageKind;
    channel?: RequestLinksOut['channel'];
    recipients: string[];
    summary: ApprovalSummary;
  };
}

export function newApprovalState(): ApprovalState {
  return { pending: [], received: [], decisions: [] };
}

/** How the gate reaches the orchestration it runs in (each orchestrator has its own step bookkeeping). */
export interface ApprovalHooks {
  /** an activity that must succeed (retried as the caller retries); throws when it fails */
  call(step: string, activity: string, payload: unknown): Generator<Task, unknown, unknown>;
  /** an activity whose failure is ignored */
  quiet(activity: string, payload: unknown): Generator<Task, unknown, unknown>;
  /** publish the custom status again; with a step, move to it (extra fields merged) */
  show(step?: string, extra?: { expiresAt?: string }): void;
  /** Slack announcement (`prodAnnounce`), never fails */
  announce(kind: AnnounceKind, detail?: string): Generator<Task, unknown, unknown>;
  log(message: string): void;
}

export interface ApprovalGateOptions {
  policy: ApprovalPolicy;
  /** the requester's canonical id (`entra:<oid>` / `key:<id>`): four-eyes compares it */
  requestedBy: string;
  /** how people know the requester (sign-in name): messages use it, never the canonical id */
  requestedByName?: string;
  state: ApprovalState;
  hooks: ApprovalHooks;
  /** the summary carried by the links (and reminders) expiring at `expiresAt` */
  summary(expiresAt: string, extra?: Partial<ApprovalSummary>): ApprovalSummary;
}

export type DecideVerdict = { verdict: 'approved' | 'rejected' | 'rollback' | 'expired'; by?: string };

/** The outcome of the whole approval phase (request, wait, announce). */
export type ApprovalOutcome =
  | { verdict: 'approved'; approvers: string[]; deadline: number }
  | { verdict: 'rejected'; by: string; failure: string; deadline: number }
  | { verdict: 'expired'; failure: string; deadline: number }
  | { verdict: 'failed'; code: string; failure: string };

export interface ApprovalGate {
  /** who gets a link for an approval (four-eyes: not the requester) */
  readonly linkTo: string[];
  /**
   * The approval phase, top to bottom: enough approvers? → links to Slack (step `request-approval`) →
   * `awaiting-approval` with a reminder → verdict → announcement (`approved` ends with `approvedNote`).
   */
  requestApproval(o?: { approvedNote?: string }): Generator<Task, ApprovalOutcome, unknown>;
  /** sign and post links of `action` for `approvers` (sets `state.pending`; cleared again when posting fails) */
  post(
    kind: ProdMessageKind,
    step: string,
    approvers: string[],
    deadline: number,
    extra?: Partial<ApprovalSummary>,
  ): Generator<Task, void, unknown>;
  /**
   * Wait for decisions until one settles it or the deadline passes. Approvals: 'approved' once
   * `required` distinct approvers approved, 'rejected' on a reject; rollback links: 'rollback'.
   */
  decide(
    kind: 'approval' | 'rollback',
    deadline: number,
    reminderAt?: number,
  ): Generator<Task, DecideVerdict, unknown>;
}

export function approvalGate(context: OrchestrationContext, o: ApprovalGateOptions): ApprovalGate {
  const id = context.df.instanceId;
  const { policy, state, hooks, requestedBy } = o;
  const now = () => context.df.currentUtcDateTime.getTime();
  // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
  const iso = (ms: number) => new Date(ms).toISOString();
  const linkTo = policy.fourEyes
    ? policy.approvers.filter(
        (a) => !isRequester(a, { requestedBy, requesterApprovers: policy.requesterApprovers }),
      )
    : [...policy.approvers];

  const newLinks = (action: ApprovalAction, approvers: string[], expMs: number): PendingApproval[] =>
    approvers.map((approver) => ({ approver, action, nonce: context.df.newGuid(id), expiresAt: iso(expMs) }));
  const linkRequests = (ps: PendingApproval[], exp: number): LinkRequest[] =>
    ps.map((x) => ({ approver: x.approver, nonce: x.nonce, action: x.action, exp }));

  function* post(
    kind: ProdMessageKind,
    step: string,
    approvers: string[],
    deadline: number,
    extra: Partial<ApprovalSummary> = {},
  ): Generator<Task, void, unknown> {
    state.pending = newLinks(kind === 'rollback' ? 'rollback' : 'approval', approvers, deadline);
    try {
      const summary = o.summary(iso(deadline), extra);
      const out = (yield* hooks.call(step, 'prodRequestLinks', {
        kind,
        instanceId: id,
        links: linkRequests(state.pending, deadline),
        summary,
      })) as RequestLinksOut | undefined;
      state.request = { kind, channel: out?.channel, recipients: out?.recipients ?? [], summary };
    } catch (err) {
      state.pending = [];
      throw err;
    }
  }

  /** the channel message again: who approved, who is pending (ignored when it cannot be updated) */
  function* progress(outcome?: string): Generator<Task, void, unknown> {
    const r = state.request;
    if (!r?.channel) return;
    const name = (a: string) => policy.names?.[a] ?? a;
    yield* hooks.quiet('prodProgress', {
      kind: r.kind,
      channel: r.channel,
      summary: r.summary,
      recipients: r.recipients,
      approved: state.received.map((x) => name(x.approver)),
      pending: outcome ? [] : state.pending.map((x) => name(x.approver)),
      outcome,
    } satisfies ProgressInput);
  }

  function* decide(
    kind: 'approval' | 'rollback',
    deadline: number,
    reminderAt?: number,
  ): Generator<Task, DecideVerdict, unknown> {
    let reminded = reminderAt === undefined || reminderAt >= deadline;
    let ev = context.df.waitForExternalEvent(APPROVAL_EVENT);
    for (;;) {
      if (!reminded && now() >= reminderAt!) {
        reminded = true;
        if (state.pending.length) {
          try {
            yield* hooks.call('awaiting-approval', 'prodRequestLinks', {
              kind: 'reminder' satisfies ProdMessageKind,
              instanceId: id,
              links: linkRequests(state.pending, deadline),
              summary: o.summary(iso(deadline)),
            });
          } catch (err) {
            hooks.log(`reminder failed (ignored): ${reasonOf(err)}`);
          }
        }
        continue;
      }
      if (now() >= deadline) return { verdict: 'expired' };
      const wake = nextWake(now(), deadline, reminded ? undefined : reminderAt);
      // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
      const timer: TimerTask = context.df.createTimer(new Date(timerFireAt(now(), wake)));
      const winner = (yield context.df.Task.any([ev, timer])) as Task;
      if (winner !== ev) continue; // the timer fired: reminder, expiry or just the next ≤ 6-day leg
      timer.cancel();
      const raw = ev.result;
      ev = context.df.waitForExternalEvent(APPROVAL_EVENT);
      const j = judgeDecision(raw, state.pending, {
        approvers: policy.approvers,
        fourEyes: policy.fourEyes,
        requestedBy,
        requesterApprovers: policy.requesterApprovers,
      });
      const rec: DecisionRecord = {
        ...j.decision,
        verdict: j.ok ? 'accepted' : 'refused',
        why: j.ok ? undefined : j.why,
        receivedAt: iso(now()),
      };
      state.decisions.push(rec);
      yield* hooks.quiet('prodRecordDecision', { instanceId: id, ...rec } satisfies DecisionLogEntry);
      if (!j.ok) {
        hooks.log(`decision by ${rec.approver} refused: ${j.why}`);
        hooks.show();
        continue;
      }
      state.pending = state.pending.filter((x) => x.nonce !== j.pending.nonce); // a link decides once
      const name = (a: string) => policy.names?.[a] ?? a;
      if (kind === 'rollback') {
        yield* progress(`rollback started by ${name(rec.approver)}`);
        return { verdict: 'rollback', by: rec.approver };
      }
      if (j.decision.action === 'reject') {
        yield* progress(`rejected by ${name(rec.approver)}`);
        return { verdict: 'rejected', by: rec.approver };
      }
      if (!state.received.some((x) => x.approver === rec.approver))
        state.received.push({ approver: rec.approver, at: rec.receivedAt });
      hooks.log(`approved by ${rec.approver} (${state.received.length}/${policy.required})`);
      if (state.received.length >= policy.required) {
        yield* progress('approved');
        return { verdict: 'approved' };
      }
      yield* progress();
      hooks.show();
    }
  }

  function* requestApproval(opts: { approvedNote?: string } = {}): Generator<Task, ApprovalOutcome, unknown> {
    if (linkTo.length < policy.required) {
      // in words people know: approvers by their APPROVERS name, the requester by the approver entry
      // their sign-in matched or their sign-in name — never a raw `entra:<object id>`
      const name = (a: string) => policy.names?.[a] ?? a;
      const requester = (policy.requesterApprovers ?? []).map(name)[0] ?? o.requestedByName ?? requestedBy;
      const who = linkTo.length ? ` (${linkTo.map(name).join(', ')})` : '';
      const why = `[APPROVAL.NOT_ENOUGH_APPROVERS] ${policy.required} approval${policy.required === 1 ? '' : 's'} needed but only ${linkTo.length} approver${linkTo.length === 1 ? '' : 's'} may approve${who}${policy.fourEyes ? `; four-eyes: ${requester} cannot approve their own request` : ''}`;
      yield* hooks.announce('not-started', why);
      return { verdict: 'failed', code: 'APPROVAL.NOT_ENOUGH_APPROVERS', failure: why };
    }
    const deadline = now() + policy.timeoutMs;
    try {
      yield* post('approval', 'request-approval', linkTo, deadline);
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      return {
        verdict: 'failed',
        code: typeof e?.code === 'string' ? e.code : codeOf(err),
        failure: typeof e?.message === 'string' ? e.message : reasonOf(err),
      };
    }
    hooks.show('awaiting-approval', { expiresAt: iso(deadline) });
    const reminderAt =
      policy.reminderMs > 0 && policy.reminderMs < policy.timeoutMs
        ? deadline - policy.reminderMs
        : undefined;
    const verdict = yield* decide('approval', deadline, reminderAt);
    state.pending = [];
    if (verdict.verdict === 'rejected') {
      const last = state.decisions[state.decisions.length - 1];
      const by = verdict.by ?? '?';
      yield* hooks.announce('rejected', `by ${by}${last?.comment ? `: ${last.comment}` : ''}`);
      return { verdict: 'rejected', by, failure: `rejected by ${by}`, deadline };
    }
    if (verdict.verdict === 'expired') {
      yield* hooks.announce(
        'expired',
        `no decision before ${iso(deadline)} (${state.received.length}/${policy.required} approvals)`,
      );
      return { verdict: 'expired', failure: `approval expired at ${iso(deadline)}`, deadline };
    }
    const approvers = state.received.map((r) => r.approver);
    yield* hooks.announce(
      'approved',
      `by ${approvers.join(', ')}${opts.approvedNote ? `; ${opts.approvedNote}` : ''}`,
    );
    return { verdict: 'approved', approvers, deadline };
  }

  return { linkTo, requestApproval, post, decide };
}
