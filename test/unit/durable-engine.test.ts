/**
 * Conformance of the embedded Durable engine with the REAL durable-functions library: small test-only
 * orchestrations and activities registered with df.app.orchestration / df.app.activity (names
 * prefixed "ut" to stay unique), driven with a TestClock so day-long timers fire without waiting.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, ActivityHandler, Task } from 'durable-functions';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registeredFunctions } from '../../local/functions-core';
import { DurableEngine } from '../../local/durable/engine';
import { TestClock, realClock } from '../../local/durable/clock';
import { createLogger } from '../../shared/log';
import { PipelineError, errorCode } from '../../shared/domain/errors';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

// ---------------------------------------------------------------- test functions
const calls: Record<string, number> = {};
const count = (k: string) => (calls[k] = (calls[k] ?? 0) + 1);
const received: unknown[] = [];
const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
function gate(key: string) {
  let g = gates.get(key);
  if (!g) {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    g = { promise, open };
    gates.set(key, g);
  }
  return g;
}

const act = (name: string, handler: ActivityHandler) => df.app.activity(name, { handler });

act('utHello', (input: unknown) => {
  received.push(input);
  return `Hello ${String(input)}`;
});
act('utEcho', (input: unknown) => input);
act('utNothing', () => undefined);
act('utFlaky', (input: unknown) => {
  const { key, failTimes } = input as { key: string; failTimes: number };
  const n = count(key);
  if (n <= failTimes) throw new PipelineError('TEST.FLAKY', `attempt ${n} failed`, true);
  return { key, attempts: n };
});
act('utAlwaysFails', (input: unknown) => {
  count(String(input));
  throw new PipelineError('TEST.BOOM', 'always fails');
});
act('utThrowsString', () => {
  throw 'plain string thrown';
});
act('utThrowsObject', () => {
  throw { code: 42, why: 'object thrown' };
});
act('utThrowsUndefined', () => {
  throw undefined;
});
act('utGate', async (input: unknown) => {
  await gate(String(input)).promise;
  return `opened ${String(input)}`;
});
act('utUnserializable', () => ({ big: BigInt(1) }));

df.app.orchestration('utChain', function* (context: OrchestrationContext) {
  const a = yield context.df.callActivity('utHello', 'Tokyo');
  const b = yield context.df.callActivity('utHello', 'Seattle');
  const c = yield context.df.callActivity('utEcho', { n: 1, nested: { list: [1, 2] } });
  const d = yield context.df.callActivity('utNothing');
  return [a, b, c, d, context.df.getInput()];
});

df.app.orchestration('utFanOut', function* (context: OrchestrationContext) {
  const n = context.df.getInput() as number;
  const tasks = [];
  for (let i = 0; i < n; i++) tasks.push(context.df.callActivity('utEcho', i * 10));
  const results = yield context.df.Task.all(tasks);
  return results;
});

df.app.orchestration('utRetry', function* (context: OrchestrationContext) {
  const ro = new df.RetryOptions(1000, 4);
  ro.backoffCoefficient = 2;
  ro.maxRetryIntervalInMilliseconds = 3000;
  return yield context.df.callActivityWithRetry('utFlaky', ro, context.df.getInput());
});

df.app.orchestration('utRetryExhaust', function* (context: OrchestrationContext) {
  const ro = new df.RetryOptions(500, 2);
  try {
    yield context.df.callActivityWithRetry('utAlwaysFails', ro, context.df.getInput());
    return 'unexpected success';
  } catch (e) {
    return { caught: (e as Error).message, taskFailed: e instanceof df.TaskFailedError, code: errorCode(e) };
  }
});

df.app.orchestration('utRetryUncaught', function* (context: OrchestrationContext) {
  yield context.df.callActivityWithRetry('utAlwaysFails', new df.RetryOptions(100, 2), 'uncaught');
});

df.app.orchestration('utRetryTimeout', function* (context: OrchestrationContext) {
  const ro = new df.RetryOptions(1000, 10);
  ro.retryTimeoutInMilliseconds = 1500;
  try {
    yield context.df.callActivityWithRetry('utAlwaysFails', ro, 'timeout-key');
  } catch (e) {
    return (e as Error).message;
  }
});

function* approval(context: OrchestrationContext, cancel: boolean): Generator<Task, unknown, unknown> {
  const deadline = new Date(context.df.currentUtcDateTime.getTime() + 24 * 3600_000);
  const timer = context.df.createTimer(deadline);
  const ev = context.df.waitForExternalEvent('Approval');
  const winner = yield context.df.Task.any([ev, timer]);
  if (winner === ev) {
    if (cancel) timer.cancel();
    return { approved: ev.result };
  }
  return 'timed out';
}
df.app.orchestration('utApproval', function* (context: OrchestrationContext) {
  return yield* approval(context, true);
});
df.app.orchestration('utApprovalNoCancel', function* (context: OrchestrationContext) {
  return yield* approval(context, false);
});

df.app.orchestration('utLongTimer', function* (context: OrchestrationContext) {
  const start = context.df.currentUtcDateTime.getTime();
  yield context.df.createTimer(new Date(start + 10 * 24 * 3600_000));
  return context.df.currentUtcDateTime.getTime() - start;
});

df.app.orchestration('utChild', function* (context: OrchestrationContext) {
  const n = context.df.getInput() as number;
  if (n < 0) throw new Error(`[TEST.CHILD] negative input ${n}`);
  const echoed = (yield context.df.callActivity('utEcho', n * 2)) as number;
  return echoed;
});
df.app.orchestration('utParent', function* (context: OrchestrationContext) {
  const ok = (yield context.df.callSubOrchestrator('utChild', 21)) as number;
  let failed = '';
  try {
    yield context.df.callSubOrchestrator('utChild', -1, `${context.df.instanceId}-bad`);
  } catch (e) {
    failed = (e as Error).message;
  }
  return { ok: ok + 0, failed };
});

df.app.orchestration('utEarlyEvent', function* (context: OrchestrationContext) {
  const g = yield context.df.callActivity('utGate', context.df.getInput());
  const ev = yield context.df.waitForExternalEvent('Go');
  const ev2 = yield context.df.waitForExternalEvent('Go');
  return { g, ev, ev2 };
});

df.app.orchestration('utCustomStatus', function* (context: OrchestrationContext) {
  context.df.setCustomStatus({ step: 'waiting for gate' });
  yield context.df.callActivity('utGate', context.df.getInput());
  context.df.setCustomStatus({ step: 'done' });
  return 'ok';
});

df.app.orchestration('utBigStatus', function* (context: OrchestrationContext) {
  context.df.setCustomStatus({ blob: 'x'.repeat(20000) });
  yield context.df.callActivity('utEcho', 1);
  return 'never';
});

df.app.orchestration('utWaitForever', function* (context: OrchestrationContext) {
  return yield context.df.waitForExternalEvent('Never');
});

df.app.orchestration('utErrors', function* (context: OrchestrationContext) {
  const out: Record<string, string> = {};
  for (const name of [
    'utThrowsString',
    'utThrowsObject',
    'utThrowsUndefined',
    'utNoSuchActivity',
    'utUnserializable',
  ]) {
    try {
      yield context.df.callActivity(name);
      out[name] = 'no error';
    } catch (e) {
      out[name] = (e as Error).message;
    }
  }
  return out;
});

df.app.orchestration('utCounter', function* (context: OrchestrationContext) {
  const n = context.df.getInput() as number;
  if (n < 3) {
    context.df.continueAsNew(n + 1);
    return;
  }
  const r = yield context.df.callActivity('utEcho', `final ${n}`);
  return r;
});

df.app.orchestration('utHttp', function* (context: OrchestrationContext) {
  yield context.df.callHttp({ method: 'GET', url: 'http://127.0.0.1:1/' });
});

df.app.orchestration('utThrows', function* (context: OrchestrationContext) {
  yield context.df.callActivity('utEcho', 1);
  throw new PipelineError('TEST.ORCH', 'orchestrator gave up');
});

let nondeterministic = 0;
df.app.orchestration('utNondeterministic', function* (context: OrchestrationContext) {
  nondeterministic++; // a mutable global: a different first activity on every replay
  yield context.df.callActivity(nondeterministic % 2 ? 'utEcho' : 'utHello', 1);
  yield context.df.callActivity('utEcho', 3);
  return 'done';
});

act('utLogs', (input: unknown, context) => {
  context.log('activity says', input);
  context.warn('activity warns');
  return 'logged';
});
df.app.orchestration('utMixed', function* (context: OrchestrationContext) {
  context.log('orchestrator line');
  const ro = new df.RetryOptions(200, 3);
  const t0 = context.df.currentUtcDateTime.getTime();
  const [flaky, plain] = (yield context.df.Task.all([
    context.df.callActivityWithRetry('utFlaky', ro, { key: context.df.getInput() as string, failTimes: 2 }),
    context.df.callActivity('utEcho', 'plain'),
    context.df.createTimer(new Date(t0 + 300)),
  ])) as unknown[];
  const child = yield context.df.callSubOrchestratorWithRetry('utChild', new df.RetryOptions(100, 2), 5);
  const logged = yield context.df.callActivity('utLogs', 'x');
  return { flaky, plain, child, logged };
});
df.app.orchestration('utLongCancel', function* (context: OrchestrationContext) {
  const timer = context.df.createTimer(
    new Date(context.df.currentUtcDateTime.getTime() + 30 * 24 * 3600_000),
  );
  const ev = context.df.waitForExternalEvent('Stop');
  const winner = yield context.df.Task.any([timer, ev]);
  if (winner === ev) timer.cancel();
  return winner === ev ? 'stopped' : 'expired';
});

df.app.orchestration('utParentOfWaiter', function* (context: OrchestrationContext) {
  try {
    yield context.df.callSubOrchestrator('utWaitForever', undefined, `${context.df.instanceId}-child`);
    return 'child finished';
  } catch (e) {
    return `caught: ${(e as Error).message}`;
  }
});

// ---------------------------------------------------------------- harness
const lines: string[] = [];
const log = createLogger({ level: 'debug', sink: (l) => lines.push(l) });
let clock: TestClock;
let engine: DurableEngine;

beforeEach(async () => {
  clock = new TestClock();
  engine = new DurableEngine({
    dbPath: ':memory:',
    functions: registeredFunctions,
    clock,
    log,
    verbose: true,
  });
  await engine.start();
});

afterEach(async () => {
  for (const g of gates.values()) g.open();
  await engine.stop();
});

async function run(name: string, input?: unknown, instanceId?: string) {
  const id = await engine.startNew(name, { input, instanceId });
  await engine.idle();
  return id;
}

/** Waits (without asserting on time) until cond() holds; for activities the engine cannot settle. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`gave up waiting for ${what}`);
}
const gateStarted = (id: string) => () =>
  (engine.getStatus(id, { showHistory: true })?.history ?? []).some(
    (e) => (e as { EventType: string }).EventType === 'TaskScheduled',
  );

// ---------------------------------------------------------------- tests
describe('durable engine conformance (real durable-functions handlers)', () => {
  test('activity chain: results in order, string inputs arrive as the original strings', async () => {
    received.length = 0;
    const id = await run('utChain', { who: 'me' });
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Completed');
    expect(s.output).toEqual([
      'Hello Tokyo',
      'Hello Seattle',
      { n: 1, nested: { list: [1, 2] } },
      null,
      { who: 'me' },
    ]);
    expect(received).toEqual(['Tokyo', 'Seattle']);
    const hist = engine.getStatus(id, { showHistory: true })?.history as Array<{ EventType: string }>;
    expect(hist.filter((e) => e.EventType === 'TaskScheduled')).toHaveLength(4);
    expect(hist.filter((e) => e.EventType === 'TaskCompleted')).toHaveLength(4);
    expect(hist[hist.length - 1].EventType).toBe('ExecutionCompleted');
    const logged = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'activity completed' && l.instanceId === id);
    expect(logged).toHaveLength(4);
    expect(typeof logged[0].durationMs).toBe('number');
    expect(logged[0].function).toBe('utHello');
  });

  test('fan-out/fan-in with Task.all (more activities than the concurrency bound)', async () => {
    const id = await run('utFanOut', 20);
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.output).toEqual(Array.from({ length: 20 }, (_, i) => i * 10));
  });

  test('retry with exponential back-off, capped, then success', async () => {
    const id = await run('utRetry', { key: 'retry-1', failTimes: 3 });
    expect(calls['retry-1']).toBe(1);
    await clock.advance(999);
    expect(calls['retry-1']).toBe(1);
    await clock.advance(1); // 1st delay 1000
    expect(calls['retry-1']).toBe(2);
    await clock.advance(1999);
    expect(calls['retry-1']).toBe(2);
    await clock.advance(1); // 2nd delay 2000
    expect(calls['retry-1']).toBe(3);
    await clock.advance(2999);
    expect(calls['retry-1']).toBe(3);
    await clock.advance(1); // 3rd delay 4000 capped at 3000
    expect(calls['retry-1']).toBe(4);
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Completed');
    expect(s.output).toEqual({ key: 'retry-1', attempts: 4 });
  });

  test('retry exhaustion surfaces the last failure as a TaskFailedError with its code', async () => {
    const id = await run('utRetryExhaust', 'exhaust-1');
    await clock.advance(500);
    const s = await engine.waitForCompletion(id, 5000);
    expect(calls['exhaust-1']).toBe(2);
    expect(s.runtimeStatus).toBe('Completed');
    const out = s.output as { caught: string; taskFailed: boolean; code: string };
    expect(out.taskFailed).toBe(true);
    expect(out.code).toBe('TEST.BOOM');
    expect(out.caught).toContain('[TEST.BOOM] always fails');
  });

  test('uncaught retry exhaustion fails the orchestration with the activity error', async () => {
    const id = await run('utRetryUncaught');
    await clock.advance(100);
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Failed');
    expect(String(s.output)).toContain("Orchestrator function 'utRetryUncaught' failed");
    expect(String(s.output)).toContain('[TEST.BOOM] always fails');
  });

  test('retry timeout stops further attempts', async () => {
    calls['timeout-key'] = 0;
    const id = await run('utRetryTimeout');
    await clock.advance(1000); // attempt 2 at t=1000
    await clock.advance(2000); // attempt 3 would be at t=3000 > timeout 1500
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Completed');
    expect(calls['timeout-key']).toBe(2);
    expect(String(s.output)).toContain('[TEST.BOOM]');
  });

  test('Task.any: the approval event wins, the timer is cancelled and the instance completes', async () => {
    const id = await run('utApproval');
    expect(engine.getStatus(id)?.runtimeStatus).toBe('Running');
    expect(clock.pendingTimers()).toBe(1);
    expect(await engine.raiseEvent(id, 'Approval', { by: 'alice' })).toBe('accepted');
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Completed');
    expect(s.output).toEqual({ approved: { by: 'alice' } });
    expect(clock.pendingTimers()).toBe(0);
  });

  test('Task.any: the 24-hour timer wins without waiting and the instance completes', async () => {
    const id = await run('utApproval');
    await clock.advance(24 * HOUR - 1);
    expect(engine.getStatus(id)?.runtimeStatus).toBe('Running');
    await clock.advance(1);
    const s = engine.getStatus(id);
    expect(s?.runtimeStatus).toBe('Completed');
    expect(s?.output).toBe('timed out');
    expect(await engine.raiseEvent(id, 'Approval', true)).toBe('gone');
  });

  test('like Azure, an uncancelled losing timer keeps the instance Running until it fires', async () => {
    lines.length = 0;
    const id = await run('utApprovalNoCancel');
    await engine.raiseEvent(id, 'Approval', 'yes');
    await engine.idle();
    expect(engine.getStatus(id)?.runtimeStatus).toBe('Running');
    expect(lines.some((l) => l.includes('uncancelled timers'))).toBe(true);
    await clock.advance(DAY);
    const s = engine.getStatus(id);
    expect(s?.runtimeStatus).toBe('Completed');
    expect(s?.output).toEqual({ approved: 'yes' });
  });

  test('timers longer than maximumShortTimerDuration are split and fire at the right time', async () => {
    const id = await run('utLongTimer');
    await clock.advance(10 * DAY - 1);
    expect(engine.getStatus(id)?.runtimeStatus).toBe('Running');
    await clock.advance(1);
    const s = engine.getStatus(id, { showHistory: true });
    expect(s?.runtimeStatus).toBe('Completed');
    expect(s?.output).toBe(10 * DAY);
    const created = (s?.history as Array<{ EventType: string }>).filter(
      (e) => e.EventType === 'TimerCreated',
    );
    expect(created).toHaveLength(3); // +3d, +3d, then the last 4 days
  });

  test('sub-orchestrations: result and failure reach the parent', async () => {
    const id = await run('utParent', undefined, 'parent-1');
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Completed');
    const out = s.output as { ok: number; failed: string };
    expect(out.ok).toBe(42);
    expect(out.failed).toContain('[TEST.CHILD] negative input -1');
    expect(engine.getStatus('parent-1:0')?.runtimeStatus).toBe('Completed');
    expect(engine.getStatus('parent-1-bad')?.runtimeStatus).toBe('Failed');
  });

  test('an event raised before it is awaited is buffered, and two events of one name are both delivered', async () => {
    const id = await engine.startNew('utEarlyEvent', { input: 'early' });
    await until(gateStarted(id), 'the gate activity');
    expect(await engine.raiseEvent(id, 'Go', { first: true })).toBe('accepted');
    expect(await engine.raiseEvent(id, 'Go', 'second')).toBe('accepted');
    expect(engine.getStatus(id)?.runtimeStatus).toBe('Running');
    gate('early').open();
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.output).toEqual({ g: 'opened early', ev: { first: true }, ev2: 'second' });
  });

  test('custom status is visible through getStatus while running', async () => {
    const id = await engine.startNew('utCustomStatus', { input: 'cs' });
    await until(gateStarted(id), 'the gate activity');
    expect(engine.getStatus(id)?.customStatus).toEqual({ step: 'waiting for gate' });
    gate('cs').open();
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.customStatus).toEqual({ step: 'done' });
  });

  test('a custom status over 16 KB fails the orchestration with a clear error', async () => {
    const id = await run('utBigStatus');
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Failed');
    expect(String(s.output)).toContain('[DURABLE.CUSTOM_STATUS_TOO_LARGE]');
    expect(String(s.output)).toContain('16384');
  });

  test('terminate: Terminated with the reason; later raise/terminate say gone; unknown ids say not-found', async () => {
    const id = await run('utWaitForever');
    expect(await engine.terminate(id, 'operator said stop')).toBe('accepted');
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Terminated');
    expect(s.output).toBe('operator said stop');
    expect(await engine.raiseEvent(id, 'Never', 1)).toBe('gone');
    expect(await engine.terminate(id, 'again')).toBe('gone');
    expect(await engine.terminate('no-such-id', 'x')).toBe('not-found');
    expect(await engine.raiseEvent('no-such-id', 'x', 1)).toBe('not-found');
  });

  test('startNew with an id that is still running is refused; reusable once finished', async () => {
    await run('utWaitForever', undefined, 'dup-1');
    await expect(engine.startNew('utWaitForever', { instanceId: 'dup-1' })).rejects.toMatchObject({
      code: 'DURABLE.INSTANCE_EXISTS',
    });
    await engine.terminate('dup-1', 'done');
    await engine.idle();
    await expect(engine.startNew('utChain', { instanceId: 'dup-1' })).resolves.toBe('dup-1');
    const s = await engine.waitForCompletion('dup-1', 5000);
    expect(s.name).toBe('utChain');
    expect(s.runtimeStatus).toBe('Completed');
  });

  test('bad input to startNew and raiseEvent is refused with clear errors', async () => {
    await expect(engine.startNew('utNoSuchOrchestrator')).rejects.toMatchObject({
      code: 'DURABLE.UNKNOWN_ORCHESTRATOR',
    });
    await expect(engine.startNew('utNoSuchOrchestrator')).rejects.toThrow(/utChain/);
    await expect(engine.startNew('utChain', { instanceId: 'bad/id' })).rejects.toMatchObject({
      code: 'DURABLE.INVALID_INSTANCE_ID',
    });
    await expect(engine.startNew('')).rejects.toMatchObject({ code: 'DURABLE.BAD_REQUEST' });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(engine.startNew('utChain', { input: circular })).rejects.toMatchObject({
      code: 'DURABLE.NOT_SERIALIZABLE',
    });
    const id = await run('utWaitForever');
    await expect(engine.raiseEvent(id, '', 1)).rejects.toMatchObject({ code: 'DURABLE.BAD_REQUEST' });
    await expect(engine.raiseEvent(id, 'x', circular)).rejects.toMatchObject({
      code: 'DURABLE.NOT_SERIALIZABLE',
    });
    expect(engine.getStatus(id)?.runtimeStatus).toBe('Running'); // nothing lost
  });

  test('activities that throw non-Error values, unknown activities and unserializable results fail clearly', async () => {
    const id = await run('utErrors');
    const s = await engine.waitForCompletion(id, 5000);
    const out = s.output as Record<string, string>;
    expect(out.utThrowsString).toContain('plain string thrown');
    expect(out.utThrowsObject).toContain('{"code":42,"why":"object thrown"}');
    expect(out.utThrowsUndefined).toContain('undefined was thrown');
    expect(out.utNoSuchActivity).toContain('[DURABLE.UNKNOWN_ACTIVITY]');
    expect(out.utUnserializable).toContain('[DURABLE.NOT_SERIALIZABLE]');
  });

  test('continueAsNew restarts with the new input and a fresh history', async () => {
    const id = await run('utCounter', 0);
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Completed');
    expect(s.output).toBe('final 3');
    expect(s.input).toBe(3);
    const hist = engine.getStatus(id, { showHistory: true })?.history as Array<{ EventType: string }>;
    expect(hist.filter((e) => e.EventType === 'ExecutionStarted')).toHaveLength(1);
  });

  test('an orchestrator exception fails the instance with its message; unsupported actions fail clearly', async () => {
    const a = await run('utThrows');
    const sa = await engine.waitForCompletion(a, 5000);
    expect(sa.runtimeStatus).toBe('Failed');
    expect(String(sa.output)).toContain('[TEST.ORCH] orchestrator gave up');
    const b = await run('utHttp');
    const sb = await engine.waitForCompletion(b, 5000);
    expect(sb.runtimeStatus).toBe('Failed');
    expect(String(sb.output)).toContain('[DURABLE.UNSUPPORTED_ACTION]');
  });

  test('a non-deterministic orchestrator fails loudly instead of hanging', async () => {
    nondeterministic = 0;
    const id = await run('utNondeterministic');
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Failed');
    expect(String(s.output)).toContain('[DURABLE.REPLAY_MISMATCH]');
  });

  test('listInstances filters and pages; purge removes finished instances only', async () => {
    const done1 = await run('utChain', 1);
    const done2 = await run('utChain', 2);
    const running = await run('utWaitForever');
    await engine.waitForCompletion(done1, 5000);
    await engine.waitForCompletion(done2, 5000);
    const completed = engine
      .listInstances({ runtimeStatus: ['Completed'] })
      .instances.map((s) => s.instanceId);
    expect(completed).toEqual([done1, done2]);
    const p1 = engine.listInstances({ top: 2 });
    expect(p1.instances).toHaveLength(2);
    expect(p1.continuationToken).toBeDefined();
    const p2 = engine.listInstances({ top: 2, continuationToken: p1.continuationToken });
    expect(p2.instances.map((s) => s.instanceId)).toEqual([running]);
    expect(p2.continuationToken).toBeUndefined();
    expect(() => engine.listInstances({ continuationToken: 'garbage' })).toThrow(/continuation token/);
    expect(engine.listInstances({ createdFrom: new Date(clock.now() + 1) }).instances).toHaveLength(0);
    expect(() => engine.purge(running)).toThrow(/DURABLE.INSTANCE_RUNNING/);
    expect(engine.purge(done1)).toBe(1);
    expect(engine.purge(done1)).toBe(0);
    expect(engine.getStatus(done1)).toBeUndefined();
    expect(engine.purgeBy({ runtimeStatus: ['Completed'] })).toBe(1);
  });

  test('waitForCompletion times out with a clear error; unknown ids are refused', async () => {
    const id = await run('utWaitForever');
    await expect(engine.waitForCompletion(id, 20)).rejects.toMatchObject({ code: 'DURABLE.WAIT_TIMEOUT' });
    await expect(engine.waitForCompletion('nope', 20)).rejects.toMatchObject({ code: 'DURABLE.NOT_FOUND' });
  });

  test('retries, a plain activity and a timer inside Task.all, then a sub-orchestration with retry', async () => {
    lines.length = 0;
    const id = await run('utMixed', 'mixed-1');
    await clock.advance(200); // retry 1 of utFlaky
    await clock.advance(400); // retry 2 (backoff 1 → 200 again) and the 300 ms timer
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Completed');
    expect(s.output).toEqual({
      flaky: { key: 'mixed-1', attempts: 3 },
      plain: 'plain',
      child: 10,
      logged: 'logged',
    });
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const fromActivity = parsed.find((l) => l.msg === 'activity says x');
    expect(fromActivity).toMatchObject({ instanceId: id, function: 'utLogs', level: 'info' });
    expect(parsed.some((l) => l.msg === 'activity warns' && l.level === 'warn')).toBe(true);
    // verbose engine: orchestrator lines (also on replay) and episode detail are logged
    expect(parsed.filter((l) => l.msg === 'orchestrator line').length).toBeGreaterThan(1);
    expect(parsed.some((l) => l.msg === 'orchestrator episode' && l.instanceId === id)).toBe(true);
  });

  test('a cancelled 30-day timer (split into segments) does not keep the instance running', async () => {
    const id = await run('utLongCancel');
    await clock.advance(4 * DAY); // first 3-day segment fired, the next one is armed
    expect(engine.getStatus(id)?.runtimeStatus).toBe('Running');
    await engine.raiseEvent(id, 'Stop', null);
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.output).toBe('stopped');
    expect(clock.pendingTimers()).toBe(0);
    const other = await run('utLongCancel');
    await clock.advance(30 * DAY);
    expect(engine.getStatus(other)?.output).toBe('expired');
  });

  test('terminating a sub-orchestration fails the task the parent awaits', async () => {
    const id = await run('utParentOfWaiter', undefined, 'pw');
    expect(engine.getStatus('pw-child')?.runtimeStatus).toBe('Running');
    await engine.terminate('pw-child', 'operator stop');
    const s = await engine.waitForCompletion(id, 5000);
    expect(s.output).toMatch(/caught: .*'utWaitForever' was terminated: operator stop/);
  });

  test('getStatus hides the input when asked and returns undefined for unknown ids', async () => {
    const id = await run('utWaitForever', { secretish: 'input' });
    expect(engine.getStatus(id)?.input).toEqual({ secretish: 'input' });
    expect(engine.getStatus(id, { showInput: false })?.input).toBeNull();
    expect(engine.getStatus('unknown')).toBeUndefined();
  });
});

describe('durable engine persistence', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'durable-unit-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('work survives a stop and restart on the same database; the engine refuses use after stop', async () => {
    const dbPath = join(dir, 'd.sqlite');
    const e1 = new DurableEngine({ dbPath, functions: registeredFunctions, clock: realClock, log });
    await e1.start();
    const id = await e1.startNew('utApproval');
    await e1.idle();
    expect(e1.getStatus(id)?.runtimeStatus).toBe('Running');
    await e1.stop();
    expect(() => e1.getStatus(id)).toThrow(/DURABLE.STOPPED/);
    await expect(e1.start()).rejects.toMatchObject({ code: 'DURABLE.STOPPED' });

    const e2 = new DurableEngine({ dbPath, functions: registeredFunctions, clock: realClock, log });
    // work accepted before start() is persisted and runs once started
    expect(await e2.raiseEvent(id, 'Approval', 'after restart')).toBe('accepted');
    await e2.start();
    const s = await e2.waitForCompletion(id, 5000);
    expect(s.output).toEqual({ approved: 'after restart' });
    await e2.stop();
  });

  test('an orchestrator that is no longer registered fails with a clear error on resume', async () => {
    const dbPath = join(dir, 'd2.sqlite');
    const e1 = new DurableEngine({ dbPath, functions: registeredFunctions, log });
    await e1.start();
    const id = await e1.startNew('utWaitForever');
    await e1.idle();
    await e1.stop();
    const e2 = new DurableEngine({
      dbPath,
      functions: () => registeredFunctions().filter((f) => f.metadata.name !== 'utWaitForever'),
      log,
    });
    await e2.start();
    await e2.raiseEvent(id, 'Never', 1);
    const s = await e2.waitForCompletion(id, 5000);
    expect(s.runtimeStatus).toBe('Failed');
    expect(String(s.output)).toContain('[DURABLE.UNKNOWN_ORCHESTRATOR]');
    await e2.stop();
  });
});
