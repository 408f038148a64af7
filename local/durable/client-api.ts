/**
 * The durable client HTTP API the `durable-functions` DurableClient speaks when its client data carries
 * `rpcBaseUrl` (every call then goes to `<rpcBaseUrl><path>`). Paths are relative to rpcBaseUrl:
 *   POST   orchestrators/{name}[/{instanceId}]        start (202 {id}; 400 unknown name; 409 id in use)
 *   GET    instances/{id}?showHistory&showInput        status (200 done, 202 running, 400 failed/terminated, 404)
 *   GET    instances/?runtimeStatus=&createdTimeFrom=&createdTimeTo=&top=   query (x-ms-continuation-token)
 *   POST   instances/{id}/raiseEvent/{eventName}       202, 404, 410 when the instance is done
 *   POST   instances/{id}/terminate?reason=            202, 404, 410
 *   DELETE instances/{id}                              purge (200 {instancesDeleted}, 404)
 *   DELETE instances/?createdTimeFrom=&runtimeStatus=  purge by filter
 * Malformed requests get 400 with a reason. The management URLs handed out carry no keys.
 *
 * Who may call it (`guardClientRequest`, applied by the embedded host before the body is read): only
 * holders of the host's master key — as the HTTP Basic password (how the in-process durable client
 * carries it: the library builds every URL relative to `rpcBaseUrl` and adds no key of its own, so the
 * key rides in the base URL's user info, which axios sends as Basic credentials) or as
 * `x-functions-key`. A body must be `application/json` (a browser page can send text/plain and form
 * bodies cross-origin without a preflight), and a request carrying `Origin` (only browsers add it) is
 * refused.
 */
import { timingSafeEqual } from 'node:crypto';
import type { DurableStatus } from './engine';
import { RuntimeStatus } from './enums';

export interface ClientRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: string;
  /** request headers (lower-case names); the client sends the query continuation in x-ms-continuation-token */
  headers?: Record<string, string | string[] | undefined>;
}

export interface ClientResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** The part of the engine the client API needs. */
export interface ClientApiEngine {
  startNew(name: string, opts?: { instanceId?: string; input?: unknown }): Promise<string>;
  getStatus(
    instanceId: string,
    opts?: { showHistory?: boolean; showInput?: boolean },
  ): DurableStatus | undefined;
  listInstances(filter?: {
    runtimeStatus?: string[];
    createdFrom?: Date;
    createdTo?: Date;
    top?: number;
    continuationToken?: string;
  }): {
    instances: DurableStatus[];
    continuationToken?: string;
  };
  raiseEvent(
    instanceId: string,
    eventName: string,
    data: unknown,
  ): Promise<'accepted' | 'not-found' | 'gone'>;
  terminate(instanceId: string, reason: string): Promise<'accepted' | 'not-found' | 'gone'>;
  purge(instanceId: string): number;
  purgeBy(filter: { runtimeStatus?: string[]; createdFrom?: Date; createdTo?: Date }): number;
}

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8' };

function json(status: number, body: unknown, headers: Record<string, string> = {}): ClientResponse {
  return { status, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

function bad(reason: string, status = 400): ClientResponse {
  return json(status, { error: reason });
}

class BadRequest extends Error {}

function parseBody(body: string): unknown {
  if (body === undefined || body === null || body.trim() === '') return undefined;
  try {
    return JSON.parse(body);
  } catch (e) {
    throw new BadRequest(`request body is not valid JSON: ${(e as Error).message}`);
  }
}

function parseBool(q: URLSearchParams, key: string): boolean | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  if (/^true$/i.test(v)) return true;
  if (/^false$/i.test(v)) return false;
  throw new BadRequest(`query parameter ${key} must be true or false, got "${v}"`);
}

function parseDate(q: URLSearchParams, key: string): Date | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new BadRequest(`query parameter ${key} is not a date: "${v}"`);
  return d;
}

const KNOWN_STATUSES = Object.values(RuntimeStatus) as string[];

function parseStatuses(q: URLSearchParams): string[] | undefined {
  const all = q
    .getAll('runtimeStatus')
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  if (all.length === 0) return undefined;
  return all.map((s) => {
    const hit = KNOWN_STATUSES.find((k) => k.toLowerCase() === s.toLowerCase());
    if (!hit)
      throw new BadRequest(`unknown runtimeStatus "${s}" (expected one of ${KNOWN_STATUSES.join(', ')})`);
    return hit;
  });
}

