/**
 * `npm run bench -- webhook`: throughput and p50/p99 latency of signed 8 KiB `push` deliveries against
 * the embedded host, next to a bare node:http server that only verifies the HMAC and answers 202 (the
 * practical limit), both measured in the same run with the same closed-loop client (100 connections,
 * keep-alive; the client runs in its own process: bench/support/load-client.ts). The two servers are measured in alternating rounds (bare, host, host, bare, ...) so a
 * load change on a shared machine hits both alike; the load average is recorded with every round.
 *
 * Two mixes are measured against the host:
 * - `push (other branch)`: signed pushes to a non-default branch — verify, classify, record the
 *   decision (one Blob write), answer 200. This is the headline value compared with the bare server.
 *   In the same rounds the host's floor is measured too: a function that only verifies the signature
 *   and parses the JSON (bench/webhook-app), i.e. the embedded host and the programming model before
 *   any of the intake's own work. Its ratio to the bare server bounds what the intake can reach.
 * - `merge (default branch)`: signed pushes to the default branch with coverage present — verify,
 *   dedupe claim, gate (4 GitHub reads from a local fake GitHub, ledger read), commit state, status
 *   post, deploy-uat message to the local queue, decision record. Reported in details.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Bench, BenchResult, percentile } from './harness';
import { LoadResult, LoadSpec, mergeSha, pushPayload, runLoad } from './support/load-client';
import { startLocalHost } from '../local/host';
import { startFakeGitHub } from '../test/support/fake-github';

const SECRET = 'bench-webhook-secret-' + randomUUID();
const REPO = 'Codertocat/Hello-World';
const CONNECTIONS = 100;
/** merges registered in the fake GitHub (coverage + VERSION) before the merge run; more than a run sends */
const MERGES = 20_000;

const sign = (body: Buffer) => 'sha256=' + createHmac('sha256', SECRET).update(body).digest('hex');

const r2 = (n: number) => Math.round(n * 100) / 100;
const loadavg = () => os.loadavg().map(r2);

interface Load {
  /** sorted, ms (not written to the JSON) */
  latencies: number[];
  requests: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  statuses: Record<string, number>;
  /** CPU microseconds per answered request: this process (the server under test), Azurite (its Blob writes), the client */
  cpuUsPerRequest: { server: number; azurite: number; client: number };
}

/** CPU seconds (user + system) of a process, from /proc (0 when it is gone). */
function procCpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** The Azurite child of this process (the host's Blob storage), if any. */
function azuritePid(): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]) !== process.pid)
        continue;
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('azurite')) return Number(d);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/** One closed-loop run by the load client, in its own process (bench/support/load-client.ts). */
async function load(
  url: string,
  seconds: number,
  spec: Pick<LoadSpec, 'mode' | 'branch' | 'sha'>,
): Promise<Load> {
  const az = azuritePid();
  const server0 = process.cpuUsage();
  const az0 = procCpuSeconds(az);
  const r: LoadResult = await runLoad({ url, seconds, connections: CONNECTIONS, secret: SECRET, ...spec });
  const server = process.cpuUsage(server0);
  const azSeconds = procCpuSeconds(az) - az0;
  const { latencies, statuses } = r;
  const per = (cpuSeconds: number) => Math.round((cpuSeconds * 1e6) / Math.max(1, latencies.length));
  return {
    latencies,
    requests: latencies.length,
    seconds: r2(r.seconds),
    rps: r2(latencies.length / r.seconds),
    p50ms: r2(percentile(latencies, 50)),
    p99ms: r2(percentile(latencies, 99)),
    statuses,
    cpuUsPerRequest: {
      server: per((server.user + server.system) / 1e6),
      azurite: per(azSeconds),
      client: per(r.clientCpuSeconds),
    },
  };
}

