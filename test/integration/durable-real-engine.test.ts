/**
 * The project's orchestrations on the REAL Durable Task engine (issue #19): the extension Azure runs
 * (Microsoft.Azure.WebJobs.Extensions.DurableTask 3.19.0, Azure Storage provider) in the .NET host of
 * local/durable-host, on a real Azurite (blob, queue, table), with this process running the registered
 * `df.app.*` handlers; the durable client is durable-functions' own, talking to the extension's HTTP API.
 *
 * - a chain of activities (object and string inputs) completes with the outputs in order;
 * - the deploy lane (functions/orchestrators/deployLane.ts and its activities, the very modules Azure
 *   loads): while a deploy runs, two newer requests arrive; the newer supersedes the older; the lane
 *   runs the newest after the first — each release once (a task re-yielded in a new Task.any is
 *   scheduled again by the extension: durable-js #574) and NEVER the superseded release afterwards
 *   (the extension can carry an event a generation consumed into the next one: its issue #2606);
 * - the lane between generations: requests raised right when the work ends and while the next
 *   generation is still recording are all run, each once, in arrival order.
 * Needs the .NET SDK 8+ (the host is built on first use, then cached under node_modules/.cache).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as df from 'durable-functions';
import type { DurableClient, OrchestrationContext } from 'durable-functions';
import { InvocationContext } from '@azure/functions';
import { freePort, startAzurite, type AzuriteHandle } from '../../local/azurite';
import { errorCode } from '../../shared/domain/errors';
import { durableTaskOptions, startDurableHost, type DurableHostHandle } from '../../local/durable-host';
import { registeredFunctions } from '../../local/functions-core';
import { deployInstanceId } from '../../shared/domain/coverage-gate';
import type { LaneRequest } from '../../functions/orchestrators/deployLane';
import '../../functions/orchestrators/deployLane';
import '../../functions/activities/lane';
import { routeToLane } from '../../functions/deployQueueTrigger';
import { sleep, until } from '../support/until';
import { readInstance, type DeliveryTiming } from '../../shared/adapters/durable-status';

/** one raise, a second's wait for the lane to take it, no repeat (for a lane held on purpose) */
const ONCE: DeliveryTiming = { pollMs: 100, repeatMs: 600_000, giveUpMs: 1000 };

jest.setTimeout(300000);

const saved = { ...process.env };
let tmp: string;
let azurite: AzuriteHandle;
let host: DurableHostHandle;
let client: DurableClient;
const silent = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return this;
  },
} as never;

// --- test-only functions, registered beside the project's deployLane
const stepInputs: unknown[] = [];
df.app.activity('rtStep', {
  handler: async (input: unknown) => {
    stepInputs.push(input);
    return typeof input === 'string' ? `${input}!` : { seen: input };
  },
});
df.app.orchestration('rtChain', function* (context: OrchestrationContext) {
  const out: unknown[] = [];
  out.push(yield context.df.callActivity('rtStep', 'a1'));
  out.push(yield context.df.callActivity('rtStep', { n: 2, text: 'two' }));
  out.push(yield context.df.callActivity('rtStep', '{"looks":"like json"}'));
  out.push(yield context.df.callActivity('rtStep', 'a4'));
  out.push(yield context.df.callActivity('rtStep', 'a5'));
  return out;
});

