/**
 * The deploy lane's rules (issue #20) on the real Durable Task engine (the embedded host,
 * test/support/bare-host.ts; real durable-functions orchestrators, the lane's own activities with the
 * host's durable client): one piece of work at a time per environment; while it runs, a newer request
 * supersedes the waiting request of its OWN orchestrator only; a request already running, waiting or
 * done is a duplicate; every decision is recorded with its reason; the rest runs in arrival order.
 * The work is test-only `deployUat` / `refreshUat` orchestrators that wait for a `finish` event.
 * test/integration/deploy-lane.test.ts covers the queue through the intake (a waiting refresh keeping
 * its place behind merges, the decisions in the intake log, the senders' repeats); this file the rules.
 *
 * One host for the file; each test has its own lane (its own environment name), so its work ids and
 * decisions are its own. The lane moves on real events: a test raises a request until the lane took it
 * (its `eventId` in the next generation's `seen`, as `routeToLane` does), and waits for what it
 * expects. Where a test claims that something does NOT happen, it first lets the lane take a marker (a
 * duplicate of a request the lane knows, recorded as such, left out of the decisions compared) twice:
 * the generation that took the events before it has then recorded and started all it was going to.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import { InvocationContext } from '@azure/functions';
import type { LocalHost } from '../../local/host';
import { registeredFunctions } from '../../local/functions-core';
import { deployInstanceId } from '../../shared/domain/coverage-gate';
import {
  DEPLOY_REQUESTED,
  laneInstanceId,
  type LaneInput,
  type LaneRequest,
} from '../../functions/orchestrators/deployLane';
import { laneStartWork, laneWorkEnded } from '../../functions/activities/lane';
import { routeToLane } from '../../functions/deployQueueTrigger';
import { startBareHost } from '../support/bare-host';
import { until as poll } from '../support/until';
import { laneMerge, laneRefresh } from '../support/lane-requests';

jest.setTimeout(180_000);

// ---------------------------------------------------------------- what the lane did
type Decision = Record<string, unknown>;
/** what the lanes recorded (`intakeRecordLaneEvent`), in order */
const recorded: Decision[] = [];
/** what the lane's status said while each decision was being recorded */
const statusWhileRecording = new Map<Decision, unknown>();
/** the work each lane started, in order (a deploy's version, a refresh's instance id), by environment */
const started: Record<string, string[]> = {};

let host: LocalHost;
let stop: () => Promise<void>;

df.app.activity('intakeRecordLaneEvent', {
  handler: async (d: unknown) => {
    const decision = d as Decision;
    recorded.push(decision);
    statusWhileRecording.set(decision, (await host.durable.getStatus(String(decision.lane)))?.customStatus);
  },
});
function* held(
  context: OrchestrationContext,
  env: string,
  label: string,
): Generator<df.Task, unknown, unknown> {
  if (!context.df.isReplaying) (started[env] ??= []).push(label);
  const how = (yield context.df.waitForExternalEvent('finish')) as string;
  if (how === 'fail') throw new Error('[DEPLOY.MIGRATION_FAILED] column "x_mta_ref" does not exist');
  return how === 'rolled-back' ? { outcome: 'RolledBack' } : { outcome: 'Succeeded' };
}
df.app.orchestration('deployUat', function* (context: OrchestrationContext) {
  const r = context.df.getInput() as LaneRequest;
  return yield* held(context, r.environment, r.version);
});
df.app.orchestration('refreshUat', function* (context: OrchestrationContext) {
  const r = context.df.getInput() as LaneRequest;
  return yield* held(context, r.environment, context.df.instanceId);
});

// ---------------------------------------------------------------- the durable client API down
/** a durable client API that answers 503, as when the task hub's storage is out */
let downServer: Server;
let downBase: string;
/** per lane: how many of the next `laneStartWork` runs see the client API down */
const startsDown = new Map<string, number>();

