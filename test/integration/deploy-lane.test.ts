/**
 * The deploy lane's queue through the embedded host (the Durable Task extension; real durable-functions
 * orchestrators, Azurite for the recorded lane decisions): while a piece of work
 * runs, a newer request supersedes only the waiting request of its OWN orchestrator — a merge's
 * deployUat never pushes a waiting refresh out of the lane — and the rest runs in arrival order, across
 * the lane's continue-as-new. The work itself is test-only `deployUat` / `refreshUat` orchestrators that wait for
 * a `finish` event, so the test decides when each ends.
 */
import { until as poll } from '../support/until';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as df from 'durable-functions';
import type { DurableClient, OrchestrationContext } from 'durable-functions';
import { InvocationContext } from '@azure/functions';
import { startLocalHost, type LocalHost } from '../../local/host';
import { registeredFunctions } from '../../local/functions-core';
import { deployInstanceId } from '../../shared/domain/coverage-gate';
import { resetDefaultIntake, type DeployRequest } from '../../functions/activities/intake';
import { routeToLane } from '../../functions/deployQueueTrigger';
import { laneWorkEnded } from '../../functions/activities/lane';
import type { LaneRequest } from '../../functions/orchestrators/deployLane';
import type { DeliveryTiming } from '../../shared/adapters/durable-status';
import '../../functions/refresh';

const saved = { ...process.env };
let host: LocalHost;
let tmp: string;
let client: DurableClient;
/** the work the lane started, in order (version of a deploy, instance id of a refresh) */
const started: string[] = [];

function* heldWork(
  context: OrchestrationContext,
  label: string,
): Generator<df.Task, { outcome: string }, unknown> {
  if (!context.df.isReplaying) started.push(label);
  yield context.df.waitForExternalEvent('finish');
  return { outcome: 'Succeeded' };
}
df.app.orchestration('deployUat', function* (context: OrchestrationContext) {
  return yield* heldWork(context, (context.df.getInput() as { version: string }).version);
});
df.app.orchestration('refreshUat', function* (context: OrchestrationContext) {
  return yield* heldWork(context, context.df.instanceId);
});

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'deploy-lane-'));
  host = await startLocalHost({
    dataDir: tmp,
    port: 0,
    functionsDir: path.join(__dirname, '..', 'fixtures', 'intake-app'),
    log: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    },
    env: { LOG_LEVEL: 'error', DEPLOY_QUEUE_NAME: 'deploy-requests' },
  });
  const binding = df.input.durableClient();
  const ctx = new InvocationContext({
    functionName: 'deployQueueTrigger',
    options: { extraInputs: [binding] },
  });
  ctx.extraInputs.set(binding, host.durable.clientData(host.rpcBaseUrl));
  client = df.getClient(ctx);
}, 180000);

