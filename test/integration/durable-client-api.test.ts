/**
 * The durable client HTTP API of the embedded engine, driven through the REAL `df.getClient(context)`
 * DurableClient (axios over loopback HTTP to a tiny node:http server serving handleClientRequest).
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, DurableClient } from 'durable-functions';
import { InvocationContext } from '@azure/functions';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registeredFunctions } from '../../local/functions-core';
import { DurableEngine } from '../../local/durable/engine';
import { createLogger } from '../../shared/log';

const PREFIX = '/runtime/webhooks/durabletask/';

df.app.activity('caDouble', { handler: (n: unknown) => (n as number) * 2 });
df.app.activity('caStarter', {
  extraInputs: [df.input.durableClient()],
  handler: async (input: unknown, context: InvocationContext) => {
    const client = df.getClient(context);
    return client.startNew('caSimple', { input, instanceId: `started-by-activity-${String(input)}` });
  },
});
df.app.orchestration('caWaitThenDouble', function* (context: OrchestrationContext) {
  context.df.setCustomStatus('waiting');
  const n = (yield context.df.waitForExternalEvent('Go')) as number;
  const doubled = yield context.df.callActivity('caDouble', n);
  context.df.setCustomStatus('done');
  return { doubled, input: context.df.getInput() };
});
df.app.orchestration('caSimple', function* (context: OrchestrationContext) {
  return yield context.df.callActivity('caDouble', context.df.getInput());
});
df.app.orchestration('caUsesActivityClient', function* (context: OrchestrationContext) {
  return yield context.df.callActivity('caStarter', 7);
});

let dir: string;
let engine: DurableEngine;
let server: Server;
let base: string;
let client: DurableClient;

function contextWithClient(): InvocationContext {
  const clientInput = df.input.durableClient();
  const ctx = new InvocationContext({
    functionName: 'caHttp',
    options: { trigger: { type: 'httpTrigger', name: 'req' }, extraInputs: [clientInput] },
  });
  ctx.extraInputs.set(clientInput, engine.clientData(base));
  return ctx;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'durable-client-'));
  engine = new DurableEngine({
    dbPath: join(dir, 'durable.sqlite'),
    functions: registeredFunctions,
    log: createLogger({ level: 'error' }),
    queryPageSize: 2,
    prepareContext: (ctx, fn) => {
      for (const b of Object.values(fn.metadata.bindings)) {
        if (b.type === 'durableClient' && b.direction === 'in')
          ctx.extraInputs.set(b.name as string, engine.clientData(base));
      }
    },
  });
  await engine.start();
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (!url.pathname.startsWith(PREFIX)) {
        res.writeHead(404).end();
        return;
      }
      const headers: Record<string, string | string[] | undefined> = req.headers;
      engine
        .handleClientRequest({
          method: req.method ?? 'GET',
          path: url.pathname.slice(PREFIX.length),
          query: url.searchParams,
          body: Buffer.concat(chunks).toString('utf8'),
          headers,
        })
        .then((r) => {
          res.writeHead(r.status, r.headers ?? {});
          res.end(r.body ?? '');
        })
        .catch((e: Error) => res.writeHead(500).end(e.message));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PREFIX}`;
  client = df.getClient(contextWithClient());
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function raw(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const r = await fetch(`${base}${path}`, { method, body, headers });
  let text = await r.text();
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed?.error === 'string') text = parsed.error;
  } catch {
    /* not JSON */
  }
  return { status: r.status, text, headers: r.headers };
}

