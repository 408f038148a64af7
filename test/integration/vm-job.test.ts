/**
 * Waiting for a VM job (functions/orchestrators/vm-job.ts) in the REAL durable-functions library on the
 * real Durable Task engine (the embedded host, test/support/bare-host.ts): the poll timers are real
 * durable timers (1 s polls, deadlines of seconds). Where a wait's length is the claim, the instance's
 * history says it: each `TimerCreated` is due exactly the poll after the orchestration time at which
 * awaitVmJob created it (the test orchestration notes that time), the last one at the deadline. The
 * "VM" is a table of jobs the two test activities read, each job a script of the states its status
 * calls report (what `odoo-ops job status` answers).
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, Task } from 'durable-functions';
import { PipelineError, errorCode } from '../../shared/domain/errors';
import { vmJobId, type VmJob } from '../../shared/domain/vm-job';
import { StepFailure, stepRunner } from '../../functions/orchestrators/step';
import { awaitVmJob, restoreRestart, type VmJobWait } from '../../functions/orchestrators/vm-job';
import { startBareHost } from '../support/bare-host';
import type { LocalHost } from '../../local/host';

jest.setTimeout(180_000);

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

/** a durable timer (what `createTimer` returns), as opposed to an activity call */
const isTimer = (t: Task) => 'isCanceled' in t;

/**
 * awaitVmJob as the orchestrators run it (their step runner, quiet: an activity's transient failure is
 * retried 3 times, 1 s apart): the job it returned, or the failure it threw, the orchestration time
 * spent and, for each timer it created, the orchestration time (from its start) at which it did.
 * The generator is stepped by hand instead of `yield*` only to note those times; what it yields and
 * receives is passed through unchanged.
 */