afterAll(async () => {
  await resetDefaultIntake();
  await host?.stop();
  process.env = saved;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// on the real engine every step is a few queue hops (a deploy with a fake VM takes seconds, not ms)
const until = <T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60000,
): Promise<T> => poll(what, probe, timeoutMs, 50);

const key = () => ({ 'x-functions-key': host.keys.functionKey });
/** one raise, a second's wait for the lane to take it, no repeat (the lane is held on purpose) */
const ONCE: DeliveryTiming = { pollMs: 100, repeatMs: 600_000, giveUpMs: 1000 };
/** quick repeats, so that a dropped event is raised again within a second */
const QUICK: DeliveryTiming = { pollMs: 50, repeatMs: 1000, giveUpMs: 60_000 };

/**
 * Drop the first event (or `count` events) raised on the lane that `which` picks, as the lane's continueAsNew drops an event
 * delivered in the very batch in which its drain ended: the raise succeeds, the lane never sees it.
 * Every client of this process (the test's, the activities') raises through the same prototype.
 */
function dropFirstRaise(
  which: (payload: Record<string, unknown>) => boolean,
  count = 1,
): {
  dropped: () => number;
  raised: () => number;
  restore: () => void;
} {
  const proto = Object.getPrototypeOf(client) as DurableClient;
  const original = proto.raiseEvent;
  let dropped = 0;
  let raised = 0;
  proto.raiseEvent = async function (this: DurableClient, instanceId, eventName, eventData, options) {
    if (instanceId === 'lane-uat' && which(eventData as Record<string, unknown>)) {
      raised++;
      if (raised <= count) {
        dropped++;
        return;
      }
    }
    return original.call(this, instanceId, eventName, eventData, options);
  };
  return { dropped: () => dropped, raised: () => raised, restore: () => (proto.raiseEvent = original) };
}
const running = async (id: string) =>
  (await host.durable.getStatus(id))?.runtimeStatus === 'Running' || undefined;
const laneStatus = async () =>
  (await host.durable.getStatus('lane-uat'))?.customStatus as
    | { running?: string | null; waiting?: string[] | string | null }
    | undefined;
/** the lane's waiting ids in order (a single id, as lanes before the queue showed it, counts as a list of one) */
const waitingIds = async (): Promise<string[]> => {
  const w = (await laneStatus())?.waiting;
  return Array.isArray(w) ? w : w ? [w] : [];
};
const waitingIs = async (ids: string[]) =>
  JSON.stringify(await waitingIds()) === JSON.stringify(ids) || undefined;
const idle = async () => ((await laneStatus())?.running === null && (await waitingIs([]))) || undefined;

const deploy = (version: string): DeployRequest => ({
  type: 'deploy-uat',
  environment: 'uat',
  repository: 'acme/odoo-mta',
  version,
  sha: (version.replace(/\D/g, '') + 'a'.repeat(40)).slice(0, 40),
  imageRef: `odoo-mta:uat-v${version}`,
  coverage: 90,
  mergedBy: 'alice',
  trigger: 'push',
  deliveryId: `lane-${version}`,
  requestedAt: new Date().toISOString(),
});
const deployId = (version: string) => deployInstanceId('uat', version, deploy(version).sha);
const refresh = (instanceId: string): LaneRequest =>
  ({
    ...deploy('0.0.0'),
    type: 'refresh',
    version: 'refresh',
    sha: '',
    deliveryId: `api-${instanceId}`,
    orchestrator: 'refreshUat',
    instanceId,
  }) as unknown as LaneRequest;

interface LaneDecision {
  decision: string;
  reason: string;
  instanceId: string;
  lane?: string;
  supersededBy?: string;
}
async function decisions(): Promise<LaneDecision[]> {
  const res = await fetch(`${host.baseUrl}/api/deliveries?limit=200`, { headers: key() });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: LaneDecision[] }).items.filter((d) => d.lane === 'lane-uat');
}

it('a newer merge supersedes only the waiting deploy; a waiting refresh keeps its place; a newer refresh supersedes the older refresh', async () => {
  const R1 = 'refresh-uat-20261127t220000z-aaaa0001';
  const R2 = 'refresh-uat-20261127t221500z-aaaa0002';

  // 1. deploy 1.0.0 starts the lane and holds it
  expect(await routeToLane(client, deploy('1.0.0'))).toBe('started');
  await until('deploy 1.0.0 running', () => running(deployId('1.0.0')));

  // 2. a refresh is queued, then two merges: the second merge supersedes the first — not the refresh
  expect(await routeToLane(client, refresh(R1))).toBe('raised');
  await until('the refresh waiting', () => waitingIs([R1]));
  expect(await routeToLane(client, deploy('1.1.0'))).toBe('raised');
  await until('refresh, then 1.1.0 waiting', () => waitingIs([R1, deployId('1.1.0')]));
  expect(await routeToLane(client, deploy('1.2.0'))).toBe('raised');
  await until('refresh, then 1.2.0 waiting', () => waitingIs([R1, deployId('1.2.0')]));
  expect(await laneStatus()).toMatchObject({ running: deployId('1.0.0'), waiting: [R1, deployId('1.2.0')] });

  // the refresh API sees its refresh as waiting in the lane
  const waitingRefresh = await fetch(`${host.baseUrl}/api/refresh/${R1}`, { headers: key() });
  expect(waitingRefresh.status).toBe(200);
  expect(await waitingRefresh.json()).toMatchObject({ id: R1, runtimeStatus: 'Waiting' });

  // 3. a newer refresh supersedes the older waiting refresh (and queues behind the waiting deploy)
  expect(await routeToLane(client, refresh(R2))).toBe('raised');
  await until('1.2.0, then the newer refresh waiting', () => waitingIs([deployId('1.2.0'), R2]));
  expect((await fetch(`${host.baseUrl}/api/refresh/${R1}`, { headers: key() })).status).toBe(404);

  // 4. the work runs one at a time in arrival order, across the lane's continue-as-new
  await host.durable.raiseEvent(deployId('1.0.0'), 'finish', {});
  await until('deploy 1.2.0 running', () => running(deployId('1.2.0')));
  await until('the newer refresh still waiting', () => waitingIs([R2]));
  expect(await laneStatus()).toMatchObject({ running: deployId('1.2.0'), waiting: [R2] });
  expect(await host.durable.getStatus(R2)).toBeUndefined();
  await host.durable.raiseEvent(deployId('1.2.0'), 'finish', {});
  await until('the newer refresh running', () => running(R2));
  await host.durable.raiseEvent(R2, 'finish', {});
  await until('the lane idle', idle);

  expect(started).toEqual(['1.0.0', '1.2.0', R2]);
  expect(await host.durable.getStatus(deployId('1.1.0'))).toBeUndefined();
  expect(await host.durable.getStatus(R1)).toBeUndefined();

  // 5. each superseded request ends with its recorded reason, and only those two were superseded
  const recorded = await until('every lane decision recorded', async () => {
    const all = await decisions();
    return all.filter((d) => d.decision === 'deploy-finished').length === 3 ? all : undefined;
  });
  const superseded = recorded.filter((d) => d.decision === 'superseded');
  expect(superseded.map((d) => d.instanceId).sort()).toEqual([deployId('1.1.0'), R1].sort());
  expect(superseded.find((d) => d.instanceId === deployId('1.1.0'))).toMatchObject({
    supersededBy: deployId('1.2.0'),
    reason: `superseded by 1.2.0 (${deploy('1.2.0').sha.slice(0, 7)}) while 1.0.0 (${deploy('1.0.0').sha.slice(0, 7)}) was deploying`,
  });
  expect(superseded.find((d) => d.instanceId === R1)).toMatchObject({
    supersededBy: R2,
    reason: `superseded by refreshUat ${R2} while 1.0.0 (${deploy('1.0.0').sha.slice(0, 7)}) was deploying`,
  });
  expect(
    recorded
      .filter((d) => d.decision === 'deploy-started')
      .map((d) => d.instanceId)
      .sort(),
  ).toEqual([deployId('1.0.0'), deployId('1.2.0'), R2].sort());
}, 120000);

