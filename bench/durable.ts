/**
 * `npm run bench -- durable`: the Durable Task extension (local/durable-host) under the embedded host.
 *
 * Issue #19 replaced the home-made engine (local/durable, SQLite) with the real Durable Task extension;
 * this bench measured both on the same machine in the same runs before the old one was removed (its
 * numbers are in docs/durable-local-engine.md). What it measures:
 *   chain      start → Completed of a 5-activity chain (activities do no work), through the real
 *              `npm start` host in a child process: POST to an HTTP starter that calls `df.getClient`,
 *              then the status route polled every 5 ms. Baseline: the same 5 steps run directly in one
 *              HTTP function (the work and the HTTP round trip, no engine).
 *   deploy     start → Completed of a `deployUat` orchestration against the fake VM shell
 *              (test/support/fake-vm-shell.ts, no simulated latency) with the backup streamed to Azurite.
 *              Baseline: the time spent inside the remote calls of that deploy.
 *   coldStart  spawn of `node dist/local/main.js` → "ready." on a fresh data folder, and on an existing
 *              one (a restart). Baseline: a node process that loads the same function modules.
 *   recovery   a chain of 300 ms activities; the host's whole process group SIGKILLed while step 3 is
 *              in flight; the host started again on the same folder: restart → ready, restart → step 3
 *              running again, restart → Completed. Checks the steps that had finished did not run again.
 *              On the real engine Azurite runs under its own supervisor outside that group (as for
 *              `npm start`) and outlives the kill; the activity in flight comes back after the work-item
 *              queue's visibility timeout (30 s locally).
 *   lane       `routeToLane` to a lane whose work is held, until the lane took the request (each request
 *              supersedes the waiting one: one lane generation). Baseline: the same request raised once,
 *              without waiting (what routeToLane did before it made sure).
 * The headline value is the chain median; every measure is in `details.engines.webjobs`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { Bench, BenchResult, percentile } from './harness';
import { startLocalHost } from '../local/host';
import { dotnetSdkMajors, ensureDurableHostBuilt } from '../local/durable-host';
import type { RemoteShell } from '../functions/activities/deploy';
import { BackupStore } from '../shared/adapters/backup-store';
import { createLedger } from '../shared/adapters/ledger';
import type { RegistryClient } from '../shared/adapters/registry';
import type { DeployResult } from '../shared/domain/deploy-plan';
import { createLogger } from '../shared/log';
import { createFakeVm } from '../test/support/fake-vm-shell';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN_JS = path.join(ROOT, 'dist', 'local', 'main.js');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'durable-bench');
const CHAIN = 5;
const RECOVERY_STEP_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (a: number[]) =>
  Math.round(
    percentile(
      [...a].sort((x, y) => x - y),
      50,
    ),
  );
const ms = (a: number[]) => a.map((x) => Math.round(x));

/** The engine under test: its name in the results and logs, and extra environment for its hosts. */
export interface EngineUnderTest {
  name: 'webjobs';
  label: string;
  env: Record<string, string>;
}

const ENGINE: EngineUnderTest = {
  name: 'webjobs',
  label: 'Durable Task extension 3.19.0 (local/durable-host, Azure Storage provider on Azurite)',
  env: {},
};

interface HostProc {
  child: ChildProcess;
  /** spawn → ready, ms */
  readyMs: number;
  output: () => string;
  startChain(id: string, n: number): Promise<{ status: number; body: unknown }>;
  status(id: string): Promise<{ runtimeStatus: string; output: unknown } | undefined>;
  /** the chain's steps run directly in one HTTP function (the baseline: no engine) */
  direct(id: string, n: number): Promise<unknown>;
}

/**
 * `npm start`'s host (dist/local/main.js) on the engine's settings, in its own process group: a crash is
 * a SIGKILL of that group (the host, and on the real engine its .NET host), as in the crash tests. On the
 * real engine Azurite runs under its own supervisor outside that group and outlives the crash, as it
 * does for `npm start`.
 */
