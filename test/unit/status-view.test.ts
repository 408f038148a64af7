import {
  assembleStatus,
  describeError,
  summarizeFailure,
  formatBytes,
  formatDuration,
  formatRelative,
  progressOf,
  type InstanceInfo,
  type StatusInputs,
} from '../../shared/domain/status-view';
import { PipelineError } from '../../shared/domain/errors';

const NOW = new Date('2026-11-27T12:00:00Z');
const ok = <T>(value: T) => ({ ok: true as const, value });
const fail = (error: unknown) => ({ ok: false as const, error });
const SHA = (c: string) => c.repeat(40);

function inst(p: Partial<InstanceInfo> & { name: string; instanceId: string }): InstanceInfo {
  return {
    runtimeStatus: 'Completed',
    createdTime: '2026-11-27T10:00:00Z',
    lastUpdatedTime: '2026-11-27T10:05:00Z',
    customStatus: null,
    output: null,
    ...p,
  };
}

function inputs(over: Partial<StatusInputs> = {}): StatusInputs {
  return {
    now: NOW,
    environments: ['uat', 'prod'],
    ledger: {
      uat: ok({
        current: {
          version: '1.2.0',
          sha: SHA('b'),
          deployedAt: '2026-11-27T09:00:00Z',
          imageRef: 'reg/odoo-mta:uat-v1.2.0',
        },
        history: [
          { version: '1.2.0', sha: SHA('b'), deployedAt: '2026-11-27T09:00:00Z' },
          { version: '1.1.0', sha: SHA('a'), deployedAt: '2026-11-26T09:00:00Z' },
        ],
      }),
      prod: ok({ history: [] }),
    },
    instances: ok([
      inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.1.0-aaaaaaaaaaaa',
        createdTime: '2026-11-26T08:00:00Z',
        lastUpdatedTime: '2026-11-26T08:10:00Z',
        output: { outcome: 'Succeeded', version: '1.1.0', environment: 'uat' },
      }),
      inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.3.0-cccccccccccc',
        lastUpdatedTime: '2026-11-27T10:20:00Z',
        output: {
          outcome: 'RolledBack',
          version: '1.3.0',
          environment: 'uat',
          reason: '[DEPLOY.MIGRATION_FAILED] boom',
          failedStep: 'migrate',
          logs: ['uat/20261127T100000Z-1.2.0/logs/migration.log'],
        },
      }),
      inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.4.0-dddddddddddd',
        runtimeStatus: 'Running',
        createdTime: '2026-11-27T11:58:00Z',
        customStatus: {
          step: 'migrate',
          environment: 'uat',
          version: '1.4.0',
          startedAt: '2026-11-27T11:58:00Z',
          elapsedMs: 95_000,
          backupBytes: 4096,
        },
      }),
      inst({
        name: 'deployProd',
        instanceId: 'deploy-prod-1.2.0-bbbbbbbbbbbb',
        runtimeStatus: 'Running',
        createdTime: '2026-11-27T11:00:00Z',
        customStatus: {
          kind: 'deployProd',
          step: 'awaiting-approval',
          environment: 'prod',
          version: '1.2.0',
          requestedBy: 'alice',
          reason: 'monthly release',
          approvals: { required: 2, received: [{ approver: 'bob', at: '2026-11-27T11:30:00Z' }] },
          pendingApprovals: [
            {
              approver: 'carol',
              nonce: 'NONCE-SECRET-1',
              action: 'approval',
              expiresAt: '2026-11-28T11:00:00Z',
            },
            {
              approver: 'dave',
              nonce: 'NONCE-SECRET-2',
              action: 'approval',
              expiresAt: '2026-11-27T11:59:00Z',
            },
          ],
        },
      }),
      inst({
        name: 'refreshUat',
        instanceId: 'refresh-uat-20261120',
        createdTime: '2026-11-20T00:00:00Z',
        output: { outcome: 'Succeeded' },
      }),
      inst({
        name: 'refreshUat',
        instanceId: 'refresh-uat-20261126',
        createdTime: '2026-11-26T00:00:00Z',
        lastUpdatedTime: '2026-11-26T00:30:00Z',
        output: { outcome: 'Succeeded', counts: { partners: 1200, messages: 5 } },
      }),
    ]),
    lanes: {
      uat: ok(
        inst({
          name: 'deployLane',
          instanceId: 'lane-uat',
          runtimeStatus: 'Running',
          customStatus: {
            environment: 'uat',
            running: 'deploy-uat-1.4.0-dddddddddddd',
            waiting: 'deploy-uat-1.5.0-eeeeeeeeeeee',
          },
        }),
      ),
      prod: ok(undefined),
    },
    backups: {
      uat: ok([
        {
          id: 'uat/20261126T080000Z-1.1.0',
          environment: 'uat',
          version: '1.1.0',
          createdAt: '2026-11-26T08:00:00Z',
          complete: true,
          totalSize: 2048,
          parts: ['db.dump', 'filestore.tar'],
        },
        {
          id: 'uat/20261127T115900Z-1.2.0',
          environment: 'uat',
          version: '1.2.0',
          createdAt: new Date('2026-11-27T11:59:00Z'),
          complete: false,
        },
        {
          id: 'uat/20261127T100000Z-1.2.0',
          environment: 'uat',
          version: '1.2.0',
          createdAt: '2026-11-27T10:00:00Z',
          complete: true,
          totalSize: 3 * 1024 * 1024,
          parts: ['db.dump'],
          verification: { ok: true, at: '2026-11-27T10:01:00Z' },
        },
        {
          id: 'uat/20261125T100000Z-1.0.0',
          environment: 'uat',
          version: '1.0.0',
          createdAt: '2026-11-25T10:00:00Z',
          complete: true,
          totalSize: 10,
          parts: ['db.dump'],
          verification: { ok: false, at: '2026-11-26T10:01:00Z', problems: ['db.dump: sha256 differs'] },
        },
      ]),
      prod: ok([]),
    },
    ...over,
  };
}

