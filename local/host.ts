/**
 * The embedded local host: runs the app's own function registrations on one machine, the way the
 * Functions host does in Azure.
 *
 * - HTTP triggers on http://127.0.0.1:<port>/api/<route>, honouring methods and auth levels (keys under
 *   the data folder, printed at start).
 * - Service Bus triggers and outputs through a persistent local queue with Service Bus semantics;
 *   senders reach it over the Service Bus REST "send" protocol at /_local/servicebus/<queue>/messages.
 * - Orchestrations and activities through the real `durable-functions` handlers, driven by the real
 *   Durable Task extension (local/durable-webjobs.ts: its Azure Storage provider on this host's Azurite,
 *   the port below forwarding to its HTTP API); the durable client HTTP API is served on a second,
 *   loopback-only port (like the real host's internal RPC endpoint), so `df.getClient(context)` works
 *   unchanged. That port needs the master key and JSON bodies and refuses browsers' requests
 *   (`guardClientRequest`); the app's client carries the key in `rpcBaseUrl`.
 * - Azurite (Blob, Queue and Table) under its own supervisor, with its data under the data folder.
 */
import { applyLocalAuth, localLogin, LOCAL_LOGIN_PATH } from './local-auth';
import { InvocationContext } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { loadConfig, registerConfigSecrets, SETTINGS, unsetOptionalSettings } from '../shared/config';
import { createLogger, Logger } from '../shared/log';
import { AzuriteHandle, startAzurite } from './azurite';
import { registeredFunctions } from './functions-core';
import { authorized, HostKeys, loadOrCreateKeys, loadOrCreateLocalSecrets } from './keys';
import { LocalQueue, ReceivedMessage } from './queue';
import { BindingInfo, FunctionInfo, loadFunctions } from './registrations';
import { compileRoute, CompiledRoute } from './routes';
import { toHttpRequest, writeResult } from './http-bridge';
import { guardClientRequest } from './durable-client-guard';
import type { HostDurable } from './durable-ops';
import { WebJobsDurable } from './durable-webjobs';
import { PipelineError } from '../shared/domain/errors';

export interface LocalHostOptions {
  /** data folder (history, queue, Azurite, keys); default LOCAL_DATA_DIR or `.data` */
  dataDir?: string;
  /** HTTP port; 0 = any free port; default LOCAL_HOST_PORT or 7071 */
  port?: number;
  /** settings applied to process.env before the app's configuration is validated */
  env?: Record<string, string>;
  /** folder of function modules; default ../functions next to this file (dist or sources) */
  functionsDir?: string;
  log?: Logger;
  /** largest accepted request body (the Functions host allows 100 MB) */
  maxRequestBytes?: number;
}

export interface HttpRouteInfo {
  name: string;
  methods: string[];
  route: string;
  authLevel: string;
}

export interface LocalHost {
  baseUrl: string;
  port: number;
  /** the durable client API base URL, with the master key as Basic credentials (never log it) */
  rpcBaseUrl: string;
  keys: HostKeys;
  dataDir: string;
  /** start/status/events/terminate/purge of orchestrations (async: HTTP calls to the extension) */
  durable: HostDurable;
  queue: LocalQueue;
  functions: FunctionInfo[];
  routes: HttpRouteInfo[];
  blobConnectionString?: string;
  log: Logger;
  stop(): Promise<void>;
}

const DEFAULT_MAX_BODY = 100 * 1024 * 1024;

