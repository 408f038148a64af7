/**
 * The embedded host's HTTP conversion: node:http request → `HttpRequest` of `@azure/functions`, and a
 * function's result → the node:http response, with the behaviour of the Functions host (Node worker):
 *
 * - The request a function gets IS the library's `HttpRequest` class. It is built over a "native
 *   request" (the library's own extension point, used by its HTTP streaming mode) that keeps the raw
 *   body bytes: `text()`, `json()` and `arrayBuffer()` answer from the bytes; `body` (a ReadableStream),
 *   `formData()`, `blob()` and `clone()` are delegated to a real WHATWG `Request` created on first use.
 *   Building a `Request` (body stream, abort signal, header validation) for every call cost more than
 *   the webhook's own work (profile in docs/WEBHOOK_SETUP.md); the answers are the same.
 * - Results: a plain `HttpResponseInit` with a string, bytes or `jsonBody` body is written directly,
 *   with the headers the library's `HttpResponse` would produce (`text/plain;charset=UTF-8` for a
 *   string, `application/json` for `jsonBody`, a caller's `content-type` wins, no body for
 *   204/205/304). Anything else (an `HttpResponse`, streams, `FormData`, `URLSearchParams`, Blob,
 *   `Headers` objects) goes through `HttpResponse` as before. Cookies become `Set-Cookie` headers.
 */
import { HttpRequest, HttpResponse, type Cookie, type HttpResponseInit } from '@azure/functions';
import type http from 'node:http';

const UTF8 = new TextDecoder('utf-8'); // like fetch's "UTF-8 decode": BOM stripped, bad bytes replaced
const EMPTY = Buffer.alloc(0);

// RFC 9110 field names (token) and values (no CR, LF or NUL), as fetch's Headers validates them
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\r\n\0]/;

function headerName(name: string): string {
  const n = String(name);
  if (!FIELD_NAME.test(n)) throw new TypeError(`Headers: invalid header name "${n}"`);
  return n.toLowerCase();
}

function headerValue(value: string): string {
  const v = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, ''); // fetch's "normalize"
  if (BAD_VALUE.test(v)) throw new TypeError('Headers: invalid header value');
  return v;
}

/**
 * The request headers a function reads, over node:http's already-parsed header record (names lower
 * case, repeated fields joined with ", "), with the WHATWG `Headers` interface: case-insensitive
 * `get`/`has`, iteration sorted by name, `set`/`append`/`delete` validated like fetch's. Building an
 * undici `Headers` re-validated every header of every request and showed in the webhook profile
 * (docs/WEBHOOK_SETUP.md); the answers are the same (test/unit/host-parts.test.ts compares them).
 */
export class LocalHeaders implements Headers {
  #map: Map<string, string>;

  constructor(record: Record<string, string> = {}) {
    this.#map = new Map(Object.entries(record));
  }

  get [Symbol.toStringTag](): string {
    return 'Headers';
  }

  get(name: string): string | null {
    return this.#map.get(String(name).toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.#map.has(String(name).toLowerCase());
  }

  getSetCookie(): string[] {
    const v = this.#map.get('set-cookie');
    return v === undefined ? [] : [v];
  }

  set(name: string, value: string): void {
    this.#map.set(headerName(name), headerValue(value));
  }

  append(name: string, value: string): void {
    const n = headerName(name);
    const v = headerValue(value);
    const cur = this.#map.get(n);
    this.#map.set(n, cur === undefined ? v : `${cur}, ${v}`);
  }

  delete(name: string): void {
    this.#map.delete(headerName(name));
  }

  *entries(): IterableIterator<[string, string]> {
    for (const k of [...this.#map.keys()].sort()) yield [k, this.#map.get(k)!];
  }

  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<string> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  forEach(cb: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) cb.call(thisArg, v, k, this);
  }
}

function unusable(): TypeError {
  return new TypeError('Body is unusable: Body has already been read');
}

/**
 * The subset of the WHATWG `Request` that `HttpRequest` reads (url, method, headers, body, bodyUsed,
 * arrayBuffer, blob, formData, json, text, clone).
 */
export class LocalNativeRequest {
  readonly url: string;
  readonly method: string;
  #rawHeaders: Record<string, string>;
  #headers?: Headers;
  #bytes: Buffer | null;
  #used = false;
  #real?: Request;

