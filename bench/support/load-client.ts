/**
 * The webhook benchmark's load generator, run in its own Node process (`runLoad` forks this file) so the
 * client's own work — building, signing and timing 100 connections' requests — does not share the event
 * loop of the server under test, as with GitHub calling a Functions host. The bare server and the
 * embedded host are measured by the same client the same way.
 *
 * Closed loop: `connections` workers, each sends the next request when the previous one answered.
 */
import { fork } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import examples from '@octokit/webhooks-examples';

export const PAYLOAD_BYTES = 8 * 1024;

/** A GitHub `push` example from GitHub's own payloads, to `branch` at `sha`, padded to exactly 8 KiB. */
export function pushPayload(branch: string, sha: string): Buffer {
  const group = (examples as Array<{ name: string; examples: Array<Record<string, any>> }>).find(
    (g) => g.name === 'push',
  )!;
  const p = structuredClone(group.examples.find((e) => e.ref === 'refs/heads/master')!);
  p.ref = `refs/heads/${branch}`;
  p.after = sha;
  p.head_commit.id = sha;
  // pad the commit message so the body is exactly 8 KiB, like a typical merge push
  p.head_commit.message = 'Merge pull request';
  const base = Buffer.byteLength(JSON.stringify(p));
  p.head_commit.message += ' ' + 'x'.repeat(Math.max(0, PAYLOAD_BYTES - base - 1));
  return Buffer.from(JSON.stringify(p));
}

export const sign = (secret: string, body: Buffer): string =>
  'sha256=' + createHmac('sha256', secret).update(body).digest('hex');

export interface LoadSpec {
  url: string;
  seconds: number;
  connections: number;
  /** the HMAC secret (a random per-run bench secret, handed over IPC, never argv or env) */
  secret: string;
  /** `fixed`: the same push to `branch` every time; `merges`: push i to `branch` at sha = hex(i) padded */
  mode: 'fixed' | 'merges';
  branch: string;
  /** fixed mode: the commit */
  sha?: string;
}

export interface LoadResult {
  /** sorted, ms */
  latencies: number[];
  seconds: number;
  statuses: Record<string, number>;
  /** CPU seconds the client process itself used during the load */
  clientCpuSeconds: number;
}

/** The sha of merge number `i` (1-based): what the parent registers in the fake GitHub beforehand. */
export const mergeSha = (i: number): string => i.toString(16).padStart(40, 'a');

async function load(spec: LoadSpec): Promise<LoadResult> {
  const u = new URL(spec.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const fixed = spec.mode === 'fixed' ? pushPayload(spec.branch, spec.sha ?? 'b'.repeat(40)) : undefined;
  const fixedSig = fixed ? sign(spec.secret, fixed) : '';
  let i = 0;
  const make = (): { body: Buffer; sig: string } => {
    if (fixed) return { body: fixed, sig: fixedSig };
    const body = pushPayload(spec.branch, mergeSha(++i));
    return { body, sig: sign(spec.secret, body) };
  };
  const end = Date.now() + spec.seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const { body, sig } = make();
      const headers = {
        'content-type': 'application/json',
        'content-length': String(body.length),
        'x-github-event': 'push',
        'x-github-delivery': randomUUID(),
        'x-hub-signature-256': sig,
        'user-agent': 'GitHub-Hookshot/bench',
      };
      const t0 = process.hrtime.bigint();
      const req = http.request(
        { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
            statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
            resolve();
          });
        },
      );
      req.on('error', () => {
        statuses.error = (statuses.error ?? 0) + 1;
        resolve();
      });
      req.end(body);
    });
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (Date.now() < end) await one();
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { latencies, seconds, statuses, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** Run one load in a child process and return its measurements. */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result: LoadResult | undefined;
    child.on('message', (m) => {
      result = m as LoadResult;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      result ? resolve(result) : reject(new Error(`the load client exited with ${code} before reporting`)),
    );
    child.send(spec);
  });
}

if (require.main === module) {
  process.once('message', (spec) => {
    load(spec as LoadSpec).then(
      (r) => process.send!(r, undefined, {}, () => process.exit(0)),
      (err) => {
        console.error(`load client failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  });
}
