/**
 * The shared orchestrator step (functions/orchestrators/step.ts), run by the REAL durable-functions
 * library on the real Durable Task engine (the embedded host, test/support/bare-host.ts): retry
 * back-offs are real durable timers (1 s). Durations on the orchestration clock are checked against the
 * instance's history, not against a stopwatch: a step's duration spans from the scheduling of its first
 * attempt (`ScheduledTime`) to the end of its last (`Timestamp` of its TaskCompleted / TaskFailed).
 *
 * One test orchestration (`stpPlan`) runs a plan of steps with a step runner configured like each real
 * orchestrator is (default retried steps, retry policy replaced mid-run, own codeOf/reasonOf, durations
 * or none) and returns what happened: values, StepFailures, the steps shown, the durations.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import type { LocalHost } from '../../local/host';
import { startBareHost } from '../support/bare-host';
import { PipelineError, errorCode } from '../../shared/domain/errors';
import { StepFailure, stepRunner } from '../../functions/orchestrators/step';

jest.setTimeout(120_000);

// ---------------------------------------------------------------- test activities
const attempts: Record<string, number> = {};
df.app.activity('stpEcho', { handler: (input: unknown) => input });
df.app.activity('stpRefuse', {
  handler: () => ({ failed: { code: 'TEST.REFUSED', message: '[TEST.REFUSED] the target said no' } }),
});
df.app.activity('stpFlaky', {
  handler: (input: unknown) => {
    const { key, failTimes } = input as { key: string; failTimes: number };
    const n = (attempts[key] = (attempts[key] ?? 0) + 1);
    if (n <= failTimes) throw new PipelineError('TEST.FLAKY', `attempt ${n} of ${key} failed`, true);
    return { key, attempts: n };
  },
});
df.app.activity('stpThrowsPlain', {
  handler: () => {
    throw new Error('no code in this message\nand a second line that must not be reported');
  },
});

// ---------------------------------------------------------------- the test orchestration
interface PlannedCall {
  name: string;
  activity: string;
  payload?: unknown;
  /** the per-call override (refreshUat's 4th argument) */
  retried?: boolean;
  /** replace the retry policy before this call (as the orchestrators do after `prepare`) */
  setRetryAttempts?: number;
}
interface Plan {
  /** steps retried when the call does not say */
  retriedSteps: string[];
  retryAttempts: number;
  durations: boolean;
  calls: PlannedCall[];
}
type Outcome =
  | { ok: unknown }
  | { failure: { step: string; code: string; message: string; isStepFailure: boolean } };
interface PlanOutput {
  outcomes: Outcome[];
  shown: string[];
  durations?: Record<string, number>;
  /** the durations record after each call */
  after: Array<Record<string, number> | undefined>;
}

const policy = (attemptsMax: number) => new df.RetryOptions(1000, attemptsMax);

df.app.orchestration('stpPlan', function* (context: OrchestrationContext) {
  const plan = context.df.getInput() as Plan;
  const shown: string[] = [];
  const durations: Record<string, number> | undefined = plan.durations ? {} : undefined;
  let retry = policy(plan.retryAttempts);
  const step = stepRunner<string>(context, {
    show: (name) => {
      shown.push(name);
      context.df.setCustomStatus({ step: name });
    },
    durations,
    retry: () => retry,
    retried: (name) => plan.retriedSteps.includes(name),
    codeOf: (err) => errorCode(err) ?? 'TEST.FAILED',
    reasonOf: (err) => (err instanceof Error ? err.message : String(err)).split('\n')[0],
  });
  const outcomes: Outcome[] = [];
  const after: PlanOutput['after'] = [];
  for (const c of plan.calls) {
    if (c.setRetryAttempts !== undefined) retry = policy(c.setRetryAttempts);
    try {
      outcomes.push({ ok: yield* step(c.name, c.activity, c.payload, c.retried) });
    } catch (e) {
      const f = e as StepFailure;
      outcomes.push({
        failure: { step: f.step, code: f.code, message: f.message, isStepFailure: e instanceof StepFailure },
      });
    }
    after.push(durations && { ...durations });
  }
  return { outcomes, shown, durations, after } satisfies PlanOutput;
});

// ---------------------------------------------------------------- engine
let host: LocalHost;
let stop: () => Promise<void>;
beforeAll(async () => {
  ({ host, stop } = await startBareHost('step-'));
}, 300_000);
afterAll(async () => {
  await stop?.();
});