function parseTop(q: URLSearchParams): number | undefined {
  const v = q.get('top');
  if (v === null || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1)
    throw new BadRequest(`query parameter top must be a positive integer, got "${v}"`);
  return Number(v);
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new BadRequest(`path segment is not valid percent-encoding: "${s}"`);
  }
}

function statusCodeFor(s: DurableStatus): number {
  switch (s.runtimeStatus) {
    case RuntimeStatus.Completed:
      return 200;
    case RuntimeStatus.Failed:
    case RuntimeStatus.Terminated:
    case RuntimeStatus.Canceled:
      return 400;
    default:
      return 202;
  }
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The key a request presents: `x-functions-key`, or the password of HTTP Basic credentials. */
export function presentedClientKey(
  headers: Record<string, string | string[] | undefined>,
): string | undefined {
  const k = header(headers, 'x-functions-key');
  if (k) return k;
  const auth = header(headers, 'authorization');
  const m = auth ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(auth) : null;
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

/**
 * Who may use the durable client API: a refusal (401 no or wrong key, 403 a browser's request,
 * 415 a body that is not JSON), or undefined when the request may proceed. `hasBody`: the request
 * declares a body (Content-Length > 0 or chunked).
 */
export function guardClientRequest(
  req: { method: string; headers: Record<string, string | string[] | undefined>; hasBody: boolean },
  masterKey: string,
): ClientResponse | undefined {
  if (header(req.headers, 'origin') !== undefined)
    return bad('requests from a browser page are not served by the durable client API', 403);
  const key = presentedClientKey(req.headers);
  if (!key || !masterKey || !sameKey(key, masterKey))
    return json(
      401,
      { error: 'the durable client API needs the host master key' },
      { 'WWW-Authenticate': 'Basic realm="durabletask"' },
    );
  const method = req.method.toUpperCase();
  if (req.hasBody || method === 'POST' || method === 'PUT' || method === 'PATCH') {
    const type = (header(req.headers, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
    if (req.hasBody && type !== 'application/json')
      return bad('a request body must be application/json', 415);
    if (!req.hasBody && type && type !== 'application/json')
      return bad('a request body must be application/json', 415);
  }
  return undefined;
}

export async function handleClientRequest(
  engine: ClientApiEngine,
  req: ClientRequest,
): Promise<ClientResponse> {
  try {
    return await route(engine, req);
  } catch (e) {
    if (e instanceof BadRequest) return bad(e.message);
    const msg = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: string }).code;
    if (code === 'DURABLE.INSTANCE_EXISTS' || code === 'DURABLE.INSTANCE_RUNNING') return bad(msg, 409);
    if (code && code.startsWith('DURABLE.')) return bad(msg, 400);
    return bad(msg, 500);
  }
}

async function route(engine: ClientApiEngine, req: ClientRequest): Promise<ClientResponse> {
  const method = req.method.toUpperCase();
  const path = req.path.replace(/^\/+/, '');
  const segs = path.split('/').map(decodeSegment);
  const q = req.query;

  if (segs[0] === 'orchestrators') {
    if (method !== 'POST') return bad(`${method} is not allowed on orchestrators/ (use POST)`, 405);
    if (segs.length < 2 || segs.length > 3 || !segs[1])
      return bad('expected orchestrators/{functionName}[/{instanceId}]');
    const name = segs[1];
    const instanceId = segs[2] || undefined;
    const input = parseBody(req.body);
    const id = await engine.startNew(name, { instanceId, input });
    return json(202, { id }, { Location: `instances/${encodeURIComponent(id)}` });
  }

  if (segs[0] !== 'instances') return bad(`unknown durable API path "${req.path}"`, 404);

  const id = segs[1] ?? '';
  if (!id) {
    // collection: query or purge by filter
    if (segs.length > 2) return bad(`unknown durable API path "${req.path}"`, 404);
    const runtimeStatus = parseStatuses(q);
    const createdFrom = parseDate(q, 'createdTimeFrom');
    const createdTo = parseDate(q, 'createdTimeTo');
    if (method === 'GET') {
      const top = parseTop(q);
      const h = req.headers?.['x-ms-continuation-token'];
      const token = (Array.isArray(h) ? h[0] : h) || req.query.get('continuationToken') || undefined;
      if (req.headers === undefined && top === undefined && !token) {
        // The caller cannot pass x-ms-continuation-token back (no headers given): answer with every
        // match in one response, so the client does not loop on the first page.
        const instances: DurableStatus[] = [];
        let next: string | undefined;
        do {
          const p = engine.listInstances({ runtimeStatus, createdFrom, createdTo, continuationToken: next });
          instances.push(...p.instances);
          next = p.continuationToken;
        } while (next);
        return json(200, instances);
      }
      const page = engine.listInstances({
        runtimeStatus,
        createdFrom,
        createdTo,
        top,
        continuationToken: token,
      });
      const headers: Record<string, string> = {};
      if (page.continuationToken) headers['x-ms-continuation-token'] = page.continuationToken;
      return json(200, page.instances, headers);
    }
    if (method === 'DELETE') {
      if (!runtimeStatus && !createdFrom && !createdTo)
        return bad('purge by filter needs createdTimeFrom, createdTimeTo or runtimeStatus');
      const n = engine.purgeBy({ runtimeStatus, createdFrom, createdTo });
      return n === 0 ? json(404, { instancesDeleted: 0 }) : json(200, { instancesDeleted: n });
    }
    return bad(`${method} is not allowed on instances/`, 405);
  }

  if (segs.length === 2) {
    if (method === 'GET') {
      const s = engine.getStatus(id, {
        showHistory: parseBool(q, 'showHistory'),
        showInput: parseBool(q, 'showInput'),
      });
      if (!s) return json(404, { error: `no instance with id '${id}'` });
      return json(statusCodeFor(s), s);
    }
    if (method === 'DELETE') {
      const n = engine.purge(id);
      return n === 0 ? json(404, { instancesDeleted: 0 }) : json(200, { instancesDeleted: n });
    }
    return bad(`${method} is not allowed on instances/{id}`, 405);
  }

  const op = segs[2];
  if (op === 'raiseEvent') {
    if (method !== 'POST') return bad(`${method} is not allowed on raiseEvent (use POST)`, 405);
    const eventName = segs[3];
    if (!eventName || segs.length !== 4) return bad('expected instances/{id}/raiseEvent/{eventName}');
    const data = parseBody(req.body);
    const r = await engine.raiseEvent(id, eventName, data);
    return outcome(r, id);
  }
  if (op === 'terminate') {
    if (method !== 'POST') return bad(`${method} is not allowed on terminate (use POST)`, 405);
    if (segs.length !== 3) return bad('expected instances/{id}/terminate?reason=');
    const r = await engine.terminate(id, q.get('reason') ?? '');
    return outcome(r, id);
  }
  if (['rewind', 'suspend', 'resume'].includes(op))
    return bad(`${op} is not supported by the local durable engine`, 501);
  return bad(`unknown durable API path "${req.path}"`, 404);
}

function outcome(r: 'accepted' | 'not-found' | 'gone', id: string): ClientResponse {
  if (r === 'accepted') return { status: 202 };
  if (r === 'not-found') return json(404, { error: `no instance with id '${id}'` });
  return json(410, { error: `instance '${id}' is already in a terminal state` });
}

/**
 * The object `df.getClient(context)` reads from the durable client extra input. All calls go to
 * rpcBaseUrl; the management URL templates point there too and carry no keys.
 */
export function clientData(rpcBaseUrl: string, taskHubName: string): Record<string, unknown> {
  const rpc = rpcBaseUrl.endsWith('/') ? rpcBaseUrl : `${rpcBaseUrl}/`;
  // the management URLs are handed out: without the credentials the in-process client uses
  const shown = new URL(rpc);
  shown.username = '';
  shown.password = '';
  const base = shown.href;
  const id = 'INSTANCEID';
  return {
    taskHubName,
    creationUrls: {
      createNewInstancePostUri: `${base}orchestrators/{functionName}[/{instanceId}]`,
      createAndWaitOnNewInstancePostUri: `${base}orchestrators/{functionName}[/{instanceId}]`,
    },
    managementUrls: {
      id,
      statusQueryGetUri: `${base}instances/${id}`,
      sendEventPostUri: `${base}instances/${id}/raiseEvent/{eventName}`,
      terminatePostUri: `${base}instances/${id}/terminate?reason={text}`,
      rewindPostUri: `${base}instances/${id}/rewind?reason={text}`,
      purgeHistoryDeleteUri: `${base}instances/${id}`,
      suspendPostUri: `${base}instances/${id}/suspend?reason={text}`,
      resumePostUri: `${base}instances/${id}/resume?reason={text}`,
    },
    baseUrl: base.replace(/\/$/, ''),
    requiredQueryStringParameters: '',
    rpcBaseUrl: rpc,
  };
}
