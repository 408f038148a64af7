/**
 * Error codes and environments on the status page (issue #20, round 4): an error's own `code` is shown
 * only when it is a pipeline code (an SDK can put anything there, a secret included, and the code is not
 * redacted); data that cannot be read is named as bad data, not a crash; work is attributed to the
 * environment its instance id names only when the id starts with it.
 */
import { assembleStatus, describeError, type StatusInputs } from '../../shared/domain/status-view';

describe("an error's own code", () => {
  test.each(['A.B', 'AB_1.C_2', 'BLOB.NOT.FOUND'])('%s is a pipeline code: shown as the code', (code) => {
    expect(describeError(Object.assign(new Error('x'), { code })).code).toBe(code);
  });

  test.each([
    'BLOB.UNAVAILABLE sig=s3cr3t',
    'x BLOB.UNAVAILABLE',
    'blob.unavailable',
    'BLOB',
    'BLOB.',
    '1BLOB.X',
    'BLOB.x',
    'B-LOB.X',
    'BLOB.X-Y',
  ])('%s is not: the code comes from the message, else the fallback', (code) => {
    expect(describeError(Object.assign(new Error('[LEDGER.BAD] y'), { code })).code).toBe('LEDGER.BAD');
    expect(describeError(Object.assign(new Error('plain'), { code })).code).toBe('STATUS.UNAVAILABLE');
  });

  test('a code on something that is not an object is ignored', () => {
    expect(describeError('BLOB.X')).toEqual({ code: 'STATUS.UNAVAILABLE', message: 'BLOB.X' });
    expect(describeError(null)).toEqual({ code: 'STATUS.UNAVAILABLE', message: 'unknown error' });
    expect(describeError({ code: 'BLOB.X' }).code).toBe('BLOB.X');
  });
});

describe('a part whose data cannot be read', () => {
  test('is named as bad data; the other parts still show', () => {
    const inputs: StatusInputs = {
      now: new Date('2026-12-06T12:00:00Z'),
      environments: ['uat'],
      // a release record without its history list (a hand-edited or truncated blob)
      ledger: {
        uat: {
          ok: true,
          value: { current: { version: '1.2.0', sha: 'b'.repeat(40), deployedAt: 'x' } } as never,
        },
      },
      instances: { ok: true, value: [] },
      lanes: {},
      backups: { uat: { ok: true, value: [] } },
    };
    const doc = assembleStatus(inputs);
    const uat = doc.environments[0];
    expect(uat.running).toEqual({ ok: false, error: expect.objectContaining({ code: 'STATUS.BAD_DATA' }) });
    expect(doc.problems).toEqual([
      expect.objectContaining({ environment: 'uat', part: 'running', code: 'STATUS.BAD_DATA' }),
    ]);
    expect(uat.backups).toEqual({ ok: true, value: [] });
  });
});

describe('which environment a deploy belongs to', () => {
  const docFor = (instanceId: string) =>
    assembleStatus({
      now: new Date('2026-12-06T12:00:00Z'),
      environments: ['uat', 'prod', 'staging'],
      ledger: {},
      instances: {
        ok: true,
        value: [
          {
            name: 'deployUat',
            instanceId,
            runtimeStatus: 'Completed',
            createdTime: '2026-12-06T10:00:00Z',
            lastUpdatedTime: '2026-12-06T10:05:00Z',
            output: { outcome: 'Succeeded' },
          },
        ],
      },
      lanes: {},
      backups: {},
    });
  const owner = (instanceId: string) =>
    docFor(instanceId)
      .environments.filter((e) => e.lastDeploy.ok && e.lastDeploy.value)
      .map((e) => e.name);

  test('from the instance id when nothing else names it, only when the id starts with deploy-<env>-', () => {
    expect(owner('deploy-staging-1.2.0-abcdef012345')).toEqual(['staging']);
    expect(owner('redeploy-prod-1.2.0-abcdef012345')).toEqual([]);
    expect(owner('x-deploy-prod-1')).toEqual([]);
  });
});