/** the work the lane started, in order (versions), as the held deployUat saw it when not replaying */
const started: string[] = [];
/** every lane decision the lane recorded (its `intakeRecordLaneEvent` calls) */
const recorded: Array<Record<string, unknown>> = [];
df.app.orchestration('deployUat', function* (context: OrchestrationContext) {
  const { version } = context.df.getInput() as { version: string };
  if (!context.df.isReplaying) started.push(version);
  yield context.df.waitForExternalEvent('finish');
  return { outcome: 'Succeeded' };
});
df.app.orchestration('rtHeld', function* (context: OrchestrationContext) {
  if (!context.df.isReplaying) started.push(context.df.instanceId);
  yield context.df.waitForExternalEvent('finish');
  return { outcome: 'Succeeded' };
});
/** while set, the lane's decision records wait for it (the lane is then between two generations) */
let recordGate: Promise<void> | undefined;
let recordsHeld = 0;
df.app.activity('intakeRecordLaneEvent', {
  handler: async (d: unknown) => {
    if (recordGate) {
      recordsHeld++;
      await recordGate;
    }
    recorded.push(d as Record<string, unknown>);
    return null;
  },
});

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'durable-real-'));
  azurite = await startAzurite({ dir: path.join(tmp, 'azurite'), queueAndTable: true, timeoutMs: 60000 });
  const hostJson = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'host.json'), 'utf8'));
  process.env.TASK_HUB_NAME = 'RealEngineTest';
  host = await startDurableHost({
    localRpcEndpoint: true, // this file talks to the extension's own endpoint directly (no embedded host)
    functions: registeredFunctions(),
    storageConnection: azurite.connectionString,
    durableTask: durableTaskOptions(hostJson),
    log: silent,
    startTimeoutMs: 240000,
    // the lane's activities use the durable client (the extension's own API), as in Azure
    prepareContext: (ctx, fn) => {
      for (const [name, b] of Object.entries(fn.metadata.bindings ?? {}))
        if (b.type === 'durableClient' && b.direction === 'in') ctx.extraInputs.set(name, host.clientData);
    },
  });
  const binding = df.input.durableClient();
  const ctx = new InvocationContext({ functionName: 'realEngineTest', options: { extraInputs: [binding] } });
  ctx.extraInputs.set(binding, host.clientData);
  client = df.getClient(ctx);
}, 400000);

afterAll(async () => {
  await host?.stop();
  await azurite?.stop();
  process.env = saved;
  if (tmp) rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
});

const completed = (id: string) =>
  until(
    `${id} to complete`,
    async () => {
      const s = await client.getStatus(id);
      if (s.runtimeStatus === 'Failed') throw new Error(`${id} failed: ${JSON.stringify(s.output)}`);
      return s.runtimeStatus === 'Completed' ? s : undefined;
    },
    120000,
    50,
  );

it('uses the task hub named by host.json (%TASK_HUB_NAME%)', () => {
  // what the extension itself reports in the client binding data (the hub its provider runs on)
  expect(host.taskHubName).toBe('RealEngineTest');
  expect(host.rpcBaseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/durabletask\/$/);
});

it('runs a chain of activities to completion, string and object inputs arriving as they were sent', async () => {
  const id = await client.startNew('rtChain', { instanceId: 'chain-1', input: {} });
  const s = await completed(id);
  expect(s.output).toEqual(['a1!', { seen: { n: 2, text: 'two' } }, '{"looks":"like json"}!', 'a4!', 'a5!']);
  expect(stepInputs).toEqual(['a1', { n: 2, text: 'two' }, '{"looks":"like json"}', 'a4', 'a5']);
});

const ENV = 'rt';
const request = (version: string): LaneRequest =>
  ({
    type: 'deploy-uat',
    environment: ENV,
    repository: 'acme/odoo-mta',
    version,
    sha: (version.replace(/\D/g, '') + 'a'.repeat(40)).slice(0, 40),
    imageRef: `odoo-mta:uat-v${version}`,
    coverage: 90,
    mergedBy: 'alice',
    trigger: 'push',
    deliveryId: `rt-${version}`,
    requestedAt: new Date().toISOString(),
  }) as LaneRequest;
const deployId = (version: string) => deployInstanceId(ENV, version, request(version).sha);
const lane = 'lane-rt';
const laneStatus = async () =>
  (await client.getStatus(lane)).customStatus as { running?: string | null; waiting?: string[] } | undefined;

/**
 * Ends held work. The extension knows a sub-orchestration (and takes events for it) only once its first
 * episode is committed: the work may already run (and be in `started`) a moment before that.
 */