it('a request raised while the lane records the end of the previous work is not lost across its continue-as-new', async () => {
  // hold the lane's decision records: the lane is then between the end of 2.0.0 and its next generation
  const entry = registeredFunctions().find((f) => f.metadata.name === 'intakeRecordLaneEvent')!;
  const original = entry.handler;
  let gate: Promise<void> | undefined;
  let open!: () => void;
  let held = 0;
  entry.handler = (async (...args: Parameters<typeof original>) => {
    if (gate) {
      held++;
      await gate;
    }
    return original(...args);
  }) as typeof original;
  try {
    expect(await routeToLane(client, deploy('2.0.0'))).toMatch(/^(started|raised)$/);
    await until('deploy 2.0.0 running', () => running(deployId('2.0.0')));
    gate = new Promise<void>((r) => (open = r));
    await host.durable.raiseEvent(deployId('2.0.0'), 'finish', {});
    await until('the lane recording the end of 2.0.0', () => held > 0 || undefined);
    // the next merge arrives right then, raised once (not waited for: the lane takes it after the hold)
    expect(await routeToLane(client, deploy('2.1.0'), undefined, ONCE)).toBe('raised');
    gate = undefined;
    open();
    await until('deploy 2.1.0 running', () => running(deployId('2.1.0')));
    await host.durable.raiseEvent(deployId('2.1.0'), 'finish', {});
    await until('the lane idle', idle);
    expect(started.slice(-2)).toEqual(['2.0.0', '2.1.0']);
    const recorded = await until('both ends recorded', async () => {
      const all = await decisions();
      const ends = all.filter(
        (d) =>
          d.decision === 'deploy-finished' && [deployId('2.0.0'), deployId('2.1.0')].includes(d.instanceId),
      );
      return ends.length === 2 ? all : undefined;
    });
    expect(
      recorded.filter((d) => d.decision === 'deploy-started' && d.instanceId === deployId('2.1.0')),
    ).toHaveLength(1);
  } finally {
    gate = undefined;
    open?.();
    entry.handler = original;
  }
}, 120000);

/** the lane exists and runs nothing: a request is then raised on it, not carried by a start */
async function idleLane(version: string): Promise<void> {
  if (!(await laneStatus())) {
    expect(await routeToLane(client, deploy(version))).toBe('started');
    await until(`deploy ${version} running`, () => running(deployId(version)));
    await host.durable.raiseEvent(deployId(version), 'finish', {});
  }
  await until('the lane idle', idle);
}

