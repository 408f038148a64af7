/**
 * The embedded host's orchestrations on the REAL Durable Task engine (issue #19): the .NET WebJobs host
 * of local/durable-host (the extension Azure runs, Azure Storage provider on the host's Azurite) runs the
 * app's `df.app.*` registrations in this process, and this module gives the host its async surface
 * (`HostDurable`, local/durable-ops.ts).
 *
 * Every client operation is a request to the extension's own HTTP management API, handed to its webhook
 * handler over the .NET host's stdin/stdout channel: the extension's unauthenticated local RPC listener
 * (127.0.0.1:17071) is turned off, so no port serves that API but the host's durable client port
 * (master key, JSON bodies, no browsers — `guardClientRequest`), which forwards here
 * (`handleClientRequest`). The app's `df.getClient()` gets that port as its `rpcBaseUrl`, and the
 * management URLs the extension hands out (status, raise event, terminate, purge) point at it too.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { InvocationContext } from '@azure/functions';
import { PipelineError } from '../shared/domain/errors';
import type { Logger } from '../shared/log';
import type { ClientRequest, ClientResponse } from './durable-client-guard';
import type { DurableStatus, HostDurable, ListFilter } from './durable-ops';
import {
  durableTaskOptions,
  startDurableHost,
  type DurableApiResponse,
  type DurableClientData,
  type DurableHostHandle,
} from './durable-host';
import type { RegisteredFunction } from './functions-core';

const TERMINAL = new Set(['Completed', 'Failed', 'Terminated', 'Canceled']);

/** host.json of the app (next to package.json), from the sources or from dist/. */
export function findHostJson(from = __dirname): unknown {
  let d = from;
  for (;;) {
    const f = path.join(d, 'host.json');
    if (existsSync(f) && existsSync(path.join(d, 'package.json')))
      return JSON.parse(readFileSync(f, 'utf8')) as unknown;
    const up = path.dirname(d);
    if (up === d)
      throw new PipelineError('CONFIG.INVALID', `no host.json next to a package.json above ${from}`);
    d = up;
  }
}

interface ExtStatus {
  name?: string;
  instanceId?: string;
  runtimeStatus?: string;
  input?: unknown;
  customStatus?: unknown;
  output?: unknown;
  createdTime?: string;
  lastUpdatedTime?: string;
  historyEvents?: unknown[];
}

const NO_BODY = new Set([101, 204, 205, 304]);
const toResponse = (r: DurableApiResponse): Response =>
  new Response(NO_BODY.has(r.status) ? null : r.body, { status: r.status, headers: r.headers });

const toStatus = (s: ExtStatus): DurableStatus => ({
  name: s.name ?? '',
  instanceId: s.instanceId ?? '',
  createdTime: s.createdTime ?? '',
  lastUpdatedTime: s.lastUpdatedTime ?? '',
  input: s.input ?? null,
  output: s.output ?? null,
  runtimeStatus: s.runtimeStatus ?? 'Unknown',
  customStatus: s.customStatus ?? null,
  ...(s.historyEvents ? { history: s.historyEvents } : {}),
});

export interface WebJobsDurableOptions {
  functions: () => RegisteredFunction[];
  storageConnection: string;
  log: Logger;
  /** the host's guarded durable client base (with the master key as user info): what the app's clients get */
  hostRpcBaseUrl: string;
  /** activities with a durableClient input get client data */
  prepareContext?: (ctx: InvocationContext, fn: RegisteredFunction) => void;
  startTimeoutMs?: number;
  /** poll interval of waitForCompletion (ms) */
  pollMs?: number;
}

export class WebJobsDurable implements HostDurable {
  private host?: DurableHostHandle;
  /** the guarded port's base, without credentials: the URL the extension's answers are built on */
  private base = '';
  private stopped = false;

  constructor(private readonly opts: WebJobsDurableOptions) {}

  get handle(): DurableHostHandle | undefined {
    return this.host;
  }