async function spawnHost(
  engine: EngineUnderTest,
  dataDir: string,
  env: Record<string, string>,
  baseEnv: NodeJS.ProcessEnv,
): Promise<HostProc> {
  const spawnedAt = performance.now();
  const child = spawn(
    process.execPath,
    [MAIN_JS, '--port', '0', '--data-dir', dataDir, '--functions', FIXTURES],
    {
      env: { ...baseEnv, LOG_LEVEL: 'warn', CI: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 300000;
  while (!/^ready\. /m.test(out)) {
    if (child.exitCode !== null) throw new Error(`host exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) {
      killGroup(child);
      throw new Error(`host did not start within 300 s: ${out}`);
    }
    await sleep(5);
  }
  const readyMs = performance.now() - spawnedAt;
  const output = () => out;
  if (!out.includes('Durable Task extension'))
    throw new Error(`the host did not say it runs the Durable Task extension: ${out.slice(0, 2000)}`);
  const baseUrl = /local host on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
  const key = /Function key: (\S+)/.exec(out)?.[1];
  if (!baseUrl || !key) throw new Error(`host printed no URL or key: ${out}`);
  const call = async (method: string, route: string) => {
    const res = await fetch(`${baseUrl}/api/${route}`, { method, headers: { 'x-functions-key': key } });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* plain text */
    }
    return { status: res.status, body };
  };
  return {
    child,
    readyMs,
    output,
    startChain: (id, n) => call('POST', `bench/start/${id}?n=${n}`),
    status: async (id) => {
      const r = await call('GET', `bench/status/${id}`);
      return r.status === 200 ? (r.body as { runtimeStatus: string; output: unknown }) : undefined;
    },
    direct: async (id, n) =>
      ((await call('POST', `bench/direct/${id}?n=${n}`)).body as { output?: unknown })?.output,
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

async function stopHost(h: HostProc): Promise<void> {
  if (h.child.exitCode !== null || h.child.signalCode !== null) return;
  const exited = new Promise((r) => h.child.once('exit', r));
  killGroup(h.child, 'SIGTERM');
  await Promise.race([exited, sleep(20000)]);
  killGroup(h.child, 'SIGKILL');
}

async function waitCompleted(h: HostProc, id: string, timeoutMs = 300000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await h.status(id);
    if (st?.runtimeStatus === 'Completed') return st.output;
    if (st && ['Failed', 'Terminated'].includes(st.runtimeStatus))
      throw new Error(`${id} ended ${st.runtimeStatus}: ${JSON.stringify(st.output)}`);
    if (Date.now() > deadline)
      throw new Error(`${id} not completed after ${timeoutMs} ms: ${JSON.stringify(st)}`);
    if (h.child.exitCode !== null) throw new Error(`host exited while waiting for ${id}: ${h.output()}`);
    await sleep(5);
  }
}

const expected = Array.from({ length: CHAIN }, (_, i) => i + 1);

async function measureChain(
  engine: EngineUnderTest,
  runs: number,
  baseEnv: NodeJS.ProcessEnv,
  log: (m: string) => void,
) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `bench-durable-${engine.name}-`));
  const h = await spawnHost(engine, path.join(dir, 'data'), engine.env, baseEnv);
  try {
    const latencies: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < runs + 2; i++) {
      const id = `chain-${i}`;
      const t0 = performance.now();
      const started = await h.startChain(id, CHAIN);
      if (started.status !== 202)
        throw new Error(`start ${id}: ${started.status} ${JSON.stringify(started.body)}`);
      const output = await waitCompleted(h, id);
      const t = performance.now() - t0;
      if (JSON.stringify(output) !== JSON.stringify(expected))
        throw new Error(`${id} returned ${JSON.stringify(output)}`);
      const d0 = performance.now();
      const d = await h.direct(`d${i}`, CHAIN);
      const dt = performance.now() - d0;
      if (JSON.stringify(d) !== JSON.stringify(expected))
        throw new Error(`direct run returned ${JSON.stringify(d)}`);
      if (i < 2) continue; // warm-up: module loading, table/queue creation
      latencies.push(t);
      direct.push(dt);
    }
    log(`${engine.name} chain: median ${median(latencies)} ms (direct ${median(direct)} ms)`);
    return {
      medianMs: median(latencies),
      p95Ms: Math.round(
        percentile(
          [...latencies].sort((a, b) => a - b),
          95,
        ),
      ),
      runsMs: ms(latencies),
      directMedianMs: median(direct),
    };
  } finally {
    await stopHost(h);
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
}

async function measureColdStart(
  engine: EngineUnderTest,
  runs: number,
  baseEnv: NodeJS.ProcessEnv,
  log: (m: string) => void,
) {
  const fresh: number[] = [];
  const restart: number[] = [];
  const loadOnly: number[] = [];
  const loader = `require(${JSON.stringify(path.join(ROOT, 'dist', 'local', 'registrations.js'))}).loadFunctions(${JSON.stringify(FIXTURES)}); console.log('ready.')`;
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), `bench-durable-cold-`));
    try {
      const a = await spawnHost(engine, path.join(dir, 'data'), engine.env, baseEnv);
      fresh.push(a.readyMs);
      await stopHost(a);
      const b = await spawnHost(engine, path.join(dir, 'data'), engine.env, baseEnv);
      restart.push(b.readyMs);
      await stopHost(b);
    } finally {
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    }
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['-e', loader], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0 || !r.stdout.includes('ready.')) throw new Error(`module load failed: ${r.stderr}`);
    loadOnly.push(performance.now() - t0);
  }
  log(
    `${engine.name} cold start: fresh folder ${median(fresh)} ms, restart ${median(restart)} ms (modules alone ${median(loadOnly)} ms)`,
  );
  return {
    freshMedianMs: median(fresh),
    restartMedianMs: median(restart),
    freshMs: ms(fresh),
    restartMs: ms(restart),
    modulesOnlyMedianMs: median(loadOnly),
  };
}

async function measureRecovery(
  engine: EngineUnderTest,
  runs: number,
  baseEnv: NodeJS.ProcessEnv,
  log: (m: string) => void,
) {
  const results: { readyMs: number; resumedMs: number; completedMs: number }[] = [];
  /** runs whose orchestration the restarted engine no longer knew (its storage lost it) */
  const lost: { readyMs: number; unknownAfterMs: number }[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), `bench-durable-kill-`));
    const lines = path.join(dir, 'steps.log');
    writeFileSync(lines, '');
    const env = { ...engine.env, BENCH_STEP_MS: String(RECOVERY_STEP_MS), BENCH_LOG: lines };
    // the fixture writes `<what>\t<epoch ms>` lines
    const marks = (l: string) =>
      readFileSync(lines, 'utf8')
        .split('\n')
        .filter((x) => x.split('\t')[0] === l)
        .map((x) => Number(x.split('\t')[1]));
    const count = (l: string) => marks(l).length;
    let h: HostProc | undefined;
    try {
      h = await spawnHost(engine, path.join(dir, 'data'), env, baseEnv);
      const id = `kill-${i}`;
      const started = await h.startChain(id, CHAIN);
      if (started.status !== 202) throw new Error(`start: ${started.status} ${JSON.stringify(started.body)}`);
      const deadline = Date.now() + 120000;
      while (count(`start ${id}:3`) === 0) {
        if (Date.now() > deadline) throw new Error(`step 3 never started: ${h.output()}`);
        await sleep(2);
      }
      const exited = new Promise((r) => h!.child.once('exit', r));
      killGroup(h.child); // the host and everything it started, at once (what a crash does)
      await exited;
      await sleep(200); // let the kernel reap the group's other members (the .NET host)
      const restartedAt = Date.now();
      h = await spawnHost(engine, path.join(dir, 'data'), env, baseEnv);
      // the real engine picks work in flight up again after the queue visibility timeout (30 s locally);
      // an instance the restarted engine does not know at all after 3 minutes was lost with the crash
      const lostAfterMs = 180000;
      const known = await (async () => {
        const until = Date.now() + lostAfterMs;
        while (Date.now() < until) {
          if (await h!.status(id)) return true;
          await sleep(500);
        }
        return false;
      })();
      if (!known) {
        lost.push({ readyMs: Math.round(h.readyMs), unknownAfterMs: lostAfterMs });
        log(
          `${engine.name} kill -9 #${i + 1}: restart ready ${Math.round(h.readyMs)} ms; the instance ${id} is UNKNOWN to the restarted engine (lost with the crash)`,
        );
        continue;
      }
      const output = await waitCompleted(h, id, 900000);
      const completedMs = Date.now() - restartedAt;
      const again = marks(`start ${id}:3`)[1];
      if (again === undefined) throw new Error(`${id} completed but step 3 never ran again`);
      const resumedMs = again - restartedAt;
      if (JSON.stringify(output) !== JSON.stringify(expected))
        throw new Error(`${id} returned ${JSON.stringify(output)}`);
      for (const s of [1, 2, 4, 5])
        if (count(`done ${id}:${s}`) !== 1)
          throw new Error(`step ${s} completed ${count(`done ${id}:${s}`)} times (expected once)`);
      results.push({ readyMs: h.readyMs, resumedMs, completedMs });
      log(
        `${engine.name} kill -9 #${i + 1}: restart ready ${Math.round(h.readyMs)} ms, step 3 again after ${Math.round(resumedMs)} ms, completed after ${Math.round(completedMs)} ms`,
      );
    } finally {
      if (h) await stopHost(h);
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    }
  }
  return {
    stepMs: RECOVERY_STEP_MS,
    lost,
    readyMedianMs: median(results.map((r) => r.readyMs)),
    resumedMedianMs: median(results.map((r) => r.resumedMs)),
    completedMedianMs: median(results.map((r) => r.completedMs)),
    runs: results.map((r) => ({
      readyMs: Math.round(r.readyMs),
      resumedMs: Math.round(r.resumedMs),
      completedMs: Math.round(r.completedMs),
    })),
  };
}

type InProcessHost = Awaited<ReturnType<typeof startLocalHost>>;

/**
 * Runs `fn` on the in-process host (startLocalHost) on the engine's settings, in a scratch folder; then
 * stops the host, removes the folder and puts the environment back as it was, whatever happened.
 */
async function onInProcessHost<T>(
  engine: EngineUnderTest,
  name: string,
  fn: (host: InProcessHost) => Promise<T>,
): Promise<T> {
  const saved = { ...process.env };
  const dir = mkdtempSync(path.join(os.tmpdir(), `bench-durable-${name}-`));
  try {
    const host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: { LOG_LEVEL: 'error', ...engine.env },
      log: createLogger({ level: 'error', sink: () => undefined }),
    });
    try {
      return await fn(host);
    } finally {
      await host.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

/** UAT deploys on the in-process host (so the fake VM shell can be wired into the deploy activities). */
function measureDeploy(engine: EngineUnderTest, runs: number, log: (m: string) => void) {
  return onInProcessHost(engine, 'deploy', (host) => deployOnHost(host, runs, log, engine));
}

async function deployOnHost(
  host: InProcessHost,
  runs: number,
  log: (m: string) => void,
  engine: EngineUnderTest,
) {
  const { setDeployPorts } =
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after the host's functions-core hook
    require('../functions/activities/deploy') as typeof import('../functions/activities/deploy');
  try {
    const conn = host.blobConnectionString ?? process.env.BACKUP_STORAGE_CONNECTION!;
    const container = BlobServiceClient.fromConnectionString(conn).getContainerClient('ledger');
    await container.createIfNotExists();
    const ledger = createLedger(container);
    const backups = new BackupStore({ connectionString: conn, container: 'backups' });
    const registry: RegistryClient = {
      kind: 'memory',
      listTags: async () => [],
      resolve: async (_r, tag) => ({
        digest: `sha256:${'0'.repeat(56)}${Buffer.from(tag).toString('hex').slice(0, 8).padEnd(8, '0')}`,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
      }),
      retag: async () => {
        throw new Error('unused');
      },
      deleteTag: async () => undefined,
    };
    const totals: number[] = [];
    const remotes: number[] = [];
    for (let i = 0; i < runs + 1; i++) {
      const env = `durbench${i}`;
      await ledger.record(env, {
        version: '1.0.0',
        sha: 'a'.repeat(40),
        imageRef: 'reg.local/odoo-mta:uat-v1.0.0',
        deployedAt: new Date().toISOString(),
      });
      const vm = createFakeVm({ db: 'D'.repeat(256 * 1024), filestore: 'F'.repeat(64 * 1024) });
      let remote = 0;
      const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
        const t = performance.now();
        try {
          return await fn();
        } finally {
          remote += performance.now() - t;
        }
      };
      setDeployPorts({
        settings: (e) => ({
          environment: e,
          minFreeDiskGb: 1,
          imageWaitMinutes: 0,
          imagePollSeconds: 1,
          healthTimeoutSeconds: 5,
          keyUrls: [],
          keepCount: 5,
          retryFirstMs: 100,
          retryAttempts: 2,
        }),
        ssh: {
          connect: () =>
            timed(async () => {
              const sh = await vm.connect();
              const wrapped: RemoteShell = {
                run: (c, o) => timed(() => sh.run(c, o)),
                stream: (c, o) => {
                  const t = performance.now();
                  const r = sh.stream(c, o);
                  const done = r.done.finally(() => (remote += performance.now() - t));
                  return { stdout: r.stdout, done };
                },
                close: () => sh.close(),
              };
              return wrapped;
            }),
        },
        backups,
        registry,
        ledger,
        notify: { notify: async () => ({}) },
        log: createLogger({ level: 'error', sink: () => undefined }),
      });
      const t0 = performance.now();
      const id = await host.durable.startNew('deployUat', {
        input: {
          environment: env,
          version: '1.1.0',
          sha: 'b'.repeat(40),
          imageRef: 'reg.local/odoo-mta:uat-v1.1.0',
          force: true,
        },
      });
      const st = await host.durable.waitForCompletion(id, 300000);
      const total = performance.now() - t0;
      const out = st.output as DeployResult;
      if (out?.outcome !== 'Succeeded') throw new Error(`deploy ${id} ended ${out?.outcome}: ${out?.reason}`);
      if (vm.state.image !== 'reg.local/odoo-mta:uat-v1.1.0' || !vm.state.webRunning)
        throw new Error(
          `deploy ${id} succeeded but the VM runs ${vm.state.image} (web up: ${vm.state.webRunning})`,
        );
      if (i === 0) continue; // warm-up
      totals.push(total);
      remotes.push(remote);
    }
    log(`${engine.name} deploy: median ${median(totals)} ms (remote calls ${median(remotes)} ms)`);
    return { medianMs: median(totals), runsMs: ms(totals), remoteMedianMs: median(remotes) };
  } finally {
    setDeployPorts(undefined);
  }
}

/** the lane measure's held work, registered once per process (the registry outlives the host) */
let benchHeldRegistered = false;

/**
 * What routing a request to a busy lane costs (issue #19's last window): `routeToLane` returns once the
 * lane took the request (its next generation lists the event id), raising it again if not. Measured on
 * a lane whose work is held (each request supersedes the waiting one: one lane generation each), against
 * the baseline of the same request raised once without waiting (what `routeToLane` did before).
 */
function measureLane(engine: EngineUnderTest, runs: number, log: (m: string) => void) {
  return onInProcessHost(engine, 'lane', async (host) => {
    try {
      return await laneOnHost(host, log, engine, runs);
    } finally {
      await host.durable.terminate('lanebench-held-0', 'bench over').catch(() => undefined);
      await host.durable.terminate('lane-lanebench', 'bench over').catch(() => undefined);
    }
  });
}

async function laneOnHost(
  host: InProcessHost,
  log: (m: string) => void,
  engine: EngineUnderTest,
  runs: number,
) {
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded after the host's functions-core hook */
  const df = require('durable-functions') as typeof import('durable-functions');
  const { InvocationContext } = require('@azure/functions') as typeof import('@azure/functions');
  const { routeToLane } =
    require('../functions/deployQueueTrigger') as typeof import('../functions/deployQueueTrigger');
  /* eslint-enable @typescript-eslint/no-require-imports */
  if (!benchHeldRegistered) {
    df.app.orchestration('benchHeld', function* (context) {
      yield context.df.waitForExternalEvent('finish');
      return { outcome: 'Succeeded' };
    });
    benchHeldRegistered = true;
  }
  const binding = df.input.durableClient();
  const ctx = new InvocationContext({ functionName: 'benchLane', options: { extraInputs: [binding] } });
  ctx.extraInputs.set(binding, host.durable.clientData(host.rpcBaseUrl));
  const client = df.getClient(ctx);
  const environment = 'lanebench';
  const request = (i: number) =>
    ({
      type: 'deploy-uat',
      environment,
      repository: 'acme/odoo-mta',
      version: `9.${i}.0`,
      sha: 'c'.repeat(40),
      imageRef: `reg.local/odoo-mta:uat-v9.${i}.0`,
      coverage: 90,
      mergedBy: 'bench',
      trigger: 'push',
      deliveryId: `bench-${i}`,
      requestedAt: new Date().toISOString(),
      orchestrator: 'benchHeld',
      instanceId: `lanebench-held-${i}`,
    }) as Parameters<typeof routeToLane>[1];
  // the first request starts the lane and its work, which holds it
  if ((await routeToLane(client, request(0))) !== 'started') throw new Error('the lane did not start');
  const routed: number[] = [];
  const raisedOnce: number[] = [];
  let i = 1;
  for (let k = 0; k < runs + 1; k++) {
    let t = performance.now();
    const how = await routeToLane(client, request(i++));
    if (how !== 'raised') throw new Error(`routeToLane answered ${how}`);
    if (k > 0) routed.push(performance.now() - t); // the first is a warm-up
    t = performance.now();
    await client.raiseEvent(`lane-${environment}`, 'deploy-requested', {
      ...request(i++),
      eventId: `bench-once-${k}`,
    });
    if (k > 0) raisedOnce.push(performance.now() - t);
    await sleep(200); // let the lane take the bare raise before the next request
  }
  log(
    `${engine.name} lane: routeToLane until taken median ${median(routed)} ms, a bare raise ${median(raisedOnce)} ms`,
  );
  return {
    routedMedianMs: median(routed),
    routedRunsMs: ms(routed),
    raisedOnceMedianMs: median(raisedOnce),
  };
}

const bench: Bench = {
  name: 'durable',
  description:
    'durable engine under the embedded host: 5-activity chain and UAT deploy latency, routing to a busy lane, cold start, recovery after kill -9',
  async run({ quick, log }): Promise<BenchResult> {
    if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: npm run bench builds it first`);
    const baseEnv = { ...process.env };
    if (!dotnetSdkMajors().some((m) => m >= 8))
      throw new Error('no .NET SDK 8 or later on this machine: the Durable Task host cannot be built');
    const engine = ENGINE;
    log(engine.label);
    const b = await ensureDurableHostBuilt({ log: createLogger({ level: 'info', sink: (l) => log(l) }) });
    const build = b.built ? { builtNowMs: b.buildMs } : 'cached';
    const chain = await measureChain(engine, quick ? 5 : 20, baseEnv, log);
    const coldStart = await measureColdStart(engine, quick ? 1 : 3, baseEnv, log);
    const recovery = await measureRecovery(engine, quick ? 1 : 2, baseEnv, log);
    // the deploy measure needs the app's activities in this process with the fake VM wired in: on the
    // in-process host (startLocalHost)
    const deploy = await measureDeploy(engine, quick ? 2 : 5, log);
    const lane = await measureLane(engine, quick ? 5 : 20, log);
    const engines = {
      [engine.name]: { label: engine.label, build, chain, deploy, lane, coldStart, recovery },
    };
    const headline = { engine: engine.name, chain };
    return {
      name: 'durable',
      unit: 'ms',
      value: headline.chain.medianMs,
      baseline: headline.chain.directMedianMs,
      ratio: +(headline.chain.medianMs / Math.max(1, headline.chain.directMedianMs)).toFixed(3),
      description: `median start → Completed of a ${CHAIN}-activity chain on the Durable Task extension (HTTP starter + status polling every 5 ms); baseline = the same ${CHAIN} steps run directly in one HTTP function. The chain, deploy, cold start and kill -9 recovery are in details.engines.${headline.engine}`,
      details: { chainLength: CHAIN, engines },
    };
  },
};

export default bench;