  constructor(init: { url: string; method: string; headers: Record<string, string>; body?: Buffer }) {
    this.url = init.url;
    this.method = init.method;
    this.#rawHeaders = init.headers;
    // like HttpRequest: GET and HEAD requests carry no body
    this.#bytes = init.method === 'GET' || init.method === 'HEAD' || !init.body?.length ? null : init.body;
  }

  get headers(): Headers {
    return (this.#headers ??= this.#real?.headers ?? new LocalHeaders(this.#rawHeaders));
  }

  /** the real Request, created once something needs more than the bytes */
  #toReal(): Request {
    if (!this.#real) {
      if (this.#used) throw unusable();
      this.#real = new Request(this.url, {
        method: this.method,
        headers: [...this.headers],
        body: this.#bytes,
      });
    }
    return this.#real;
  }

  #take(): Buffer {
    if (this.#used) throw unusable();
    this.#used = true;
    return this.#bytes ?? EMPTY;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#real) return this.#real.body;
    return this.#bytes ? this.#toReal().body : null;
  }

  get bodyUsed(): boolean {
    return this.#real ? this.#real.bodyUsed : this.#used;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.#real) return this.#real.arrayBuffer();
    const b = this.#take();
    // the bytes are this request's own (read once, never handed out before): no copy when they fill
    // their ArrayBuffer, a copy when they sit in Node's shared pool
    if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b.buffer as ArrayBuffer;
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async text(): Promise<string> {
    if (this.#real) return this.#real.text();
    return UTF8.decode(this.#take());
  }

  async json(): Promise<unknown> {
    if (this.#real) return this.#real.json();
    return JSON.parse(UTF8.decode(this.#take()));
  }

  async blob(): Promise<Blob> {
    return this.#toReal().blob();
  }

  async formData(): Promise<FormData> {
    return this.#toReal().formData();
  }

  clone(): Request {
    return this.#toReal().clone();
  }
}

/** The `HttpRequest` a function receives for a node:http request whose body has been read. */
export function toHttpRequest(init: {
  url: string;
  method: string;
  headers: Record<string, string>;
  query: Record<string, string>;
  params: Record<string, string>;
  body: Buffer;
}): HttpRequest {
  const nativeRequest = new LocalNativeRequest(init);
  // url/method/headers/body are given too: a library version without `nativeRequest` still works
  return new HttpRequest({
    method: init.method,
    url: init.url,
    headers: init.headers,
    query: init.query,
    params: init.params,
    body: init.body.length ? { bytes: init.body } : undefined,
    nativeRequest,
  } as ConstructorParameters<typeof HttpRequest>[0]);
}

// --- responses ----------------------------------------------------------------------------------

const NULL_BODY = new Set([204, 205, 304]);

/** A `Set-Cookie` value (RFC 6265), as the Functions host writes a `Cookie`. */
export function serializeCookie(c: Cookie): string {
  let out = `${c.name}=${c.value}`;
  if (c.domain) out += `; Domain=${c.domain}`;
  if (c.path) out += `; Path=${c.path}`;
  if (c.expires !== undefined) out += `; Expires=${new Date(c.expires).toUTCString()}`;
  if (c.maxAge !== undefined) out += `; Max-Age=${Math.trunc(c.maxAge)}`;
  if (c.secure) out += '; Secure';
  if (c.httpOnly) out += '; HttpOnly';
  if (c.sameSite) out += `; SameSite=${c.sameSite}`;
  return out;
}

type HeaderMap = Record<string, string | string[]>;

function plainHeaders(h: unknown): HeaderMap | undefined {
  if (h === undefined || h === null) return {};
  if (typeof h !== 'object' || Array.isArray(h)) return undefined;
  const proto = Object.getPrototypeOf(h);
  if (proto !== Object.prototype && proto !== null) return undefined; // a Headers object etc.
  const out: HeaderMap = {};
  for (const [k, v] of Object.entries(h as Record<string, unknown>)) {
    if (typeof v !== 'string' && typeof v !== 'number') return undefined;
    out[k.toLowerCase()] = String(v).trim(); // fetch's Headers normalise values the same way
  }
  return out;
}

interface Prepared {
  status: number;
  headers: HeaderMap;
  body?: string | Uint8Array;
}

/** A plain result the host can write without building a WHATWG Response; undefined → use HttpResponse. */
function prepareSimple(init: HttpResponseInit): Prepared | undefined {
  const status = init.status ?? 200;
  if (!Number.isInteger(status) || status < 200 || status > 599) return undefined;
  const headers = plainHeaders(init.headers);
  if (!headers) return undefined;
  if (NULL_BODY.has(status)) return { status, headers };
  if (init.jsonBody !== undefined && init.jsonBody !== null) {
    headers['content-type'] ??= 'application/json';
    return { status, headers, body: JSON.stringify(init.jsonBody) ?? '' };
  }
  const body = init.body as unknown;
  if (body === undefined || body === null) return { status, headers };
  if (typeof body === 'string') {
    headers['content-type'] ??= 'text/plain;charset=UTF-8';
    return { status, headers, body };
  }
  if (body instanceof Uint8Array) return { status, headers, body };
  if (body instanceof ArrayBuffer) return { status, headers, body: new Uint8Array(body) };
  return undefined;
}

function cookiesOf(result: unknown): Cookie[] {
  const c = (result as { cookies?: unknown } | null)?.cookies;
  return Array.isArray(c) ? (c as Cookie[]) : [];
}

/**
 * Write a function's result; returns the status written. Throws (before writing anything) when the
 * result is not a valid response, like the library's HttpResponse would: the caller answers 500.
 */
export async function writeResult(
  res: http.ServerResponse,
  result: unknown,
  method: string,
): Promise<number> {
  let prepared: Prepared | undefined;
  if (
    !(result instanceof HttpResponse) &&
    (result === undefined || result === null || typeof result === 'object')
  )
    prepared = prepareSimple((result ?? {}) as HttpResponseInit);
  if (!prepared) {
    const response =
      result instanceof HttpResponse ? result : new HttpResponse((result ?? {}) as HttpResponseInit);
    const headers: HeaderMap = {};
    response.headers.forEach((v, k) => (headers[k] = v));
    const buf = Buffer.from(await response.arrayBuffer());
    prepared = { status: response.status, headers, body: buf.length ? buf : undefined };
  }
  const cookies = cookiesOf(result);
  if (cookies.length) {
    const existing = prepared.headers['set-cookie'];
    prepared.headers['set-cookie'] = [
      ...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]),
      ...cookies.map(serializeCookie),
    ];
  }
  res.writeHead(prepared.status, prepared.headers); // validates the headers: throws here, before anything is sent
  endThisTurn(res, method === 'HEAD' ? undefined : prepared.body);
  return prepared.status;
}

// --- answers sent once per event-loop turn --------------------------------------------------------

let ending: Array<{ res: http.ServerResponse; body?: string | Uint8Array }> = [];

function endAll(): void {
  const list = ending;
  ending = [];
  for (const { res, body } of list) {
    try {
      res.end(body);
    } catch {
      res.destroy(); // a socket that cannot take the answer: the client sees the connection end
    }
  }
}

/**
 * Finish a response at the end of this event-loop turn (`setImmediate`, right after the poll phase)
 * together with every other answer completed in the same turn, instead of one socket write per answer
 * as it completes. Under load the host answers many requests per turn; written back to back, they wake
 * a waiting client once instead of once per answer. On this 2-core VM a cross-CPU wake-up costs more
 * than the webhook's own work (`writev` was 22 % of the host's profile, docs/WEBHOOK_SETUP.md). An
 * idle host answers in the same turn as before, only a few microseconds later.
 */
function endThisTurn(res: http.ServerResponse, body?: string | Uint8Array): void {
  ending.push({ res, body });
  if (ending.length === 1) setImmediate(endAll);
}
