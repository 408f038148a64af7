/**
 * Four-eyes and "N distinct approvers" compare identities, not free text (issue #15, attack 2): an
 * approver who requests a deploy — signed in with Entra ID, whatever name they type — gets no link and
 * cannot approve it; the requester's id comes from the sign-in, so "ALICE" vs "alice" changes nothing.
 * Failed before the fix: the policy compared the approver with the typed `requestedBy` text.
 */
import { approvalPolicy } from '../../functions/activities/prod';
import {
  isRequester,
  judgeDecision,
  type PendingApproval,
} from '../../functions/orchestrators/approval-gate';
import { keyId } from '../../shared/domain/identity';
import { approverList, PEOPLE } from '../support/identities';

const options = {
  approvers: approverList('alice', 'bob'),
  approvalsRequired: 1,
  approvalTimeoutHours: 1,
  approvalReminderMinutes: 0,
  fourEyes: true,
};
const can = { hasKey: true, slackEnabled: true };
const pending: PendingApproval[] = [
  { approver: 'alice', nonce: 'nonce-alice-0001', action: 'approval', expiresAt: '2030-01-01T00:00:00Z' },
  { approver: 'bob', nonce: 'nonce-bob-000001', action: 'approval', expiresAt: '2030-01-01T00:00:00Z' },
];

describe('four-eyes by identity (security)', () => {
  it('an approver who requested (Entra sign-in) is not offered a link and cannot approve with one', () => {
    const requestedBy = `entra:${PEOPLE.alice.oid}`;
    const policy = approvalPolicy(options, can, 'a PROD deploy', { id: requestedBy });
    expect(policy.requesterApprovers).toEqual(['alice']);
    expect(
      policy.approvers.filter(
        (a) => !isRequester(a, { requestedBy, requesterApprovers: policy.requesterApprovers }),
      ),
    ).toEqual(['bob']);
    const j = judgeDecision({ nonce: 'nonce-alice-0001', approver: 'alice', action: 'approve' }, pending, {
      ...policy,
      requestedBy,
    });
    expect(j).toMatchObject({ ok: false, why: 'four-eyes' });
    // rejecting one's own request stays possible
    expect(
      judgeDecision({ nonce: 'nonce-alice-0001', approver: 'alice', action: 'reject' }, pending, {
        ...policy,
        requestedBy,
      }).ok,
    ).toBe(true);
  });

  it('the requester matched by the e-mail an approver is configured with', () => {
    const byMail = {
      ...options,
      approvers: [{ id: 'alice', name: 'Alice', entra: 'alice@example.com' }, ...approverList('bob')],
    };
    const policy = approvalPolicy(byMail, can, 'a PROD deploy', {
      id: 'entra:11111111-2222-4333-8444-555555555555',
      emails: ['alice@example.com'],
    });
    expect(policy.requesterApprovers).toEqual(['alice']);
  });

  it('a typed name is no identity: a request by a function key is never one of the approvers, whatever it claims', () => {
    const requestedBy = `key:${keyId('automation-key')}`;
    const policy = approvalPolicy(options, can, 'a PROD deploy', { id: requestedBy });
    expect(policy.requesterApprovers).toEqual([]);
    expect(
      judgeDecision({ nonce: 'nonce-bob-000001', approver: 'bob', action: 'approve' }, pending, {
        ...policy,
        requestedBy,
      }).ok,
    ).toBe(true);
  });

  it('distinct approvers are counted on ids: the same approver twice is one approval', () => {
    const policy = approvalPolicy({ ...options, approvalsRequired: 2 }, can, 'a PROD deploy', {
      id: 'key:000000000000',
    });
    expect(policy.names).toEqual({ alice: PEOPLE.alice.name, bob: PEOPLE.bob.name });
    expect(
      judgeDecision({ nonce: 'nonce-bob-000001', approver: 'ALICE', action: 'approve' }, pending, {
        ...policy,
        requestedBy: 'key:000000000000',
      }),
    ).toMatchObject({ ok: false, why: 'not-allowlisted' });
  });
});
