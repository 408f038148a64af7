/**
 * The top of the status page (issue #20, round 4): is each environment up or DOWN, and what needs
 * someone now — an environment down, an approval or a rollback decision waiting, a deploy or refresh
 * that failed — in that order, each with what to do next. Built from instances as the durable client
 * returns them (the custom status and output shapes of deployUat, deployProd and refreshUat).
 */
import {
  assembleStatus,
  type InstanceInfo,
  type LedgerRead,
  type Read,
  type StatusInputs,
} from '../../shared/domain/status-view';

const NOW = new Date('2026-12-06T12:00:00Z');
const ok = <T>(value: T) => ({ ok: true as const, value });
const LEDGER: LedgerRead = {
  current: { version: '1.2.0', sha: 'b'.repeat(40), deployedAt: '2026-12-05T09:00:00Z' },
  history: [{ version: '1.2.0', sha: 'b'.repeat(40), deployedAt: '2026-12-05T09:00:00Z' }],
};

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
function status(instances: InstanceInfo[], ledger: Record<string, Read<LedgerRead>> = {}) {
  const inputs: StatusInputs = {
    now: NOW,
    environments: ['uat', 'prod'],
    ledger: { uat: ok(LEDGER), prod: ok(LEDGER), ...ledger },
    instances: ok(instances),
    lanes: {},
    backups: { uat: ok([]), prod: ok([]) },
  };
  return assembleStatus(inputs);
}
const health = (doc: ReturnType<typeof status>, env: string) => {
  const h = doc.environments.find((e) => e.name === env)!.health;
  if (!h.ok) throw new Error('health not readable');
  return h.value;
};
const live = (name: string, step: string, extra: Record<string, unknown> = {}) =>
  inst({
    name,
    instanceId: `${name}-live`,
    runtimeStatus: 'Running',
    customStatus: {
      step,
      environment: name === 'deployProd' ? 'prod' : 'uat',
      version: '1.3.0',
      ...(name === 'refreshUat' ? { target: 'uat' } : {}),
      ...extra,
    },
  });

