/**
 * The shared orchestrator step (functions/orchestrators/step.ts), run by the REAL durable-functions
 * library in the embedded Durable engine (in-memory history, TestClock: retry back-off timers fire when
 * the test advances the clock, so durations on the orchestration clock are exact, not timed).
 *
 * One test orchestration (`stpPlan`) runs a plan of steps with a step runner configured like each real
 * orchestrator is (default retried steps, retry policy replaced mid-run, own codeOf/reasonOf, durations
 * or none) and returns what happened: values, StepFailures, the steps shown, the durations.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import { registeredFunctions } from '../../local/functions-core';
import { DurableEngine } from '../../local/durable/engine';
import { TestClock } from '../../local/durable/clock';
import { createLogger } from '../../shared/log';
import { PipelineError, errorCode } from '../../shared/domain/errors';
import { StepFailure, stepRunner } from '../../functions/orchestrators/step';

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
  }
  return { outcomes, shown, durations } satisfies PlanOutput;
});

// ---------------------------------------------------------------- engine
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

/** Starts the plan, advances the orchestration clock by `advanceMs` (retry back-offs), returns the output. */
async function runPlan(plan: Plan, advanceMs = 0): Promise<PlanOutput & { customStatus: unknown }> {
  const id = await engine.startNew('stpPlan', { input: plan });
  await engine.idle();
  if (advanceMs) await clock.advance(advanceMs);
  const s = await engine.waitForCompletion(id, 10_000);
  expect(s.runtimeStatus).toBe('Completed');
  return { ...(s.output as PlanOutput), customStatus: s.customStatus };
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
    // every step that ran has a duration, the failed one included (no time passed on the test clock)
    expect(out.durations).toEqual({ prepare: 0, migrate: 0, record: 0 });
  });

  test('a step retried by default is retried with the back-off and its duration covers the waits; a step not retried fails at once', async () => {
    const out = await runPlan(
      {
        retriedSteps: ['pull'],
        retryAttempts: 3,
        durations: true,
        calls: [
          { name: 'pull', activity: 'stpFlaky', payload: { key: 'default-pull', failTimes: 1 } },
          { name: 'migrate', activity: 'stpFlaky', payload: { key: 'default-migrate', failTimes: 1 } },
        ],
      },
      1000,
    );
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
    expect(out.durations).toEqual({ pull: 1000, migrate: 0 });
  });

  test("the call's own `retried` overrides the default either way (refreshUat's 4th argument)", async () => {
    const out = await runPlan(
      {
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
      },
      1000,
    );
    expect(out.outcomes[0]).toEqual({
      failure: expect.objectContaining({ step: 'start', code: 'TEST.FLAKY' }),
    });
    expect(out.outcomes[1]).toEqual({ ok: { key: 'override-on', attempts: 2 } });
    expect(attempts['override-off']).toBe(1);
  });

  test('the retry policy is read at each call: replacing it after a step (as after `prepare`) applies to the next steps', async () => {
    const out = await runPlan(
      {
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
      },
      2000,
    );
    expect(out.outcomes[0]).toEqual({
      failure: expect.objectContaining({ step: 'backup', code: 'TEST.FLAKY' }),
    });
    expect(out.outcomes[1]).toEqual({ ok: { key: 'policy-2', attempts: 2 } });
    expect(out.outcomes[2]).toEqual({ ok: { key: 'policy-3', attempts: 2 } });
    // a step run more than once adds up its durations (one 1000 ms back-off in each of the last two runs)
    expect(out.durations).toEqual({ backup: 2000 });
  });

  test("a thrown error without a code gets the caller's default code and the caller's reason (here: first line only)", async () => {
    const out = await runPlan({
      retriedSteps: [],
      retryAttempts: 3,
      durations: true,
      calls: [{ name: 'health', activity: 'stpThrowsPlain' }],
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
    const out = await runPlan(
      {
        retriedSteps: ['request-approval'],
        retryAttempts: 2,
        durations: false,
        calls: [
          { name: 'request-approval', activity: 'stpFlaky', payload: { key: 'no-durations', failTimes: 1 } },
          { name: 'request-approval', activity: 'stpRefuse' },
        ],
      },
      1000,
    );
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
