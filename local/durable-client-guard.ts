/**
 * Who may call the embedded host's durable client port (the `rpcBaseUrl` the app's `df.getClient()` is
 * given; the port forwards to the Durable Task extension's own HTTP management API, local/durable-webjobs.ts).
 * `guardClientRequest` is applied by the host before the body is read: only holders of the host's master
 * key — as the HTTP Basic password (how the in-process durable client carries it: the library builds every
 * URL relative to `rpcBaseUrl` and adds no key of its own, so the key rides in the base URL's user info,
 * which axios sends as Basic credentials) or as `x-functions-key`. A body must be `application/json` (a
 * browser page can send text/plain and form bodies cross-origin without a preflight), and a request
 * carrying `Origin` (only browsers add it) is refused.
 */
import { timingSafeEqual } from 'node:crypto';

export interface ClientRequest {
  method: string;
  /** relative to …/durabletask/ */
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

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8' };

function json(status: number, body: unknown, headers: Record<string, string> = {}): ClientResponse {
  return { status, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
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
function presentedClientKey(headers: Record<string, string | string[] | undefined>): string | undefined {
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
    return json(403, { error: 'requests from a browser page are not served by the durable client API' });
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
      return json(415, { error: 'a request body must be application/json' });
    if (!req.hasBody && type && type !== 'application/json')
      return json(415, { error: 'a request body must be application/json' });
  }
  return undefined;
}