/** local.settings.json `Values`, as the Functions Core Tools read them. */
export function readLocalSettings(cwd = process.cwd()): Record<string, string> {
  const file = path.join(cwd, 'local.settings.json');
  if (!existsSync(file)) return {};
  let parsed: { Values?: Record<string, unknown> };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`[CONFIG.INVALID] local.settings.json is not valid JSON: ${(err as Error).message}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed.Values ?? {}))
    if (v !== undefined && v !== null) out[k] = String(v);
  return out;
}

function resolveSetting(value: unknown, env: NodeJS.ProcessEnv): string {
  const s = String(value ?? '');
  return s.replace(/%([A-Za-z0-9_]+)%/g, (_m, key: string) => {
    const v = env[key] || (SETTINGS as Record<string, { default?: string }>)[key]?.default;
    if (v === undefined) throw new Error(`[CONFIG.INVALID] binding refers to %${key}% but ${key} is not set`);
    return v;
  });
}

/**
 * The request body, capped: a declared Content-Length past `max` is refused before any byte is read,
 * and a body (chunked or lying) that passes `max` while streaming is refused at that byte — the rest
 * is not read. On 'too-large' the caller answers with `refuseTooLarge`, which closes the connection.
 */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > max) return resolve('too-large');
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.off('data', onData);
        req.off('end', onEnd);
        req.pause();
        chunks.length = 0;
        return resolve('too-large');
      }
      chunks.push(c);
    };
    // one chunk (the usual case for a webhook-sized body): no copy
    const onEnd = () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
  });
}

/** 413 at once, and the connection closed: the sender cannot keep streaming into the host. */
function refuseTooLarge(req: http.IncomingMessage, res: http.ServerResponse, message: string): void {
  if (!res.headersSent) {
    res.writeHead(413, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
    res.end(JSON.stringify({ error: message }), () => req.destroy());
  } else req.destroy();
}

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type':
      typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
    ...headers,
  });
  res.end(text);
}

export async function startLocalHost(opts: LocalHostOptions = {}): Promise<LocalHost> {
  // 1. Settings: local.settings.json, then explicit env, then generated local secrets (only if unset).
  for (const [k, v] of Object.entries({ ...readLocalSettings(), ...(opts.env ?? {}) })) process.env[k] = v;
  process.env.PIPELINE_RUNTIME = process.env.PIPELINE_RUNTIME || 'local';
  // the home-made engine (LOCAL_DURABLE_ENGINE=home) was removed: say so before anything starts
  // (a local.settings.json copied from an older example still sets it)
  const engineSetting = process.env.LOCAL_DURABLE_ENGINE;
  if (engineSetting && engineSetting !== 'webjobs')
    throw new PipelineError(
      'CONFIG.INVALID',
      `LOCAL_DURABLE_ENGINE=${JSON.stringify(engineSetting)} is not supported: the home-made engine was removed; orchestrations always run on the Durable Task extension (unset LOCAL_DURABLE_ENGINE)`,
    );
  // Like App Service with built-in authentication on: every request's client-sent principal headers are
  // stripped and re-created from a signed session (applyLocalAuth), so the functions may read them.
  process.env.WEBSITE_AUTH_ENABLED = 'True';
  const dataDir = path.resolve(opts.dataDir ?? process.env.LOCAL_DATA_DIR ?? '.data');
  mkdirSync(dataDir, { recursive: true });
  const log = opts.log ?? createLogger({ fields: { component: 'local-host' } });
  const generated = loadOrCreateLocalSecrets(dataDir);
  for (const [k, v] of Object.entries(generated)) if (!process.env[k]) process.env[k] = v;
  const keys = loadOrCreateKeys(dataDir);

  const maxBody = opts.maxRequestBytes ?? DEFAULT_MAX_BODY;
  const requestedPort = opts.port ?? Number(process.env.LOCAL_HOST_PORT || 7071);
  // 2. Storage (Azurite): the Durable Task extension keeps the orchestrations in its queues and tables
  let azurite: AzuriteHandle;
  {
    // generous: on a loaded machine (CI, 2 cores shared) Azurite can take well over 15 s to answer
    azurite = await startAzurite({
      dir: path.join(dataDir, 'azurite'),
      keyFolder: dataDir,
      timeoutMs: 60000,
      // the extension's Azure Storage provider needs the Queue and Table services too
      queueAndTable: true,
      // with the orchestration state in Azurite, the storage must survive a crash of the host: its own
      // supervised process group, re-attached by the restarted host (local/azurite.ts)
      supervised: true,
    });
    process.env.BACKUP_STORAGE_CONNECTION ||= azurite.connectionString;
    log.info(azurite.attached ? 'azurite re-attached (it outlived the previous host)' : 'azurite started', {
      blobEndpoint: azurite.blobEndpoint,
      supervisorPid: azurite.supervisorPid,
    });
  }

  // 3. Bind the public HTTP server first so PUBLIC_BASE_URL/LOCAL_SERVICEBUS_URL know the real port.
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(requestedPort, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  if (!opts.env?.PUBLIC_BASE_URL && !readLocalSettings().PUBLIC_BASE_URL)
    process.env.PUBLIC_BASE_URL = baseUrl;
  process.env.LOCAL_HOST_PORT = String(port);
  process.env.LOCAL_SERVICEBUS_URL = `${baseUrl}/_local/servicebus`;
  process.env.LOCAL_HOST_KEY = keys.masterKey;

  const rpcServer = http.createServer();
  await new Promise<void>((resolve) => rpcServer.listen(0, '127.0.0.1', () => resolve()));
  // the in-process durable client carries the master key as Basic credentials (see local/durable-client-guard.ts)
  const rpcBaseUrl = `http://host:${encodeURIComponent(keys.masterKey)}@127.0.0.1:${(rpcServer.address() as AddressInfo).port}/durabletask/`;

  const cleanup = async () => {
    await new Promise((r) => server.close(() => r(undefined)));
    await new Promise((r) => rpcServer.close(() => r(undefined)));
    await azurite.stop();
  };

  // 4. Validate the whole configuration now: fail fast naming each bad key.
  try {
    const config = loadConfig(process.env);
    registerConfigSecrets(config);
  } catch (err) {
    await cleanup();
    throw err;
  }

  // 5. Load the app's registrations.
  const functionsDir = opts.functionsDir ?? path.join(__dirname, '..', 'functions');
  let functions: FunctionInfo[];
  try {
    functions = loadFunctions(functionsDir);
  } catch (err) {
    await cleanup();
    throw err;
  }

  const clientInputFor = (fn: FunctionInfo) =>
    fn.extraInputs.filter((b) => b.type === 'durableClient' || b.type === 'orchestrationClient');
  const prepareContext = (ctx: InvocationContext, fn: { metadata: { name: string } }) => {
    const info = functions.find((f) => f.name === fn.metadata.name);
    if (info)
      for (const b of clientInputFor(info)) ctx.extraInputs.set(b.name, durable.clientData(rpcBaseUrl));
  };
  const durable = new WebJobsDurable({
    functions: () => registeredFunctions(),
    storageConnection: azurite.connectionString,
    log: log.child({ component: 'durable' }),
    hostRpcBaseUrl: rpcBaseUrl,
    prepareContext,
  });
  try {
    await durable.start(); // the client data (below) comes from the running extension
  } catch (err) {
    await cleanup();
    throw err;
  }
  const queue = new LocalQueue({
    dbPath: path.join(dataDir, 'queue.db'),
    log: log.child({ component: 'queue' }),
  });

  // the same for every invocation (durable-functions copies it before use): built once
  const durableClientInput = durable.clientData(rpcBaseUrl);
  const makeContext = (
    fn: FunctionInfo,
    extra: Partial<ConstructorParameters<typeof InvocationContext>[0]> = {},
  ) => {
    const invocationId = randomUUID();
    let flog: Logger | undefined; // created when the function first logs (most invocations never do)
    const ctx = new InvocationContext({
      invocationId,
      functionName: fn.name,
      options: {
        trigger: fn.trigger as any,
        extraInputs: fn.extraInputs as any,
        extraOutputs: fn.extraOutputs as any,
      },
      logHandler: (level, ...args) => {
        const msg = args
          .map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.message : JSON.stringify(a)))
          .join(' ');
        const lvl =
          level === 'error' || level === 'critical'
            ? 'error'
            : level === 'warning'
              ? 'warn'
              : level === 'trace' || level === 'debug'
                ? 'debug'
                : 'info';
        (flog ??= log.child({ function: fn.name, invocationId }))[lvl](msg);
      },
      ...extra,
    });
    for (const b of clientInputFor(fn)) ctx.extraInputs.set(b.name, durableClientInput);
    return ctx;
  };

  /** Service Bus output bindings: whatever the function set goes to the local queue. */
  const flushOutputs = (fn: FunctionInfo, ctx: InvocationContext) => {
    for (const b of fn.extraOutputs) {
      if (b.type !== 'serviceBus') continue;
      const value = ctx.extraOutputs.get(b.name);
      if (value === undefined) continue;
      const queueName = resolveSetting(b.queueName ?? b.topicName, process.env);
      for (const body of Array.isArray(value) ? value : [value]) queue.send(queueName, { body });
    }
  };

  // 6. HTTP triggers.
  const httpFns = functions
    .filter((f) => f.trigger.type === 'httpTrigger')
    .map((f) => ({
      fn: f,
      methods: (
        (f.trigger.methods as string[] | undefined) ?? [
          'GET',
          'POST',
          'PUT',
          'PATCH',
          'DELETE',
          'HEAD',
          'OPTIONS',
        ]
      ).map((m) => m.toUpperCase()),
      authLevel: String(f.trigger.authLevel ?? 'function').toLowerCase(),
      route: compileRoute(String(f.trigger.route ?? f.name)) as CompiledRoute,
    }));
  const routes: HttpRouteInfo[] = httpFns.map((h) => ({
    name: h.fn.name,
    methods: h.methods,
    route: `/api/${h.route.template}`,
    authLevel: h.authLevel,
  }));

  server.on('request', (req, res) => {
    const started = Date.now();
    void (async () => {
      const url = new URL(req.url ?? '/', baseUrl);
      const method = (req.method ?? 'GET').toUpperCase();
      // the key is looked at only where a route needs one (anonymous routes never parse it)
      const presentedKey = () =>
        (req.headers['x-functions-key'] as string | undefined) ??
        (url.search ? url.searchParams.get('code') : null) ??
        undefined;

      if (url.pathname.startsWith('/_local/servicebus/')) {
        const m = /^\/_local\/servicebus\/([^/]+)\/messages\/?$/.exec(url.pathname);
        if (!m || method !== 'POST') return send(res, 404, { error: 'not found' });
        if (!authorized('admin', presentedKey(), keys))
          return send(res, 401, { error: 'the master key is required' });
        const body = await readBody(req, 256 * 1024);
        if (body === 'too-large')
          return refuseTooLarge(req, res, 'a Service Bus message is limited to 256 KiB');
        const out = queue.handleRestSend(decodeURIComponent(m[1]), {
          headers: req.headers as Record<string, string | undefined>,
          body,
        });
        res.writeHead(out.status, { 'content-type': 'text/plain; charset=utf-8' });
        return res.end(out.body ?? '');
      }
      if (url.pathname === '/admin/functions' && method === 'GET') {
        if (!authorized('admin', presentedKey(), keys))
          return send(res, 401, { error: 'the master key is required' });
        return send(
          res,
          200,
          functions.map((f) => ({ name: f.name, trigger: f.trigger.type })),
        );
      }
      if (url.pathname === LOCAL_LOGIN_PATH && method === 'GET') {
        const out = localLogin(url, keys.masterKey); // the local stand-in for /.auth/login/aad
        res.writeHead(out.status, out.headers);
        return res.end(out.body);
      }
      if (!url.pathname.startsWith('/api/') && url.pathname !== '/api')
        return send(res, 404, { error: `no route for ${url.pathname}` });
      const sub = url.pathname.slice('/api'.length);
      let matched: { h: (typeof httpFns)[number]; params: Record<string, string> } | undefined;
      let methodMismatch = false;
      for (const h of httpFns) {
        const params = h.route.match(sub);
        if (!params) continue;
        if (!h.methods.includes(method)) {
          methodMismatch = true;
          continue;
        }
        matched = { h, params };
        break;
      }
      if (!matched)
        return send(res, methodMismatch ? 405 : 404, {
          error: methodMismatch ? `method ${method} not allowed` : `no function serves ${url.pathname}`,
        });
      const { h, params } = matched;
      if (h.authLevel !== 'anonymous' && !authorized(h.authLevel, presentedKey(), keys)) {
        return send(res, 401, {
          error: `this route needs a ${h.authLevel === 'admin' ? 'master' : 'function'} key (x-functions-key header or code query parameter)`,
        });
      }
      const body = await readBody(req, maxBody);
      if (body === 'too-large') return refuseTooLarge(req, res, `request body larger than ${maxBody} bytes`);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      applyLocalAuth(headers, keys.masterKey); // like App Service Authentication: strip, then inject the signed-in principal
      const query: Record<string, string> = {};
      if (url.search) url.searchParams.forEach((v, k) => (query[k] = v));
      const request = toHttpRequest({ method, url: url.href, headers, query, params, body });
      const ctx = makeContext(h.fn);
      let status = 500;
      try {
        const result = await h.fn.handler(request, ctx);
        flushOutputs(h.fn, ctx);
        status = await writeResult(res, result, method);
      } catch (err) {
        status = 500;
        log.error('function failed', { function: h.fn.name, error: (err as Error).message });
        send(res, 500, { error: 'internal error', invocationId: ctx.invocationId });
      } finally {
        log.debug('http', {
          function: h.fn.name,
          method,
          path: url.pathname,
          status,
          durationMs: Date.now() - started,
        });
      }
    })().catch((err) => {
      log.error('request failed', { error: (err as Error).message });
      send(res, 500, { error: 'internal error' });
    });
  });

  // 7. Durable client RPC endpoint (loopback only, separate port — like the real host's).
  rpcServer.on('request', (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const method = (req.method ?? 'GET').toUpperCase();
      const refused = guardClientRequest(
        {
          method,
          headers: req.headers,
          hasBody:
            Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined,
        },
        keys.masterKey,
      );
      if (refused) {
        res.writeHead(refused.status, { ...(refused.headers ?? {}), connection: 'close' });
        res.end(refused.body ?? '');
        req.resume();
        return;
      }
      if (!url.pathname.startsWith('/durabletask/')) return send(res, 404, { error: 'not found' });
      const body = await readBody(req, 16 * 1024 * 1024);
      if (body === 'too-large') return refuseTooLarge(req, res, 'too large');
      const out = await durable.handleClientRequest({
        method,
        path: url.pathname.slice('/durabletask/'.length),
        query: url.searchParams,
        headers: req.headers as Record<string, string | undefined>,
        body: body.toString('utf8'),
      });
      res.writeHead(out.status, {
        'content-type': 'application/json; charset=utf-8',
        ...(out.headers ?? {}),
      });
      res.end(out.body ?? '');
    })().catch((err) => send(res, 500, { error: (err as Error).message }));
  });

  // 8. Service Bus triggers.
  const subscriptions: Array<{ close(): Promise<void> }> = [];
  try {
    for (const fn of functions.filter((f) => f.trigger.type === 'serviceBusTrigger')) {
      const queueName = resolveSetting(fn.trigger.queueName ?? fn.trigger.topicName, process.env);
      subscriptions.push(
        queue.subscribe(
          queueName,
          async (msg: ReceivedMessage) => {
            const ctx = makeContext(fn, {
              triggerMetadata: {
                messageId: msg.messageId,
                sessionId: msg.sessionId,
                deliveryCount: msg.deliveryCount,
                enqueuedTimeUtc: msg.enqueuedTimeUtc.toISOString(),
                sequenceNumber: msg.sequenceNumber,
                applicationProperties: msg.applicationProperties,
                contentType: msg.contentType,
              },
            });
            await fn.handler(msg.body, ctx);
            flushOutputs(fn, ctx);
          },
          { sessions: fn.trigger.isSessionsEnabled === true },
        ),
      );
    }
  } catch (err) {
    await Promise.all(subscriptions.map((sub) => sub.close()));
    await durable.stop().catch(() => undefined);
    queue.close();
    await cleanup();
    throw err;
  }

  const unsupported = functions.filter(
    (f) =>
      ![
        'httpTrigger',
        'serviceBusTrigger',
        'orchestrationTrigger',
        'activityTrigger',
        'entityTrigger',
      ].includes(f.trigger.type),
  );
  for (const f of unsupported)
    log.warn('trigger type not supported by the local host; function not served', {
      function: f.name,
      trigger: f.trigger.type,
    });

  let stopped = false;
  return {
    baseUrl,
    port,
    rpcBaseUrl,
    keys,
    dataDir,
    durable,
    queue,
    functions,
    routes,
    blobConnectionString: process.env.BACKUP_STORAGE_CONNECTION,
    log,
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(subscriptions.map((s) => s.close()));
      await durable.stop();
      queue.close();
      await cleanup();
    },
  };
}