beforeAll(async () => {
  ({ host, stop } = await startBareHost('lane-rules-'));
  // routeToLane stamps each request with it: the lane's own retries start at 1 s (10 s by default)
  process.env.LANE_RETRY_FIRST_SECONDS = '1';
  downServer = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(503).end('storage unavailable'));
  });
  await new Promise<void>((r) => downServer.listen(0, '127.0.0.1', r));
  downBase = `http://127.0.0.1:${(downServer.address() as AddressInfo).port}/durabletask/`;
  // the registered laneStartWork, run with a client whose API is down while its lane says so
  const entry = registeredFunctions().find((f) => f.metadata.name === 'laneStartWork')!;
  const original = entry.handler;
  entry.handler = ((input: { lane: string }, ctx: InvocationContext) => {
    const n = startsDown.get(input.lane) ?? 0;
    if (n > 0) {
      startsDown.set(input.lane, n - 1);
      for (const b of ctx.options.extraInputs)
        if (b.type === 'durableClient') ctx.extraInputs.set(b.name, host.durable.clientData(downBase));
    }
    return original(input, ctx);
  }) as typeof original;
}, 300_000);
afterAll(async () => {
  await stop?.();
  await new Promise<void>((r) => downServer?.close(() => r()));
});

// ---------------------------------------------------------------- one lane per test
let n = 0;
let env = '';
beforeEach(() => {
  env = `lr${++n}`;
  started[env] = [];
});
const LANE = () => laneInstanceId(env);
const startedHere = () => started[env];

const merge = (version: string, c: string): LaneRequest => laneMerge(env, version, c);
const refresh = (k: string): LaneRequest => laneRefresh(env, k);
const idOf = (r: LaneRequest) => r.instanceId ?? deployInstanceId(env, r.version, r.sha);

const until = <T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>) =>
  poll(what, probe, 90_000, 100);

async function laneInput(): Promise<LaneInput | undefined> {
  const input = (await host.durable.getStatus(LANE(), { showInput: true }))?.input;
  return (typeof input === 'string' ? JSON.parse(input) : input) as LaneInput | undefined;
}
const laneStatus = async () =>
  (await host.durable.getStatus(LANE()))?.customStatus as
    | { environment: string; running: string | null; waiting: string[] }
    | undefined;
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const statusIs = async (s: unknown) => same(await laneStatus(), s);
const startedIs = (list: string[]) => same(startedHere(), list);

/** the decisions of this test's lane, markers left out */
const records = () =>
  recorded.filter((d) => d.lane === LANE() && !String(d.deliveryId).startsWith('marker-'));
const decisions = () => records().map((d) => `${String(d.decision)} ${String(d.instanceId)}`);

/** the lane started with `next` as routeToLane starts an idle lane, its first work running */
async function startLane(next: LaneRequest) {
  expect(await routeToLane(clientOfTest(), next)).toBe('started');
  await until(`${idOf(next)} started`, () => startedHere().includes(labelOf(next)));
}
const labelOf = (r: LaneRequest) => (r.orchestrator === 'refreshUat' ? r.instanceId! : r.version);

/**
 * Raise a request until the lane took it (its `eventId` in the next generation's `seen`), as routeToLane
 * does — without routeToLane's own duplicate check, which would keep a duplicate from the lane.
 */
async function ask(r: LaneRequest) {
  const payload = { ...r, eventId: r.eventId ?? randomUUID() };
  let raisedAt = 0;
  await until(`the lane to take ${payload.eventId}`, async () => {
    if ((await laneInput())?.seen?.includes(payload.eventId)) return true;
    if (Date.now() - raisedAt > 5000) {
      expect(await host.durable.raiseEvent(LANE(), DEPLOY_REQUESTED, payload)).toBe('accepted');
      raisedAt = Date.now();
    }
    return false;
  });
}
/** raise an event once, as it is (no eventId added), and let the lane take it (`settle`) */
async function raiseOnce(event: unknown, anchor: LaneRequest) {
  expect(await host.durable.raiseEvent(LANE(), DEPLOY_REQUESTED, event)).toBe('accepted');
  await settle(anchor);
}
/**
 * Let the lane take everything raised before: two markers (duplicates of `anchor`, a request the lane
 * runs, queues or ran), each taken and its decision recorded; the generation that took the events before
 * them has by then recorded its decisions and started its work.
 */
async function settle(anchor: LaneRequest) {
  for (let i = 0; i < 2; i++) {
    const deliveryId = `marker-${randomUUID()}`;
    await ask({ ...anchor, deliveryId });
    await until('the marker recorded', () => recorded.some((d) => d.deliveryId === deliveryId));
  }
}
/** end a held work (once its instance shows Running: its first episode may run before that is stored) */
async function finish(r: LaneRequest, how = 'ok') {
  await until(
    `${idOf(r)} running`,
    async () => (await host.durable.getStatus(idOf(r)))?.runtimeStatus === 'Running',
  );
  expect(await host.durable.raiseEvent(idOf(r), 'finish', how)).toBe('accepted');
}
const finishedRecorded = (r: LaneRequest) =>
  records().find((d) => d.decision === 'deploy-finished' && d.instanceId === idOf(r));

