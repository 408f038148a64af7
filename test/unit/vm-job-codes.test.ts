/**
 * A failed VM job names why, by the exit code `odoo-ops` documents (docs/OPERATIONS_GUIDE.md, "Output,
 * streams and exit codes"): the deploy's failure text and its rollback advice hang on this code.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { vmJobFailureCode } from '../../shared/domain/vm-job';

const failed = (exitCode: number | undefined) => ({ state: 'failed' as const, kind: 'migrate', exitCode });

test.each([
  [3, 'OPS.LOCKED'],
  [5, 'DEPLOY.MIGRATION_FAILED'],
  [6, 'BACKUP.FAILED'],
  [7, 'RESTORE.FAILED'],
  [8, 'REGISTRY.IMAGE_MISSING'],
  [9, 'OPS.STATE'],
  [10, 'OPS.CONFIG'],
  [1, 'OPS.JOB_FAILED'],
  [2, 'OPS.JOB_FAILED'],
  [undefined, 'OPS.JOB_FAILED'],
])('a job that failed with exit %p is %s', (exitCode, code) => {
  expect(vmJobFailureCode(failed(exitCode))).toBe(code);
});

test('a job whose runner died without an exit code is lost, whatever code it might carry', () => {
  expect(vmJobFailureCode({ state: 'lost', kind: 'backup', exitCode: 5 })).toBe('OPS.JOB_LOST');
});

test("each exit code mapped here is the one odoo-ops' guide gives for that failure", () => {
  const guide = readFileSync(path.join(__dirname, '../../docs/OPERATIONS_GUIDE.md'), 'utf8');
  const meaning = (exit: number) => new RegExp(`^\\| ${exit} +\\| (.*)$`, 'm').exec(guide)?.[1] ?? '';
  expect(meaning(3)).toMatch(/lock busy/);
  expect(meaning(5)).toMatch(/migration failed/);
  expect(meaning(6)).toMatch(/backup failed/);
  expect(meaning(7)).toMatch(/restore failed/);
  expect(meaning(8)).toMatch(/image not on the VM/);
  expect(meaning(9)).toMatch(/refused in this state/);
  expect(meaning(10)).toMatch(/configuration or tool missing/);
});
