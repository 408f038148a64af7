/**
 * Waiting for a VM job (functions/orchestrators/vm-job.ts) in the REAL durable-functions library on the
 * embedded Durable engine with a TestClock: the poll timers fire only when the test advances the clock,
 * so the number of polls and the deadline are exact. The "VM" is a table of jobs the two test activities
 * read, each job a script of the states its status calls report (what `odoo-ops job status` answers).
 */
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import { registeredFunctions } from '../../local/functions-core';
import { DurableEngine } from '../../local/durable/engine';
import { TestClock } from '../../local/durable/clock';
import { createLogger } from '../../shared/log';
import { PipelineError, errorCode } from '../../shared/domain/errors';
import {
  VM_JOB_ID,
  parseVmJob,
  vmJobBackup,
  vmJobFailureCode,
  vmJobId,
  type VmJob,
} from '../../shared/domain/vm-job';
import { StepFailure, stepRunner } from '../../functions/orchestrators/step';
import { awaitVmJob, restoreRestart, type VmJobWait } from '../../functions/orchestrators/vm-job';

interface Script {
  /** states reported by start then each status call; the last one repeats */
  states: Partial<VmJob>[];
  /** the first N start calls fail with a transient SSH error (after the job was created) */
  startDrops?: number;
  /** status answers OPS.JOB_UNKNOWN */
  unknown?: boolean;
}
const vm: Record<string, { script: Script; starts: number; created: number; statusCalls: number }> = {};
const jobOf = (id: string, i: number): VmJob => {
  const s = vm[id].script.states;
  return { id, kind: 'migrate', message: '', steps: [], state: 'running', ...s[Math.min(i, s.length - 1)] };
};

df.app.activity('vjStart', {
  handler: (input: unknown) => {
    const { jobId } = input as { jobId: string };
    const j = vm[jobId];
    j.starts++;
    if (j.created === 0) j.created = 1; // the work starts once, whatever happens to the call
    if (j.starts <= (j.script.startDrops ?? 0))
      throw new PipelineError('SSH.DISCONNECTED', 'connection to 10.0.0.4:22 closed', true);
    return { ...jobOf(jobId, 0), started: j.starts === 1 };
  },
});
df.app.activity('vjStatus', {
  handler: (input: unknown) => {
    const { jobId } = input as { jobId: string };
    const j = vm[jobId];
    j.statusCalls++;
    if (j.script.unknown)
      return { failed: { code: 'OPS.JOB_UNKNOWN', message: `[OPS.JOB_UNKNOWN] no job ${jobId} on this VM` } };
    return jobOf(jobId, j.statusCalls);
  },
});

/**
 * awaitVmJob as the orchestrators run it (their step runner, quiet: an activity's transient failure is
 * retried 3 times, 1 s apart): the job it returned, or the failure it threw, and the orchestration time spent.
 */
function* outcome(context: OrchestrationContext, w: VmJobWait<string>) {
  const step = stepRunner<string>(context, {
    show: () => undefined,
    retry: () => new df.RetryOptions(1000, 3),
    retried: () => false,
    codeOf: (err) => errorCode(err) ?? 'TEST.FAILED',
    reasonOf: (err) => (err instanceof Error ? err.message : String(err)).split('\n')[0],
  });
  const t0 = context.df.currentUtcDateTime.getTime();
  try {
    const job = yield* awaitVmJob(context, step, w);
    return { job, ms: context.df.currentUtcDateTime.getTime() - t0 };
  } catch (e) {
    const f = e as StepFailure;
    return {
      failure: { step: f.step, code: f.code, message: f.message },
      ms: context.df.currentUtcDateTime.getTime() - t0,
    };
  }
}

df.app.orchestration('vjWait', function* (context: OrchestrationContext) {
  const { poll, deadline } = context.df.getInput() as { poll: number; deadline: number };
  return yield* outcome(context, {
    step: 'migrate',
    startActivity: 'vjStart',
    startInput: { environment: 'uat', jobId: vmJobId(context.df.instanceId, 'migrate') },
    statusActivity: 'vjStatus',
    pollSeconds: poll,
    deadlineMinutes: deadline,
    what: 'migration',
  });
});

// a restore with the restores' restart rule (what deployUat, deployProd and refreshUat use)
df.app.orchestration('vjRestore', function* (context: OrchestrationContext) {
  const { deadline } = context.df.getInput() as { deadline: number };
  return yield* outcome(context, {
    step: 'rollback',
    startActivity: 'vjStart',
    startInput: { environment: 'uat', backupId: 'uat/x', jobId: vmJobId(context.df.instanceId, 'restore') },
    statusActivity: 'vjStatus',
    pollSeconds: 15,
    deadlineMinutes: deadline,
    what: 'restore',
    restart: restoreRestart((n) => vmJobId(context.df.instanceId, `restore-${n}`)),
  });
});

