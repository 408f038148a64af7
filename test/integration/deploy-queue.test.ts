/**
 * The local deploy-queue sender (shared/adapters/deploy-queue.ts) against a real node:http server on
 * 127.0.0.1 that serves the Service Bus REST send protocol through a real LocalQueue, as the embedded
 * host does at /_local/servicebus/{queue}/messages.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LocalQueue } from '../../local/queue';
import {
  LocalDeployQueueSender,
  createDeployQueueSender,
  AzureDeployQueueSender,
} from '../../shared/adapters/deploy-queue';
import { loadConfig } from '../../shared/config';
import { errorCode, isRetryable } from '../../shared/domain/errors';

const Q = 'deploy-requests';
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const clock = {
  t: T0,
  now() {
    return this.t;
  },
};
const KEY = `k-${Math.random().toString(36).slice(2)}-${Date.now()}`;

let dir: string;
let queue: LocalQueue;
let server: http.Server;
let base: string;
/** what the server answers instead of handling, for failure tests */
let override: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean) | undefined;
const requests: Array<{ headers: http.IncomingHttpHeaders; url: string }> = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-queue-'));
  queue = new LocalQueue({ dbPath: path.join(dir, 'q.db'), clock, knownQueues: [Q] });
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ headers: req.headers, url: req.url ?? '' });
      if (override?.(req, res)) return;
      const m = /^\/_local\/servicebus\/([^/]+)\/messages$/.exec(req.url ?? '');
      if (!m || req.method !== 'POST') return void res.writeHead(404).end();
      if (req.headers['x-functions-key'] !== KEY)
        return void res
          .writeHead(401)
          .end('<Error><Code>401</Code><Detail>the master key is required</Detail></Error>');
      const out = queue.handleRestSend(decodeURIComponent(m[1]), {
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      res.writeHead(out.status).end(out.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/_local/servicebus`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  queue.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  override = undefined;
  requests.length = 0;
  clock.t = T0;
  // drain the queue between tests
  for (let m = queue.receive(Q), n = 0; m && n < 100; m = queue.receive(Q), n++) queue.complete(m.lockToken);
});

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

test('a deploy request arrives with its idempotency key, environment session and body', async () => {
  const sender = new LocalDeployQueueSender({ baseUrl: base, queueName: Q, hostKey: KEY });
  await sender.send({
    body: { version: '1.4.0', sha: 'abc123', requestedBy: 'github' },
    messageId: 'push:abc123',
    sessionId: 'uat',
  });
  await sender.close();
  const m = queue.receive(Q)!;
  expect(m).toMatchObject({
    body: { version: '1.4.0', sha: 'abc123', requestedBy: 'github' },
    messageId: 'push:abc123',
    sessionId: 'uat',
    deliveryCount: 1,
  });
  expect(requests[0].headers['content-type']).toBe('application/json; charset=utf-8');
  expect(JSON.parse(String(requests[0].headers['brokerproperties']))).toEqual({
    MessageId: 'push:abc123',
    SessionId: 'uat',
  });
  queue.complete(m.lockToken);
});

test('a resend with the same message id is dropped by duplicate detection', async () => {
  const sender = new LocalDeployQueueSender({ baseUrl: base + '/', queueName: Q, hostKey: KEY });
  await sender.send({ body: { v: 1 }, messageId: 'delivery-7', sessionId: 'uat' });
  await sender.send({ body: { v: 1 }, messageId: 'delivery-7', sessionId: 'uat' });
  expect(queue.counts(Q).active).toBe(1);
});

test('a scheduled request is not delivered before its time (RFC 1123 on the wire)', async () => {
  const sender = new LocalDeployQueueSender({ baseUrl: base, queueName: Q, hostKey: KEY });
  const at = new Date(T0 + 10 * 60_000);
  await sender.send({
    body: { retry: true },
    messageId: 'later-1',
    sessionId: 'prod',
    scheduledEnqueueTimeUtc: at,
  });
  expect(JSON.parse(String(requests[0].headers['brokerproperties'])).ScheduledEnqueueTimeUtc).toBe(
    'Mon, 05 Jan 2026 09:10:00 GMT',
  );
  expect(queue.receive(Q)).toBeUndefined();
  clock.t = at.getTime();
  expect(queue.receive(Q)).toMatchObject({ messageId: 'later-1', sessionId: 'prod' });
});

test('a refused key is QUEUE.REJECTED, not retryable, and the key is not in the error', async () => {
  const sender = new LocalDeployQueueSender({ baseUrl: base, queueName: Q, hostKey: 'wrong-key-123456' });
  const err = await caught(sender.send({ body: 1, messageId: 'a', sessionId: 'uat' }));
  expect(errorCode(err)).toBe('QUEUE.REJECTED');
  expect(isRetryable(err)).toBe(false);
  expect(err.message).toContain('401');
  expect(err.message).toContain('the master key is required');
  expect(err.message).not.toContain('wrong-key-123456');
  expect(queue.counts(Q).active).toBe(0);
});

test("an unknown queue is QUEUE.REJECTED with the server's reason", async () => {
  const sender = new LocalDeployQueueSender({ baseUrl: base, queueName: 'deploy-typo', hostKey: KEY });
  const err = await caught(sender.send({ body: 1, messageId: 'a', sessionId: 'uat' }));
  expect(errorCode(err)).toBe('QUEUE.REJECTED');
  expect(err.message).toMatch(/410.*does not exist/);
});

test('a server error is QUEUE.UNAVAILABLE and retryable', async () => {
  override = (_req, res) => (
    res.writeHead(503).end('<Error><Code>503</Code><Detail>busy</Detail></Error>'),
    true
  );
  const sender = new LocalDeployQueueSender({ baseUrl: base, queueName: Q, hostKey: KEY });
  const err = await caught(sender.send({ body: 1, messageId: 'a', sessionId: 'uat' }));
  expect(errorCode(err)).toBe('QUEUE.UNAVAILABLE');
  expect(isRetryable(err)).toBe(true);
  expect(err.message).toContain('busy');
});

test('no answer within the timeout is QUEUE.UNAVAILABLE', async () => {
  const hanging: http.ServerResponse[] = [];
  override = (_req, res) => (hanging.push(res), true);
  const sender = new LocalDeployQueueSender({ baseUrl: base, queueName: Q, hostKey: KEY, timeoutMs: 200 });
  const err = await caught(sender.send({ body: 1, messageId: 'a', sessionId: 'uat' }));
  for (const r of hanging) r.destroy();
  expect(errorCode(err)).toBe('QUEUE.UNAVAILABLE');
  expect(err.message).toMatch(/no answer within 200 ms/);
});

test('a host that is not running is QUEUE.UNAVAILABLE (connection refused)', async () => {
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const sender = new LocalDeployQueueSender({
    baseUrl: `http://127.0.0.1:${port}/_local/servicebus`,
    queueName: Q,
  });
  const err = await caught(sender.send({ body: 1, messageId: 'a', sessionId: 'uat' }));
  expect(errorCode(err)).toBe('QUEUE.UNAVAILABLE');
  expect(err.message).toMatch(/ECONNREFUSED/);
});

