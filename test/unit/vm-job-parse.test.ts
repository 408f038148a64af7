/**
 * A VM job as `odoo-ops job status` reports it (docker/ops/odoo-ops `job_report`: id, kind, args, state,
 * pid, exit_code, started_at, ended_at, log, steps, log_tail, then message), read into the shape the
 * orchestrators wait on (issue #20, round 4); and job ids that odoo-ops accepts, at their edges.
 */
import { VM_JOB_ID, parseVmJob, vmJobDone, vmJobId } from '../../shared/domain/vm-job';

/** a `job status` line as odoo-ops prints it for a failed migration */
const FAILED_LINE = JSON.parse(
  '{"verb":"job","ok":false,"id":"deploy-uat-1.2.0-abcdef012345.migrate","kind":"migrate","args":"sale_x",' +
    '"state":"failed","pid":4242,"exit_code":5,"started_at":"2026-12-06T10:00:00Z","ended_at":"2026-12-06T10:03:00Z",' +
    '"log":"/var/lib/odoo-ops/jobs/deploy-uat-1.2.0-abcdef012345.migrate/log",' +
    '"steps":[{"step":"migrate","ok":false,"message":"column x does not exist"}],"log_tail":"...",' +
    '"message":"job deploy-uat-1.2.0-abcdef012345.migrate failed (exit 5): column x does not exist"}',
) as Record<string, unknown>;

describe('reading a job status line', () => {
  test('a finished job: its state, exit code, times, log and steps', () => {
    expect(parseVmJob(FAILED_LINE)).toEqual({
      id: 'deploy-uat-1.2.0-abcdef012345.migrate',
      kind: 'migrate',
      state: 'failed',
      exitCode: 5,
      startedAt: '2026-12-06T10:00:00Z',
      endedAt: '2026-12-06T10:03:00Z',
      message: 'job deploy-uat-1.2.0-abcdef012345.migrate failed (exit 5): column x does not exist',
      log: '/var/lib/odoo-ops/jobs/deploy-uat-1.2.0-abcdef012345.migrate/log',
      steps: [{ step: 'migrate', ok: false, message: 'column x does not exist' }],
    });
  });

  test('a job still starting: no pid, no exit code, empty times and kind are left out, not made up', () => {
    const j = parseVmJob({
      id: 'j1',
      kind: '',
      state: 'starting',
      pid: null,
      exit_code: null,
      started_at: '',
      ended_at: '',
      log: '',
      steps: [],
      message: 'job j1 is starting',
    });
    expect(j).toEqual({ id: 'j1', kind: '', state: 'starting', message: 'job j1 is starting', steps: [] });
    expect(vmJobDone(j!)).toBe(false);
  });

  test('whether the start call started it is kept either way', () => {
    expect(parseVmJob({ id: 'j', state: 'running', started: true })?.started).toBe(true);
    expect(parseVmJob({ id: 'j', state: 'running', started: false })?.started).toBe(false);
    expect(parseVmJob({ id: 'j', state: 'running', started: 'yes' })).not.toHaveProperty('started');
  });

  test('each state odoo-ops reports is read; anything else is no job', () => {
    for (const state of ['starting', 'running', 'succeeded', 'failed', 'lost'])
      expect(parseVmJob({ id: 'j', state })?.state).toBe(state);
    for (const state of ['', 'done', 'FAILED', 5, undefined])
      expect(parseVmJob({ id: 'j', state } as Record<string, unknown>)).toBeUndefined();
    expect(parseVmJob({ id: 7, state: 'running' })).toBeUndefined();
    expect(parseVmJob({ state: 'running' })).toBeUndefined();
  });

  test('fields of the wrong type are dropped: no kind, message or steps are invented from junk', () => {
    expect(
      parseVmJob({
        id: 'j',
        state: 'failed',
        kind: 3,
        exit_code: '5',
        started_at: 12,
        message: { text: 'x' },
        log: false,
        steps: [null, 'step', 3, { step: 'backup', ok: true }],
      }),
    ).toEqual({ id: 'j', kind: '', state: 'failed', message: '', steps: [{ step: 'backup', ok: true }] });
    expect(parseVmJob({ id: 'j', state: 'failed', steps: { step: 'x' } })?.steps).toEqual([]);
    expect(parseVmJob({ id: 'j', state: 'failed', exit_code: 0 })?.exitCode).toBe(0);
  });
});

describe('job ids at their edges', () => {
  test('odoo-ops accepts 1 to 128 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit', () => {
    expect(VM_JOB_ID.test('a'.repeat(128))).toBe(true);
    for (const bad of ['a'.repeat(129), '-a', '.a', 'a/b', 'a b', 'a\n', ''])
      expect(VM_JOB_ID.test(bad)).toBe(false);
  });

  test('a step name is lower case, starts with a letter, at most 31 characters', () => {
    expect(vmJobId('x', 'a'.repeat(31))).toBe(`x.${'a'.repeat(31)}`);
    for (const bad of ['a'.repeat(32), '1migrate', 'migrate!', 'x/migrate', 'migrate\n', ''])
      expect(() => vmJobId('x', bad)).toThrow('invalid job step name');
  });

  test('an instance id odoo-ops would refuse keeps a readable prefix and a hash of the whole id', () => {
    expect(vmJobId('deploy uat/1.2.0', 'migrate')).toMatch(/^deploy_uat_1\.2\.0-[0-9a-f]{8}\.migrate$/);
    expect(vmJobId('..//x', 'migrate')).toMatch(/^x-[0-9a-f]{8}\.migrate$/);
    // nothing readable left: a fixed word, still distinct per instance
    const a = vmJobId('éé', 'migrate');
    const b = vmJobId('ÉÉ', 'migrate');
    expect(a).toMatch(/^job-[0-9a-f]{8}\.migrate$/);
    expect(b).toMatch(/^job-[0-9a-f]{8}\.migrate$/);
    expect(a).not.toBe(b);
    // ids that differ only in their last character still differ
    expect(vmJobId(`${'x'.repeat(200)}a`, 'migrate')).not.toBe(vmJobId(`${'x'.repeat(200)}b`, 'migrate'));
    expect(vmJobId('x'.repeat(300), 'migrate').length).toBeLessThanOrEqual(128);
    expect(vmJobId('x'.repeat(300), 'migrate')).toMatch(VM_JOB_ID);
  });
});
