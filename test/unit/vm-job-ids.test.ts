/**
 * VM job ids and what a finished backup job says (shared/domain/vm-job.ts): pure rules, no engine. (The
 * wait for a job on the real durable engine is test/integration/vm-job.test.ts.)
 */
import { VM_JOB_ID, parseVmJob, vmJobBackup, vmJobFailureCode, vmJobId } from '../../shared/domain/vm-job';

describe('vmJobId', () => {
  test('the same instance and step give the same id, which odoo-ops accepts', () => {
    expect(vmJobId('deploy-uat-1.2.0-abcdef012345', 'migrate')).toBe('deploy-uat-1.2.0-abcdef012345.migrate');
    expect(vmJobId('deploy-uat-1.2.0-abcdef012345', 'migrate')).toBe(
      vmJobId('deploy-uat-1.2.0-abcdef012345', 'migrate'),
    );
  });
  test('instance ids odoo-ops would refuse become valid ids, distinct for distinct instances', () => {
    const odd = ['a/b:c d', '../../etc', '-x', 'é'.repeat(10), 'x'.repeat(300), 'x'.repeat(299) + 'y'];
    const ids = odd.map((i) => vmJobId(i, 'migrate'));
    for (const id of ids) expect(id).toMatch(VM_JOB_ID);
    expect(new Set(ids).size).toBe(odd.length);
    expect(() => vmJobId('x', 'Bad Step')).toThrow('invalid job step name');
  });
});

describe('backup jobs (odoo-ops job start backup --blob)', () => {
  const sha = (c: string) => c.repeat(64);
  // the status line odoo-ops prints for a finished blob backup, as the integration test records it
  const status = (state: string, steps: Record<string, unknown>[]) => ({
    verb: 'job',
    ok: true,
    exit: 0,
    id: 'deploy-uat-1.backup',
    kind: 'backup',
    state,
    exit_code: state === 'succeeded' ? 0 : 6,
    message: `job deploy-uat-1.backup ${state}`,
    steps,
  });

  test("a failed upload's own code wins over the exit code (a wrong SAS is BLOB.FORBIDDEN, not BACKUP.FAILED)", () => {
    const job = parseVmJob(
      status('failed', [
        { verb: 'backup-db', ok: false, exit: 6, message: 'pg_dump failed (exit statuses: 0 141)' },
        {
          verb: 'upload',
          ok: false,
          exit: 6,
          code: 'BLOB.FORBIDDEN',
          message: 'Put Block … refused it (403)',
        },
      ]),
    )!;
    expect(job.failureCode).toBe('BLOB.FORBIDDEN');
    expect(vmJobFailureCode(job)).toBe('BLOB.FORBIDDEN');
    // a failing step without a code (or with something that is not one) falls back to the exit code
    const plain = parseVmJob(
      status('failed', [{ verb: 'backup-db', ok: false, exit: 6, code: 'not a code; rm -rf', message: 'x' }]),
    )!;
    expect(plain.failureCode).toBeUndefined();
    expect(vmJobFailureCode(plain)).toBe('BACKUP.FAILED');
  });

  test('vmJobBackup reads the id, parts and total size from the manifest step, and nothing else', () => {
    const parts = {
      'db.dump': { size: 3205530, sha256: sha('a') },
      'filestore.tar': { size: 10240, sha256: sha('b') },
    };
    const done = parseVmJob(
      status('succeeded', [
        { verb: 'upload', ok: true, part: 'db.dump' },
        { verb: 'manifest', ok: true, backup_id: 'uat/20261206T100000Z-1.4.0', bytes: 3215770, parts },
      ]),
    )!;
    expect(vmJobBackup(done)).toEqual({ backupId: 'uat/20261206T100000Z-1.4.0', bytes: 3215770, parts });
    // not finished, not a blob backup, or a malformed part: no backup to use
    expect(vmJobBackup({ ...done, state: 'running' })).toBeUndefined();
    expect(vmJobBackup({ ...done, steps: done.steps.slice(0, 1) })).toBeUndefined();
    const bad = { ...done.steps[1], parts: { 'db.dump': { size: -1.5, sha256: 'zz' } } };
    expect(vmJobBackup({ ...done, steps: [bad] })).toBeUndefined();
  });
});