test('bad messages are refused before anything is sent', async () => {
  const sender = new LocalDeployQueueSender({ baseUrl: base, queueName: Q, hostKey: KEY });
  for (const bad of [
    { body: 1, messageId: '', sessionId: 'uat' },
    { body: 1, messageId: 'a', sessionId: 'x'.repeat(129) },
    { body: undefined, messageId: 'a', sessionId: 'uat' },
    { body: { n: BigInt(1) }, messageId: 'a', sessionId: 'uat' },
    { body: 1, messageId: 'a', sessionId: 'uat', scheduledEnqueueTimeUtc: new Date(NaN) },
  ]) {
    expect(errorCode(await caught(sender.send(bad)))).toBe('QUEUE.REJECTED');
  }
  expect(requests).toHaveLength(0);
  expect(() => new LocalDeployQueueSender({ baseUrl: 'not a url', queueName: Q })).toThrow(/QUEUE.REJECTED/);
});

describe('createDeployQueueSender', () => {
  test('local runtime: LOCAL_SERVICEBUS_URL and LOCAL_HOST_KEY from the environment reach the local queue', async () => {
    const env = { PIPELINE_RUNTIME: 'local', LOCAL_SERVICEBUS_URL: base, LOCAL_HOST_KEY: KEY };
    const sender = createDeployQueueSender(loadConfig(env), env);
    expect(sender).toBeInstanceOf(LocalDeployQueueSender);
    await sender.send({ body: { via: 'factory' }, messageId: 'f-1', sessionId: 'uat' });
    expect(queue.receive(Q)).toMatchObject({ messageId: 'f-1', body: { via: 'factory' } });
  });

  test('local runtime without LOCAL_SERVICEBUS_URL targets the host port', async () => {
    const env = { LOCAL_HOST_PORT: '1' };
    const sender = createDeployQueueSender(loadConfig(env), env);
    const err = await caught(sender.send({ body: 1, messageId: 'a', sessionId: 'uat' }));
    expect(err.message).toContain('http://127.0.0.1:1/_local/servicebus/deploy-requests/messages');
  });

  test('azure runtime: the Service Bus sender on the configured namespace (no connection until a send)', async () => {
    const config = {
      ...loadConfig({}),
      PIPELINE_RUNTIME: 'azure',
      ServiceBusConnection__fullyQualifiedNamespace: 'sb-odoo-test.servicebus.windows.net',
    } as ReturnType<typeof loadConfig>;
    const sender = createDeployQueueSender(config, {}, { credential: { getToken: async () => null } });
    expect(sender).toBeInstanceOf(AzureDeployQueueSender);
    await sender.close();
    const missing = { ...loadConfig({}), PIPELINE_RUNTIME: 'azure' } as ReturnType<typeof loadConfig>;
    expect(() => createDeployQueueSender(missing, {})).toThrow(
      /ServiceBusConnection__fullyQualifiedNamespace is missing/,
    );
  });
});