/** What runs the orchestrations, in one line (the host's description and the demo say it). */
export const ENGINE_LINE =
  'orchestrations run on the Durable Task extension Azure runs (local/durable-host, Azure Storage provider on Azurite)';

/** Lines the host prints at start: what runs the orchestrations, routes, keys, unset optional settings. */
export function describeHost(host: LocalHost): string[] {
  const lines: string[] = [];
  lines.push(`odoo-mta local host on ${host.baseUrl}  (data: ${host.dataDir})`);
  lines.push(ENGINE_LINE);
  lines.push('');
  lines.push('HTTP functions:');
  for (const r of host.routes)
    lines.push(`  ${r.methods.join(',').padEnd(12)} ${host.baseUrl}${r.route}  [${r.authLevel}] (${r.name})`);
  const others = host.functions.filter((f) => f.trigger.type !== 'httpTrigger');
  if (others.length) {
    lines.push('');
    lines.push('Other functions:');
    for (const f of others)
      lines.push(
        `  ${f.trigger.type.padEnd(20)} ${f.name}${f.trigger.queueName ? ` (queue ${String(f.trigger.queueName)})` : ''}`,
      );
  }
  lines.push('');
  lines.push(`Function key: ${host.keys.functionKey}`);
  lines.push(`Master key:   ${host.keys.masterKey}`);
  lines.push(
    '  (send as the x-functions-key header or ?code=; kept in ' + path.join(host.dataDir, 'keys.json') + ')',
  );
  const unset = unsetOptionalSettings(process.env);
  if (unset.length) {
    lines.push('');
    lines.push('Optional settings not set (what that disables):');
    for (const u of unset) lines.push(`  ${u.key.padEnd(32)} ${u.disables}`);
  }
  return lines;
}

export type { BindingInfo };
