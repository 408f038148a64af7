/**
 * The deploy lane's rules (issue #20), on the embedded durable engine in memory with the real
 * durable-functions library (no services): one piece of work at a time per environment; while it runs,
 * a newer request supersedes the waiting request of its OWN orchestrator only (a merge replaces the
 * older waiting merge, never a waiting refresh); a request already running, waiting or done is a
 * duplicate; every decision is recorded with its reason; the rest runs in arrival order.
 * The work is test-only `deployUat` / `refreshUat` orchestrators that wait for a `finish` event.
 * The lane starts its work and hears of its end through its activities (functions/activities/lane.ts),
 * which use the durable client: here the engine's own client API on a loopback HTTP server, as the
 * embedded host serves it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import { InvocationContext } from '@azure/functions';
import { registeredFunctions } from '../../local/functions-core';
import { DurableEngine } from '../../local/durable/engine';
import { TestClock } from '../../local/durable/clock';
import { createLogger } from '../../shared/log';
import { deployInstanceId } from '../../shared/domain/coverage-gate';
import { DEPLOY_REQUESTED, laneInstanceId, type LaneRequest } from '../../functions/orchestrators/deployLane';
import { laneStartWork, laneWorkEnded } from '../../functions/activities/lane';
import { laneSendsWithoutWaiting } from '../support/test-clock-lane';

/** what the lane recorded (`intakeRecordLaneEvent`), in order */
const recorded: Array<Record<string, unknown>> = [];
/** the work the lane started, in order */
const started: string[] = [];

/** what the lane's status said while each of those decisions was being recorded */
const statusWhileRecording: unknown[] = [];

df.app.activity('intakeRecordLaneEvent', {
  handler: (d: unknown) => {
    recorded.push(d as Record<string, unknown>);
    statusWhileRecording.push(engine.getStatus(LANE)?.customStatus);
  },
});
function* held(context: OrchestrationContext, label: string): Generator<df.Task, unknown, unknown> {
  if (!context.df.isReplaying) started.push(label);
  const how = (yield context.df.waitForExternalEvent('finish')) as string;
  if (how === 'fail') throw new Error('[DEPLOY.MIGRATION_FAILED] column "x_mta_ref" does not exist');
  return how === 'rolled-back' ? { outcome: 'RolledBack' } : { outcome: 'Succeeded' };
}
df.app.orchestration('deployUat', function* (context: OrchestrationContext) {
  return yield* held(context, (context.df.getInput() as LaneRequest).version);
});
df.app.orchestration('refreshUat', function* (context: OrchestrationContext) {
  return yield* held(context, context.df.instanceId);
});

const merge = (version: string, c: string): LaneRequest => ({
  type: 'deploy-uat',
  environment: 'uat',
  repository: 'acme/odoo-mta',
  version,
  sha: c.repeat(40),
  imageRef: `registry.acme.test/odoo-mta:uat-v${version}`,
  coverage: 91.2,
  mergedBy: 'alice',
  trigger: 'push',
  deliveryId: `delivery-${version}`,
  requestedAt: '2026-12-06T05:00:00Z',
});
const refresh = (n: string): LaneRequest => ({
  ...merge('refresh', '0'),
  sha: '',
  version: 'refresh',
  orchestrator: 'refreshUat',
  instanceId: `refresh-uat-20261206t050000z-${n}`,
});
const idOf = (r: LaneRequest) => r.instanceId ?? deployInstanceId('uat', r.version, r.sha);

let engine: DurableEngine;
let clock: TestClock;
let server: Server;
let base: string;
const LANE = laneInstanceId('uat');
const PREFIX = '/durabletask/';
/** the client API answering 503, as when the task hub's storage is out (see `whileClientDown`) */
let clientDown = false;

