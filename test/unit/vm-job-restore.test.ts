/**
 * What the pipeline reads from a finished `odoo-ops job start restore --blob` job (the refresh's table
 * count, the PostgreSQL role of the new database, the filestore's files): from the job's status line as
 * odoo-ops prints it (the steps' own result lines: restore-db, verify, restore-filestore, verify, restore).
 */
import { parseVmJob, vmJobFailureCode, vmJobRestore } from '../../shared/domain/vm-job';

const line = (state: string, steps: Record<string, unknown>[], exit = 0) =>
  parseVmJob({
    verb: 'job',
    ok: true,
    exit: 0,
    message: `job r1 ${state}`,
    id: 'refresh-uat-1.restore',
    kind: 'restore',
    args: '--blob prod/20261206T100000Z-1.3.0 --into odoo_refresh_1',
    state,
    pid: 4242,
    exit_code: state === 'running' ? null : exit,
    started_at: '2026-12-06T10:00:00Z',
    ended_at: '2026-12-06T10:03:00Z',
    log: '/opt/odoo/state/jobs/refresh-uat-1.restore/log',
    steps,
  })!;

const restoreDb = {
  verb: 'restore-db',
  ok: true,
  exit: 0,
  message: 'database odoo_refresh_1 restored (not swapped: odoo-ops swap-db odoo_refresh_1)',
  tables: 412,
  installed_modules: 87,
  database: 'odoo_refresh_1',
  format: 'zstd',
  pg_user: 'odoo',
};
const verify = (part: string, size: number) => ({
  verb: 'verify',
  ok: true,
  exit: 0,
  message: `${part} matches its manifest`,
  part,
  size,
  sha256: 'a'.repeat(64),
});

test('a refresh restore into a new database: tables, role and files of what was restored', () => {
  const job = line('succeeded', [
    restoreDb,
    verify('db.dump', 120_000),
    {
      verb: 'restore-filestore',
      ok: true,
      exit: 0,
      message: 'filestore of odoo_refresh_1 restored',
      files: 3110,
    },
    verify('filestore.tar', 50_000),
    {
      verb: 'restore',
      ok: true,
      exit: 0,
      message: 'backup restored into database odoo_refresh_1',
      backup_id: 'prod/20261206T100000Z-1.3.0',
      database: 'odoo_refresh_1',
      parts: {},
    },
  ]);
  expect(vmJobRestore(job)).toEqual({
    backupId: 'prod/20261206T100000Z-1.3.0',
    database: 'odoo_refresh_1',
    tables: 412,
    pgUser: 'odoo',
    files: 3110,
  });
});

test('without the filestore part, files stay unknown (not 0): the refresh reports no filestore copied', () => {
  const job = line('succeeded', [
    restoreDb,
    verify('db.dump', 1),
    { verb: 'restore', ok: true, exit: 0, message: 'ok' },
  ]);
  expect(vmJobRestore(job)?.files).toBeUndefined();
  expect(vmJobRestore(job)?.tables).toBe(412);
});

test('a job that has not succeeded restored nothing the pipeline may use; a corrupt part is BACKUP.CORRUPT', () => {
  expect(vmJobRestore(line('running', [restoreDb]))).toBeUndefined();
  const failed = line(
    'failed',
    [
      restoreDb,
      {
        verb: 'restore',
        ok: false,
        exit: 7,
        code: 'BACKUP.CORRUPT',
        message: 'prod/20261206T100000Z-1.3.0/db.dump differs from its manifest: nothing swapped',
      },
    ],
    7,
  );
  expect(vmJobRestore(failed)).toBeUndefined();
  expect(vmJobFailureCode(failed)).toBe('BACKUP.CORRUPT');
  // a restore job without a restore-db step (a backup job's line) is not a restore
  expect(vmJobRestore(line('succeeded', [{ verb: 'manifest', ok: true }]))).toBeUndefined();
});