async function finish(id: string): Promise<void> {
  await until(`${id} to be known`, async () =>
    (await readInstance(client, id, { showInput: false }))?.runtimeStatus === 'Running' ? true : undefined,
  );
  await client.raiseEvent(id, 'finish', null);
}

/** what a person debugging the lane would look at: its status with history, the work started, the decisions */
async function explain(laneId = lane): Promise<string> {
  const raw = async (id: string) =>
    (
      await fetch(`${host.rpcBaseUrl}instances/${id}?showHistory=true&showHistoryOutput=true&showInput=false`)
    ).json();
  return JSON.stringify({ lane: await raw(laneId), started, recorded }, null, 0).slice(0, 20000);
}

// Was a KNOWN FAILURE (`it.failing`) while the lane re-yielded Task.any([event, deploy]) after each
// request: the extension re-created the running deployUat on every request that arrived during a deploy
// and the lane waited forever on the first scheduling (1.0.1 started 3 times, the lane stuck on
// "running 1.0.1"). The lane now waits for one event per generation and never on the work itself.
it('deploy lane across continueAsNew: a superseded release never deploys after the newer one', async () => {
  await client.startNew('deployLane', { instanceId: lane, input: { environment: ENV } });
  await until('the lane to idle', async () => ((await laneStatus())?.running === null ? true : undefined));

  // 1.0.1 starts (consumed by the idle lane's plain wait)
  await client.raiseEvent(lane, 'deploy-requested', request('1.0.1'));
  await until('1.0.1 to start', () => (started.includes('1.0.1') ? true : undefined));
  // while it runs: 1.0.2, then 1.0.3 (both consumed through Task.any); 1.0.3 supersedes 1.0.2
  await client.raiseEvent(lane, 'deploy-requested', request('1.0.2'));
  await until('1.0.2 to wait', async () =>
    JSON.stringify((await laneStatus())?.waiting) === JSON.stringify([deployId('1.0.2')]) ? true : undefined,
  );
  await client.raiseEvent(lane, 'deploy-requested', request('1.0.3'));
  await until('1.0.3 to replace 1.0.2', async () =>
    JSON.stringify((await laneStatus())?.waiting) === JSON.stringify([deployId('1.0.3')]) ? true : undefined,
  );

  // 1.0.1 ends: the lane continues as new and runs 1.0.3
  await finish(deployId('1.0.1'));
  await until('1.0.3 to start', () => (started.includes('1.0.3') ? true : undefined), 60000).catch(
    async (e) => {
      throw new Error(`${(e as Error).message}\n${await explain()}`);
    },
  );
  await finish(deployId('1.0.3'));
  await completed(deployId('1.0.3'));
  // the lane settles: idle, nothing running, nothing waiting (give a resurrected request time to show)
  await until(
    'the lane to idle after 1.0.3',
    async () => {
      const s = await laneStatus();
      return s?.running === null &&
        recorded.some((d) => d.decision === 'deploy-finished' && d.version === '1.0.3')
        ? s
        : undefined;
    },
    120000,
  );
  await new Promise((r) => setTimeout(r, 5000));

  // each release deployed once: a re-created deployUat would run the whole deploy again
  expect(started).toEqual(['1.0.1', '1.0.3']);
  const s = await laneStatus();
  expect(s).toEqual({ environment: ENV, running: null, waiting: [] });
  // what the intake log shows: each release started at most once, 1.0.2 superseded once, no phantom duplicates
  const of = (decision: string) => recorded.filter((d) => d.decision === decision).map((d) => d.version);
  expect(of('deploy-started')).toEqual(['1.0.1', '1.0.3']);
  expect(of('superseded')).toEqual(['1.0.2']);
  expect(of('duplicate')).toEqual([]);
});

/**
 * A lane of its own for one test (environment `env`): its requests, their deploy ids, its custom status,
 * its recorded decisions, and a failure that shows the lane's history.
 */