describe('is the environment up or DOWN', () => {
  test.each([
    ['deployUat', 'uat', ['stop', 'migrate', 'start', 'health']],
    ['deployProd', 'prod', ['stop', 'migrate', 'start', 'health', 'health-stable']],
    [
      'refreshUat',
      'uat',
      ['stop', 'restore', 'neutralize', 'anonymize+verify', 'filestore', 'swap', 'start', 'health'],
    ],
  ])('%s holds %s DOWN, as planned, from its stop to its health check', (kind, env, steps) => {
    for (const step of steps) {
      const h = health(status([live(kind, step)]), env);
      expect(h).toMatchObject({ state: 'down', planned: true, deployment: `${kind}-live` });
      expect(h.headline).toMatch(new RegExp(`^${env.toUpperCase()} is DOWN for the `));
    }
  });

  test.each([
    ['deployUat', 'uat', ['prepare', 'preflight', 'wait-image', 'backup', 'pull', 'record', 'notify']],
    ['deployProd', 'prod', ['prepare', 'awaiting-approval', 'promote', 'backup', 'pull', 'record']],
    ['refreshUat', 'uat', ['prepare', 'backup-uat', 'source', 'cleanup', 'report']],
  ])('%s leaves %s up outside those steps', (kind, env, steps) => {
    for (const step of steps) {
      const h = health(status([live(kind, step)]), env);
      expect(h).toMatchObject({ state: 'up', headline: `${env.toUpperCase()} runs 1.2.0`, version: '1.2.0' });
    }
  });

  test('a rollback, a rollback decision or a refresh recovery is DOWN because something failed (not planned)', () => {
    const rb = health(status([live('deployUat', 'rollback')]), 'uat');
    expect(rb).toMatchObject({ state: 'down', step: 'rolling back' });
    expect(rb.planned).toBeUndefined();
    expect(rb.headline).toMatch(/^UAT is DOWN: the UAT deploy of 1\.3\.0 failed; rolling back$/);

    const decide = health(
      status([live('deployProd', 'awaiting-rollback-decision', { failure: '[HEALTH.FAILED] 502' })]),
      'prod',
    );
    expect(decide).toMatchObject({ state: 'down', awaitingRollback: true });
    expect(decide.headline).toBe(
      'PROD is DOWN: the PROD deploy of 1.3.0 failed (502); waiting for the rollback decision',
    );

    const recover = health(status([live('refreshUat', 'recover', { error: 'restore failed' })]), 'uat');
    expect(recover).toMatchObject({ state: 'down' });
    expect(recover.headline).toMatch(/UAT refresh from PROD of 1\.3\.0 failed \(restore failed\)$/);
  });

  test('a running PROD deploy whose PROD state says it is not serving is DOWN, whatever the step', () => {
    for (const prodState of ['stopped', 'unknown', 'running-new-unhealthy']) {
      const h = health(status([live('deployProd', 'record', { prodState })]), 'prod');
      expect(h.state).toBe('down');
      expect(h.planned).toBeUndefined();
    }
    expect(health(status([live('deployProd', 'record', { prodState: 'running-new' })]), 'prod').state).toBe(
      'up',
    );
  });

  test('a finished PROD deploy: its last PROD state decides', () => {
    const done = (prodState: string, extra: Record<string, unknown> = {}) =>
      inst({
        name: 'deployProd',
        instanceId: `deploy-prod-${prodState}`,
        output: { outcome: 'Failed', version: '1.3.0', prodState, ...extra },
      });
    for (const ps of ['stopped', 'unknown', 'running-new-unhealthy']) {
      const h = health(
        status([done(ps, { failure: 'health check failed', failedStep: 'health-stable' })]),
        'prod',
      );
      expect(h.state).toBe('down');
      expect(h.headline).toBe(
        'PROD is DOWN: the PROD deploy of 1.3.0 failed while watching that Odoo stays healthy (health check failed)',
      );
    }
    // up again: an older DOWN deploy no longer counts
    for (const ps of ['running-new', 'rolled-back'])
      expect(
        health(status([done(ps), { ...done('stopped'), createdTime: '2026-12-06T08:00:00Z' }]), 'prod').state,
      ).toBe('up');
  });

  test('a deploy that crashed inside the stopped steps left the environment DOWN; one that completed did not', () => {
    const crashed = (runtimeStatus: string, name = 'deployUat') =>
      inst({
        name,
        instanceId: `${name}-crashed`,
        runtimeStatus,
        customStatus: {
          step: 'migrate',
          environment: name === 'deployProd' ? 'prod' : 'uat',
          version: '1.3.0',
        },
        output: 'Orchestrator function failed: worker lost',
      });
    for (const rs of ['Failed', 'Terminated']) {
      const h = health(status([crashed(rs)]), 'uat');
      expect(h.state).toBe('down');
      expect(h.headline).toBe(
        'UAT is DOWN: the UAT deploy of 1.3.0 failed (Orchestrator function failed: worker lost)',
      );
    }
    expect(health(status([crashed('Completed')]), 'uat').state).toBe('up');
    expect(health(status([crashed('Failed', 'deployProd')]), 'prod').state).toBe('down');
  });

  test('a refresh that failed after stopping UAT brought it back; one that failed before touched nothing', () => {
    const older = inst({
      name: 'deployUat',
      instanceId: 'deploy-uat-old',
      createdTime: '2026-12-06T08:00:00Z',
      output: { outcome: 'NeedsAttention', environment: 'uat', version: '1.1.0', reason: 'rollback failed' },
    });
    const refresh = (uatStopped: boolean) =>
      inst({
        name: 'refreshUat',
        instanceId: 'refresh-uat-x',
        output: { outcome: 'Failed', uatStopped, reason: 'x' },
      });
    expect(health(status([refresh(true), older]), 'uat').state).toBe('up');
    // the refresh changed nothing: the older failure still holds UAT down
    expect(health(status([refresh(false), older]), 'uat')).toMatchObject({
      state: 'down',
      deployment: 'deploy-uat-old',
    });
    // a refresh that found personal data left UAT stopped
    expect(
      health(
        status([
          inst({
            name: 'refreshUat',
            instanceId: 'r',
            output: { outcome: 'LeakFound', reason: 'res_partner.email' },
          }),
        ]),
        'uat',
      ).headline,
    ).toBe('UAT is DOWN: the UAT refresh from PROD failed (res_partner.email)');
  });

  test('without a running deploy: the release record decides, and says when it cannot', () => {
    expect(health(status([]), 'uat')).toEqual({
      state: 'up',
      headline: 'UAT runs 1.2.0',
      version: '1.2.0',
      since: '2026-12-05T09:00:00Z',
    });
    expect(health(status([], { uat: { ok: false, error: new Error('403') } }), 'uat')).toEqual({
      state: 'unknown',
      headline: 'UAT: what runs is unknown (its release record could not be read)',
    });
    expect(health(status([], { uat: ok({ history: [] }) }), 'uat')).toEqual({
      state: 'unknown',
      headline: 'UAT: nothing deployed through the pipeline yet',
    });
    // DOWN with the version the record says runs
    expect(health(status([live('deployUat', 'migrate')]), 'uat')).toMatchObject({
      version: '1.2.0',
      since: '2026-12-06T10:05:00Z',
      step: 'updating the database (module upgrade)',
    });
  });
});

