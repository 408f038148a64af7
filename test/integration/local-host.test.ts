/**
 * The embedded host end to end, in-process: real registrations, real durable-functions client and
 * orchestrators, real queue, real Azurite.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { app, HttpRequest, HttpResponse, InvocationContext, type HttpResponseInit } from '@azure/functions';
import * as df from 'durable-functions';
import { describeHost, LocalHost, startLocalHost } from '../../local/host';
import { ConfigError } from '../../shared/config';

// test-only functions, registered through the real @azure/functions and durable-functions APIs
df.app.activity('lhGreet', { handler: async (name: string) => `hello ${name}` });
// an activity called without an input gets null (the .NET bridge once failed on it)
df.app.activity('lhNoInput', { handler: async (input: unknown) => `no input: ${JSON.stringify(input)}` });
df.app.orchestration('lhHello', function* (context) {
  const a: string = yield context.df.callActivity('lhGreet', 'uat');
  const b: string = yield context.df.callActivity('lhGreet', 'prod');
  const c: string = yield context.df.callActivity('lhNoInput');
  return [a, b, c];
});
app.http('lhStart', {
  route: 'lh/start/{name}',
  methods: ['POST'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: async (req: HttpRequest, ctx: InvocationContext) => {
    const client = df.getClient(ctx);
    const id = await client.startNew(req.params.name, { input: await req.text() });
    return { status: 202, jsonBody: { id } };
  },
});
app.http('lhAdminOnly', {
  route: 'lh/admin',
  methods: ['GET'],
  authLevel: 'admin',
  handler: async () => ({ body: 'admin ok' }),
});
app.http('lhBoom', {
  route: 'lh/boom',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: async () => {
    throw new Error('secret detail');
  },
});
app.http('lhEcho', {
  route: 'lh/echo/{*rest}',
  methods: ['POST'],
  authLevel: 'anonymous',
  handler: async (req: HttpRequest) => ({
    jsonBody: { rest: req.params.rest, q: req.query.get('q'), len: (await req.arrayBuffer()).byteLength },
  }),
});
// an HTML form round trip, like the approval pages: form-urlencoded in (formData() or text()), HTML out
const escapeHtml = (v: string) => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
app.http('lhForm', {
  route: 'lh/form',
  methods: ['GET', 'POST'],
  authLevel: 'anonymous',
  handler: async (req: HttpRequest) => {
    if (req.method === 'GET')
      return {
        headers: { 'content-type': 'text/html; charset=utf-8' },
        body: '<!doctype html><form method="post"><input name="decision"></form>',
      };
    const form = req.query.get('raw') ? new URLSearchParams(await req.text()) : await req.formData();
    return {
      headers: { 'content-type': 'text/html; charset=utf-8' },
      cookies: [{ name: 'seen', value: '1', httpOnly: true, sameSite: 'Strict', path: '/api' }],
      body: `<p>decision: ${escapeHtml(String(form.get('decision')))}</p>`,
    };
  },
});
// results of every shape a function may return; the expectation is what the library's HttpResponse makes of them
const shapes: Record<string, () => HttpResponseInit | HttpResponse> = {
  string: () => ({ body: 'plain' }),
  json: () => ({ status: 201, jsonBody: { a: 1, s: 'é' } }),
  jsonWithType: () => ({ jsonBody: { a: 1 }, headers: { 'Content-Type': 'application/problem+json' } }),
  bytes: () => ({ body: Buffer.from([1, 2, 3]) }),
  instance: () =>
    new HttpResponse({ status: 202, body: '<b>x</b>', headers: { 'content-type': 'text/html' } }),
  noContent: () => ({ status: 204, body: 'dropped' }),
  headersObject: () => ({ body: 'h', headers: new Headers({ 'x-one': '1' }) }),
  searchParams: () => ({ body: new URLSearchParams({ q: 'a b' }) }),
  stream: () => ({ body: new Blob(['blob body']).stream() }),
  empty: () => ({}),
};
app.http('lhShape', {
  route: 'lh/shape/{kind}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: async (req: HttpRequest) =>
    req.params.kind === 'bad-status'
      ? { status: 99 }
      : req.params.kind === 'bad-header'
        ? { body: 'x', headers: { 'x-bad': 'a\r\nb' } }
        : shapes[req.params.kind](),
});
const received: unknown[] = [];
app.serviceBusQueue('lhConsumer', {
  queueName: '%LH_QUEUE%',
  connection: 'ServiceBusConnection',
  handler: async (m: unknown) => void received.push(m),
});

describe('local host', () => {
  let dir: string;
  let host: LocalHost;
  const functionsDir = path.resolve(__dirname, '..', '..', 'functions');

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lh-'));
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      functionsDir,
      env: { LH_QUEUE: 'lh-queue', LOG_LEVEL: 'warn' },
      maxRequestBytes: 1024 * 1024,
    });
  });
  afterAll(async () => {
    await host?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const key = () => ({ 'x-functions-key': host.keys.functionKey });

  it('serves GET /api/health anonymously and prints its routes', async () => {
    const res = await fetch(`${host.baseUrl}/api/health`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('ok');
    const text = describeHost(host).join('\n');
    expect(text).toContain('/api/health');
    expect(text).toContain('/api/lh/start/{name}');
    expect(text).toContain(host.keys.functionKey);
    // which engine runs the orchestrations, said plainly
    expect(text.split('\n')[1]).toBe(
      'orchestrations run on the Durable Task extension Azure runs (local/durable-host, Azure Storage provider on Azurite)',
    );
  });

  it('honours auth levels: function key, master key, code query', async () => {
    expect((await fetch(`${host.baseUrl}/api/lh/admin`)).status).toBe(401);
    expect((await fetch(`${host.baseUrl}/api/lh/admin`, { headers: key() })).status).toBe(401);
    expect((await fetch(`${host.baseUrl}/api/lh/admin?code=${host.keys.masterKey}`)).status).toBe(200);
    expect((await fetch(`${host.baseUrl}/api/lh/start/lhHello`, { method: 'POST' })).status).toBe(401);
  });

  it('answers 404 for unknown routes and 405 for wrong methods', async () => {
    expect((await fetch(`${host.baseUrl}/api/nope`)).status).toBe(404);
    expect((await fetch(`${host.baseUrl}/elsewhere`)).status).toBe(404);
    expect((await fetch(`${host.baseUrl}/api/health`, { method: 'DELETE' })).status).toBe(405);
  });

  it('passes route params, query and raw body; refuses oversized bodies with 413', async () => {
    const res = await fetch(`${host.baseUrl}/api/lh/echo/a/b?q=1`, {
      method: 'POST',
      body: Buffer.alloc(1000, 1),
    });
    expect(await res.json()).toEqual({ rest: 'a/b', q: '1', len: 1000 });
    const big = await fetch(`${host.baseUrl}/api/lh/echo/x`, {
      method: 'POST',
      body: Buffer.alloc(2 * 1024 * 1024),
    });
    expect(big.status).toBe(413);
  });

  it('serves HTML and reads form-urlencoded posts through formData() and text(); cookies become Set-Cookie', async () => {
    const page = await fetch(`${host.baseUrl}/api/lh/form`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('<form method="post">');
    for (const q of ['', '?raw=1']) {
      const res = await fetch(`${host.baseUrl}/api/lh/form${q}`, {
        method: 'POST',
        body: new URLSearchParams({ decision: 'APPROVE <now>' }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('set-cookie')).toBe('seen=1; Path=/api; HttpOnly; SameSite=Strict');
      expect(await res.text()).toBe('<p>decision: APPROVE &#60;now&#62;</p>');
    }
  });

  it("writes every shape of result as the library's HttpResponse would", async () => {
    for (const [kind, make] of Object.entries(shapes)) {
      const made = make();
      const expected = made instanceof HttpResponse ? made : new HttpResponse(made);
      const res = await fetch(`${host.baseUrl}/api/lh/shape/${kind}`);
      expect({
        kind,
        status: res.status,
        type: res.headers.get('content-type'),
        body: Buffer.from(await res.arrayBuffer()).toString('hex'),
      }).toEqual({
        kind,
        status: expected.status,
        type: expected.headers.get('content-type'),
        body: Buffer.from(await expected.arrayBuffer()).toString('hex'),
      });
    }
    expect((await fetch(`${host.baseUrl}/api/lh/shape/headersObject`)).headers.get('x-one')).toBe('1');
    // an invalid result is the function's fault: 500, like the Functions host
    expect((await fetch(`${host.baseUrl}/api/lh/shape/bad-status`)).status).toBe(500);
    expect((await fetch(`${host.baseUrl}/api/lh/shape/bad-header`)).status).toBe(500);
  });

  it('answers many concurrent requests, each on its own connection, each with its own answer', async () => {
    // answers finished in the same event-loop turn are written together: none may be lost or crossed
    const agent = new http.Agent({ keepAlive: true, maxSockets: 200 });
    const one = (i: number) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const body = Buffer.alloc(i + 1, 7);
        const req = http.request(
          `${host.baseUrl}/api/lh/echo/n${i}?q=${i}`,
          { method: 'POST', agent, headers: { 'content-length': body.length } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    try {
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
        answers.forEach((a, i) =>
          expect({ i, ...a }).toEqual({
            i,
            status: 200,
            body: JSON.stringify({ rest: `n${i}`, q: String(i), len: i + 1 }),
          }),
        );
      }
    } finally {
      agent.destroy();
    }
  });

  it('turns a function crash into a 500 without leaking the error', async () => {
    const res = await fetch(`${host.baseUrl}/api/lh/boom`);
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('secret detail');
  });

  it('runs an orchestration started through the real durable client', async () => {
    const res = await fetch(`${host.baseUrl}/api/lh/start/lhHello`, {
      method: 'POST',
      headers: key(),
      body: 'x',
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const status = await host.durable.waitForCompletion(id, 20000);
    expect(status.runtimeStatus).toBe('Completed');
    expect(status.output).toEqual(['hello uat', 'hello prod', 'no input: null']);
  });

  it('routes Service Bus REST sends to the queue trigger (master key required)', async () => {
    const url = `${host.baseUrl}/_local/servicebus/lh-queue/messages`;
    expect((await fetch(url, { method: 'POST', body: '{}' })).status).toBe(401);
    const send = (id: string) =>
      fetch(url, {
        method: 'POST',
        headers: {
          'x-functions-key': host.keys.masterKey,
          'content-type': 'application/json',
          BrokerProperties: JSON.stringify({ MessageId: id }),
        },
        body: JSON.stringify({ hello: id }),
      });
    expect((await send('m1')).status).toBe(201);
    expect((await send('m1')).status).toBe(201); // duplicate detection drops it silently, like Service Bus
    for (let i = 0; i < 100 && received.length < 1; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toEqual([{ hello: 'm1' }]);
  });
});

describe('local host start-up failures', () => {
  it.each(['home', 'sqlite'])(
    'refuses LOCAL_DURABLE_ENGINE=%s (the removed home-made engine) before it starts anything',
    async (value) => {
      const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'lh-engine-')), 'data');
      try {
        const err = (await startLocalHost({
          dataDir: dir,
          port: 0,
          env: { LOCAL_DURABLE_ENGINE: value },
        }).catch((e: unknown) => e)) as Error;
        expect(err).toBeInstanceOf(Error);
        expect(err.message).toContain('CONFIG.INVALID');
        expect(err.message).toContain(
          `LOCAL_DURABLE_ENGINE="${value}" is not supported: the home-made engine was removed; orchestrations always run on the Durable Task extension (unset LOCAL_DURABLE_ENGINE)`,
        );
        // nothing started: not even the data folder (where Azurite, the keys and the queue would live)
        expect(existsSync(dir)).toBe(false);
      } finally {
        delete process.env.LOCAL_DURABLE_ENGINE;
        rmSync(path.dirname(dir), { recursive: true, force: true });
      }
    },
  );

  it('fails fast naming a malformed setting, and releases its port', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lh-bad-'));
    const before = process.env.COVERAGE_MIN;
    // the engine keeps its state in the host's Azurite: a failed start stops the one it started
    try {
      await expect(startLocalHost({ dataDir: dir, port: 0, env: { COVERAGE_MIN: 'lots' } })).rejects.toThrow(
        ConfigError,
      );
      await expect(startLocalHost({ dataDir: dir, port: 0, env: { COVERAGE_MIN: 'lots' } })).rejects.toThrow(
        /COVERAGE_MIN is malformed/,
      );
    } finally {
      if (before === undefined) delete process.env.COVERAGE_MIN;
      else process.env.COVERAGE_MIN = before;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