beforeAll(async () => {
  // the lane moves only when the test advances its clock: requests and ends are raised once
  laneSendsWithoutWaiting();
  // the durable client API of whichever engine the test runs now
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (clientDown) return void res.writeHead(503).end('storage unavailable');
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      engine
        .handleClientRequest({
          method: req.method ?? 'GET',
          path: url.pathname.slice(PREFIX.length),
          query: url.searchParams,
          body: Buffer.concat(chunks).toString('utf8'),
          headers: req.headers,
        })
        .then((r) => res.writeHead(r.status, r.headers ?? {}).end(r.body ?? ''))
        .catch((e: Error) => res.writeHead(500).end(e.message));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PREFIX}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(async () => {
  recorded.length = 0;
  statusWhileRecording.length = 0;
  started.length = 0;
  clock = new TestClock();
  engine = new DurableEngine({
    dbPath: ':memory:',
    functions: registeredFunctions,
    clock,
    log: createLogger({ level: 'error', sink: () => {} }),
    prepareContext: (ctx, fn) => {
      for (const b of Object.values(fn.metadata.bindings))
        if (b.type === 'durableClient' && b.direction === 'in')
          ctx.extraInputs.set(b.name as string, engine.clientData(base));
    },
  });
  await engine.start();
});
afterEach(async () => {
  await engine.stop();
});

/** the engine idle, and the timers due now fired (the lane drains buffered events against one) */
async function settle() {
  await engine.idle();
  await clock.advance(0);
  await engine.idle();
}
/** the lane started with `next` (as routeToLane starts an idle lane), settled */
async function startLane(next: LaneRequest) {
  await engine.startNew('deployLane', { instanceId: LANE, input: { environment: 'uat', next } });
  await settle();
}
async function ask(r: LaneRequest) {
  expect(await engine.raiseEvent(LANE, DEPLOY_REQUESTED, r)).toBe('accepted');
  await settle();
}
async function finish(r: LaneRequest, how = 'ok') {
  expect(await engine.raiseEvent(idOf(r), 'finish', how)).toBe('accepted');
  await settle();
}
/** run `steps` with the client API down, and bring it back whatever happens */
async function whileClientDown(steps: () => Promise<void>) {
  clientDown = true;
  try {
    await steps();
  } finally {
    clientDown = false;
  }
}
const decisions = () => recorded.map((d) => `${String(d.decision)} ${String(d.instanceId)}`);
const laneStatus = () =>
  engine.getStatus(LANE)?.customStatus as { running: string | null; waiting: string[] } | undefined;

test('a newer merge supersedes only the waiting merge; a waiting refresh keeps its place; the queue runs in arrival order', async () => {
  const m1 = merge('1.0.0', 'a');
  const m2 = merge('1.1.0', 'b');
  const r1 = refresh('aaaa');
  const m3 = merge('1.2.0', 'c');
  await startLane(m1);
  expect(started).toEqual(['1.0.0']);
  await ask(m2);
  await ask(r1);
  await ask(m3);
  expect(laneStatus()).toEqual({ environment: 'uat', running: idOf(m1), waiting: [idOf(r1), idOf(m3)] });
  const superseded = recorded.find((d) => d.decision === 'superseded');
  expect(superseded).toMatchObject({
    instanceId: idOf(m2),
    supersededBy: idOf(m3),
    version: '1.1.0',
    sha: m2.sha,
    deliveryId: 'delivery-1.1.0',
    lane: LANE,
  });
  expect(superseded?.reason).toBe(`superseded by 1.2.0 (ccccccc) while 1.0.0 (aaaaaaa) was deploying`);

  await finish(m1);
  expect(started).toEqual(['1.0.0', r1.instanceId]);
  await finish(r1, 'rolled-back');
  expect(started).toEqual(['1.0.0', r1.instanceId, '1.2.0']);
  await finish(m3);
  expect(decisions()).toEqual([
    `deploy-started ${idOf(m1)}`,
    `superseded ${idOf(m2)}`,
    `deploy-finished ${idOf(m1)}`,
    `deploy-started ${idOf(r1)}`,
    `deploy-finished ${idOf(r1)}`,
    `deploy-started ${idOf(m3)}`,
    `deploy-finished ${idOf(m3)}`,
  ]);
  expect(recorded.find((d) => d.decision === 'deploy-finished' && d.instanceId === idOf(r1))).toMatchObject({
    outcome: 'RolledBack',
    reason: `deploy of refreshUat ${r1.instanceId} ended: RolledBack`,
  });
  expect(recorded.find((d) => d.decision === 'deploy-started' && d.instanceId === idOf(m3))?.reason).toBe(
    'deploying 1.2.0 (ccccccc) to uat',
  );
  expect(laneStatus()).toEqual({ environment: 'uat', running: null, waiting: [] });
});

test("while a generation records the last one's decisions before starting the queued work, the lane says it runs that work, never that it is idle", async () => {
  // a refresh asked for through the API is refused while the lane runs something (`running` set) and
  // goes ahead when it is idle: an idle-looking lane with work about to start would take it into the
  // queue behind that work, to stop UAT later, unasked
  const m1 = merge('1.0.0', 'a');
  const m2 = merge('1.1.0', 'b');
  await startLane(m1);
  await ask(m2);
  await finish(m1);
  expect(started).toEqual(['1.0.0', '1.1.0']);
  const at = recorded.findIndex((d) => d.decision === 'deploy-finished' && d.instanceId === idOf(m1));
  expect(at).toBeGreaterThan(0);
  expect(statusWhileRecording[at]).toEqual({ environment: 'uat', running: idOf(m2), waiting: [] });
  await finish(m2);
  expect(statusWhileRecording.length).toBe(recorded.length);
  for (const s of statusWhileRecording) {
    const { running, waiting } = s as { running: string | null; waiting: string[] };
    if (running === null) expect(waiting).toEqual([]);
  }
  expect(laneStatus()).toEqual({ environment: 'uat', running: null, waiting: [] });
});

test('a burst of merges raised together (one delivery batch) loses none: the newest waits, each older one is recorded superseded', async () => {
  const m1 = merge('1.0.0', 'a');
  const burst = [merge('1.1.0', 'b'), merge('1.2.0', 'c'), merge('1.3.0', 'd'), merge('1.4.0', 'e')];
  await startLane(m1);
  // all four reach the lane before it runs again: they are in its history together
  for (const r of await Promise.all(burst.map((m) => engine.raiseEvent(LANE, DEPLOY_REQUESTED, m))))
    expect(r).toBe('accepted');
  await settle();
  expect(laneStatus()).toEqual({ environment: 'uat', running: idOf(m1), waiting: [idOf(burst[3])] });
  expect(
    recorded
      .filter((d) => d.decision === 'superseded')
      .map((d) => d.instanceId)
      .sort(),
  ).toEqual(burst.slice(0, 3).map(idOf).sort());
  await finish(m1);
  expect(started).toEqual(['1.0.0', '1.4.0']);
});

test('a newer refresh supersedes the older waiting refresh, and says the lane was running (not deploying) a refresh', async () => {
  const r1 = refresh('aaaa');
  const r2 = refresh('bbbb');
  const r3 = refresh('cccc');
  await startLane(r1);
  await ask(r2);
  await ask(r3);
  expect(recorded.find((d) => d.decision === 'superseded')).toMatchObject({
    instanceId: idOf(r2),
    supersededBy: idOf(r3),
    reason: `superseded by refreshUat ${r3.instanceId} while refreshUat ${r1.instanceId} was running`,
  });
  expect(laneStatus()?.waiting).toEqual([idOf(r3)]);
});

test('a request already running, waiting or done is a duplicate and never runs twice', async () => {
  const m1 = merge('1.0.0', 'a');
  const m2 = merge('1.1.0', 'b');
  await startLane(m1);
  await ask(m1);
  await ask(m2);
  await ask({ ...m2, deliveryId: 'redelivered' });
  expect(recorded.filter((d) => d.decision === 'duplicate')).toEqual([
    expect.objectContaining({
      instanceId: idOf(m1),
      reason: `deploy ${idOf(m1)} is already running, done or waiting`,
    }),
    expect.objectContaining({ instanceId: idOf(m2), deliveryId: 'redelivered' }),
  ]);
  await finish(m1);
  await finish(m2);
  await ask(m1);
  expect(started).toEqual(['1.0.0', '1.1.0']);
  expect(recorded.at(-1)).toMatchObject({
    decision: 'duplicate',
    instanceId: idOf(m1),
    reason: `deploy ${idOf(m1)} already ran in this lane`,
  });
});

test('a failed deploy is recorded as failed with its reason, and the lane goes on', async () => {
  const m1 = merge('1.0.0', 'a');
  const m2 = merge('1.1.0', 'b');
  await startLane(m1);
  await ask(m2);
  await finish(m1, 'fail');
  const end = recorded.find((d) => d.decision === 'deploy-finished');
  expect(end).toMatchObject({ instanceId: idOf(m1), outcome: 'failed' });
  expect(String(end?.reason)).toMatch(
    /^deploy of 1\.0\.0 \(aaaaaaa\) failed: .*\[DEPLOY\.MIGRATION_FAILED\] column "x_mta_ref" does not exist/,
  );
  expect(started).toEqual(['1.0.0', '1.1.0']);
});

test('requests that cannot name their work are ignored, whether the lane is idle or busy', async () => {
  await engine.startNew('deployLane', { instanceId: LANE, input: { environment: 'uat' } });
  await settle();
  expect(laneStatus()).toEqual({ environment: 'uat', running: null, waiting: [] });
  for (const bad of [
    null,
    'deploy',
    { version: '1.0.0' },
    { sha: 'a'.repeat(40) },
    { ...refresh('x'), instanceId: '' },
  ])
    await ask(bad as unknown as LaneRequest);
  expect(started).toEqual([]);
  const m1 = merge('1.0.0', 'a');
  await ask(m1);
  expect(started).toEqual(['1.0.0']);
  for (const bad of [null, { version: '2.0.0' }, { ...refresh('y'), instanceId: '' }])
    await ask(bad as unknown as LaneRequest);
  expect(laneStatus()).toEqual({ environment: 'uat', running: idOf(m1), waiting: [] });
  expect(recorded.map((d) => d.decision)).toEqual(['deploy-started']);
});

test('an event the lane already took is ignored when it comes again (the real engine can hand it to the next generation), and so is a repeated end of work', async () => {
  const m1 = merge('1.0.0', 'a');
  const m2 = merge('1.1.0', 'b');
  const m3 = merge('1.2.0', 'c');
  const r1 = refresh('aaaa');
  await startLane(m1);
  // routeToLane gives every event its own eventId
  await ask({ ...m2, eventId: 'event-m2' });
  await ask({ ...m3, eventId: 'event-m3' });
  expect(laneStatus()?.waiting).toEqual([idOf(m3)]);
  // the superseded request's event again: it must not come back into the queue
  await ask({ ...m2, eventId: 'event-m2' });
  // an event without an eventId (raised by hand) taken by the previous generation, at once again
  await ask(r1);
  await ask(r1);
  expect(laneStatus()).toEqual({ environment: 'uat', running: idOf(m1), waiting: [idOf(m3), idOf(r1)] });
  expect(decisions()).toEqual([`deploy-started ${idOf(m1)}`, `superseded ${idOf(m2)}`]);

  await finish(m1);
  expect(started).toEqual(['1.0.0', '1.2.0']);
  // the end of 1.0.0 reported again (laneWorkEnded ran twice): 1.2.0 still runs, nothing recorded
  await ask({ workEnded: idOf(m1), outcome: 'Succeeded' } as unknown as LaneRequest);
  expect(laneStatus()).toEqual({ environment: 'uat', running: idOf(m3), waiting: [idOf(r1)] });
  expect(decisions().filter((d) => d.startsWith('deploy-finished'))).toEqual([`deploy-finished ${idOf(m1)}`]);
  // the queue goes on: the refresh, never 1.1.0
  await finish(m3);
  await finish(r1);
  expect(started).toEqual(['1.0.0', '1.2.0', r1.instanceId]);
  expect(laneStatus()).toEqual({ environment: 'uat', running: null, waiting: [] });
  // each work ran under its own laneWork orchestration, which reported the end once
  for (const r of [m1, m3, r1])
    expect(engine.getStatus(`lanework-${idOf(r)}`)?.runtimeStatus).toBe('Completed');
});

test('an end of work the lane did not start (no or a wrong token) does not end the running work: nothing overlaps it', async () => {
  const m1 = merge('1.0.0', 'a');
  const m2 = merge('1.1.0', 'b');
  await startLane(m1);
  await ask(m2);
  // what someone who can raise events on the lane might send to have it start the next work early
  for (const forged of [
    { workEnded: idOf(m1), outcome: 'Succeeded' },
    { workEnded: idOf(m1), outcome: 'Succeeded', token: 'guessed' },
    { workEnded: idOf(m1), outcome: 'failed', error: 'x', token: '' },
  ])
    await ask(forged as unknown as LaneRequest);
  expect(started).toEqual(['1.0.0']);
  expect(laneStatus()).toEqual({ environment: 'uat', running: idOf(m1), waiting: [idOf(m2)] });
  expect(decisions()).toEqual([`deploy-started ${idOf(m1)}`]);
  // the real end still counts
  await finish(m1);
  expect(started).toEqual(['1.0.0', '1.1.0']);
  expect(decisions()).toEqual([
    `deploy-started ${idOf(m1)}`,
    `deploy-finished ${idOf(m1)}`,
    `deploy-started ${idOf(m2)}`,
  ]);
});

describe('the lane activities (functions/activities/lane.ts) run at least once: each is safe to repeat', () => {
  const contextWithClient = () => {
    const binding = df.input.durableClient();
    const ctx = new InvocationContext({ functionName: 'laneTest', options: { extraInputs: [binding] } });
    ctx.extraInputs.set(binding, engine.clientData(base));
    return ctx;
  };

  test('laneStartWork started twice starts laneWork once; without work to name it refuses', async () => {
    const m1 = merge('3.0.0', 'd');
    const work = { lane: LANE, orchestrator: 'deployUat', instanceId: idOf(m1), request: m1, token: 't-1' };
    expect(await laneStartWork(work, contextWithClient())).toBe('started');
    expect(await laneStartWork(work, contextWithClient())).toBe('exists');
    await settle();
    expect(started).toEqual(['3.0.0']);
    await expect(laneStartWork({} as never, contextWithClient())).rejects.toThrow(
      /LANE\.BAD_WORK|laneStartWork needs/,
    );
  });

  test('laneWorkEnded for a lane that does not exist (terminated, purged) is told so, not retried for ever', async () => {
    expect(
      await laneWorkEnded(
        { lane: 'lane-nowhere', workEnded: 'deploy-x', outcome: 'Succeeded' },
        contextWithClient(),
      ),
    ).toBe('lane-gone');
  });
});

test('work that cannot be started (the client API down through every retry) ends as failed with why, and the lane goes on', async () => {
  const r1 = refresh('dddd');
  const m2 = merge('1.1.0', 'b');
  await whileClientDown(async () => {
    await startLane(r1);
    await ask(m2);
    // laneStartWork is retried 6 times, 10 s apart and doubling: past them, the lane gives up on it
    const ended = () => recorded.some((d) => d.decision === 'deploy-finished');
    for (let i = 0; i < 60 && !ended(); i++) await clock.advance(10_000).then(settle);
  });
  const end = recorded.find((d) => d.decision === 'deploy-finished');
  expect(end).toMatchObject({ instanceId: idOf(r1), outcome: 'failed' });
  expect(String(end?.reason)).toMatch(
    new RegExp(`^deploy of refreshUat ${r1.instanceId} failed: could not start it: .*503`),
  );
  expect(started).toEqual([]);
  // the next one starts once the client answers again (its own retries)
  for (let i = 0; i < 8 && started.length === 0; i++) await clock.advance(400_000).then(settle);
  expect(started).toEqual(['1.1.0']);
  expect(laneStatus()).toMatchObject({ running: idOf(m2), waiting: [] });
  // the failed one counts as having run here: asked again, it is a duplicate
  await ask(r1);
  expect(recorded.at(-1)).toMatchObject({ decision: 'duplicate', instanceId: idOf(r1) });
  expect(started).toEqual(['1.1.0']);
});

test('a lane carried over with work in its queue that already ran here does not run it again', async () => {
  const m1 = merge('1.0.0', 'a');
  const m2 = merge('1.1.0', 'b');
  await engine.startNew('deployLane', {
    instanceId: LANE,
    input: { environment: 'uat', next: m1, queue: [m2], done: [idOf(m1)] },
  });
  await settle();
  expect(started).toEqual(['1.1.0']);
  expect(recorded[0]).toMatchObject({
    decision: 'duplicate',
    instanceId: idOf(m1),
    reason: `deploy ${idOf(m1)} already ran in this lane`,
  });
  expect(decisions()).toEqual([`duplicate ${idOf(m1)}`, `deploy-started ${idOf(m2)}`]);
});

test('a storage outage of two minutes does not fail the work: starting it is retried with growing waits', async () => {
  const m1 = merge('1.0.0', 'a');
  await whileClientDown(async () => {
    await startLane(m1);
    for (let t = 0; t < 120_000; t += 10_000) await clock.advance(10_000).then(settle);
  });
  expect(recorded.filter((d) => d.decision === 'deploy-finished')).toEqual([]);
  for (let i = 0; i < 40 && started.length === 0; i++) await clock.advance(10_000).then(settle);
  expect(started).toEqual(['1.0.0']);
  expect(laneStatus()).toMatchObject({ running: idOf(m1) });
});

test('a failed end of work without its optional error text still reads as a failed deploy', async () => {
  const m1 = merge('1.0.0', 'a');
  await startLane(m1);
  // LaneWorkEnded's `error` is optional; today's laneWork always fills it (the message of what was thrown),
  // so this is an end as the event's contract allows it, with the token the work was started with
  const { token } = engine.getStatus(`lanework-${idOf(m1)}`)?.input as { token: string };
  expect(typeof token).toBe('string');
  await ask({ workEnded: idOf(m1), outcome: 'failed', token } as unknown as LaneRequest);
  expect(recorded.at(-1)).toMatchObject({
    decision: 'deploy-finished',
    instanceId: idOf(m1),
    outcome: 'failed',
    reason: 'deploy of 1.0.0 (aaaaaaa) failed: the deploy orchestration failed',
  });
});