/** one activity execution as the instance's history has it */
interface Ran {
  activity: string;
  ok: boolean;
  /** when the attempt was scheduled, and when it ended (ms since the epoch) */
  scheduled: number;
  ended: number;
}

/** Runs the plan to completion: its output, custom status, and the activity runs from its history. */
async function runPlan(
  plan: Plan,
): Promise<PlanOutput & { customStatus: unknown; ran: Ran[]; timers: Array<{ fireAt: number }> }> {
  const id = await host.durable.startNew('stpPlan', { input: plan });
  const s = await host.durable.waitForCompletion(id, 90_000);
  expect(s.runtimeStatus).toBe('Completed');
  const history = ((await host.durable.getStatus(id, { showHistory: true }))?.history ?? []) as Array<
    Record<string, unknown>
  >;
  const ran = history
    .filter((e) => e.EventType === 'TaskCompleted' || e.EventType === 'TaskFailed')
    .map((e) => ({
      activity: String(e.FunctionName),
      ok: e.EventType === 'TaskCompleted',
      scheduled: new Date(String(e.ScheduledTime)).getTime(),
      ended: new Date(String(e.Timestamp)).getTime(),
    }));
  const timers = history
    .filter((e) => e.EventType === 'TimerCreated')
    .map((e) => ({ fireAt: new Date(String(e.FireAt)).getTime() }));
  return { ...(s.output as PlanOutput), customStatus: s.customStatus, ran, timers };
}

