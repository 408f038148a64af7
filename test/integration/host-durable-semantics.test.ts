/**
 * The durable semantics the orchestrators rely on, through the embedded host on the Durable Task
 * extension (docs/durable-local-engine.md lists what was found about it):
 *
 * - an external event raised before the orchestrator waits for it is kept and delivered;
 * - retries with back-off: an activity failing twice then succeeding runs three times, the error of a
 *   sub-orchestration reaches its parent with its [CODE];
 * - terminate of a waiting instance; an event for a finished instance is refused ('gone');
 * - purge of a finished instance forgets it; a running one is never purged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import { startLocalHost, type LocalHost } from '../../local/host';
import { until } from '../support/until';

const WAIT = 120000;
jest.setTimeout(240000);

const attempts = new Map<string, number>();
df.app.activity('hdsSlow', {
  handler: async (ms: number) => {
    await new Promise((r) => setTimeout(r, ms));
    return ms;
  },
});
df.app.activity('hdsFlaky', {
  handler: async (key: string) => {
    const n = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, n);
    if (n < 3) throw new Error(`[TEST.FLAKY] attempt ${n} failed`);
    return n;
  },
});
df.app.orchestration('hdsEarlyEvent', function* (context: OrchestrationContext) {
  yield context.df.callActivity('hdsSlow', 1500); // the event arrives while this runs
  const got = yield context.df.waitForExternalEvent('go');
  return { got };
});
df.app.orchestration('hdsRetry', function* (context: OrchestrationContext) {
  const n = yield context.df.callActivityWithRetry(
    'hdsFlaky',
    new df.RetryOptions(200, 5),
    context.df.instanceId,
  );
  return { attempts: n };
});
df.app.orchestration('hdsFailingChild', function* (context: OrchestrationContext) {
  yield context.df.callActivity('hdsSlow', 10);
  throw new Error('[TEST.CHILD_FAILED] the child gave up');
});
df.app.orchestration('hdsParent', function* (context: OrchestrationContext) {
  try {
    yield context.df.callSubOrchestrator('hdsFailingChild', null, `${context.df.instanceId}-child`);
    return { caught: null };
  } catch (err) {
    return { caught: (err as Error).message };
  }
});
df.app.orchestration('hdsWaiter', function* (context: OrchestrationContext) {
  context.df.setCustomStatus('waiting');
  return yield context.df.waitForExternalEvent('never');
});

let dir: string;
let host: LocalHost;
const saved = { ...process.env };

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'hds-'));
  host = await startLocalHost({
    dataDir: dir,
    port: 0,
    env: { LOG_LEVEL: 'error' },
    log: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    } as never,
  });
}, 300000);

afterAll(async () => {
  await host?.stop();
  process.env = saved;
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
});

const running = (id: string) =>
  until(
    `${id} running`,
    async () => (await host.durable.getStatus(id))?.runtimeStatus === 'Running',
    WAIT,
    50,
  );

it('an event raised before the orchestrator waits for it is delivered', async () => {
  const id = await host.durable.startNew('hdsEarlyEvent', { instanceId: 'hds-early', input: null });
  await running(id);
  expect(await host.durable.raiseEvent(id, 'go', { v: 1 })).toBe('accepted');
  const st = await host.durable.waitForCompletion(id, WAIT);
  expect(st.runtimeStatus).toBe('Completed');
  expect(st.output).toEqual({ got: { v: 1 } });
});

it('retries an activity with back-off until it succeeds (3 attempts)', async () => {
  const id = await host.durable.startNew('hdsRetry', { instanceId: 'hds-retry', input: null });
  const st = await host.durable.waitForCompletion(id, WAIT);
  expect(st.output).toEqual({ attempts: 3 });
  expect(attempts.get('hds-retry')).toBe(3);
});

it("a failing sub-orchestration's error reaches the parent with its code", async () => {
  const id = await host.durable.startNew('hdsParent', { instanceId: 'hds-parent', input: null });
  const st = await host.durable.waitForCompletion(id, WAIT);
  expect(st.runtimeStatus).toBe('Completed');
  expect((st.output as { caught: string }).caught).toContain('[TEST.CHILD_FAILED]');
  expect((await host.durable.getStatus('hds-parent-child'))?.runtimeStatus).toBe('Failed');
});

it('terminate ends a waiting instance; a later event is refused as gone', async () => {
  const id = await host.durable.startNew('hdsWaiter', { instanceId: 'hds-term', input: null });
  await running(id);
  expect(await host.durable.terminate(id, 'operator stop')).toBe('accepted');
  const st = await host.durable.waitForCompletion(id, WAIT);
  expect(st.runtimeStatus).toBe('Terminated');
  expect(await host.durable.raiseEvent(id, 'never', 1)).toBe('gone');
  expect(await host.durable.raiseEvent('hds-no-such-instance', 'never', 1)).toBe('not-found');
});

it('purge forgets a finished instance and never touches a running one', async () => {
  const live = await host.durable.startNew('hdsWaiter', { instanceId: 'hds-live', input: null });
  await running(live);
  await expect(host.durable.purge(live)).rejects.toThrow(/DURABLE.INSTANCE_RUNNING/);
  expect((await host.durable.getStatus(live))?.runtimeStatus).toBe('Running');
  const done = await host.durable.startNew('hdsRetry', { instanceId: 'hds-purge', input: null });
  await host.durable.waitForCompletion(done, WAIT);
  expect(await host.durable.purge(done)).toBe(1);
  expect(await host.durable.getStatus(done)).toBeUndefined();
  expect(await host.durable.purge(done)).toBe(0);
  await host.durable.terminate(live, 'cleanup');
});