  async start(): Promise<void> {
    const shown = new URL(this.opts.hostRpcBaseUrl);
    shown.username = '';
    shown.password = '';
    this.host = await startDurableHost({
      functions: this.opts.functions(),
      storageConnection: this.opts.storageConnection,
      durableTask: durableTaskOptions(findHostJson()),
      log: this.opts.log,
      // the management URLs the extension hands out (…/instances/{id}?taskHub=…) go through the guarded port
      webhookUrl: shown.href.replace(/\/$/, ''),
      prepareContext: this.opts.prepareContext,
      startTimeoutMs: this.opts.startTimeoutMs ?? 240000,
    });
    this.base = shown.href.endsWith('/') ? shown.href : `${shown.href}/`;
    this.opts.log.info('durable engine: the real Durable Task extension', {
      taskHub: this.host.taskHubName,
      pid: this.host.pid,
      startMs: this.host.startMs,
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.host?.stop();
  }

  private async call(
    method: string,
    rel: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    if (!this.host || this.stopped)
      throw new PipelineError('DURABLE.STOPPED', 'the durable engine is not running');
    const out = await this.host.request({
      method,
      url: this.base + rel,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (out.status === 503 && this.host.child.exitCode !== null)
      throw new PipelineError(
        'DURABLE.UNAVAILABLE',
        `the Durable Task extension did not answer ${method} ${rel.split('?')[0]}: its host has stopped`,
        true,
      );
    return toResponse(out);
  }

  private async refused(res: Response, what: string): Promise<never> {
    const text = (await res.text()).slice(0, 500);
    throw new PipelineError(
      res.status === 400
        ? 'DURABLE.BAD_REQUEST'
        : res.status === 409
          ? 'DURABLE.INSTANCE_EXISTS'
          : 'DURABLE.REFUSED',
      `${what}: the extension answered ${res.status} ${text}`,
      res.status >= 500,
    );
  }

  async startNew(name: string, opts: { instanceId?: string; input?: unknown } = {}): Promise<string> {
    const rel = `orchestrators/${encodeURIComponent(name)}${opts.instanceId !== undefined ? `/${encodeURIComponent(opts.instanceId)}` : ''}`;
    // always a JSON body: an empty one gives the instance the input "" (the extension's HTTP API)
    const res = await this.call('POST', rel, opts.input ?? null);
    if (res.status !== 202 && res.status !== 200) return this.refused(res, `start of ${name}`);
    const out = (await res.json()) as { id?: string };
    if (typeof out.id !== 'string')
      throw new PipelineError('DURABLE.REFUSED', `start of ${name}: no id answered`);
    return out.id;
  }

  async getStatus(
    instanceId: string,
    opts: { showHistory?: boolean; showInput?: boolean } = {},
  ): Promise<DurableStatus | undefined> {
    const q = new URLSearchParams({
      showInput: String(opts.showInput ?? true),
      showHistory: String(opts.showHistory ?? false),
      ...(opts.showHistory ? { showHistoryOutput: 'true' } : {}),
    });
    const res = await this.call('GET', `instances/${encodeURIComponent(instanceId)}?${q}`);
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    // 200 Completed, 202 Pending/Running, 400 Failed/Terminated: the body is the status in every case
    if (![200, 202, 400].includes(res.status)) return this.refused(res, `status of ${instanceId}`);
    const text = await res.text();
    let parsed: ExtStatus;
    try {
      parsed = JSON.parse(text) as ExtStatus;
    } catch {
      throw new PipelineError(
        'DURABLE.REFUSED',
        `status of ${instanceId}: ${res.status} ${text.slice(0, 300)}`,
      );
    }
    if (!parsed.runtimeStatus)
      return this.refused(new Response(text, { status: res.status }), `status of ${instanceId}`);
    return toStatus(parsed);
  }

  async listInstances(
    filter: ListFilter = {},
  ): Promise<{ instances: DurableStatus[]; continuationToken?: string }> {
    const q = new URLSearchParams();
    if (filter.runtimeStatus?.length) q.set('runtimeStatus', filter.runtimeStatus.join(','));
    if (filter.createdFrom) q.set('createdTimeFrom', filter.createdFrom.toISOString());
    if (filter.createdTo) q.set('createdTimeTo', filter.createdTo.toISOString());
    if (filter.top) q.set('top', String(filter.top));
    q.set('showInput', 'true');
    const res = await this.call(
      'GET',
      `instances/?${q}`,
      undefined,
      filter.continuationToken ? { 'x-ms-continuation-token': filter.continuationToken } : {},
    );
    if (res.status !== 200) return this.refused(res, 'instance query');
    const token = res.headers.get('x-ms-continuation-token');
    const list = (await res.json()) as ExtStatus[];
    return {
      instances: list.map(toStatus),
      continuationToken: token && token !== 'null' ? token : undefined,
    };
  }

  private async command(
    rel: string,
    what: string,
    data?: unknown,
  ): Promise<'accepted' | 'not-found' | 'gone'> {
    const res = await this.call('POST', rel, data === undefined ? null : data);
    await res.body?.cancel();
    if (res.status === 202 || res.status === 200) return 'accepted';
    if (res.status === 404) return 'not-found';
    if (res.status === 410) return 'gone';
    return this.refused(res, what);
  }

  raiseEvent(
    instanceId: string,
    eventName: string,
    data: unknown,
  ): Promise<'accepted' | 'not-found' | 'gone'> {
    if (typeof eventName !== 'string' || !eventName.trim())
      throw new PipelineError('DURABLE.BAD_REQUEST', 'event name must be a non-empty string');
    return this.command(
      `instances/${encodeURIComponent(instanceId)}/raiseEvent/${encodeURIComponent(eventName)}`,
      `event ${eventName} for ${instanceId}`,
      data ?? null,
    );
  }

  terminate(instanceId: string, reason: string): Promise<'accepted' | 'not-found' | 'gone'> {
    return this.command(
      `instances/${encodeURIComponent(instanceId)}/terminate?reason=${encodeURIComponent(String(reason ?? ''))}`,
      `terminate ${instanceId}`,
    );
  }

  async purge(instanceId: string): Promise<number> {
    const status = await this.getStatus(instanceId, { showInput: false });
    if (!status) return 0;
    // the extension purges whatever it is asked to, running instances too: only finished ones are purged here
    if (!TERMINAL.has(status.runtimeStatus))
      throw new PipelineError(
        'DURABLE.INSTANCE_RUNNING',
        `instance '${instanceId}' is ${status.runtimeStatus}; only finished instances can be purged (terminate it first)`,
      );
    const res = await this.call('DELETE', `instances/${encodeURIComponent(instanceId)}`);
    if (res.status === 404) return 0;
    if (res.status !== 200) return this.refused(res, `purge of ${instanceId}`);
    return ((await res.json()) as { instancesDeleted?: number }).instancesDeleted ?? 0;
  }

  async waitForCompletion(instanceId: string, timeoutMs = 60000): Promise<DurableStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: DurableStatus | undefined;
    for (;;) {
      last = await this.getStatus(instanceId);
      if (!last) throw new PipelineError('DURABLE.NOT_FOUND', `no instance with id '${instanceId}'`);
      if (TERMINAL.has(last.runtimeStatus)) return last;
      if (Date.now() > deadline)
        throw new PipelineError(
          'DURABLE.WAIT_TIMEOUT',
          `instance '${instanceId}' did not finish within ${timeoutMs} ms (status ${last.runtimeStatus})`,
        );
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 100));
    }
  }

  /** The extension's client binding data, its rpcBaseUrl replaced by `rpcBaseUrl` (the guarded port). */
  clientData(rpcBaseUrl: string): Record<string, unknown> {
    if (!this.host) throw new PipelineError('DURABLE.STOPPED', 'the durable engine is not running');
    const data: DurableClientData = { ...this.host.clientData, rpcBaseUrl };
    return data;
  }

  /** The guarded port's requests, forwarded to the extension's API (the caller has checked key/Origin/type). */
  async handleClientRequest(req: ClientRequest): Promise<ClientResponse> {
    const q = req.query.toString();
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'x-ms-continuation-token', 'accept']) {
      const v = req.headers?.[h];
      if (v !== undefined) headers[h] = Array.isArray(v) ? v.join(', ') : v;
    }
    const hasBody = !['GET', 'HEAD', 'DELETE'].includes(req.method) && req.body.length > 0;
    if (!this.host || this.stopped)
      return {
        status: 503,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ error: 'the durable engine is not running' }),
      };
    const res = await this.host.request({
      method: req.method,
      url: this.base + req.path + (q ? `?${q}` : ''),
      headers,
      body: hasBody ? req.body : undefined,
    });
    const out: Record<string, string> = {};
    for (const h of ['content-type', 'x-ms-continuation-token', 'retry-after', 'location']) {
      const v = res.headers[h];
      if (v !== undefined) out[h] = v;
    }
    return { status: res.status, headers: out, body: res.body };
  }
}
