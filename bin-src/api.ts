/**
 * The CLI's HTTP client: the pipeline's own HTTP API (the embedded local host or the Azure function app),
 * function key in the `x-functions-key` header. Every failure is a `CliError` carrying the exit code the
 * CLI documents; the key never appears in a message (`redact`).
 */

export const EXIT = {
  OK: 0,
  /** the operation ran and failed (deploy rolled back, unknown deployment, refused request, corrupt backup) */
  FAILED: 1,
  /** bad usage: unknown command or option, missing or malformed argument, or a 400 from the API */
  USAGE: 2,
  /** the pipeline could not be reached, or refused the key (401/403), or its gateway is down (502-504) */
  UNREACHABLE: 3,
  /** an HTTP request or a --wait ran out of time */
  TIMEOUT: 4,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export interface ApiOptions {
  baseUrl: string;
  key?: string;
  /** Entra ID access token for App Service authentication in front of the app (sent as a Bearer token) */
  token?: string;
  /** per request (ms) */
  timeoutMs: number;
  fetchImpl?: typeof fetch;
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

/** The URL without credentials (`code` query parameter, user:password). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.searchParams.has('code')) u.searchParams.set('code', '***');
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '<invalid url>';
  }
}

export class Api {
  readonly base: URL;
  private readonly secrets: string[];

  constructor(private readonly o: ApiOptions) {
    let base: URL;
    try {
      base = new URL(o.baseUrl);
    } catch {
      throw new CliError(
        EXIT.USAGE,
        `--url must be an absolute http(s) URL like http://127.0.0.1:7071 (got ${JSON.stringify(o.baseUrl.slice(0, 80))})`,
      );
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new CliError(EXIT.USAGE, '--url must start with http:// or https://');
    this.base = base;
    this.secrets = [
      o.key,
      o.token,
      base.searchParams.get('code') ?? undefined,
      base.password || undefined,
    ].filter((s): s is string => !!s && s.length >= 4);
  }

  /** Remove every credential from a text before it is printed. */
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('***');
    return out;
  }

  get displayUrl(): string {
    return safeUrl(this.base.toString());
  }

  private url(path: string, query?: Record<string, string | number | undefined>): URL {
    const u = new URL(this.base.toString());
    u.pathname = `${u.pathname.replace(/\/+$/, '')}/api/${path.replace(/^\/+/, '')}`;
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  async request<T = unknown>(
    method: 'GET' | 'POST',
    path: string,
    o: { query?: Record<string, string | number | undefined>; body?: unknown } = {},
  ): Promise<ApiResponse<T>> {
    const url = this.url(path, o.query);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'odoo-pipeline-cli' };
    if (this.o.key) headers['x-functions-key'] = this.o.key;
    if (this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await (this.o.fetchImpl ?? fetch)(url, {
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal: AbortSignal.timeout(this.o.timeoutMs),
        redirect: 'manual',
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError')
        throw new CliError(
          EXIT.TIMEOUT,
          `${method} ${this.redact(safeUrl(url.toString()))} did not answer within ${Math.round(this.o.timeoutMs / 1000)} s`,
        );
      const why = e.cause?.code ?? e.cause?.message ?? e.message;
      throw new CliError(
        EXIT.UNREACHABLE,
        this.redact(`cannot reach the pipeline at ${this.displayUrl}: ${why}`),
      );
    }
    const text = await res.text().catch(() => '');
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    if (res.status === 401 || res.status === 403)
      throw new CliError(
        EXIT.UNREACHABLE,
        `the pipeline refused the request (${res.status}): ${this.o.token ? 'the key or token was not accepted' : this.o.key ? 'the key was not accepted' : 'a function key is needed'} — pass --key or set ODOO_PIPELINE_KEY${this.o.token ? ' (and a valid --token / ODOO_PIPELINE_TOKEN for Entra ID)' : ''}`,
      );
    if (res.status === 502 || res.status === 503 || res.status === 504) {
      const m = messageOf(body);
      throw new CliError(
        EXIT.UNREACHABLE,
        this.redact(`the pipeline is unavailable (${res.status})${m ? `: ${m}` : ''}`),
        body,
      );
    }
    if (res.status >= 300 && res.status < 400)
      throw new CliError(
        EXIT.UNREACHABLE,
        `the pipeline answered with a redirect (${res.status}) — is --url the function app's base URL? With Entra ID (App Service authentication) in front, pass --token or set ODOO_PIPELINE_TOKEN (sign-in pages are not followed)`,
      );
    return { status: res.status, body: body as T };
  }

  /** request() and turn an error status into a CliError (400 → usage, 404/409/422/… → failed). */
  async call<T = unknown>(
    method: 'GET' | 'POST',
    path: string,
    o: { query?: Record<string, string | number | undefined>; body?: unknown; notFound?: string } = {},
  ): Promise<T> {
    const r = await this.request<T>(method, path, o);
    if (r.status < 400) return r.body;
    const m = messageOf(r.body) || `HTTP ${r.status}`;
    if (r.status === 404 && o.notFound) throw new CliError(EXIT.FAILED, o.notFound, r.body);
    if (r.status === 404 && /no function serves/.test(m))
      throw new CliError(
        EXIT.FAILED,
        `this pipeline has no ${method} /api/${path.split('?')[0]} endpoint (an older version?)`,
        r.body,
      );
    if (r.status === 400 || r.status === 413)
      throw new CliError(EXIT.USAGE, this.redact(`the pipeline refused the request: ${m}`), r.body);
    throw new CliError(EXIT.FAILED, this.redact(`${m} (HTTP ${r.status})`), r.body);
  }
}

/** `{ error, message }` → "[CODE] message"; a string body → itself. */
export function messageOf(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, 500);
  if (body && typeof body === 'object') {
    const b = body as { error?: unknown; message?: unknown };
    const msg = typeof b.message === 'string' ? b.message : '';
    const code = typeof b.error === 'string' ? b.error : '';
    if (code && msg) return `[${code}] ${msg}`;
    return msg || code;
  }
  return '';
}