let client: ReturnType<typeof df.getClient> | undefined;
function clientOfTest() {
  if (!client) {
    const binding = df.input.durableClient();
    const ctx = new InvocationContext({ functionName: 'laneTest', options: { extraInputs: [binding] } });
    ctx.extraInputs.set(binding, host.durable.clientData(host.rpcBaseUrl));
    client = df.getClient(ctx);
  }
  return client;
}

// ---------------------------------------------------------------- the rules
test("every decision is recorded with its reason and the request's fields: a newer merge supersedes the waiting one, a work's end carries its outcome", async () => {
  const m1 = merge('1.0.0', 'a');
  const m2 = merge('1.1.0', 'b');
  const m3 = merge('1.2.0', 'c');
  await startLane(m1);
  await ask(m2);
  await ask(m3);
  await until('1.2.0 waiting', () => statusIs({ environment: env, running: idOf(m1), waiting: [idOf(m3)] }));
  const superseded = await until('the superseded merge recorded', () =>
    records().find((d) => d.decision === 'superseded'),
  );
  expect(superseded).toMatchObject({
    instanceId: idOf(m2),
    supersededBy: idOf(m3),
    version: '1.1.0',
    sha: m2.sha,
    deliveryId: 'delivery-1.1.0',
    lane: LANE(),
  });
  expect(superseded.reason).toBe(`superseded by 1.2.0 (ccccccc) while 1.0.0 (aaaaaaa) was deploying`);

  await finish(m1, 'rolled-back');
  await until('1.2.0 started', () => startedIs(['1.0.0', '1.2.0']));
  await finish(m3);
  await until('the lane idle', () => statusIs({ environment: env, running: null, waiting: [] }));
  await until('the end of 1.2.0 recorded', () => finishedRecorded(m3));
  expect(decisions()).toEqual([
    `deploy-started ${idOf(m1)}`,
    `superseded ${idOf(m2)}`,
    `deploy-finished ${idOf(m1)}`,
    `deploy-started ${idOf(m3)}`,
    `deploy-finished ${idOf(m3)}`,
  ]);
  expect(finishedRecorded(m1)).toMatchObject({
    outcome: 'RolledBack',
    reason: `deploy of 1.0.0 (aaaaaaa) ended: RolledBack`,
  });
  expect(finishedRecorded(m3)).toMatchObject({ outcome: 'Succeeded' });
  expect(records().find((d) => d.decision === 'deploy-started' && d.instanceId === idOf(m3))?.reason).toBe(
    `deploying 1.2.0 (ccccccc) to ${env}`,
  );
  expect(startedHere()).toEqual(['1.0.0', '1.2.0']);
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
  await until('1.1.0 started', () => startedIs(['1.0.0', '1.1.0']));
  const end = await until('the end of 1.0.0 recorded', () => finishedRecorded(m1));
  expect(statusWhileRecording.get(end)).toEqual({ environment: env, running: idOf(m2), waiting: [] });
  await finish(m2);
  await until('the lane idle', () => statusIs({ environment: env, running: null, waiting: [] }));
  await until('the end of 1.1.0 recorded', () => finishedRecorded(m2));
  const mine = recorded.filter((d) => d.lane === LANE());
  expect(mine.length).toBeGreaterThanOrEqual(4);
  for (const d of mine) {
    const { running, waiting } = statusWhileRecording.get(d) as { running: string | null; waiting: string[] };
    if (running === null) expect(waiting).toEqual([]);
  }
});

test('a burst of merges raised together (one delivery batch) loses none: the newest waits, each older one is recorded superseded', async () => {
  const m1 = merge('1.0.0', 'a');
  const burst = [merge('1.1.0', 'b'), merge('1.2.0', 'c'), merge('1.3.0', 'd'), merge('1.4.0', 'e')];
  await startLane(m1);
  // each raised once (no repeat: the drain of the lane is what keeps them), one right after the other
  // without waiting for the lane, so that they reach it while it runs (in order: concurrent raises would
  // arrive in any order, and "the newest" would be whichever came last)
  for (const m of burst)
    expect(await host.durable.raiseEvent(LANE(), DEPLOY_REQUESTED, { ...m, eventId: randomUUID() })).toBe(
      'accepted',
    );
  await until('three superseded', () => records().filter((d) => d.decision === 'superseded').length === 3);
  expect(await laneStatus()).toEqual({ environment: env, running: idOf(m1), waiting: [idOf(burst[3])] });
  expect(
    records()
      .filter((d) => d.decision === 'superseded')
      .map((d) => d.instanceId)
      .sort(),
  ).toEqual(burst.slice(0, 3).map(idOf).sort());
  await finish(m1);
  await until('1.4.0 started', () => startedIs(['1.0.0', '1.4.0']));
});