describe('durable client HTTP API through the real DurableClient', () => {
  test('startNew, getStatus (running and done, with history), raiseEvent, custom status', async () => {
    const id = await client.startNew('caWaitThenDouble', { instanceId: 'client-1', input: { order: 'A-1' } });
    expect(id).toBe('client-1');
    await engine.idle();
    const running = await client.getStatus(id);
    expect(running.runtimeStatus).toBe('Running');
    expect(running.customStatus).toBe('waiting');
    expect(running.input).toEqual({ order: 'A-1' });
    expect(running.createdTime).toBeInstanceOf(Date);
    await client.raiseEvent(id, 'Go', 21);
    await engine.waitForCompletion(id, 10000);
    const done = await client.getStatus(id, { showHistory: true });
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toEqual({ doubled: 42, input: { order: 'A-1' } });
    expect(done.customStatus).toBe('done');
    expect(done.input).toEqual({ order: 'A-1' });
    // the real client only sends showInput when true; the API honours showInput=false
    const hidden = JSON.parse((await raw('GET', `instances/${id}?showInput=false`)).text) as {
      input: unknown;
    };
    expect(hidden.input).toBeNull();
    const types = (done.history as Array<{ EventType: string }>).map((e) => e.EventType);
    expect(types).toEqual(
      expect.arrayContaining([
        'ExecutionStarted',
        'EventRaised',
        'TaskScheduled',
        'TaskCompleted',
        'ExecutionCompleted',
      ]),
    );
    // raising to a finished instance is accepted silently (410), as with the extension
    await expect(client.raiseEvent(id, 'Go', 1)).resolves.toBeUndefined();
  });

  test('getStatus of an unknown id throws (404); raiseEvent/terminate on unknown ids reject', async () => {
    await expect(client.getStatus('no-such-instance')).rejects.toThrow(/404/);
    await expect(client.raiseEvent('no-such-instance', 'Go', 1)).rejects.toThrow(
      /No instance with ID 'no-such-instance'/,
    );
    await expect(client.terminate('no-such-instance', 'why')).rejects.toThrow(/No instance with ID/);
  });

  test('terminate, then purge the history', async () => {
    const id = await client.startNew('caWaitThenDouble', { instanceId: 'client-term' });
    await client.terminate(id, 'no longer needed');
    await engine.waitForCompletion(id, 10000);
    const s = await client.getStatus(id);
    expect(s.runtimeStatus).toBe('Terminated');
    expect(s.output).toBe('no longer needed');
    await expect(client.terminate(id, 'again')).resolves.toBeUndefined(); // 410
    expect((await client.purgeInstanceHistory(id)).instancesDeleted).toBe(1);
    expect((await client.purgeInstanceHistory(id)).instancesDeleted).toBe(0);
    await expect(client.getStatus(id)).rejects.toThrow(/404/);
  });

  test('startNew refuses unknown orchestrators and ids in use', async () => {
    await expect(client.startNew('caNoSuchOrchestrator')).rejects.toThrow(/DURABLE.UNKNOWN_ORCHESTRATOR/);
    await client.startNew('caWaitThenDouble', { instanceId: 'client-dup' });
    await expect(client.startNew('caWaitThenDouble', { instanceId: 'client-dup' })).rejects.toThrow(
      /409.*DURABLE.INSTANCE_EXISTS/,
    );
    await client.terminate('client-dup', 'cleanup');
    await engine.waitForCompletion('client-dup', 10000);
  });

  test('getStatusBy / getStatusAll follow x-ms-continuation-token pages', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push(await client.startNew('caSimple', { instanceId: `q-${i}`, input: i }));
    for (const id of ids) await engine.waitForCompletion(id, 10000);
    const page = await raw('GET', 'instances/?runtimeStatus=Completed');
    expect(page.headers.get('x-ms-continuation-token')).toBeTruthy();
    const completed = await client.getStatusBy({ runtimeStatus: [df.OrchestrationRuntimeStatus.Completed] });
    const qIds = completed.map((s) => s.instanceId).filter((i) => i.startsWith('q-'));
    expect(qIds).toEqual(ids);
    expect(completed.find((s) => s.instanceId === 'q-3')?.output).toBe(6);
    const all = await client.getStatusAll();
    expect(all.length).toBeGreaterThanOrEqual(5);
    const none = await client.getStatusBy({ createdTimeFrom: new Date(Date.now() + 3600_000) });
    expect(none).toEqual([]);
    const purged = await client.purgeInstanceHistoryBy({
      createdTimeFrom: new Date(0),
      runtimeStatus: [df.OrchestrationRuntimeStatus.Completed],
    });
    expect(purged.instancesDeleted).toBeGreaterThanOrEqual(5);
    expect(await client.getStatusBy({ runtimeStatus: [df.OrchestrationRuntimeStatus.Completed] })).toEqual(
      [],
    );
  });

  test('a host that does not pass request headers gets all matches in one response (no paging loop)', async () => {
    for (let i = 0; i < 3; i++)
      await engine.waitForCompletion(
        await client.startNew('caSimple', { instanceId: `nh-${i}`, input: i }),
        10000,
      );
    const r = await engine.handleClientRequest({
      method: 'GET',
      path: 'instances/',
      query: new URLSearchParams('runtimeStatus=Completed'),
      body: '',
    });
    expect(r.status).toBe(200);
    expect(r.headers?.['x-ms-continuation-token']).toBeUndefined();
    const ids = (JSON.parse(r.body as string) as Array<{ instanceId: string }>)
      .map((s) => s.instanceId)
      .filter((i) => i.startsWith('nh-'));
    expect(ids).toEqual(['nh-0', 'nh-1', 'nh-2']);
    const paged = await engine.handleClientRequest({
      method: 'GET',
      path: 'instances/',
      query: new URLSearchParams('runtimeStatus=Completed&top=1'),
      body: '',
    });
    expect(paged.headers?.['x-ms-continuation-token']).toBeTruthy();
  });

  test('activities get the durable client through prepareContext', async () => {
    const id = await client.startNew('caUsesActivityClient');
    const s = await engine.waitForCompletion(id, 10000);
    expect(s.output).toBe('started-by-activity-7');
    const child = await engine.waitForCompletion('started-by-activity-7', 10000);
    expect(child.output).toBe(14);
  });

  test('client data and check-status responses carry no keys', () => {
    const data = JSON.stringify(engine.clientData(base));
    expect(data).not.toMatch(/code=|sig=|systemKey|x-functions-key/i);
    const payload = client.createHttpManagementPayload('abc');
    for (const v of Object.values(payload)) expect(String(v)).not.toMatch(/code=/);
    expect(payload.statusQueryGetUri).toContain('instances/abc');
  });

  test('malformed requests get 400 (or 404/405/501) with a reason', async () => {
    const cases: Array<[string, string, string | undefined, number, RegExp]> = [
      ['POST', 'orchestrators/caSimple', '{not json', 400, /not valid JSON/],
      ['POST', 'orchestrators/', undefined, 400, /orchestrators\/\{functionName\}/],
      ['GET', 'orchestrators/caSimple', undefined, 405, /use POST/],
      ['GET', 'instances/?runtimeStatus=Sleeping', undefined, 400, /unknown runtimeStatus "Sleeping"/],
      ['GET', 'instances/?createdTimeFrom=yesterday', undefined, 400, /createdTimeFrom is not a date/],
      ['GET', 'instances/?top=-3', undefined, 400, /top must be a positive integer/],
      ['GET', 'instances/?continuationToken=zzz', undefined, 400, /continuation token/],
      ['GET', 'instances/x?showHistory=maybe', undefined, 400, /showHistory must be true or false/],
      ['POST', 'instances/x/raiseEvent/Go', '{"a":', 400, /not valid JSON/],
      ['POST', 'instances/x/raiseEvent/', undefined, 400, /raiseEvent\/\{eventName\}/],
      ['GET', 'instances/x/raiseEvent/Go', undefined, 405, /use POST/],
      ['GET', 'instances/x/terminate', undefined, 405, /use POST/],
      ['PUT', 'instances/x', undefined, 405, /not allowed/],
      ['PUT', 'instances/', undefined, 405, /not allowed/],
      ['DELETE', 'instances/', undefined, 400, /purge by filter needs/],
      ['POST', 'instances/x/rewind?reason=r', undefined, 501, /not supported/],
      ['POST', 'instances/x/explode', undefined, 404, /unknown durable API path/],
      ['GET', 'entities/a/b', undefined, 404, /unknown durable API path/],
      ['GET', 'instances/%E0%A4%A', undefined, 400, /percent-encoding/],
      ['POST', 'orchestrators/caSimple/bad%23id', undefined, 400, /DURABLE.INVALID_INSTANCE_ID/],
    ];
    for (const [method, path, body, status, reason] of cases) {
      const r = await raw(method, path, body);
      expect({ path, status: r.status }).toEqual({ path, status });
      expect(r.text).toMatch(reason);
    }
  });

  test('purging a running instance is refused with 409 and loses nothing', async () => {
    const id = await client.startNew('caWaitThenDouble', { instanceId: 'client-running' });
    const r = await raw('DELETE', `instances/${id}`);
    expect(r.status).toBe(409);
    expect(r.text).toMatch(/DURABLE.INSTANCE_RUNNING/);
    await client.raiseEvent(id, 'Go', 1);
    expect((await engine.waitForCompletion(id, 10000)).output).toEqual({ doubled: 2, input: '' }); // the client posts "" as the body when there is no input
  });
});
