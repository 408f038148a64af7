/**
 * The approval gate's judging of one decision (`judgeDecision`, `isRequester`): what an approver's
 * click — or an attacker's forged event — is allowed to do. Every refused decision is still recorded,
 * with the reason, in the ledger; these tests read the verdict and the recorded decision as the
 * status page and the ledger show them.
 */
import {
  isRequester,
  judgeDecision,
  type PendingApproval,
} from '../../functions/orchestrators/approval-gate';

const EXPIRES = '2030-01-01T00:00:00Z';
const pending: PendingApproval[] = [
  { approver: 'alice', nonce: 'nonce-alice-approval', action: 'approval', expiresAt: EXPIRES },
  { approver: 'bob', nonce: 'nonce-bob-approval', action: 'approval', expiresAt: EXPIRES },
  { approver: 'bob', nonce: 'nonce-bob-rollback', action: 'rollback', expiresAt: EXPIRES },
];
const policy = { approvers: ['alice', 'bob', 'carol'], fourEyes: true, requestedBy: 'entra:requester' };

const judge = (d: unknown, p: Partial<typeof policy> & { requesterApprovers?: string[] } = {}) =>
  judgeDecision(d, pending, { ...policy, ...p });

describe('a decision that fits its link is accepted', () => {
  it.each([
    ['alice approves with her approval link', 'nonce-alice-approval', 'alice', 'approve'],
    ['alice rejects with her approval link', 'nonce-alice-approval', 'alice', 'reject'],
    ['bob asks for the rollback with his rollback link', 'nonce-bob-rollback', 'bob', 'rollback'],
  ])('%s', (_n, nonce, approver, action) => {
    const j = judge({ nonce, approver, action, decidedBy: 'slack:U123', comment: 'ok' });
    expect(j).toEqual({
      ok: true,
      decision: {
        nonce,
        approver,
        action,
        decidedBy: 'slack:U123',
        comment: 'ok',
        ip: undefined,
        userAgent: undefined,
        decidedAt: undefined,
      },
      pending: pending.find((p) => p.nonce === nonce),
    });
  });
});

describe('a malformed decision is refused, recorded, and never throws', () => {
  it.each([
    ['no body at all', undefined],
    ['null', null],
    ['a string', 'approve'],
    ['a number', 42],
    ['an empty object', {}],
    ['no nonce', { approver: 'alice', action: 'approve' }],
    ['an empty nonce', { nonce: '', approver: 'alice', action: 'approve' }],
    ['a nonce that is not a string', { nonce: 12345, approver: 'alice', action: 'approve' }],
    ['no approver', { nonce: 'nonce-alice-approval', action: 'approve' }],
    [
      'an approver that is not a string',
      { nonce: 'nonce-alice-approval', approver: ['alice'], action: 'approve' },
    ],
    ['no action', { nonce: 'nonce-alice-approval', approver: 'alice' }],
    ['an unknown action', { nonce: 'nonce-alice-approval', approver: 'alice', action: 'approve-all' }],
    ['an action in capitals', { nonce: 'nonce-alice-approval', approver: 'alice', action: 'APPROVE' }],
    [
      'an action that is not a string',
      { nonce: 'nonce-alice-approval', approver: 'alice', action: ['approve'] },
    ],
  ])('%s', (_n, d) => {
    let j: ReturnType<typeof judge> | undefined;
    expect(() => (j = judge(d))).not.toThrow();
    expect(j).toMatchObject({ ok: false, why: 'malformed' });
  });

  it('an unknown action is recorded as a reject, never as an approval or a rollback', () => {
    const j = judge({ nonce: 'nonce-alice-approval', approver: 'alice', action: 'approve-all' });
    expect(j.decision.action).toBe('reject');
    expect(j.ok).toBe(false);
  });

  it('what a malformed decision did carry is recorded as it came', () => {
    const j = judge({ nonce: 'nonce-alice-approval', approver: 'alice', action: 'delete', comment: 'hi' });
    expect(j).toMatchObject({
      ok: false,
      why: 'malformed',
      decision: { nonce: 'nonce-alice-approval', approver: 'alice', comment: 'hi' },
    });
    // fields of the wrong type are not recorded as text
    const k = judge({ nonce: 7, approver: 'alice', action: 'approve', comment: { html: '<b>' }, ip: 1 });
    expect(k.decision).toMatchObject({ nonce: '', approver: 'alice', comment: undefined, ip: undefined });
  });
});

describe('an oversized decision is cut to its limits before it is recorded', () => {
  const limits = {
    nonce: 100,
    approver: 200,
    decidedBy: 200,
    comment: 2000,
    ip: 100,
    userAgent: 400,
    decidedAt: 40,
  } as const;

  it.each(Object.entries(limits))(
    '%s keeps at most %i characters, and keeps a value at the limit whole',
    (field, max) => {
      const long = judge({ nonce: 'n', approver: 'alice', action: 'approve', [field]: 'x'.repeat(max + 50) });
      expect((long.decision as unknown as Record<string, string>)[field]).toBe('x'.repeat(max));
      const exact = judge({ nonce: 'n', approver: 'alice', action: 'approve', [field]: 'y'.repeat(max) });
      expect((exact.decision as unknown as Record<string, string>)[field]).toBe('y'.repeat(max));
    },
  );
});

