/**
 * The parts of one environment on the status page (issue #20, round 4): backups (state, verification,
 * problems), the last refresh (counts, failure), pending approvals read from a PROD deploy's custom
 * status — as an operator checks them before restoring, refreshing or approving.
 */
import {
  assembleStatus,
  backupView,
  type BackupListing,
  type InstanceInfo,
  type StatusInputs,
} from '../../shared/domain/status-view';

const NOW = new Date('2026-12-06T12:00:00Z');
const ok = <T>(value: T) => ({ ok: true as const, value });
function inst(p: Partial<InstanceInfo> & { name: string; instanceId: string }): InstanceInfo {
  return {
    runtimeStatus: 'Completed',
    createdTime: '2026-12-06T10:00:00Z',
    lastUpdatedTime: '2026-12-06T10:05:00Z',
    customStatus: null,
    output: null,
    ...p,
  };
}
function env(instances: InstanceInfo[], name = 'uat') {
  const inputs: StatusInputs = {
    now: NOW,
    environments: [name],
    ledger: { [name]: ok({ history: [] }) },
    instances: ok(instances),
    lanes: {},
    backups: { [name]: ok([]) },
  };
  return assembleStatus(inputs).environments[0];
}
const backup = (over: Partial<BackupListing>): BackupListing => ({
  id: 'uat/20261206T100000Z-1.2.0',
  environment: 'uat',
  version: '1.2.0',
  createdAt: '2026-12-06T10:00:00Z',
  complete: true,
  ...over,
});

describe('a backup as an operator checks it before restoring', () => {
  test('complete, verified, corrupt or still being written', () => {
    expect(backupView(backup({ parts: ['db.dump'] }))).toEqual({
      id: 'uat/20261206T100000Z-1.2.0',
      version: '1.2.0',
      createdAt: '2026-12-06T10:00:00Z',
      sizeBytes: undefined,
      parts: ['db.dump'],
      state: 'complete',
    });
    expect(backupView(backup({ verification: { ok: true, at: '2026-12-06T11:00:00Z' } }))).toMatchObject({
      state: 'verified',
      verifiedAt: '2026-12-06T11:00:00Z',
      parts: [],
    });
    const corrupt = backupView(
      backup({ verification: { ok: false, at: 'x', problems: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] } }),
    );
    expect(corrupt).toMatchObject({ state: 'corrupt', problems: ['a', 'b', 'c', 'd', 'e'] });
    // a verification of an incomplete backup proves nothing about it
    const partial = backupView(backup({ complete: false, verification: { ok: true, at: 'x' } }));
    expect(partial.state).toBe('incomplete');
    expect(partial).not.toHaveProperty('verifiedAt');
    // a failed verification without details names no problems
    expect(backupView(backup({ verification: { ok: false, at: 'x' } }))).not.toHaveProperty('problems');
    expect(backupView(backup({ verification: { ok: false, at: 'x', problems: [] } }))).not.toHaveProperty(
      'problems',
    );
  });
});

describe('the last refresh', () => {
  test('its row counts by table, one level of nesting flattened, numbers only', () => {
    const e = env([
      inst({
        name: 'refreshUat',
        instanceId: 'refresh-uat-1',
        output: {
          outcome: 'Succeeded',
          counts: { res_partner: 1200, anonymized: { res_partner: 1180, mail_message: 40 }, note: 'x' },
          reason: 'ignored for a success',
        },
      }),
    ]);
    expect(e.lastRefresh.ok && e.lastRefresh.value).toMatchObject({
      outcome: 'Succeeded',
      outcomeText: 'succeeded',
      counts: { res_partner: 1200, 'anonymized.res_partner': 1180, 'anonymized.mail_message': 40 },
    });
    expect(e.lastRefresh.ok && e.lastRefresh.value).not.toHaveProperty('failure');
  });

  test('a failed refresh shows why and where; the request reason is kept apart', () => {
    const e = env([
      inst({
        name: 'refreshUat',
        instanceId: 'refresh-uat-2',
        customStatus: { reason: 'fresh data for the demo' },
        output: { outcome: 'Failed', failedStep: 'restore', reason: 'pg_restore: out of disk\nmore' },
      }),
    ]);
    expect(e.lastRefresh.ok && e.lastRefresh.value).toMatchObject({
      failure: 'pg_restore: out of disk',
      failureDetail: 'pg_restore: out of disk\nmore',
      failedStep: 'restore',
      requestReason: 'fresh data for the demo',
    });
    expect(e.lastRefresh.ok && e.lastRefresh.value?.counts).toBeUndefined();
  });

  test('a refresh still running has no outcome yet; the newest refresh is the one shown', () => {
    const e = env([
      inst({
        name: 'refreshUat',
        instanceId: 'old',
        createdTime: '2026-12-05T10:00:00Z',
        output: { outcome: 'Failed' },
      }),
      inst({
        name: 'refreshUat',
        instanceId: 'new',
        runtimeStatus: 'Running',
        customStatus: { step: 'restore' },
      }),
    ]);
    expect(e.lastRefresh.ok && e.lastRefresh.value).toMatchObject({ id: 'new', step: 'restore' });
    expect(e.lastRefresh.ok && e.lastRefresh.value?.outcome).toBeUndefined();
  });
});

describe('pending approvals of a PROD deploy', () => {
  test('an entry without approver or expiry is no approval; the action defaults to approval', () => {
    const e = env(
      [
        inst({
          name: 'deployProd',
          instanceId: 'deploy-prod-1.3.0',
          runtimeStatus: 'Running',
          input: { version: '1.3.0', requestedBy: 'alice', reason: 'monthly' },
          customStatus: {
            step: 'awaiting-approval',
            approvals: { required: 2, received: 1 },
            pendingApprovals: [
              { approver: 'carol', expiresAt: '2026-12-06T12:00:01Z' },
              { approver: 'dave' },
              { expiresAt: '2026-12-07T12:00:00Z' },
              'junk',
            ],
          },
        }),
      ],
      'prod',
    );
    expect(e.pendingApprovals.ok && e.pendingApprovals.value).toEqual([
      {
        deployment: 'deploy-prod-1.3.0',
        environment: 'prod',
        version: '1.3.0',
        requestedBy: 'alice',
        reason: 'monthly',
        approver: 'carol',
        action: 'approval',
        expiresAt: '2026-12-06T12:00:01Z',
        expired: false,
        required: 2,
        received: 1,
        step: 'awaiting-approval',
      },
    ]);
  });

  test('a finished deploy has no pending approvals', () => {
    const e = env(
      [
        inst({
          name: 'deployProd',
          instanceId: 'deploy-prod-1.3.0',
          customStatus: { pendingApprovals: [{ approver: 'carol', expiresAt: '2026-12-07T12:00:00Z' }] },
          output: { outcome: 'Succeeded' },
        }),
      ],
      'prod',
    );
    expect(e.pendingApprovals.ok && e.pendingApprovals.value).toEqual([]);
  });
});