function laneOf(env: string) {
  const lane = `lane-${env}`;
  const req = (version: string): LaneRequest => ({
    ...request(version),
    environment: env,
    deliveryId: `${env}-${version}`,
  });
  return {
    req,
    id: (version: string) => deployInstanceId(env, version, req(version).sha),
    status: async () =>
      (await client.getStatus(lane)).customStatus as
        | { running?: string | null; waiting?: string[] }
        | undefined,
    mine: (d: Record<string, unknown>) => d.lane === lane,
    fail: async (e: unknown): Promise<never> => {
      throw new Error(`${(e as Error).message}\n${await explain(lane)}`);
    },
  };
}

it('the lane between generations: requests raised as the work ends and while the next generation records are each run once, in order', async () => {
  const { req: req2, id: id2, status: status2, mine, fail } = laneOf('rt2');
  const other: LaneRequest = { ...req2('other'), orchestrator: 'rtHeld', instanceId: 'rt2-held-1' };

  // the production path: routeToLane starts the lane with 2.0.1, then raises events (each with its eventId)
  expect(await routeToLane(client, req2('2.0.1'))).toBe('started');
  await until('2.0.1 to start', () => (started.includes('2.0.1') ? true : undefined)).catch(fail);

  // 2.0.1 ends and, at once, 2.0.2 is requested: its event races the end of the work (the lane takes
  // one, continues as new, takes the other)
  let open!: () => void;
  recordGate = new Promise<void>((r) => (open = r));
  recordsHeld = 0;
  await finish(id2('2.0.1'));
  // raised once each, not waited for (the lane is held on purpose): the lane must take them as they came
  expect(await routeToLane(client, req2('2.0.2'), undefined, ONCE)).toBe('raised');
  // the next generation is recording (held): a request of another orchestrator arrives right then
  await until(
    'the lane to record between generations',
    () => (recordsHeld > 0 ? true : undefined),
    60000,
  ).catch(fail);
  expect(await routeToLane(client, other, undefined, ONCE)).toBe('raised');
  recordGate = undefined;
  open();

  await until('2.0.2 to start', () => (started.includes('2.0.2') ? true : undefined), 60000).catch(fail);
  await finish(id2('2.0.2'));
  await until(
    'the other work to start',
    () => (started.includes(other.instanceId!) ? true : undefined),
    60000,
  ).catch(fail);
  await finish(other.instanceId!);
  await until(
    'the lane to idle after the other work',
    async () => {
      const s = await status2();
      return s?.running === null &&
        recorded.filter(mine).filter((d) => d.decision === 'deploy-finished').length === 3
        ? s
        : undefined;
    },
    120000,
  ).catch(fail);
  // give a resurrected event time to show
  await new Promise((r) => setTimeout(r, 5000));

  expect(started.filter((v) => ['2.0.1', '2.0.2', other.instanceId].includes(v))).toEqual([
    '2.0.1',
    '2.0.2',
    other.instanceId,
  ]);
  expect(await status2()).toEqual({ environment: 'rt2', running: null, waiting: [] });
  const of = (decision: string) =>
    recorded
      .filter(mine)
      .filter((d) => d.decision === decision)
      .map((d) => d.instanceId);
  expect(of('deploy-started')).toEqual([id2('2.0.1'), id2('2.0.2'), other.instanceId]);
  expect(of('deploy-finished')).toEqual([id2('2.0.1'), id2('2.0.2'), other.instanceId]);
  expect(of('duplicate')).toEqual([]);
  expect(of('superseded')).toEqual([]);
  // every work ran under its own laneWork, once
  for (const id of [id2('2.0.1'), id2('2.0.2'), other.instanceId!])
    expect((await client.getStatus(`lanework-${id}`)).runtimeStatus).toBe('Completed');
});