describe('who may decide', () => {
  it('someone not on the approver list is refused, even holding a pending link', () => {
    expect(judge({ nonce: 'nonce-alice-approval', approver: 'mallory', action: 'approve' })).toMatchObject({
      ok: false,
      why: 'not-allowlisted',
    });
    // an approver removed from the list since the link was sent
    expect(
      judge({ nonce: 'nonce-alice-approval', approver: 'alice', action: 'approve' }, { approvers: ['bob'] }),
    ).toMatchObject({ ok: false, why: 'not-allowlisted' });
  });

  it('four-eyes: the requester cannot approve their own request, by id or through a bound approver', () => {
    const p: PendingApproval[] = [
      { approver: 'entra:requester', nonce: 'nonce-req', action: 'approval', expiresAt: EXPIRES },
      ...pending,
    ];
    const withReq = { ...policy, approvers: [...policy.approvers, 'entra:requester'] };
    expect(
      judgeDecision({ nonce: 'nonce-req', approver: 'entra:requester', action: 'approve' }, p, withReq),
    ).toMatchObject({ ok: false, why: 'four-eyes' });
    expect(
      judgeDecision({ nonce: 'nonce-alice-approval', approver: 'alice', action: 'approve' }, p, {
        ...withReq,
        requesterApprovers: ['alice'],
      }),
    ).toMatchObject({ ok: false, why: 'four-eyes' });
    // the others still may
    expect(
      judgeDecision({ nonce: 'nonce-bob-approval', approver: 'bob', action: 'approve' }, p, {
        ...withReq,
        requesterApprovers: ['alice'],
      }).ok,
    ).toBe(true);
  });

  it('four-eyes never stops the requester from rejecting, and is off when the policy says so', () => {
    expect(
      judge(
        { nonce: 'nonce-alice-approval', approver: 'alice', action: 'reject' },
        { requesterApprovers: ['alice'] },
      ).ok,
    ).toBe(true);
    expect(
      judge(
        { nonce: 'nonce-alice-approval', approver: 'alice', action: 'approve' },
        { fourEyes: false, requesterApprovers: ['alice'] },
      ).ok,
    ).toBe(true);
  });

  it('isRequester: the requester id itself or an approver bound to it, nobody else', () => {
    expect(isRequester('entra:requester', { requestedBy: 'entra:requester' })).toBe(true);
    expect(isRequester('alice', { requestedBy: 'entra:requester' })).toBe(false);
    expect(isRequester('alice', { requestedBy: 'entra:requester', requesterApprovers: ['alice'] })).toBe(
      true,
    );
    expect(isRequester('bob', { requestedBy: 'entra:requester', requesterApprovers: ['alice'] })).toBe(false);
  });
});

describe('a decision must use its own, still pending link', () => {
  it('a nonce that is not pending (used, expired or invented) is refused', () => {
    expect(judge({ nonce: 'nonce-used-already', approver: 'alice', action: 'approve' })).toMatchObject({
      ok: false,
      why: 'not-pending',
    });
    expect(
      judgeDecision({ nonce: 'nonce-alice-approval', approver: 'alice', action: 'approve' }, [], policy),
    ).toMatchObject({ ok: false, why: 'not-pending' });
  });

  it('an approval link cannot order a rollback, and a rollback link cannot approve or reject', () => {
    expect(judge({ nonce: 'nonce-bob-approval', approver: 'bob', action: 'rollback' })).toMatchObject({
      ok: false,
      why: 'wrong-action',
    });
    for (const action of ['approve', 'reject'])
      expect(judge({ nonce: 'nonce-bob-rollback', approver: 'bob', action })).toMatchObject({
        ok: false,
        why: 'wrong-action',
      });
  });

  it("one approver cannot use another approver's link", () => {
    expect(judge({ nonce: 'nonce-alice-approval', approver: 'bob', action: 'approve' })).toMatchObject({
      ok: false,
      why: 'approver-mismatch',
      decision: { nonce: 'nonce-alice-approval', approver: 'bob', action: 'approve' },
    });
    expect(judge({ nonce: 'nonce-bob-rollback', approver: 'carol', action: 'rollback' })).toMatchObject({
      ok: false,
      why: 'approver-mismatch',
    });
  });

  it('the first failing rule is the one reported (allowlist before four-eyes before the link)', () => {
    // not allowlisted and not pending: the allowlist speaks first
    expect(judge({ nonce: 'nope', approver: 'mallory', action: 'approve' })).toMatchObject({
      why: 'not-allowlisted',
    });
    // the requester with an unknown nonce: four-eyes speaks first
    expect(
      judge({ nonce: 'nope', approver: 'alice', action: 'approve' }, { requesterApprovers: ['alice'] }),
    ).toMatchObject({ why: 'four-eyes' });
    // wrong action on someone else's link: the action speaks first
    expect(judge({ nonce: 'nonce-alice-approval', approver: 'bob', action: 'rollback' })).toMatchObject({
      why: 'wrong-action',
    });
  });
});