test('a newer refresh supersedes the older waiting refresh, and says the lane was running (not deploying) a refresh', async () => {
  const r1 = refresh('aaaa');
  const r2 = refresh('bbbb');
  const r3 = refresh('cccc');
  await startLane(r1);
  await ask(r2);
  await ask(r3);
  const superseded = await until('the superseded refresh recorded', () =>
    records().find((d) => d.decision === 'superseded'),
  );
  expect(superseded).toMatchObject({
    instanceId: idOf(r2),
    supersededBy: idOf(r3),
    reason: `superseded by refreshUat ${r3.instanceId} while refreshUat ${r1.instanceId} was running`,
  });
  expect((await laneStatus())?.waiting).toEqual([idOf(r3)]);
});

test('a request already running, waiting or done is a duplicate and never runs twice', async () => {
  const m1 = merge('1.0.0', 'a');
  const m2 = merge('1.1.0', 'b');
  await startLane(m1);
  await ask(m1);
  await ask(m2);
  await ask({ ...m2, deliveryId: 'redelivered' });
  await until('two duplicates', () => records().filter((d) => d.decision === 'duplicate').length === 2);
  expect(records().filter((d) => d.decision === 'duplicate')).toEqual([
    expect.objectContaining({
      instanceId: idOf(m1),
      reason: `deploy ${idOf(m1)} is already running, done or waiting`,
    }),
    expect.objectContaining({ instanceId: idOf(m2), deliveryId: 'redelivered' }),
  ]);
  await finish(m1);
  await until('1.1.0 started', () => startedIs(['1.0.0', '1.1.0']));
  await finish(m2);
  await until('the end of 1.1.0 recorded', () => finishedRecorded(m2));
  await ask(m1);
  await settle(m1);
  expect(startedHere()).toEqual(['1.0.0', '1.1.0']);
  expect(records().at(-1)).toMatchObject({
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
  const end = await until('the end of 1.0.0 recorded', () => finishedRecorded(m1));
  expect(end).toMatchObject({ instanceId: idOf(m1), outcome: 'failed' });
  expect(String(end.reason)).toMatch(
    /^deploy of 1\.0\.0 \(aaaaaaa\) failed: .*\[DEPLOY\.MIGRATION_FAILED\] column "x_mta_ref" does not exist/,
  );
  await until('1.1.0 started', () => startedIs(['1.0.0', '1.1.0']));
});

test('requests that cannot name their work are ignored, whether the lane is idle or busy', async () => {
  await host.durable.startNew('deployLane', { instanceId: LANE(), input: { environment: env } });
  await until('the idle lane', () => statusIs({ environment: env, running: null, waiting: [] }));
  for (const bad of [
    null,
    'deploy',
    { version: '1.0.0' },
    { sha: 'a'.repeat(40) },
    { ...refresh('x'), instanceId: '' },
  ])
    expect(await host.durable.raiseEvent(LANE(), DEPLOY_REQUESTED, bad)).toBe('accepted');
  // the next request, raised after them, is the first work the lane starts
  const m1 = merge('1.0.0', 'a');
  await ask(m1);
  await until('1.0.0 started', () => startedHere().length > 0);
  expect(startedHere()).toEqual(['1.0.0']);
  for (const bad of [null, { version: '2.0.0' }, { ...refresh('y'), instanceId: '' }])
    await raiseOnce(bad, m1);
  expect(await laneStatus()).toEqual({ environment: env, running: idOf(m1), waiting: [] });
  expect(records().map((d) => d.decision)).toEqual(['deploy-started']);
  expect(startedHere()).toEqual(['1.0.0']);
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
  await until('1.2.0 waiting', async () => same((await laneStatus())?.waiting, [idOf(m3)]));
  // the superseded request's event again: it must not come back into the queue
  await raiseOnce({ ...m2, eventId: 'event-m2' }, m1);
  // an event without an eventId (raised by hand) taken by the previous generation, at once again
  expect(await host.durable.raiseEvent(LANE(), DEPLOY_REQUESTED, r1)).toBe('accepted');
  await until('the refresh waiting', async () => same((await laneStatus())?.waiting, [idOf(m3), idOf(r1)]));
  await raiseOnce(r1, m1);
  expect(await laneStatus()).toEqual({ environment: env, running: idOf(m1), waiting: [idOf(m3), idOf(r1)] });
  expect(decisions()).toEqual([`deploy-started ${idOf(m1)}`, `superseded ${idOf(m2)}`]);

  await finish(m1);
  await until('1.2.0 started', () => startedIs(['1.0.0', '1.2.0']));
  // the end of 1.0.0 reported again (laneWorkEnded ran twice): 1.2.0 still runs, nothing recorded
  await until('the end of 1.0.0 recorded', () => finishedRecorded(m1));
  await raiseOnce({ workEnded: idOf(m1), outcome: 'Succeeded' }, m1);
  expect(await laneStatus()).toEqual({ environment: env, running: idOf(m3), waiting: [idOf(r1)] });
  expect(decisions().filter((d) => d.startsWith('deploy-finished'))).toEqual([`deploy-finished ${idOf(m1)}`]);
  // the queue goes on: the refresh, never 1.1.0
  await finish(m3);
  await until('the refresh started', () => startedIs(['1.0.0', '1.2.0', r1.instanceId!]));
  await finish(r1);
  await until('the lane idle', () => statusIs({ environment: env, running: null, waiting: [] }));
  expect(startedHere()).toEqual(['1.0.0', '1.2.0', r1.instanceId]);
  // each work ran under its own laneWork orchestration, which reported the end once
  for (const r of [m1, m3, r1])
    await until(`lanework-${idOf(r)} completed`, async () => {
      const s = await host.durable.getStatus(`lanework-${idOf(r)}`);
      return s?.runtimeStatus === 'Completed';
    });
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
    expect(await host.durable.raiseEvent(LANE(), DEPLOY_REQUESTED, forged)).toBe('accepted');
  await settle(m1);
  expect(startedHere()).toEqual(['1.0.0']);
  expect(await laneStatus()).toEqual({ environment: env, running: idOf(m1), waiting: [idOf(m2)] });
  expect(decisions()).toEqual([`deploy-started ${idOf(m1)}`]);
  // the real end still counts
  await finish(m1);
  await until('1.1.0 started', () => startedIs(['1.0.0', '1.1.0']));
  await until('1.1.0 recorded started', () => decisions().length === 3);
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
    ctx.extraInputs.set(binding, host.durable.clientData(host.rpcBaseUrl));
    return ctx;
  };

  test('laneStartWork started twice starts laneWork once; without work to name it refuses', async () => {
    const m1 = merge('3.0.0', 'd');
    const work = { lane: LANE(), orchestrator: 'deployUat', instanceId: idOf(m1), request: m1, token: 't-1' };
    expect(await laneStartWork(work, contextWithClient())).toBe('started');
    expect(await laneStartWork(work, contextWithClient())).toBe('exists');
    await until('3.0.0 started', () => startedHere().length > 0);
    expect((await host.durable.getStatus(idOf(m1)))?.runtimeStatus).toBe('Running');
    expect(startedHere()).toEqual(['3.0.0']);
    await expect(laneStartWork({} as never, contextWithClient())).rejects.toThrow(
      /LANE\.BAD_WORK|laneStartWork needs/,
    );
    await host.durable.terminate(idOf(m1), 'test over');
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

/** the lane's current generation: its attempts of `activity` and the back-off timers between them */
async function attemptsOf(activity: string) {
  const history = ((await host.durable.getStatus(LANE(), { showHistory: true }))?.history ?? []) as Array<
    Record<string, unknown>
  >;
  const failed = history
    .filter((e) => e.EventType === 'TaskFailed' && e.FunctionName === activity)
    .map((e) => ({ ended: new Date(String(e.Timestamp)).getTime(), reason: String(e.Reason) }));
  const timers = history
    .filter((e) => e.EventType === 'TimerCreated')
    .map((e) => new Date(String(e.FireAt)).getTime());
  return { failed, timers };
}

test('work that cannot be started (the client API down through every retry) ends as failed with why, and the lane goes on', async () => {
  const r1 = refresh('dddd');
  const m2 = merge('1.1.0', 'b');
  // laneStartWork's 6 attempts for the refresh see the client API down, then the first 2 for 1.1.0
  startsDown.set(laneInstanceId(env), 8);
  expect(await routeToLane(clientOfTest(), r1)).toBe('started');
  // the request carries LANE_RETRY_FIRST_SECONDS (1 s here): 6 attempts 1, 2, 4, 8, 16 s apart
  expect((await laneInput())?.next?.laneRetrySeconds).toBe(1);
  const end = await until('the refresh given up', () => finishedRecorded(r1));
  expect(end).toMatchObject({ instanceId: idOf(r1), outcome: 'failed' });
  expect(String(end.reason)).toMatch(
    new RegExp(`^deploy of refreshUat ${r1.instanceId} failed: could not start it: .*503`),
  );
  expect(startedHere()).toEqual([]);
  // the next one starts once the client answers again (its own retries)
  await ask(m2);
  await until('1.1.0 started', () => startedIs(['1.1.0']));
  expect(startsDown.get(laneInstanceId(env))).toBe(0);
  await until('1.1.0 running in the status', async () => (await laneStatus())?.running === idOf(m2));
  expect(await laneStatus()).toMatchObject({ running: idOf(m2), waiting: [] });
  // the failed one counts as having run here: asked again, it is a duplicate
  await ask(r1);
  await settle(m2);
  expect(records().at(-1)).toMatchObject({ decision: 'duplicate', instanceId: idOf(r1) });
  expect(startedHere()).toEqual(['1.1.0']);
});

test('a lane carried over with work in its queue that already ran here does not run it again', async () => {
  const m1 = merge('1.0.0', 'a');
  const m2 = merge('1.1.0', 'b');
  await host.durable.startNew('deployLane', {
    instanceId: LANE(),
    input: { environment: env, next: m1, queue: [m2], done: [idOf(m1)] },
  });
  await until('1.1.0 started', () => startedHere().length > 0);
  await until('1.1.0 recorded started', () => decisions().length === 2);
  expect(startedHere()).toEqual(['1.1.0']);
  expect(records()[0]).toMatchObject({
    decision: 'duplicate',
    instanceId: idOf(m1),
    reason: `deploy ${idOf(m1)} already ran in this lane`,
  });
  expect(decisions()).toEqual([`duplicate ${idOf(m1)}`, `deploy-started ${idOf(m2)}`]);
});

test('a storage outage shorter than the retries does not fail the work: starting it is retried with growing waits', async () => {
  // first retry 1 s (as routeToLane stamps LANE_RETRY_FIRST_SECONDS); started with it alone, so that the
  // generation that starts it stays the lane's current one (its history is read below)
  const m1 = { ...merge('1.0.0', 'a'), laneRetrySeconds: 1 };
  // the first 4 of laneStartWork's 6 attempts see the client API down
  startsDown.set(laneInstanceId(env), 4);
  await host.durable.startNew('deployLane', { instanceId: LANE(), input: { environment: env, next: m1 } });
  await until('1.0.0 started', () => startedIs(['1.0.0']));
  await until('1.0.0 running in the status', async () => (await laneStatus())?.running === idOf(m1));
  expect(records().filter((d) => d.decision === 'deploy-finished')).toEqual([]);
  // the generation that started it: four failed attempts, each followed by a back-off twice as long as
  // the one before (1, 2, 4, 8 s: LANE_RETRY_FIRST_SECONDS, doubling)
  const { failed, timers } = await attemptsOf('laneStartWork');
  expect(failed).toHaveLength(4);
  for (const f of failed) expect(f.reason).toMatch(/503/);
  expect(timers).toHaveLength(4);
  timers.forEach((fireAt, i) => {
    expect(fireAt - failed[i].ended).toBeGreaterThanOrEqual(1000 * 2 ** i);
    if (i < 3) expect(fireAt).toBeLessThan(failed[i + 1].ended + 1000 * 2 ** i);
  });
});

test('a failed end of work without its optional error text still reads as a failed deploy', async () => {
  const m1 = merge('1.0.0', 'a');
  await startLane(m1);
  // LaneWorkEnded's `error` is optional; today's laneWork always fills it (the message of what was thrown),
  // so this is an end as the event's contract allows it, with the token the work was started with
  const work = await host.durable.getStatus(`lanework-${idOf(m1)}`, { showInput: true });
  const input = (typeof work?.input === 'string' ? JSON.parse(work.input) : work?.input) as { token: string };
  expect(typeof input.token).toBe('string');
  await raiseOnce({ workEnded: idOf(m1), outcome: 'failed', token: input.token }, m1);
  expect(finishedRecorded(m1)).toMatchObject({
    decision: 'deploy-finished',
    instanceId: idOf(m1),
    outcome: 'failed',
    reason: 'deploy of 1.0.0 (aaaaaaa) failed: the deploy orchestration failed',
  });
});
