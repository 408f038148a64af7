/**
 * Attack: the embedded host's durable client API port (loopback, the port `df.getClient(context)`
 * talks to) as a side door. Any local process — or a web page open in a browser on the machine, which
 * can send "simple" cross-origin requests (text/plain, form bodies, no custom headers) — used to list
 * every instance with its input, raise an approval event, start `deployUat` with any image and
 * terminate a lane, with no key.
 *
 * Now every request needs the host's master key (HTTP Basic password, which is how the in-process
 * durable client carries it, or `x-functions-key`), a body must be `application/json`, and a request
 * a browser marks with `Origin` is refused.
 *
 * Real parts: the embedded host with the app's own functions, the real Durable Task engine and the
 * real durable-functions client; plain node:http requests play the attacker. The port forwards to the
 * Durable Task extension's own API, which must not be reachable any other way (the last test).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as df from 'durable-functions';
import { InvocationContext } from '@azure/functions';
import type { OrchestrationContext } from 'durable-functions';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { startLocalHost, type LocalHost } from '../../local/host';
import type { WebJobsDurable } from '../../local/durable-webjobs';
import { until } from '../support/until';

df.app.orchestration('ldaAwaitingApproval', function* (context: OrchestrationContext) {
  context.df.setCustomStatus({ step: 'awaiting approval' });
  const decision = yield context.df.waitForExternalEvent('approval');
  return { decision };
});

jest.setTimeout(120000);
const saved = { ...process.env };
let dir: string;
let host: LocalHost;
/** the port's origin and path prefix, without the key the host hands its own client */
let rpc: { port: number; prefix: string };
const INSTANCE = 'lda-approval-1';

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lda-'));
  host = await startLocalHost({
    dataDir: dir,
    port: 0,
    functionsDir: path.resolve(__dirname, '..', '..', 'functions'),
    log: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    },
    env: { LOG_LEVEL: 'error' },
  });
  const u = new URL(host.rpcBaseUrl);
  rpc = { port: Number(u.port), prefix: u.pathname };
  // an instance holding a secret-ish input, waiting for an approval
  await client().startNew('ldaAwaitingApproval', {
    instanceId: INSTANCE,
    input: { nonce: 'n-0123456789abcdef', requestedBy: 'alice' },
  });
  await until(
    'instance running',
    async () => (await host.durable.getStatus(INSTANCE))?.runtimeStatus === 'Running',
    30000,
    50,
  );
}, 300000);

afterAll(async () => {
  await host?.stop();
  process.env = saved;
  rmSync(dir, { recursive: true, force: true });
});

function client() {
  const binding = df.input.durableClient();
  const ctx = new InvocationContext({ functionName: 'lda', options: { extraInputs: [binding] } });
  ctx.extraInputs.set(binding, host.durable.clientData(host.rpcBaseUrl));
  return df.getClient(ctx);
}