function* outcome(context: OrchestrationContext, w: VmJobWait<string>): Generator<Task, Out, unknown> {
  const step = stepRunner<string>(context, {
    show: () => undefined,
    retry: () => new df.RetryOptions(1000, 3),
    retried: () => false,
    codeOf: (err) => errorCode(err) ?? 'TEST.FAILED',
    reasonOf: (err) => (err instanceof Error ? err.message : String(err)).split('\n')[0],
  });
  const now = () => context.df.currentUtcDateTime.getTime();
  const t0 = now();
  const timersAt: number[] = [];
  const wait = awaitVmJob(context, step, w);
  try {
    let next = wait.next();
    while (!next.done) {
      if (isTimer(next.value)) timersAt.push(now() - t0);
      let sent: unknown;
      try {
        sent = yield next.value;
      } catch (e) {
        next = wait.throw(e);
        continue;
      }
      next = wait.next(sent);
    }
    return { job: next.value, t0, ms: now() - t0, timersAt };
  } catch (e) {
    const f = e as StepFailure;
    return { failure: { step: f.step, code: f.code, message: f.message }, t0, ms: now() - t0, timersAt };
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

// a restore with the restores' restart rule (what deployUat, deployProd and refreshUat use); `wait`
// replaces only its minute between two jobs (restoreRestart's own value is checked below)
df.app.orchestration('vjRestore', function* (context: OrchestrationContext) {
  const { deadline, wait } = context.df.getInput() as { deadline: number; wait?: number };
  const rule = restoreRestart((n) => vmJobId(context.df.instanceId, `restore-${n}`));
  return yield* outcome(context, {
    step: 'rollback',
    startActivity: 'vjStart',
    startInput: { environment: 'uat', backupId: 'uat/x', jobId: vmJobId(context.df.instanceId, 'restore') },
    statusActivity: 'vjStatus',
    pollSeconds: 1,
    deadlineMinutes: deadline,
    what: 'restore',
    restart: wait === undefined ? rule : { ...rule, waitSeconds: wait },
  });
});

let host: LocalHost;
let stop: () => Promise<void>;
beforeAll(async () => {
  ({ host, stop } = await startBareHost('vmjob-'));
}, 300_000);
afterAll(async () => {
  await stop?.();
});

type Out = {
  job?: VmJob;
  failure?: { step: string; code: string; message: string };
  /** the orchestration time at its start (ms since the epoch) */
  t0: number;
  /** orchestration time spent */
  ms: number;
  /** for each timer awaitVmJob created: when (ms after t0) */
  timersAt: number[];
};

/** runs `name` to completion: its output and when each of its timers was due (from its history) */
async function complete(name: string, instanceId: string, input: unknown) {
  const id = await host.durable.startNew(name, { instanceId, input });
  const s = await host.durable.waitForCompletion(id, 150_000);
  expect(s.runtimeStatus).toBe('Completed');
  const out = s.output as Out;
  const history = ((await host.durable.getStatus(id, { showHistory: true }))?.history ?? []) as Array<
    Record<string, unknown>
  >;
  // FireAt of each timer, as ms after the orchestration's start
  const timersDue = history
    .filter((e) => e.EventType === 'TimerCreated')
    .map((e) => new Date(String(e.FireAt)).getTime() - out.t0);
  return { out, timersDue };
}

async function run(instance: string, script: Script, o: { poll?: number; deadline?: number } = {}) {
  vm[`${instance}.migrate`] = { script, starts: 0, created: 0, statusCalls: 0 };
  const r = await complete('vjWait', instance, { poll: o.poll ?? 1, deadline: o.deadline ?? 60 });
  return { ...r, vm: vm[`${instance}.migrate`] };
}

describe('awaitVmJob: start once, poll with durable timers, clear errors', () => {
  test('a job that runs for three polls: started once, polled every VM_JOB_POLL_SECONDS, its result returned', async () => {
    const {
      out,
      vm: j,
      timersDue,
    } = await run(
      'deploy-uat-1.2.0-aaaaaaaaaaaa',
      {
        states: [
          { state: 'running' },
          { state: 'running' },
          { state: 'running' },
          { state: 'succeeded', exitCode: 0 },
        ],
      },
      { poll: 2 },
    );
    expect(out.job).toMatchObject({
      id: 'deploy-uat-1.2.0-aaaaaaaaaaaa.migrate',
      state: 'succeeded',
      exitCode: 0,
    });
    expect(j.starts).toBe(1);
    expect(j.statusCalls).toBe(3);
    // three durable timers, each due one poll (2 s) after the moment it was created
    expect(out.timersAt).toHaveLength(3);
    expect(timersDue).toEqual(out.timersAt.map((at) => at + 2000));
  });

  test('the start call drops after the job was created: retried, it finds the job; the work ran once', async () => {
    const { out, vm: j } = await run('deploy-uat-1.3.0-bbbbbbbbbbbb', {
      startDrops: 1,
      states: [{ state: 'running' }, { state: 'succeeded', exitCode: 0 }],
    });
    expect(out.job?.state).toBe('succeeded');
    expect(j.starts).toBe(2);
    expect(j.created).toBe(1);
  });

  test("a failed job is the failing verb's code with its sentence; a lost one is OPS.JOB_LOST; an unknown id OPS.JOB_UNKNOWN", async () => {
    const [failed, lost, unknown] = await Promise.all([
      run('deploy-uat-1.4.0-cccccccccccc', {
        states: [
          { state: 'running' },
          {
            state: 'failed',
            exitCode: 5,
            message:
              'odoo-ops migrate failed (exit 5): migration with img failed (odoo exit 1, CRITICAL: boom)',
          },
        ],
      }),
      run('deploy-uat-1.5.0-dddddddddddd', {
        states: [{ state: 'running' }, { state: 'lost', message: 'job x was lost' }],
      }),
      run('deploy-uat-1.6.0-eeeeeeeeeeee', { unknown: true, states: [{ state: 'running' }] }),
    ]);
    expect(failed.out.failure).toEqual({
      step: 'migrate',
      code: 'DEPLOY.MIGRATION_FAILED',
      message:
        '[DEPLOY.MIGRATION_FAILED] odoo-ops migrate failed (exit 5): migration with img failed (odoo exit 1, CRITICAL: boom)',
    });
    expect(lost.out.failure).toMatchObject({ step: 'migrate', code: 'OPS.JOB_LOST' });
    expect(unknown.out.failure).toMatchObject({ step: 'migrate', code: 'OPS.JOB_UNKNOWN' });
    expect(unknown.out.failure?.message).toContain('no job deploy-uat-1.6.0-eeeeeeeeeeee.migrate on this VM');
  });

  test('a job that outlives the deadline fails with OPS.JOB_DEADLINE at the deadline, not before, naming the job', async () => {
    // a deadline of 0.1 min (6 s), polls every 2 s
    const {
      out,
      vm: j,
      timersDue,
    } = await run(
      'deploy-uat-1.7.0-ffffffffffff',
      { states: [{ state: 'running' }] },
      { poll: 2, deadline: 0.1 },
    );
    expect(out.failure).toMatchObject({ step: 'migrate', code: 'OPS.JOB_DEADLINE' });
    expect(out.failure?.message).toContain('deploy-uat-1.7.0-ffffffffffff.migrate');
    expect(out.failure?.message).toContain('after 0.1 min');
    expect(out.ms).toBeGreaterThanOrEqual(6000);
    // each timer one poll after it was created, but none past the deadline; the last one AT the deadline,
    // and the job was checked once more after each (a timer of this engine can fire up to a second before
    // it is due (docs/durable-local-engine.md), so there may be more than one at the deadline)
    expect(timersDue).toEqual(out.timersAt.map((at) => Math.min(6000, at + 2000)));
    expect(timersDue.at(-1)).toBe(6000);
    expect(j.statusCalls).toBe(timersDue.length);
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
  /** `wait`: seconds between two jobs instead of restoreRestart's 60 */
  async function restore(
    instance: string,
    jobs: Partial<VmJob>[][],
    o: { deadline?: number; wait?: number },
  ) {
    const ids = [1, 2, 3].map((n) => vmJobId(instance, n === 1 ? 'restore' : `restore-${n}`));
    ids.forEach(
      (id, i) => (vm[id] = { script: { states: jobs[i] ?? [ok] }, starts: 0, created: 0, statusCalls: 0 }),
    );
    const r = await complete('vjRestore', instance, { deadline: o.deadline ?? 180, wait: o.wait });
    return { ...r, jobs: ids.map((j) => vm[j]) };
  }

  test("the restores' rule: a BLOB.UNAVAILABLE failure gets two more jobs, each a minute after the last", () => {
    const rule = restoreRestart((n) => `job-${n}`);
    expect(rule).toMatchObject({ codes: ['BLOB.UNAVAILABLE'], attempts: 3, waitSeconds: 60 });
    expect(rule.jobIdOf(2)).toBe('job-2');
  });

  test('a storage outage that outlasts the first job: a second job, after the wait, restores; the first is not started again', async () => {
    const { out, jobs, timersDue } = await restore(
      'deploy-uat-1.3.0-bbbbbbbbbbbb',
      [
        [{ state: 'running' }, outage],
        [{ state: 'running' }, ok],
      ],
      { wait: 3 },
    );
    expect(out.failure).toBeUndefined();
    expect(out.job).toMatchObject({ id: 'deploy-uat-1.3.0-bbbbbbbbbbbb.restore-2', state: 'succeeded' });
    expect(jobs.map((j) => j.created)).toEqual([1, 1, 0]);
    expect(jobs[0].starts).toBe(1);
    // one poll of the first job (1 s), the wait before the second (3 s), one poll of the second
    expect(out.timersAt).toHaveLength(3);
    expect(timersDue).toEqual(out.timersAt.map((at, i) => at + (i === 1 ? 3000 : 1000)));
  });

  test('three outages: the rollback fails with BLOB.UNAVAILABLE after three jobs, saying so', async () => {
    const { out, jobs } = await restore('deploy-uat-1.3.0-cccccccccccc', [[outage], [outage], [outage]], {
      wait: 1,
    });
    expect(out.job).toBeUndefined();
    expect(out.failure).toMatchObject({ step: 'rollback', code: 'BLOB.UNAVAILABLE' });
    expect(out.failure!.message).toMatch(
      /^\[BLOB\.UNAVAILABLE\] Blob Storage did not answer.*the restore was started 3 times; last job deploy-uat-1\.3\.0-cccccccccccc\.restore-3\)$/,
    );
    expect(jobs.map((j) => j.created)).toEqual([1, 1, 1]);
  });

  test('a corrupt backup, a missing one or a refused SAS is not started again: nothing would change', async () => {
    const codes = ['BACKUP.CORRUPT', 'BACKUP.NOT_FOUND', 'BLOB.FORBIDDEN'];
    const runs = await Promise.all(
      codes.map((failureCode, i) =>
        restore(`deploy-uat-1.3.0-d${i}`, [[{ ...outage, failureCode, message: 'no' }]], { wait: 1 }),
      ),
    );
    for (const [i, failureCode] of codes.entries()) {
      const { out, jobs } = runs[i];
      expect(out.failure).toMatchObject({ code: failureCode, message: `[${failureCode}] no` });
      expect(jobs.map((j) => j.created)).toEqual([1, 0, 0]);
    }
  });

  test('no new job when the wait before it would pass the deadline', async () => {
    // restoreRestart's own minute, a deadline of 0.5 min: the first job fails after one 1-s poll, a new
    // one would start past the deadline
    const { out, jobs } = await restore('deploy-uat-1.3.0-eeeeeeeeeeee', [[{ state: 'running' }, outage]], {
      deadline: 0.5,
    });
    expect(out.failure).toMatchObject({ code: 'BLOB.UNAVAILABLE' });
    expect(out.failure?.message).not.toContain('started');
    expect(jobs.map((j) => j.created)).toEqual([1, 0, 0]);
    // one timer: the poll of the first job; no wait for a second one
    expect(out.timersAt).toHaveLength(1);
  });
});
