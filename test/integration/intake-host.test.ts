/**
 * End to end through the embedded host: a signed push over HTTP → gate (fake GitHub) → deploy queue
 * (local Service Bus) → queue trigger → lane orchestration → deploy sub-orchestration. The deploy
 * itself is a test-only `deployUat` orchestrator that waits for a `finish` event, so the test decides
 * when each deploy ends and can queue newer requests meanwhile.
 */
import { sleep, until as poll } from '../support/until';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import { startLocalHost, type LocalHost } from '../../local/host';
import { deployInstanceId } from '../../shared/domain/coverage-gate';
import { example, pushTo, webhookHeaders } from '../support/github-events';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github';
import { InvocationContext } from '@azure/functions';
import { resetDefaultIntake, type DeployRequest } from '../../functions/activities/intake';
import { routeToLane } from '../../functions/deployQueueTrigger';

const SECRET = 'host-webhook-secret-0001';
const saved = { ...process.env };
let host: LocalHost;
let github: FakeGitHub;
let tmp: string;
const started: string[] = [];

// test-only deploy: records that it started, then waits for the test to finish it
df.app.orchestration('deployUat', function* (context: OrchestrationContext) {
  const input = context.df.getInput() as { version: string; sha: string };
  if (!context.df.isReplaying) started.push(`${input.version}`);
  const r = (yield context.df.waitForExternalEvent('finish')) as { fail?: string } | undefined;
  if (r?.fail) throw new Error(`deploy failed: ${r.fail}`);
  return { outcome: 'Succeeded', version: input.version };
});

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'intake-host-'));
  github = await startFakeGitHub('Codertocat/Hello-World');
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
    env: {
      GITHUB_WEBHOOK_SECRET: SECRET,
      GITHUB_REPOSITORY: 'Codertocat/Hello-World',
      GITHUB_TOKEN: 'ghs_hosttest_token_value',
      GITHUB_API_URL: github.url,
      GITHUB_DEFAULT_BRANCH: 'master',
      GITHUB_TRIGGER_EVENT: 'push',
      COVERAGE_WAIT_MINUTES: '30',
      DEPLOY_QUEUE_NAME: 'deploy-requests',
      WEBHOOK_DUPLICATE_WAIT_SECONDS: '60', // a loaded CI machine can be slow; the answer must still be the same
      LOG_LEVEL: 'error',
    },
  });
}, 180000);