/** one raw request to the durable API port, as any local process or browser could send it */
function raw(
  method: string,
  sub: string,
  opts: { headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: rpc.port, method, path: rpc.prefix + sub, headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const master = () => ({ 'x-functions-key': host.keys.masterKey });

it("the URL the host hands its own durable client is the port's, and the management URLs carry no key", () => {
  const data = host.durable.clientData(host.rpcBaseUrl) as {
    managementUrls: Record<string, string>;
    rpcBaseUrl: string;
  };
  expect(JSON.stringify(data.managementUrls)).not.toContain(host.keys.masterKey);
  expect(new URL(data.rpcBaseUrl).port).toBe(String(rpc.port));
});

it('without a key: listing instances (with their inputs) is refused with 401 and shows nothing', async () => {
  const res = await raw('GET', 'instances/?showInput=true');
  expect(res.status).toBe(401);
  expect(res.body).not.toContain('n-0123456789abcdef');
  const one = await raw('GET', `instances/${INSTANCE}?showInput=true`);
  expect(one.status).toBe(401);
  expect(one.body).not.toContain('n-0123456789abcdef');
});

it('without a key: raising an approval event is refused with 401 and the instance still waits', async () => {
  const res = await raw('POST', `instances/${INSTANCE}/raiseEvent/approval`, {
    headers: { 'content-type': 'application/json' },
    body: '"approve"',
  });
  expect(res.status).toBe(401);
  await new Promise((r) => setTimeout(r, 300));
  expect((await host.durable.getStatus(INSTANCE))?.runtimeStatus).toBe('Running');
});

it('without a key: starting deployUat with any image is refused with 401 and nothing starts', async () => {
  const input = JSON.stringify({
    type: 'deploy-uat',
    environment: 'uat',
    version: '6.6.6',
    sha: 'e'.repeat(40),
    imageRef: 'evil.example/backdoor:latest',
  });
  const res = await raw('POST', 'orchestrators/deployUat/deploy-uat-6.6.6-evil', {
    headers: { 'content-type': 'text/plain' },
    body: input,
  });
  expect(res.status).toBe(401);
  expect(await host.durable.getStatus('deploy-uat-6.6.6-evil')).toBeUndefined();
});

it('without a key: terminating (a lane) and purging are refused with 401', async () => {
  expect((await raw('POST', `instances/${INSTANCE}/terminate?reason=gone`)).status).toBe(401);
  expect((await raw('DELETE', `instances/${INSTANCE}`)).status).toBe(401);
  expect(
    (await raw('GET', `instances/${INSTANCE}`, { headers: { 'x-functions-key': host.keys.functionKey } }))
      .status,
  ).toBe(401);
  expect((await host.durable.getStatus(INSTANCE))?.runtimeStatus).toBe('Running');
});

it('with the key, a text/plain (or form) body — what a cross-origin page can send — is refused with 415', async () => {
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const res = await raw('POST', `instances/${INSTANCE}/raiseEvent/approval`, {
      headers: { ...master(), 'content-type': type },
      body: '"approve"',
    });
    expect(res.status).toBe(415);
  }
  const none = await raw('POST', `instances/${INSTANCE}/raiseEvent/approval`, {
    headers: master(),
    body: '"approve"',
  });
  expect(none.status).toBe(415);
  expect((await host.durable.getStatus(INSTANCE))?.runtimeStatus).toBe('Running');
});

it('a request a browser sent (it carries Origin) is refused with 403, even with the key in the URL', async () => {
  const basic = 'Basic ' + Buffer.from(`host:${host.keys.masterKey}`).toString('base64');
  const res = await raw('GET', 'instances/', {
    headers: { authorization: basic, origin: 'https://evil.example' },
  });
  expect(res.status).toBe(403);
});

it('a wrong key is refused; the master key (header or Basic password) is served', async () => {
  expect(
    (await raw('GET', `instances/${INSTANCE}`, { headers: { 'x-functions-key': 'x'.repeat(43) } })).status,
  ).toBe(401);
  expect((await raw('GET', `instances/${INSTANCE}`, { headers: master() })).status).toBe(202);
  const basic = 'Basic ' + Buffer.from(`host:${host.keys.masterKey}`).toString('base64');
  expect((await raw('GET', `instances/${INSTANCE}`, { headers: { authorization: basic } })).status).toBe(202);
});

it("the app's own durable client (df.getClient) still lists, raises and reads through the keyed port", async () => {
  const c = client();
  const all = await c.getStatusAll();
  expect(all.map((s) => s.instanceId)).toContain(INSTANCE);
  await c.raiseEvent(INSTANCE, 'approval', 'approve');
  await until(
    'instance completed',
    async () => (await host.durable.getStatus(INSTANCE))?.runtimeStatus === 'Completed',
    30000,
    50,
  );
  expect((await c.getStatus(INSTANCE)).output).toEqual({ decision: 'approve' });
});

/** TCP ports a process listens on (Linux /proc: its socket inodes matched against /proc/net/tcp{,6} LISTEN rows) */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) ports.push(parseInt(f[1].split(':').pop()!, 16));
    }
  return ports;
}

it('the Durable Task extension itself listens on no port — nothing serves its API around the guarded one', async () => {
  // the extension's own local RPC endpoint (127.0.0.1:17071 or 30000-31000) has no authentication at all:
  // a local process or a page's text/plain POST could terminate a lane there without any key
  const victim = 'lda-approval-2';
  await host.durable.startNew('ldaAwaitingApproval', { instanceId: victim, input: { nonce: 'n-2' } });
  await until(
    'victim running',
    async () => (await host.durable.getStatus(victim))?.runtimeStatus === 'Running',
    30000,
    50,
  );
  const pid = (host.durable as WebJobsDurable).handle!.pid;
  const ports = listeningPorts(pid);
  const served: number[] = [];
  for (const port of ports) {
    const status = await new Promise<number>((resolve) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: `/durabletask/instances/${victim}/terminate?reason=attacker`,
          headers: { 'content-type': 'text/plain' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', () => resolve(0));
      req.end();
    });
    if (status >= 200 && status < 300) served.push(port);
  }
  expect(served).toEqual([]);
  expect(ports).toEqual([]);
  await new Promise((r) => setTimeout(r, 1500)); // a terminate is applied on the next queue poll
  expect((await host.durable.getStatus(victim))?.runtimeStatus).toBe('Running');
});