let clock: TestClock;
let engine: DurableEngine;
beforeEach(async () => {
  clock = new TestClock();
  engine = new DurableEngine({
    dbPath: ':memory:',
    functions: registeredFunctions,
    clock,
    log: createLogger({ level: 'error', sink: () => undefined }),
  });
  await engine.start();
});
afterEach(async () => {
  await engine.stop();
});

type Out = { job?: VmJob; failure?: { step: string; code: string; message: string }; ms: number };
async function run(
  instance: string,
  script: Script,
  o: { poll?: number; deadline?: number; advanceMs?: number } = {},
) {
  vm[`${instance}.migrate`] = { script, starts: 0, created: 0, statusCalls: 0 };
  const id = await engine.startNew('vjWait', {
    instanceId: instance,
    input: { poll: o.poll ?? 15, deadline: o.deadline ?? 60 },
  });
  await engine.idle();
  // advance the orchestration clock in poll-sized steps (each step fires one timer)
  const stepMs = (o.poll ?? 15) * 1000;
  for (let t = 0; t < (o.advanceMs ?? 0); t += stepMs) {
    await clock.advance(stepMs);
    await engine.idle();
  }
  const s = await engine.waitForCompletion(id, 10_000);
  expect(s.runtimeStatus).toBe('Completed');
  return { out: s.output as Out, vm: vm[`${instance}.migrate`] };
}

describe('awaitVmJob: start once, poll with durable timers, clear errors', () => {
  test('a job that runs for three polls: started once, polled every VM_JOB_POLL_SECONDS, its result returned', async () => {
    const { out, vm: j } = await run(
      'deploy-uat-1.2.0-aaaaaaaaaaaa',
      {
        states: [
          { state: 'running' },
          { state: 'running' },
          { state: 'running' },
          { state: 'succeeded', exitCode: 0 },
        ],
      },
      { advanceMs: 120_000 },
    );
    expect(out.job).toMatchObject({
      id: 'deploy-uat-1.2.0-aaaaaaaaaaaa.migrate',
      state: 'succeeded',
      exitCode: 0,
    });
    expect(j.starts).toBe(1);
    expect(j.statusCalls).toBe(3);
    expect(out.ms).toBe(45_000); // three 15 s timers on the orchestration clock
  });

  test('the start call drops after the job was created: retried, it finds the job; the work ran once', async () => {
    const { out, vm: j } = await run(
      'deploy-uat-1.3.0-bbbbbbbbbbbb',
      { startDrops: 1, states: [{ state: 'running' }, { state: 'succeeded', exitCode: 0 }] },
      { advanceMs: 60_000, poll: 15 },
    );
    expect(out.job?.state).toBe('succeeded');
    expect(j.starts).toBe(2);
    expect(j.created).toBe(1);
  });

  test("a failed job is the failing verb's code with its sentence; a lost one is OPS.JOB_LOST; an unknown id OPS.JOB_UNKNOWN", async () => {
    const failed = await run(
      'deploy-uat-1.4.0-cccccccccccc',
      {
        states: [
          { state: 'running' },
          {
            state: 'failed',
            exitCode: 5,
            message:
              'odoo-ops migrate failed (exit 5): migration with img failed (odoo exit 1, CRITICAL: boom)',
          },
        ],
      },
      { advanceMs: 30_000 },
    );
    expect(failed.out.failure).toEqual({
      step: 'migrate',
      code: 'DEPLOY.MIGRATION_FAILED',
      message:
        '[DEPLOY.MIGRATION_FAILED] odoo-ops migrate failed (exit 5): migration with img failed (odoo exit 1, CRITICAL: boom)',
    });

    const lost = await run(
      'deploy-uat-1.5.0-dddddddddddd',
      { states: [{ state: 'running' }, { state: 'lost', message: 'job x was lost' }] },
      { advanceMs: 30_000 },
    );
    expect(lost.out.failure).toMatchObject({ step: 'migrate', code: 'OPS.JOB_LOST' });

    const unknown = await run(
      'deploy-uat-1.6.0-eeeeeeeeeeee',
      { unknown: true, states: [{ state: 'running' }] },
      { advanceMs: 30_000 },
    );
    expect(unknown.out.failure).toMatchObject({ step: 'migrate', code: 'OPS.JOB_UNKNOWN' });
    expect(unknown.out.failure?.message).toContain('no job deploy-uat-1.6.0-eeeeeeeeeeee.migrate on this VM');
  });

  test('a job that outlives the deadline fails with OPS.JOB_DEADLINE at the deadline, not before, naming the job', async () => {
    const { out, vm: j } = await run(
      'deploy-uat-1.7.0-ffffffffffff',
      { states: [{ state: 'running' }] },
      { poll: 60, deadline: 5, advanceMs: 8 * 60_000 },
    );
    expect(out.failure).toMatchObject({ step: 'migrate', code: 'OPS.JOB_DEADLINE' });
    expect(out.failure?.message).toContain('deploy-uat-1.7.0-ffffffffffff.migrate');
    expect(out.failure?.message).toContain('after 5 min');
    expect(out.ms).toBe(5 * 60_000);
    expect(j.statusCalls).toBe(5);
  });
});