afterAll(async () => {
  await resetDefaultIntake();
  await host?.stop();
  await github?.stop();
  process.env = saved;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
async function deliver(
  event: string,
  payload: unknown,
  id = `host-${++n}`,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = JSON.stringify(payload);
  const res = await fetch(`${host.baseUrl}/api/github/webhook`, {
    method: 'POST',
    headers: webhookHeaders(event, id, body, SECRET),
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const until = <T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60000,
): Promise<T> => poll(what, probe, timeoutMs, 50);

const statusOf = (id: string) => host.durable.getStatus(id);
const runtimeOf = async (id: string) => (await statusOf(id))?.runtimeStatus;
/**
 * Before counting what ran: give work still in flight (a second deploy the product should not start)
 * 5 s to show — several polls of the engine's queues. The engine has no "idle" to wait for.
 */
const quiet = () => sleep(5000);
const instances = async (prefix: string) =>
  (await host.durable.listInstances({ top: 1000 })).instances.filter((i) => i.instanceId.startsWith(prefix));

function merge(version: string, coverage = '86%'): string {
  const sha = (version.replace(/\D/g, '') + 'e'.repeat(40)).slice(0, 40);
  github.setCoverage(sha, coverage);
  github.setVersion(sha, version);
  return sha;
}

const running = async (id: string) => (await runtimeOf(id)) === 'Running' || undefined;

describe('intake through the embedded host', () => {
  it('ping answers 200; unsigned requests 401; deliveries needs the function key', async () => {
    expect((await deliver('ping', example('ping'))).status).toBe(200);
    const unsigned = await fetch(`${host.baseUrl}/api/github/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(unsigned.status).toBe(401);
    expect((await fetch(`${host.baseUrl}/api/deliveries?limit=5`)).status).toBe(401);
    const list = await fetch(`${host.baseUrl}/api/deliveries?limit=5`, {
      headers: { 'x-functions-key': host.keys.functionKey },
    });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { items: Array<{ decision: string }> }).items[0]).toMatchObject({
      decision: 'ignored',
      reason: 'ping: webhook is configured',
    });
  });

  it('signed push → gate → queue → lane → one deploy; newer requests supersede older waiting ones', async () => {
    // 1. first merge starts the lane and its deploy
    const shaA = merge('1.0.0');
    const a = await deliver('push', pushTo(shaA));
    expect(a).toMatchObject({ status: 202, body: { decision: 'accepted', version: '1.0.0' } });
    const idA = deployInstanceId('uat', '1.0.0', shaA);
    await until('deploy A running', () => running(idA));
    expect(await runtimeOf('lane-uat')).toBe('Running');

    // 2. while A runs, B then C are merged: B waits, then C supersedes it
    const shaB = merge('1.1.0');
    expect((await deliver('push', pushTo(shaB))).body.decision).toBe('accepted');
    await until('B waiting in the lane', async () =>
      JSON.stringify((await statusOf('lane-uat'))?.customStatus ?? '').includes('1.1.0') ? true : undefined,
    );
    const shaC = merge('1.2.0');
    expect((await deliver('push', pushTo(shaC))).body.decision).toBe('accepted');
    await until('C waiting in the lane', async () =>
      JSON.stringify((await statusOf('lane-uat'))?.customStatus ?? '').includes('1.2.0') ? true : undefined,
    );

    // a redelivery of C's message id is dropped by the queue; a second delivery of the same merge is ignored
    expect((await deliver('push', pushTo(shaC))).body).toMatchObject({ decision: 'ignored' });

    // 3. A finishes → the lane runs C, never B
    await host.durable.raiseEvent(idA, 'finish', {});
    const idC = deployInstanceId('uat', '1.2.0', shaC);
    await until('deploy C running', () => running(idC));
    expect(await statusOf(deployInstanceId('uat', '1.1.0', shaB))).toBeUndefined();
    expect(await runtimeOf(idA)).toBe('Completed');

    // 4. C fails: recorded, lane idles and stays ready for the next merge
    await host.durable.raiseEvent(idC, 'finish', { fail: 'health check' });
    await until('C failed', async () => (await runtimeOf(idC)) === 'Failed' || undefined);
    const decisions = await until('lane decisions recorded', async () => {
      const res = await fetch(`${host.baseUrl}/api/deliveries?limit=50`, {
        headers: { 'x-functions-key': host.keys.functionKey },
      });
      const items = ((await res.json()) as { items: Array<Record<string, string>> }).items;
      return items.some((d) => d.decision === 'deploy-finished' && d.version === '1.2.0') ? items : undefined;
    });
    expect(decisions.find((d) => d.decision === 'superseded')).toMatchObject({
      version: '1.1.0',
      reason:
        'superseded by 1.2.0 (' + shaC.slice(0, 7) + ') while 1.0.0 (' + shaA.slice(0, 7) + ') was deploying',
    });
    expect(decisions.find((d) => d.decision === 'deploy-finished' && d.version === '1.2.0')?.reason).toMatch(
      /failed: .*health check/,
    );
    expect(started).toEqual(['1.0.0', '1.2.0']);

    // 5. the next merge runs in the same lane
    const shaD = merge('1.3.0');
    expect((await deliver('push', pushTo(shaD))).body.decision).toBe('accepted');
    const idD = deployInstanceId('uat', '1.3.0', shaD);
    await until('deploy D running', () => running(idD));
    await host.durable.raiseEvent(idD, 'finish', {});
    await until('D completed', async () => (await runtimeOf(idD)) === 'Completed' || undefined);
    expect(started).toEqual(['1.0.0', '1.2.0', '1.3.0']);
  }, 180000);

  it('50 concurrent deliveries of one event over HTTP → one message, one deploy orchestration', async () => {
    const sha = merge('2.0.0');
    const payload = pushTo(sha);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => deliver('push', payload, 'same-delivery-2-0-0')),
    );
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(results[0]).toMatchObject({ status: 202, body: { decision: 'accepted' } });
    const id = deployInstanceId('uat', '2.0.0', sha);
    await until('deploy running', () => running(id));
    await host.durable.raiseEvent(id, 'finish', {});
    await until('deploy completed', async () => (await runtimeOf(id)) === 'Completed' || undefined);
    await quiet();
    const deploys = await instances('deploy-uat-2.0.0-');
    expect(deploys).toHaveLength(1);
    expect(started.filter((v) => v === '2.0.0')).toHaveLength(1);
    expect(github.posted.filter((p) => p.sha === sha && p.context === 'deploy/uat')).toHaveLength(1);
  }, 180000);

  it('missing coverage starts the coverage timer orchestration for the commit', async () => {
    const sha = 'c0ffee'.padEnd(40, '1');
    github.setVersion(sha, '3.0.0');
    const res = await deliver('push', pushTo(sha));
    expect(res.body).toMatchObject({ decision: 'waiting' });
    // (the real engine shows a new instance Pending until its first episode ran)
    const timer = await until('coverage-wait timer running', async () => {
      const st = await statusOf(`coverage-wait-${sha}`);
      return st?.runtimeStatus === 'Running' ? st : undefined;
    });
    expect(Date.parse((timer?.input as { deadline: string }).deadline) - Date.now()).toBeGreaterThan(
      29 * 60000,
    );
    await host.durable.terminate(`coverage-wait-${sha}`, 'test done');
  });

  it('when the coverage timer fires the merge is blocked with the reason on the commit', async () => {
    const sha = 'c0ffee'.padEnd(40, '2');
    github.setVersion(sha, '3.0.1');
    expect((await deliver('push', pushTo(sha))).body).toMatchObject({ decision: 'waiting' });
    await host.durable.terminate(`coverage-wait-${sha}`, 'replaced by a short timer for the test');
    await host.durable.waitForCompletion(`coverage-wait-${sha}`, 10000);
    // the same orchestrator with a deadline 300 ms away (the 30-minute one is checked above)
    await host.durable.startNew('coverageWait', {
      instanceId: `coverage-wait-short-${sha}`,
      input: { sha, deadline: new Date(Date.now() + 300).toISOString() },
    });
    const done = await host.durable.waitForCompletion(`coverage-wait-short-${sha}`, 20000);
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toEqual({ decision: 'blocked', reason: 'no coverage status after 30 min' });
    expect(github.posted.filter((p) => p.sha === sha).at(-1)).toMatchObject({
      state: 'failure',
      context: 'deploy/uat',
      description: 'no coverage status after 30 min',
    });
  });

  it('a forged coverage status blocks; the replayed push (new delivery id) after a good one is refused and listed as replay in /api/deliveries', async () => {
    const sha = 'f0e9ed'.padEnd(40, '3');
    github.setVersion(sha, '3.0.2');
    github.setCoverage(sha, 'Coverage: 99 %', 'success', { login: 'mallory', id: 6660666 });
    const payload = pushTo(sha);
    expect((await deliver('push', payload)).body).toMatchObject({
      decision: 'blocked',
      reason: "coverage status from user 'mallory', not the CI source (github-actions[bot])",
    });
    github.setCoverage(sha, 'Coverage: 95 %');
    const replay = await deliver('push', payload);
    expect(replay).toMatchObject({ status: 200, body: { decision: 'replay', sha } });
    const list = await fetch(`${host.baseUrl}/api/deliveries?limit=5`, {
      headers: { 'x-functions-key': host.keys.functionKey },
    });
    const items = (
      (await list.json()) as { items: Array<{ decision: string; sha?: string; reason: string }> }
    ).items;
    expect(items.find((i) => i.sha === sha)).toMatchObject({
      decision: 'replay',
      reason: expect.stringContaining('only a new event re-runs the gate'),
    });
    expect(started).not.toContain('3.0.2');
  });

  it('concurrent requests for an idle lane: every one reaches the lane, one runs, the newest waits, three are superseded; never two deploys at once', async () => {
    const binding = df.input.durableClient();
    const ctx = new InvocationContext({
      functionName: 'deployQueueTrigger',
      options: { extraInputs: [binding] },
    });
    ctx.extraInputs.set(binding, host.durable.clientData(host.rpcBaseUrl));
    const client = df.getClient(ctx);
    const req = (i: number): DeployRequest => ({
      type: 'deploy-uat',
      environment: 'race',
      repository: 'Codertocat/Hello-World',
      version: `9.0.${i}`,
      sha: String(i).repeat(40).slice(0, 40),
      imageRef: `odoo-mta:uat-v9.0.${i}`,
      coverage: 90,
      mergedBy: 'me',
      trigger: 'push',
      deliveryId: `race-${i}`,
      requestedAt: new Date().toISOString(),
    });
    const outcomes = await Promise.all([1, 2, 3, 4, 5].map((i) => routeToLane(client, req(i))));
    // The Durable Task extension checks for a live lane before it enqueues a start, so starts that race
    // may all "succeed" (the engine runs one of them and the others' requests reach it as events): each
    // caller reports that it started or raised, and every request must still reach the lane (below).
    expect(outcomes.filter((o) => o === 'started').length).toBeGreaterThanOrEqual(1);
    expect(outcomes.filter((o) => o === 'started' || o === 'raised')).toHaveLength(5);
    const raceDeploys = () => instances('deploy-race-');
    const first = await until('one race deploy running', async () =>
      (await raceDeploys()).find((d) => d.runtimeStatus === 'Running'),
    );
    await until('four requests handled by the lane', async () => {
      const res = await fetch(`${host.baseUrl}/api/deliveries?limit=100`, {
        headers: { 'x-functions-key': host.keys.functionKey },
      });
      const items = ((await res.json()) as { items: Array<Record<string, string>> }).items.filter(
        (d) => d.lane === 'lane-race' && d.decision === 'superseded',
      );
      return items.length === 3 || undefined;
    });
    expect(await raceDeploys()).toHaveLength(1);
    // the running one is not deployed twice
    const runningReq = req(Number(first.instanceId.split('-')[2].split('.')[2]));
    expect(await routeToLane(client, runningReq)).toBe('duplicate');
    await host.durable.raiseEvent(first.instanceId, 'finish', {});
    const second = await until('the newest waiting one runs next', async () =>
      (await raceDeploys()).find((d) => d.runtimeStatus === 'Running' && d.instanceId !== first.instanceId),
    );
    expect(await raceDeploys()).toHaveLength(2);
    await host.durable.raiseEvent(second.instanceId, 'finish', {});
    await until('second done', async () => (await runtimeOf(second.instanceId)) === 'Completed' || undefined);
    await quiet();
    expect(await raceDeploys()).toHaveLength(2);
  }, 180000);
});