describe('orchestrator step (functions/orchestrators/step.ts) in the real durable engine', () => {
  test('shows each step before it runs, returns activity values, and turns a returned `failed` into a StepFailure naming the step', async () => {
    const out = await runPlan({
      retriedSteps: [],
      retryAttempts: 3,
      durations: true,
      calls: [
        { name: 'prepare', activity: 'stpEcho', payload: { settings: { a: 1 } } },
        { name: 'migrate', activity: 'stpRefuse', payload: {} },
        { name: 'record', activity: 'stpEcho', payload: 'done' },
      ],
    });
    expect(out.outcomes).toEqual([
      { ok: { settings: { a: 1 } } },
      {
        failure: {
          step: 'migrate',
          code: 'TEST.REFUSED',
          message: '[TEST.REFUSED] the target said no',
          isStepFailure: true,
        },
      },
      { ok: 'done' },
    ]);
    expect(out.shown).toEqual(['prepare', 'migrate', 'record']);
    expect(out.customStatus).toEqual({ step: 'record' });
    // every step that ran has a duration, the failed one included
    expect(Object.keys(out.durations ?? {}).sort()).toEqual(['migrate', 'prepare', 'record']);
    for (const ms of Object.values(out.durations ?? {})) expect(ms).toBeGreaterThanOrEqual(0);
    // nothing was retried: no back-off timer
    expect(out.timers).toEqual([]);
  });

  test('a step retried by default is retried with the back-off and its duration covers the waits; a step not retried fails at once', async () => {
    const out = await runPlan({
      retriedSteps: ['pull'],
      retryAttempts: 3,
      durations: true,
      calls: [
        { name: 'pull', activity: 'stpFlaky', payload: { key: 'default-pull', failTimes: 1 } },
        { name: 'migrate', activity: 'stpFlaky', payload: { key: 'default-migrate', failTimes: 1 } },
      ],
    });
    expect(out.outcomes).toEqual([
      { ok: { key: 'default-pull', attempts: 2 } },
      {
        failure: {
          step: 'migrate',
          code: 'TEST.FLAKY',
          message: expect.stringContaining('[TEST.FLAKY] attempt 1 of default-migrate failed'),
          isStepFailure: true,
        },
      },
    ]);
    expect(attempts['default-migrate']).toBe(1);
    // pull: failed, a back-off timer due at least 1 s after the failure, then the second attempt; its
    // duration spans both attempts and the wait between them
    const [pull1, pull2, migrate] = out.ran;
    expect([pull1.ok, pull2.ok, migrate.ok]).toEqual([false, true, false]);
    expect(out.timers).toHaveLength(1);
    expect(out.timers[0].fireAt).toBeGreaterThanOrEqual(pull1.ended + 1000);
    expect(pull2.scheduled).toBeGreaterThan(pull1.ended);
    expect(out.durations?.pull).toBeGreaterThanOrEqual(pull2.ended - pull1.scheduled);
    expect(Object.keys(out.durations ?? {}).sort()).toEqual(['migrate', 'pull']);
  });

  test("the call's own `retried` overrides the default either way (refreshUat's 4th argument)", async () => {
    const out = await runPlan({
      retriedSteps: ['start'],
      retryAttempts: 3,
      durations: true,
      calls: [
        {
          name: 'start',
          activity: 'stpFlaky',
          payload: { key: 'override-off', failTimes: 1 },
          retried: false,
        },
        {
          name: 'stop',
          activity: 'stpFlaky',
          payload: { key: 'override-on', failTimes: 1 },
          retried: true,
        },
      ],
    });
    expect(out.outcomes[0]).toEqual({
      failure: expect.objectContaining({ step: 'start', code: 'TEST.FLAKY' }),
    });
    expect(out.outcomes[1]).toEqual({ ok: { key: 'override-on', attempts: 2 } });
    expect(attempts['override-off']).toBe(1);
  });

  test('the retry policy is read at each call: replacing it after a step (as after `prepare`) applies to the next steps', async () => {
    const out = await runPlan({
      retriedSteps: ['backup'],
      retryAttempts: 1,
      durations: true,
      calls: [
        { name: 'backup', activity: 'stpFlaky', payload: { key: 'policy-1', failTimes: 1 } },
        {
          name: 'backup',
          activity: 'stpFlaky',
          payload: { key: 'policy-2', failTimes: 1 },
          setRetryAttempts: 2,
        },
        { name: 'backup', activity: 'stpFlaky', payload: { key: 'policy-3', failTimes: 1 } },
      ],
    });
    expect(out.outcomes[0]).toEqual({
      failure: expect.objectContaining({ step: 'backup', code: 'TEST.FLAKY' }),
    });
    expect(out.outcomes[1]).toEqual({ ok: { key: 'policy-2', attempts: 2 } });
    expect(out.outcomes[2]).toEqual({ ok: { key: 'policy-3', attempts: 2 } });
    // a step run more than once adds up its durations: each run adds at least its own span (scheduling of
    // its first attempt to the end of its last; the last two runs each include a 1 s back-off)
    const [b1, b2a, b2b, b3a, b3b] = out.ran;
    expect(out.ran.map((r) => r.ok)).toEqual([false, false, true, false, true]);
    // the last two runs each waited on a back-off timer due 1 s after their failed first attempt
    const backoffAfter = (failed: Ran, before: number) =>
      out.timers.filter((t) => t.fireAt >= failed.ended + 1000 && t.fireAt < before);
    expect(backoffAfter(b2a, b3a.ended + 1000)).toHaveLength(1);
    expect(backoffAfter(b3a, Infinity)).toHaveLength(1);
    const [s1, s2, s3] = out.after.map((d) => d?.backup ?? NaN);
    expect(s1).toBeGreaterThanOrEqual(b1.ended - b1.scheduled);
    expect(s2 - s1).toBeGreaterThanOrEqual(b2b.ended - b2a.scheduled);
    expect(s3 - s2).toBeGreaterThanOrEqual(b3b.ended - b3a.scheduled);
    expect(out.durations).toEqual({ backup: s3 });
  });

  test("a thrown error without a code gets the caller's default code and the caller's reason (here: first line only)", async () => {
    const out = await runPlan({
      retriedSteps: [],
      retryAttempts: 3,
      durations: true,
      // (a payload: the local real-engine host's bridge fails an activity whose input is null)
      calls: [{ name: 'health', activity: 'stpThrowsPlain', payload: {} }],
    });
    const [o] = out.outcomes;
    expect(o).toEqual({
      failure: expect.objectContaining({ step: 'health', code: 'TEST.FAILED', isStepFailure: true }),
    });
    const message = (o as { failure: { message: string } }).failure.message;
    expect(message).toContain('no code in this message');
    expect(message).not.toContain('second line');
  });

  test('without a durations record (deployOdooSh) steps still run and fail the same way, and nothing is timed', async () => {
    const out = await runPlan({
      retriedSteps: ['request-approval'],
      retryAttempts: 2,
      durations: false,
      calls: [
        { name: 'request-approval', activity: 'stpFlaky', payload: { key: 'no-durations', failTimes: 1 } },
        { name: 'request-approval', activity: 'stpRefuse', payload: {} },
      ],
    });
    expect(out.outcomes).toEqual([
      { ok: { key: 'no-durations', attempts: 2 } },
      {
        failure: {
          step: 'request-approval',
          code: 'TEST.REFUSED',
          message: '[TEST.REFUSED] the target said no',
          isStepFailure: true,
        },
      },
    ]);
    expect(out.durations).toBeUndefined();
  });
});