describe('a restore whose download from Blob keeps failing is started again as a new job', () => {
  const outage: Partial<VmJob> = {
    state: 'failed',
    exitCode: 7,
    failureCode: 'BLOB.UNAVAILABLE',
    message: 'Blob Storage did not answer downloading uat/x/db.dump (curl exit 28): nothing swapped',
  };
  const ok: Partial<VmJob> = { state: 'succeeded', exitCode: 0 };
  async function restore(instance: string, jobs: Partial<VmJob>[][], deadline = 180) {
    const ids = [1, 2, 3].map((n) => vmJobId(instance, n === 1 ? 'restore' : `restore-${n}`));
    ids.forEach(
      (id, i) => (vm[id] = { script: { states: jobs[i] ?? [ok] }, starts: 0, created: 0, statusCalls: 0 }),
    );
    const id = await engine.startNew('vjRestore', { instanceId: instance, input: { deadline } });
    await engine.idle();
    for (let t = 0; t < 10 * 60_000; t += 15_000) {
      await clock.advance(15_000);
      await engine.idle();
    }
    const s = await engine.waitForCompletion(id, 10_000);
    expect(s.runtimeStatus).toBe('Completed');
    return { out: s.output as Out, jobs: ids.map((j) => vm[j]) };
  }

  test('a storage outage that outlasts the first job: a second job, a minute later, restores; the first is not started again', async () => {
    const { out, jobs } = await restore('deploy-uat-1.3.0-bbbbbbbbbbbb', [
      [{ state: 'running' }, outage],
      [{ state: 'running' }, ok],
    ]);
    expect(out.failure).toBeUndefined();
    expect(out.job).toMatchObject({ id: 'deploy-uat-1.3.0-bbbbbbbbbbbb.restore-2', state: 'succeeded' });
    expect(jobs.map((j) => j.created)).toEqual([1, 1, 0]);
    expect(jobs[0].starts).toBe(1);
    // one poll of the first job (15 s), the minute before the second, one poll of the second
    expect(out.ms).toBe(15_000 + 60_000 + 15_000);
  });

  test('three outages: the rollback fails with BLOB.UNAVAILABLE after three jobs, saying so', async () => {
    const { out, jobs } = await restore('deploy-uat-1.3.0-cccccccccccc', [[outage], [outage], [outage]]);
    expect(out.job).toBeUndefined();
    expect(out.failure).toMatchObject({ step: 'rollback', code: 'BLOB.UNAVAILABLE' });
    expect(out.failure!.message).toMatch(
      /^\[BLOB\.UNAVAILABLE\] Blob Storage did not answer.*the restore was started 3 times; last job deploy-uat-1\.3\.0-cccccccccccc\.restore-3\)$/,
    );
    expect(jobs.map((j) => j.created)).toEqual([1, 1, 1]);
  });

  test('a corrupt backup, a missing one or a refused SAS is not started again: nothing would change', async () => {
    for (const [i, failureCode] of ['BACKUP.CORRUPT', 'BACKUP.NOT_FOUND', 'BLOB.FORBIDDEN'].entries()) {
      const { out, jobs } = await restore(`deploy-uat-1.3.0-d${i}`, [
        [{ ...outage, failureCode, message: 'no' }],
      ]);
      expect(out.failure).toMatchObject({ code: failureCode, message: `[${failureCode}] no` });
      expect(jobs.map((j) => j.created)).toEqual([1, 0, 0]);
    }
  });

  test('no new job when the wait before it would pass the deadline', async () => {
    // deadline 1 min: the first job fails after one 15-s poll, a new one would start at 75 s
    const { out, jobs } = await restore('deploy-uat-1.3.0-eeeeeeeeeeee', [[{ state: 'running' }, outage]], 1);
    expect(out.failure).toMatchObject({ code: 'BLOB.UNAVAILABLE' });
    expect(jobs.map((j) => j.created)).toEqual([1, 0, 0]);
  });
});

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