it('a request whose event the lane never got is raised again until the lane took it, and runs once', async () => {
  await idleLane('2.9.0');
  const drop = dropFirstRaise((p) => p.version === '3.0.0');
  try {
    expect(await routeToLane(client, deploy('3.0.0'), undefined, QUICK)).toBe('raised');
    // without the repeat the request is gone: the lane never runs 3.0.0
    await until('deploy 3.0.0 running', () => running(deployId('3.0.0')));
    // the first event was lost, the same event (same eventId) was raised again and taken
    expect(drop.dropped()).toBe(1);
    expect(drop.raised()).toBeGreaterThanOrEqual(2);
  } finally {
    drop.restore();
  }
  await host.durable.raiseEvent(deployId('3.0.0'), 'finish', {});
  await until('the lane idle', idle);
  expect(started.filter((v) => v === '3.0.0')).toEqual(['3.0.0']);
  const recorded = await until('the end of 3.0.0 recorded', async () => {
    const all = await decisions();
    return all.some((d) => d.decision === 'deploy-finished' && d.instanceId === deployId('3.0.0'))
      ? all
      : undefined;
  });
  // taken once: the repeat was recognised, not queued again (no duplicate, no second start)
  const of3 = recorded.filter((d) => d.instanceId === deployId('3.0.0')).map((d) => d.decision);
  expect(of3.sort()).toEqual(['deploy-finished', 'deploy-started']);
}, 120000);

it('the end of a work that the lane never got is reported again until the lane took it: the next work starts', async () => {
  const entry = registeredFunctions().find((f) => f.metadata.name === 'laneWorkEnded')!;
  const original = entry.handler;
  // the activity as registered, with repeats a second apart instead of ten
  entry.handler = ((input: Parameters<typeof laneWorkEnded>[0], ctx: InvocationContext) =>
    laneWorkEnded(input, ctx, QUICK)) as typeof original;
  const drop = dropFirstRaise((p) => p.workEnded === deployId('4.0.0'));
  try {
    await idleLane('3.9.0');
    expect(await routeToLane(client, deploy('4.0.0'))).toBe('raised');
    await until('deploy 4.0.0 running', () => running(deployId('4.0.0')));
    expect(await routeToLane(client, deploy('4.1.0'))).toBe('raised');
    await until('4.1.0 waiting', () => waitingIs([deployId('4.1.0')]));
    await host.durable.raiseEvent(deployId('4.0.0'), 'finish', {});
    // without the repeat the lane would wait for 4.0.0 for ever and 4.1.0 would never start
    await until('deploy 4.1.0 running', () => running(deployId('4.1.0')));
    expect(drop.dropped()).toBe(1);
    expect(drop.raised()).toBeGreaterThanOrEqual(2);
  } finally {
    drop.restore();
    entry.handler = original;
  }
  await host.durable.raiseEvent(deployId('4.1.0'), 'finish', {});
  await until('the lane idle', idle);
  expect(started.filter((v) => v.startsWith('4.'))).toEqual(['4.0.0', '4.1.0']);
}, 120000);

it('a lane terminated while a request waits to be taken: the request is routed again, a new lane runs it', async () => {
  await idleLane('4.9.0');
  // every raise of 5.0.0 is lost: only a new lane, started with the request as its first work, can run it
  const drop = dropFirstRaise((p) => p.version === '5.0.0', Infinity);
  try {
    const routed = routeToLane(client, deploy('5.0.0'), undefined, QUICK);
    await until('the first raise of 5.0.0', () => drop.raised() > 0 || undefined);
    await host.durable.terminate('lane-uat', 'an operator stops the lane');
    expect(await routed).toBe('started');
    await until('deploy 5.0.0 running', () => running(deployId('5.0.0')));
  } finally {
    drop.restore();
  }
  await host.durable.raiseEvent(deployId('5.0.0'), 'finish', {});
  await until('the lane idle', idle);
  expect(started.filter((v) => v === '5.0.0')).toEqual(['5.0.0']);
}, 120000);

// last: it stops this file's host
it('the host stops while a sender waits for the lane to take its request: the sender fails at once (connection refused), it does not poll a stopped host until it gives up', async () => {
  await idleLane('6.0.0'); // the lane runs, idle
  // every raise of 6.1.0 is lost, so the sender keeps waiting for the lane to list it
  const drop = dropFirstRaise((p) => p.version === '6.1.0', Infinity);
  try {
    const outcome = routeToLane(client, deploy('6.1.0'), undefined, {
      pollMs: 200,
      repeatMs: 1000,
      giveUpMs: 120_000,
    }).then(
      (how) => ({ how, err: undefined }),
      (err: Error) => ({ how: undefined, err }),
    );
    await until('the sender to raise 6.1.0 twice', () => drop.raised() > 1 || undefined);
    await host.stop();
    const { how, err } = await outcome;
    expect(how).toBeUndefined(); // not 'raised' (unconfirmed after two minutes) nor anything else
    expect(String(err?.message)).toMatch(/ECONNREFUSED/);
  } finally {
    drop.restore();
  }
}, 90000);