describe('what needs someone now', () => {
  test('nothing wrong: nothing listed', () => {
    expect(
      status([
        inst({
          name: 'deployUat',
          instanceId: 'd1',
          output: { outcome: 'Succeeded', environment: 'uat', version: '1.2.0' },
        }),
      ]).attention,
    ).toEqual([]);
  });

  test('a PROD approval waits: one line per deploy with who may approve, how many are still needed, until when', () => {
    const doc = status([
      inst({
        name: 'deployProd',
        instanceId: 'deploy-prod-1.3.0',
        runtimeStatus: 'Running',
        customStatus: {
          step: 'awaiting-approval',
          version: '1.3.0',
          requestedBy: 'alice',
          reason: 'monthly release',
          approvals: { required: 3, received: [{ approver: 'bob' }] },
          pendingApprovals: [
            { approver: 'carol', action: 'approval', expiresAt: '2026-12-07T12:00:00Z', nonce: 'N1' },
            { approver: 'dave', action: 'approval', expiresAt: '2026-12-07T10:00:00Z', nonce: 'N2' },
            { approver: 'erin', action: 'approval', expiresAt: '2026-12-06T12:00:00Z', nonce: 'N3' },
            { approver: 'carol', action: 'approval', expiresAt: '2026-12-07T11:00:00Z', nonce: 'N4' },
            { action: 'approval', expiresAt: '2026-12-07T12:00:00Z' },
          ],
        },
      }),
    ]);
    expect(doc.attention).toEqual([
      {
        severity: 'waiting',
        environment: 'prod',
        title: 'PROD deploy of 1.3.0 waits for approval',
        detail: 'needs 2 of carol, dave · requested by alice: monthly release',
        deployment: 'deploy-prod-1.3.0',
        until: '2026-12-07T10:00:00Z',
        waitingFor: { people: ['carol', 'dave'], needed: 2 },
        next: {
          text: 'the approvers have their signed link in Slack; list who may decide with',
          command: 'odoo-pipeline approvals',
        },
      },
    ]);
    // an approval whose link expires now is expired (erin's), and the nonce is never shown
    const pending = doc.environments.find((e) => e.name === 'prod')!.pendingApprovals;
    const approvals = pending.ok ? pending.value : [];
    expect(approvals.find((a) => a.approver === 'erin')?.expired).toBe(true);
    expect(approvals.find((a) => a.approver === 'dave')?.expired).toBe(false);
    expect(JSON.stringify(doc)).not.toMatch(/"N[1-4]"/);
  });

  test('at least one approver is always needed while an approval waits, even if more were received than required', () => {
    const doc = status([
      inst({
        name: 'deployProd',
        instanceId: 'deploy-prod-1.3.0',
        runtimeStatus: 'Running',
        customStatus: {
          step: 'awaiting-approval',
          approvals: { required: 1, received: 2 },
          pendingApprovals: [{ approver: 'carol', expiresAt: '2026-12-07T12:00:00Z' }],
        },
      }),
    ]);
    expect(doc.attention[0]).toMatchObject({
      title: 'PROD deploy of ? waits for approval',
      detail: 'needs 1 of carol',
      waitingFor: { needed: 1 },
    });
  });

  test('PROD DOWN waiting for a rollback decision: one DOWN line naming who may decide, not a second waiting line', () => {
    const doc = status([
      inst({
        name: 'deployProd',
        instanceId: 'deploy-prod-1.3.0',
        runtimeStatus: 'Running',
        customStatus: {
          step: 'awaiting-rollback-decision',
          version: '1.3.0',
          prodState: 'running-new-unhealthy',
          reason: 'monthly release',
          pendingApprovals: [
            { approver: 'carol', action: 'rollback', expiresAt: '2026-12-06T13:00:00Z' },
            { approver: 'dave', action: 'rollback', expiresAt: '2026-12-06T13:00:00Z' },
            { approver: 'erin', action: 'rollback', expiresAt: '2026-12-06T11:00:00Z' },
          ],
        },
      }),
    ]);
    expect(doc.attention).toEqual([
      {
        severity: 'down',
        environment: 'prod',
        title: 'PROD is DOWN',
        detail: 'the PROD deploy of 1.3.0 failed; waiting for the rollback decision',
        deployment: 'deploy-prod-1.3.0',
        until: '2026-12-06T13:00:00Z',
        waitingFor: { people: ['carol', 'dave'], needed: 1 },
        next: {
          text: 'decide the rollback (the approvers have a signed rollback link in Slack); see the logs with',
          command: 'odoo-pipeline logs deploy-prod-1.3.0',
        },
      },
    ]);
  });

  test('a rollback decision for a deploy that is not DOWN is listed as waiting, without the request reason', () => {
    const doc = status([
      inst({
        name: 'deployProd',
        instanceId: 'deploy-prod-1.3.0',
        runtimeStatus: 'Running',
        customStatus: {
          step: 'record',
          reason: 'monthly release',
          requestedBy: 'alice',
          pendingApprovals: [{ approver: 'carol', action: 'rollback', expiresAt: '2026-12-06T13:00:00Z' }],
        },
      }),
    ]);
    expect(doc.attention).toHaveLength(1);
    expect(doc.attention[0]).toMatchObject({
      severity: 'waiting',
      title: 'PROD rollback waits for a decision',
      detail: 'needs 1 of carol · requested by alice',
    });
  });

  test('planned downtime says to wait; an unplanned one without a decision says to restore by hand', () => {
    expect(status([live('deployUat', 'migrate')]).attention).toEqual([
      {
        severity: 'down',
        environment: 'uat',
        title: 'UAT is DOWN',
        detail: 'for the UAT deploy of 1.3.0: updating the database (module upgrade)',
        deployment: 'deployUat-live',
        next: { text: 'wait for the deploy to finish; follow it with', command: 'odoo-pipeline status' },
      },
    ]);
    const doc = status([
      inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.3.0',
        output: {
          outcome: 'NeedsAttention',
          environment: 'uat',
          version: '1.3.0',
          reason: 'restore failed',
          failedStep: 'migrate',
        },
      }),
    ]);
    // the failed deploy is the cause of the DOWN line: not listed again as a failure
    expect(doc.attention).toEqual([
      {
        severity: 'down',
        environment: 'uat',
        title: 'UAT is DOWN',
        detail:
          'the UAT deploy of 1.3.0 failed while updating the database (module upgrade) (restore failed)',
        deployment: 'deploy-uat-1.3.0',
        next: {
          text: 'see the logs, then restore by hand (docs/ROLLBACK_GUIDE.md)',
          command: 'odoo-pipeline logs deploy-uat-1.3.0',
        },
      },
    ]);
  });

  test('failed work is listed after what waits; a rejection is information, not a failure', () => {
    const doc = status([
      inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.3.0',
        output: {
          outcome: 'RolledBack',
          environment: 'uat',
          version: '1.3.0',
          reason: '[DEPLOY.MIGRATION_FAILED] column x does not exist',
          failedStep: 'migrate',
          logs: ['uat/x/logs/migration.log'],
        },
      }),
      inst({
        name: 'deployProd',
        instanceId: 'deploy-prod-1.2.0',
        output: {
          outcome: 'Rejected',
          version: '1.2.0',
          decisions: [
            { action: 'approve', verdict: 'accepted', approver: 'bob' },
            { action: 'reject', verdict: 'refused', approver: 'mallory', comment: 'ignored' },
            { action: 'reject', verdict: 'accepted', approver: 'carol', comment: 'not on a Friday' },
          ],
        },
      }),
      inst({
        name: 'refreshUat',
        instanceId: 'refresh-uat-1',
        output: { outcome: 'Failed', failedStep: 'restore', reason: 'pg_restore: out of disk' },
      }),
      inst({
        name: 'deployProd',
        instanceId: 'deploy-prod-1.4.0',
        runtimeStatus: 'Running',
        customStatus: {
          step: 'awaiting-approval',
          version: '1.4.0',
          pendingApprovals: [{ approver: 'carol', expiresAt: '2026-12-07T12:00:00Z' }],
        },
      }),
    ]);
    expect(doc.attention.map((a) => [a.severity, a.environment, a.title, a.detail, a.next])).toEqual([
      ['waiting', 'prod', 'PROD deploy of 1.4.0 waits for approval', 'needs 1 of carol', expect.anything()],
      [
        'failed',
        'uat',
        'UAT deploy of 1.3.0 failed, rolled back',
        'while updating the database (module upgrade): column x does not exist',
        { text: 'see the saved logs with', command: 'odoo-pipeline logs deploy-uat-1.3.0' },
      ],
      [
        'failed',
        'uat',
        'UAT refresh from PROD failed',
        'while restoring the PROD copy: pg_restore: out of disk',
        { text: 'see it with', command: 'odoo-pipeline status --json' },
      ],
      [
        'info',
        'prod',
        'PROD deploy of 1.2.0 rejected',
        'rejected by carol: not on a Friday',
        { text: 'request it again when ready' },
      ],
    ]);
    const prod = doc.environments.find((e) => e.name === 'prod')!;
    expect(prod.lastDeploy.ok && prod.lastDeploy.value).toMatchObject({
      rejectedBy: 'carol',
      comment: 'not on a Friday',
      outcomeText: 'rejected',
    });
  });

  test('an expired approval is information; a failure without logs points to the deploy; a rejection read from its text', () => {
    const doc = status([
      inst({ name: 'deployProd', instanceId: 'p1', output: { outcome: 'Expired', version: '1.2.0' } }),
      inst({
        name: 'deployUat',
        instanceId: 'u1',
        output: { outcome: 'Failed', environment: 'uat', version: '1.3.0', reason: 'no space left' },
      }),
    ]);
    expect(doc.attention.map((a) => [a.severity, a.title, a.detail, a.next])).toEqual([
      [
        'failed',
        'UAT deploy of 1.3.0 failed',
        'no space left',
        { text: 'see the deploy with', command: 'odoo-pipeline logs u1' },
      ],
      [
        'info',
        'PROD deploy of 1.2.0 approval expired',
        'approval expired',
        { text: 'request it again when ready' },
      ],
    ]);
    const rejected = status([
      inst({
        name: 'deployProd',
        instanceId: 'p2',
        output: { outcome: 'Rejected', failure: 'rejected by bob; see Slack' },
      }),
    ]);
    expect(rejected.attention[0].detail).toBe('rejected by bob');
  });
});