/** The practical limit: read the body, verify the HMAC in constant time, answer 202. */
/** several runs as one: requests over total time, percentiles over all latencies */
function combine(runs: Load[]): Omit<Load, 'latencies'> {
  const all = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const seconds = runs.reduce((a, r) => a + r.seconds, 0);
  const statuses: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  const weighted = (k: keyof Load['cpuUsPerRequest']) =>
    Math.round(runs.reduce((a, r) => a + r.cpuUsPerRequest[k] * r.requests, 0) / Math.max(1, all.length));
  return {
    requests: all.length,
    seconds: r2(seconds),
    rps: r2(all.length / seconds),
    p50ms: r2(percentile(all, 50)),
    p99ms: r2(percentile(all, 99)),
    statuses,
    cpuUsPerRequest: { server: weighted('server'), azurite: weighted('azurite'), client: weighted('client') },
  };
}

const summary = (r: Load) => ({
  requests: r.requests,
  rps: r.rps,
  p50ms: r.p50ms,
  p99ms: r.p99ms,
  statuses: r.statuses,
  cpuUsPerRequest: r.cpuUsPerRequest,
});

async function startBare(): Promise<{ url: string; stop(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const given = Buffer.from(String(req.headers['x-hub-signature-256'] ?? ''));
      const expected = Buffer.from(sign(body));
      const ok = given.length === expected.length && timingSafeEqual(given, expected);
      res.writeHead(ok ? 202 : 401, { 'content-type': 'application/json' });
      res.end(ok ? '{"accepted":true}' : '{"error":"signature"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const bench: Bench = {
  name: 'webhook',
  description:
    'signed 8 KiB push deliveries: embedded host vs a bare HMAC-verifying node:http server (100 connections)',
  async run({ quick, log }): Promise<BenchResult> {
    const seconds = quick ? 3 : 5;
    const roundCount = quick ? 1 : 3;
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-webhook-'));
    const github = await startFakeGitHub(REPO);
    const saved = { ...process.env };
    const noop = () => undefined;
    const quiet = { debug: noop, info: noop, warn: noop, error: noop, child: () => quiet };
    const host = await startLocalHost({
      dataDir: tmp,
      port: 0,
      functionsDir: path.join(__dirname, 'webhook-app'),
      log: quiet,
      env: {
        GITHUB_WEBHOOK_SECRET: SECRET,
        GITHUB_REPOSITORY: REPO,
        GITHUB_TOKEN: 'ghs_bench_' + randomUUID().replace(/-/g, ''),
        GITHUB_API_URL: github.url,
        GITHUB_DEFAULT_BRANCH: 'master',
        GITHUB_TRIGGER_EVENT: 'push',
        DEPLOY_QUEUE_NAME: 'deploy-requests',
        LOG_LEVEL: 'error',
      },
    });
    const bare = await startBare();
    try {
      const feature = pushPayload('feature/bench', 'b'.repeat(40));
      const push = { mode: 'fixed', branch: 'feature/bench', sha: 'b'.repeat(40) } as const;
      const loadBefore = loadavg();
      log(
        `payload ${feature.length} bytes, ${CONNECTIONS} connections, ${roundCount} round(s) of ${seconds}s per server; load average ${loadBefore.join(' ')} on ${os.cpus().length} CPUs`,
      );

      // warm-up both (JIT, connections, Azurite container creation)
      await load(bare.url, 1, push);
      await load(`${host.baseUrl}/api/github/webhook`, 1, push);

      await load(`${host.baseUrl}/api/bench/webhook-floor`, 1, push);

      const rounds: Array<{
        bare: ReturnType<typeof summary>;
        host: ReturnType<typeof summary>;
        floor: ReturnType<typeof summary>;
        loadAverage: number[];
      }> = [];
      const bareRuns: Load[] = [];
      const hostRuns: Load[] = [];
      const floorRuns: Load[] = [];
      const run = {
        bare: async () => load(bare.url, seconds, push),
        host: async () => load(`${host.baseUrl}/api/github/webhook`, seconds, push),
        floor: async () => load(`${host.baseUrl}/api/bench/webhook-floor`, seconds, push),
      };
      for (let round = 0; round < roundCount; round++) {
        // rotate which server goes first, so a trend in the machine's load favours none of them
        const order = (['bare', 'host', 'floor'] as const).map((_, i, all) => all[(i + round) % all.length]);
        const got: Partial<Record<keyof typeof run, Load>> = {};
        for (const which of order) got[which] = await run[which]();
        const { bare: b, host: h, floor: f } = got as Record<keyof typeof run, Load>;
        bareRuns.push(b);
        hostRuns.push(h);
        floorRuns.push(f);
        rounds.push({ bare: summary(b), host: summary(h), floor: summary(f), loadAverage: loadavg() });
        log(
          `round ${round + 1}: bare ${b.rps} req/s (p99 ${b.p99ms} ms), host ${h.rps} req/s (p99 ${h.p99ms} ms), ratio ${r2(h.rps / b.rps)}; floor ${f.rps} req/s (ratio ${r2(f.rps / b.rps)}); load average ${loadavg().join(' ')}`,
        );
      }
      const bareRun = combine(bareRuns);
      const hostRun = combine(hostRuns);
      const floorRun = combine(floorRuns);
      log(
        `bare HMAC server: ${bareRun.rps} req/s, p50 ${bareRun.p50ms} ms, p99 ${bareRun.p99ms} ms ${JSON.stringify(bareRun.statuses)}; CPU µs/request ${JSON.stringify(bareRun.cpuUsPerRequest)}`,
      );
      log(
        `host, push to another branch: ${hostRun.rps} req/s, p50 ${hostRun.p50ms} ms, p99 ${hostRun.p99ms} ms ${JSON.stringify(hostRun.statuses)}; CPU µs/request ${JSON.stringify(hostRun.cpuUsPerRequest)}`,
      );
      log(
        `host floor (verify + parse only): ${floorRun.rps} req/s (ratio ${r2(floorRun.rps / bareRun.rps)}), p50 ${floorRun.p50ms} ms, p99 ${floorRun.p99ms} ms ${JSON.stringify(floorRun.statuses)}; CPU µs/request ${JSON.stringify(floorRun.cpuUsPerRequest)}`,
      );

      // merges: a fresh commit each, coverage and VERSION present in the fake GitHub
      for (let i = 1; i <= MERGES; i++) {
        github.setCoverage(mergeSha(i), '85.0%');
        github.setVersion(mergeSha(i), `1.0.${i}`);
      }
      const mergeRun = await load(`${host.baseUrl}/api/github/webhook`, seconds, {
        mode: 'merges',
        branch: 'master',
      });
      log(
        `host, merges to the default branch (full gate + enqueue): ${mergeRun.rps} req/s, p50 ${mergeRun.p50ms} ms, p99 ${mergeRun.p99ms} ms ${JSON.stringify(mergeRun.statuses)}`,
      );
      const queued = host.queue.counts('deploy-requests');

      const ratio = Math.round((hostRun.rps / bareRun.rps) * 1000) / 1000;
      for (const [name, r] of [
        ['host', hostRun],
        ['floor', floorRun],
      ] as const) {
        const unexpected = Object.entries(r.statuses).filter(([s]) => s !== '200');
        if (unexpected.length)
          throw new Error(`${name} answered unexpected statuses: ${JSON.stringify(r.statuses)}`);
      }
      return {
        name: 'webhook',
        unit: 'req/s',
        value: hostRun.rps,
        baseline: bareRun.rps,
        ratio,
        description:
          'value: signed 8 KiB pushes (to a non-default branch: verify + classify + recorded decision) through the embedded host; baseline: bare node:http server verifying the HMAC and answering 202; same client, same run',
        targets: {
          throughputVsBare: { target: '>= 0.5 x bare server', actual: ratio, met: ratio >= 0.5 },
          p99: { target: '<= 50 ms at 100 connections', actual: hostRun.p99ms, met: hostRun.p99ms <= 50 },
        },
        details: {
          loadAverageBefore: loadBefore,
          loadAverageAfter: loadavg(),
          connections: CONNECTIONS,
          payloadBytes: feature.length,
          secondsPerRun: seconds,
          rounds,
          bare: bareRun,
          hostPush: hostRun,
          /** the same host serving a function that only verifies and parses: the bound on the intake's ratio */
          hostFloor: { ...floorRun, ratioVsBare: Math.round((floorRun.rps / bareRun.rps) * 1000) / 1000 },
          hostMerge: summary(mergeRun),
          queueAfter: queued,
        },
      };
    } finally {
      await bare.stop();
      await host.stop();
      await github.stop();
      process.env = saved;
      rmSync(tmp, { recursive: true, force: true });
    }
  },
};

export default bench;