describe('status view', () => {
  it('shows per environment what runs, since when, the last outcome, the deploy in progress and the queue', () => {
    const doc = assembleStatus(inputs());
    expect(doc.generatedAt).toBe(NOW.toISOString());
    expect(doc.problems).toEqual([]);
    const uat = doc.environments.find((e) => e.name === 'uat')!;
    expect(uat.running).toEqual({
      ok: true,
      value: {
        version: '1.2.0',
        sha: SHA('b'),
        since: '2026-11-27T09:00:00Z',
        imageRef: 'reg/odoo-mta:uat-v1.2.0',
        previousVersion: '1.1.0',
      },
    });
    expect(uat.lastDeploy.ok && uat.lastDeploy.value).toMatchObject({
      id: 'deploy-uat-1.3.0-cccccccccccc',
      outcome: 'RolledBack',
      failedStep: 'migrate',
      failure: 'boom',
      code: 'DEPLOY.MIGRATION_FAILED',
      logs: ['uat/20261127T100000Z-1.2.0/logs/migration.log'],
    });
    expect(uat.inProgress.ok && uat.inProgress.value).toMatchObject({
      id: 'deploy-uat-1.4.0-dddddddddddd',
      version: '1.4.0',
      elapsedMs: 120_000,
      backupBytes: 4096,
      progress: { step: 'migrate', index: 6, total: 11, percent: 50 },
    });
    expect(uat.queued).toEqual({ ok: true, value: ['deploy-uat-1.5.0-eeeeeeeeeeee'] });
    expect(uat.pendingApprovals).toEqual({ ok: true, value: [] });
    const prod = doc.environments.find((e) => e.name === 'prod')!;
    expect(prod.running).toEqual({ ok: true, value: null });
    expect(prod.lastDeploy).toEqual({ ok: true, value: null });
    expect(prod.inProgress.ok && prod.inProgress.value).toMatchObject({
      kind: 'deployProd',
      requestedBy: 'alice',
      progress: { step: 'awaiting-approval', index: 2 },
    });
  });

  it('lists pending approvals with expiry and never the nonce', () => {
    const doc = assembleStatus(inputs());
    const prod = doc.environments.find((e) => e.name === 'prod')!;
    expect(prod.pendingApprovals.ok && prod.pendingApprovals.value).toEqual([
      {
        deployment: 'deploy-prod-1.2.0-bbbbbbbbbbbb',
        environment: 'prod',
        version: '1.2.0',
        requestedBy: 'alice',
        reason: 'monthly release',
        approver: 'carol',
        action: 'approval',
        expiresAt: '2026-11-28T11:00:00Z',
        expired: false,
        required: 2,
        received: 1,
        step: 'awaiting-approval',
      },
      expect.objectContaining({ approver: 'dave', expired: true }),
    ]);
    expect(JSON.stringify(doc)).not.toContain('NONCE-SECRET');
    expect(JSON.stringify(doc)).not.toContain('nonce');
  });

  it('shows the newest backups first with size and verification state', () => {
    const doc = assembleStatus(inputs({ backupCount: 3 }));
    const b = doc.environments[0].backups;
    expect(b.ok && b.value.map((x) => [x.id, x.state, x.sizeBytes])).toEqual([
      ['uat/20261127T115900Z-1.2.0', 'incomplete', undefined],
      ['uat/20261127T100000Z-1.2.0', 'verified', 3 * 1024 * 1024],
      ['uat/20261126T080000Z-1.1.0', 'complete', 2048],
    ]);
    const all = assembleStatus(inputs({ backupCount: 10 })).environments[0].backups;
    expect(all.ok && all.value[3]).toMatchObject({ state: 'corrupt', problems: ['db.dump: sha256 differs'] });
  });

  it('shows the last refresh with its counts', () => {
    const uat = assembleStatus(inputs()).environments[0];
    expect(uat.lastRefresh).toEqual({
      ok: true,
      value: {
        id: 'refresh-uat-20261126',
        runtimeStatus: 'Completed',
        outcome: 'Succeeded',
        startedAt: '2026-11-26T00:00:00Z',
        updatedAt: '2026-11-26T00:30:00Z',
        counts: { partners: 1200, messages: 5 },
        step: undefined,
        outcomeText: 'succeeded',
      },
    });
    expect(assembleStatus(inputs()).environments[1].lastRefresh).toEqual({ ok: true, value: null });
  });

  it('degrades part by part: an unreadable source is named, the rest still shows', () => {
    const doc = assembleStatus(
      inputs({
        ledger: {
          uat: fail(
            new PipelineError(
              'BLOB.UNAVAILABLE',
              'reading ledger/uat.json: connect ECONNREFUSED http://127.0.0.1:1/devstoreaccount1?sig=abc',
            ),
          ),
          prod: ok({ history: [] }),
        },
        backups: { uat: fail(new Error('boom')) },
      }),
    );
    const uat = doc.environments[0];
    expect(uat.running.ok).toBe(false);
    expect(!uat.running.ok && uat.running.error.code).toBe('BLOB.UNAVAILABLE');
    expect(!uat.running.ok && uat.running.error.message).not.toMatch(/http|sig=abc/);
    expect(uat.backups).toEqual({ ok: false, error: { code: 'STATUS.UNAVAILABLE', message: 'boom' } });
    expect(uat.inProgress.ok).toBe(true);
    expect(doc.environments[1].backups).toEqual({
      ok: false,
      error: { code: 'STATUS.NOT_READ', message: 'not read' },
    });
    expect(doc.problems.map((p) => `${p.environment}.${p.part}:${p.code}`)).toEqual([
      'uat.running:BLOB.UNAVAILABLE',
      'uat.backups:STATUS.UNAVAILABLE',
      'prod.backups:STATUS.NOT_READ',
    ]);
  });

  it('marks every instance-based part unavailable when the orchestration store cannot be read', () => {
    const doc = assembleStatus(inputs({ instances: fail(new Error('[DURABLE.UNAVAILABLE] 503')) }));
    for (const e of doc.environments) {
      for (const part of [e.lastDeploy, e.inProgress, e.pendingApprovals, e.lastRefresh])
        expect(part).toEqual({ ok: false, error: { code: 'DURABLE.UNAVAILABLE', message: '503' } });
      expect(e.running.ok).toBe(true);
    }
  });

  it('falls back to the newest live instance when the lane names none, and ignores other environments', () => {
    const doc = assembleStatus(inputs({ lanes: {} }));
    expect(doc.environments[0].queued).toEqual({ ok: true, value: [] });
    const uat = doc.environments[0].inProgress;
    expect(uat.ok && uat.value?.id).toBe('deploy-uat-1.4.0-dddddddddddd');
  });

  it('a failed orchestration shows its runtime status as the outcome', () => {
    const doc = assembleStatus(
      inputs({
        instances: ok([
          inst({
            name: 'deployUat',
            instanceId: 'deploy-uat-2.0.0-ffffffffffff',
            runtimeStatus: 'Failed',
            output: 'Orchestrator function failed: x',
          }),
        ]),
      }),
    );
    const last = doc.environments[0].lastDeploy;
    expect(last.ok && last.value).toMatchObject({
      outcome: 'Failed',
      outcomeText: 'failed',
      failure: 'Orchestrator function failed: x',
    });
  });

  it('computes progress on the runbook, leaves unknown steps without a percentage', () => {
    expect(progressOf('deployUat', 'prepare')).toEqual({
      step: 'prepare',
      text: 'preparing',
      index: 1,
      total: 11,
      percent: 0,
    });
    expect(progressOf('deployUat', 'wait-image')).toMatchObject({ index: 2 });
    expect(progressOf('deployUat', 'done')).toMatchObject({ percent: 100 });
    expect(progressOf('deployUat', 'rollback')).toEqual({ step: 'rollback', text: 'rolling back' });
    expect(progressOf('refreshUat', 'restore')).toEqual({ step: 'restore', text: 'restoring the PROD copy' });
    // waiting for a person: its place in the runbook, no percentage (it would stand still for hours)
    expect(progressOf('deployProd', 'awaiting-approval')).toEqual({
      step: 'awaiting-approval',
      text: 'waiting for approval',
      waitingForPerson: true,
      index: 2,
      total: 12,
    });
    expect(progressOf('deployProd', undefined)).toEqual({ step: 'starting' });
  });

  it('formats sizes and durations for people', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
    expect(formatBytes(undefined)).toBe('?');
    expect(formatDuration(42_000)).toBe('42s');
    expect(formatDuration(185_000)).toBe('3m 05s');
    expect(formatDuration(3_720_000)).toBe('1h 02m');
    expect(formatDuration(3 * 86_400_000)).toBe('3d 0h');
    expect(formatRelative('2026-11-27T11:59:00Z', NOW)).toBe('1m 00s ago');
    expect(formatRelative('2026-11-27T14:00:00Z', NOW)).toBe('in 2h 00m');
    expect(formatRelative('nonsense', NOW)).toBe('?');
    expect(describeError('x')).toEqual({ code: 'STATUS.UNAVAILABLE', message: 'x' });
  });

  describe('health: one answer for what runs and whether it serves', () => {
    const ledgerUat = {
      uat: ok({
        current: { version: '1.2.0', sha: SHA('b'), deployedAt: '2026-11-27T09:00:00Z' },
        history: [],
      }),
      prod: ok({ history: [] }),
    };
    const health = (instances: InstanceInfo[]) =>
      assembleStatus(inputs({ ledger: ledgerUat, instances: ok(instances) })).environments[0].health;

    it('a UAT deploy whose rollback failed (NeedsAttention) leaves UAT DOWN until a later deploy succeeds', () => {
      const broken = inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.3.0-cccccccccccc',
        createdTime: '2026-11-27T10:00:00Z',
        output: {
          outcome: 'NeedsAttention',
          failedStep: 'migrate',
          reason: '[DEPLOY.MIGRATION_FAILED] boom — ROLLBACK FAILED: restore failed',
        },
      });
      expect(health([broken])).toMatchObject({
        ok: true,
        value: { state: 'down', deployment: 'deploy-uat-1.3.0-cccccccccccc', version: '1.2.0' },
      });
      const fixed = inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.2.0-bbbbbbbbbbbb-r1',
        createdTime: '2026-11-27T11:00:00Z',
        output: { outcome: 'Succeeded' },
      });
      expect(health([broken, fixed])).toMatchObject({ ok: true, value: { state: 'up', version: '1.2.0' } });
      // a later deploy that failed before stopping anything does not bring it back
      const early = inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.4.0-dddddddddddd',
        createdTime: '2026-11-27T12:00:00Z',
        output: { outcome: 'Failed', failedStep: 'preflight' },
      });
      expect(health([broken, early])).toMatchObject({
        ok: true,
        value: { state: 'down', deployment: 'deploy-uat-1.3.0-cccccccccccc' },
      });
    });

    it('a refresh that found personal data keeps UAT stopped: DOWN, with the cause', () => {
      const leak = inst({
        name: 'refreshUat',
        instanceId: 'refresh-uat-1',
        customStatus: { target: 'uat', reason: 'fresh data please' },
        output: {
          outcome: 'LeakFound',
          reason: '[REFRESH.PII_LEAK] res_partner.email: 3 rows',
          uatStopped: true,
        },
      });
      const h = health([leak]);
      expect(h).toMatchObject({ ok: true, value: { state: 'down', deployment: 'refresh-uat-1' } });
      expect(h.ok && h.value.headline).toContain('res_partner.email: 3 rows');
      expect(h.ok && h.value.headline).not.toContain('fresh data please');
    });

    it('a deploy in its stop → health steps holds the environment down, as planned', () => {
      const live = inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.4.0-dddddddddddd',
        runtimeStatus: 'Running',
        customStatus: { step: 'migrate', environment: 'uat', version: '1.4.0' },
      });
      expect(health([live])).toMatchObject({
        ok: true,
        value: { state: 'down', planned: true, step: 'updating the database (module upgrade)' },
      });
      expect(health([{ ...live, customStatus: { step: 'backup', environment: 'uat' } }])).toMatchObject({
        ok: true,
        value: { state: 'up' },
      });
    });
  });

  it('summarizeFailure: one line without code prefix, local paths, URLs or secrets; the whole text as detail', () => {
    const raw =
      '[DEPLOY.MIGRATION_FAILED] odoo-ops migrate failed (exit 5): see /tmp/sandbox-x1/vm/opt/odoo/state/logs/migrate-1.log at https://reg.example/v2?sig=abc password=hunter2\nTraceback (most recent call last):\n  File "/usr/lib/python3/odoo/modules/loading.py", line 1';
    const s = summarizeFailure(raw)!;
    expect(s.code).toBe('DEPLOY.MIGRATION_FAILED');
    expect(s.summary).toBe(
      'odoo-ops migrate failed (exit 5): see …/migrate-1.log at <url> password=<redacted>',
    );
    expect(s.detail).toContain('Traceback');
    expect(JSON.stringify(s)).not.toMatch(/\/tmp\/|\/usr\/lib|hunter2|sig=abc|reg\.example/);
    expect(summarizeFailure('x'.repeat(400))!.summary.length).toBeLessThanOrEqual(160);
  });
});