it('a burst of merges while a deploy runs: every request is decided once, none lost across the generations, the newest runs next', async () => {
  // The lane drains buffered events against a timer due now and then continues as new, which drops an
  // event it did not take; an event delivered in the very batch in which that timer fires would be lost
  // (docs/durable-local-engine.md, "Left open"). Many requests, some raised together, while the lane
  // turns over a generation per event: each must end up superseded or waiting.
  const { req: req3, id: id3, status: status3, mine, fail } = laneOf('rt3');
  expect(await routeToLane(client, req3('3.0.0'))).toBe('started');
  await until('3.0.0 to start', () => (started.includes('3.0.0') ? true : undefined)).catch(fail);

  const versions = Array.from({ length: 60 }, (_, i) => `3.${i + 1}.0`);
  // three at a time (each a few ms apart), then a pause of up to 150 ms: some arrive in one delivery
  // batch, some while the lane records or continues as new
  // (each routeToLane returns once the lane took its request: they are awaited together at the end, so
  // that the burst keeps its pace)
  const routed: Promise<void>[] = [];
  for (let i = 0; i < versions.length; i += 3) {
    routed.push(
      ...versions
        .slice(i, i + 3)
        .map((v, k) =>
          sleep(k * 5).then(async () => expect(await routeToLane(client, req3(v))).toBe('raised')),
        ),
    );
    await sleep(Math.floor(Math.random() * 150));
  }
  await Promise.all(routed);
  // every request decided: all but one superseded, one waiting (which one depends on arrival order)
  const decided = await until(
    'every request to be decided',
    async () => {
      const superseded = recorded.filter(mine).filter((d) => d.decision === 'superseded');
      const waiting = (await status3())?.waiting ?? [];
      return superseded.length + waiting.length >= versions.length ? { superseded, waiting } : undefined;
    },
    180000,
  ).catch(fail);
  expect(decided.waiting).toHaveLength(1);
  const all = [...decided.superseded.map((d) => String(d.instanceId)), ...decided.waiting].sort();
  expect(all).toEqual(versions.map(id3).sort());
  expect(recorded.filter(mine).filter((d) => d.decision === 'duplicate')).toEqual([]);

  // the waiting one runs after 3.0.0, and nothing else does
  const newest = versions.find((v) => id3(v) === decided.waiting[0])!;
  await finish(id3('3.0.0'));
  await until(`${newest} to start`, () => (started.includes(newest) ? true : undefined), 60000).catch(fail);
  await finish(id3(newest));
  await until('the lane to idle', async () => (await status3())?.running === null || undefined, 60000).catch(
    fail,
  );
  expect(started.filter((v) => v.startsWith('3.'))).toEqual(['3.0.0', newest]);
});

it('storage that refuses connections: the start fails with DURABLE_HOST.START_FAILED naming the refused endpoint, no process left', async () => {
  // what CI once met: Azurite's Blob service up, its Queue service not listening (the port taken); the
  // extension's listener cannot start and the host used to abort with only a stack ("exited (null)")
  const dead = await freePort();
  const queueAndTable = `QueueEndpoint=http://127.0.0.1:${dead}/devstoreaccount1;TableEndpoint=http://127.0.0.1:${dead}/devstoreaccount1;`;
  const err = await startDurableHost({
    functions: registeredFunctions().filter((f) => f.metadata.name === 'rtChain'),
    storageConnection: azurite.connectionString.replace(/QueueEndpoint=.*$/, queueAndTable),
    durableTask: durableTaskOptions(
      JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'host.json'), 'utf8')),
    ),
    log: silent,
    startTimeoutMs: 240000,
  }).then(
    (h) => h.stop().then(() => undefined),
    (e: Error) => e,
  );
  expect(errorCode(err)).toBe('DURABLE_HOST.START_FAILED');
  expect(err!.message.split('\n')[0]).toMatch(
    new RegExp(
      `^\\[DURABLE_HOST\\.START_FAILED\\] the local Durable Task host exited \\(code 2\\) before it was ready: could not start: .*Connection refused \\(127\\.0\\.0\\.1:${dead}\\)`,
    ),
  );
  expect(err!.message).not.toContain(azurite.accountKey); // the connection string's key is not quoted
  // nothing of that host runs on: only this file's own host is a child of this process
  const children = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8')
    .trim()
    .split(/\s+/);
  expect(
    children.filter(
      (c) =>
        c && Number(c) !== host.pid && readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('DurableHost'),
    ),
  ).toEqual([]);
});
