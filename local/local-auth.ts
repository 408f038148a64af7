/**
 * The embedded host's stand-in for App Service Authentication (Entra ID), small on purpose.
 *
 * In Azure the platform signs people in and injects `X-MS-CLIENT-PRINCIPAL` (base64 JSON claims),
 * `X-MS-CLIENT-PRINCIPAL-ID` / `-NAME` / `-IDP` into the request, after removing whatever a client sent
 * under those names. Locally the host does the same:
 *  - every incoming `x-ms-client-principal*` and `x-ms-token-*` header is removed, always;
 *  - a local session — `base64url(JSON {oid, name, email, exp}).HMAC-SHA256(key, "odoo-mta/local-session/v1." + payload)`,
 *    key derived from the host's master key (kept in `<dataDir>/keys.json`, 0600) — in the cookie
 *    `odoo_mta_local_session` becomes those headers, exactly in App Service's format;
 *  - `GET /.auth/login/local?session=<session>&redirect=/api/…` sets the cookie (HttpOnly, SameSite=Lax)
 *    and redirects (a same-site path only), the local counterpart of `/.auth/login/aad`.
 * Only the master key holder can mint a session (`localSession()`): the demo's outbox prints one
 * sign-in link per approver, tests sign in as whom they play.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const LOCAL_SESSION_COOKIE = 'odoo_mta_local_session';
export const LOCAL_LOGIN_PATH = '/.auth/login/local';
const DOMAIN = 'odoo-mta/local-session/v1.';

export interface LocalIdentity {
  /** Entra ID object id (a GUID) */
  oid: string;
  name: string;
  email?: string;
}

const sessionKey = (masterKey: string) =>
  createHmac('sha256', masterKey).update('odoo-mta/local-session-key').digest();
const mac = (masterKey: string, payload: string) =>
  createHmac('sha256', sessionKey(masterKey)).update(DOMAIN).update(payload).digest();

/** A signed local session for `who`, valid `ttlMs` (default 12 h). */
export function localSession(
  masterKey: string,
  who: LocalIdentity,
  ttlMs = 12 * 3600_000,
  nowMs = Date.now(),
): string {
  const payload = Buffer.from(
    JSON.stringify({
      oid: who.oid.toLowerCase(),
      name: who.name,
      email: who.email?.toLowerCase(),
      exp: nowMs + ttlMs,
    }),
  ).toString('base64url');
  return `${payload}.${mac(masterKey, payload).toString('base64url')}`;
}

export function verifyLocalSession(
  masterKey: string,
  session: string | undefined,
  nowMs = Date.now(),
): LocalIdentity | undefined {
  if (!session || session.length > 2048) return undefined;
  const [payload, sig, extra] = session.split('.');
  if (!payload || !sig || extra !== undefined) return undefined;
  const given = Buffer.from(sig, 'base64url');
  const want = mac(masterKey, payload);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
  try {
    const o = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      oid?: unknown;
      name?: unknown;
      email?: unknown;
      exp?: unknown;
    };
    if (
      typeof o.oid !== 'string' ||
      typeof o.name !== 'string' ||
      typeof o.exp !== 'number' ||
      nowMs >= o.exp
    )
      return undefined;
    return { oid: o.oid, name: o.name, email: typeof o.email === 'string' ? o.email : undefined };
  } catch {
    return undefined;
  }
}

/** The link that signs a browser in as `who` and opens `redirect` (a path of this host). */
export function localSignInUrl(
  baseUrl: string,
  masterKey: string,
  who: LocalIdentity,
  redirect = '/',
): string {
  const u = new URL(LOCAL_LOGIN_PATH, baseUrl);
  u.searchParams.set('session', localSession(masterKey, who));
  u.searchParams.set('redirect', redirect);
  return u.toString();
}

/** The Cookie header a non-browser client sends to be `who` (tests, the demo). */
export function localSessionCookie(masterKey: string, who: LocalIdentity): string {
  return `${LOCAL_SESSION_COOKIE}=${localSession(masterKey, who)}`;
}

function cookieValue(cookieHeader: string | undefined, name: string): string | undefined {
  for (const part of (cookieHeader ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * What App Service Authentication does to a request's headers (lower-case names, in place): strip the
 * identity headers a client sent, then inject the signed-in principal, if any.
 */
export function applyLocalAuth(
  headers: Record<string, string>,
  masterKey: string,
): LocalIdentity | undefined {
  for (const k of Object.keys(headers))
    if (k.startsWith('x-ms-client-principal') || k.startsWith('x-ms-token-')) delete headers[k];
  const who = verifyLocalSession(masterKey, cookieValue(headers.cookie, LOCAL_SESSION_COOKIE));
  if (!who) return undefined;
  const claims = [
    { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: who.oid },
    { typ: 'name', val: who.name },
    ...(who.email ? [{ typ: 'preferred_username', val: who.email }] : []),
  ];
  headers['x-ms-client-principal'] = Buffer.from(
    JSON.stringify({ auth_typ: 'aad', claims, name_typ: 'preferred_username', role_typ: 'roles' }),
  ).toString('base64');
  headers['x-ms-client-principal-id'] = who.oid;
  headers['x-ms-client-principal-name'] = who.email ?? who.name;
  headers['x-ms-client-principal-idp'] = 'aad';
  return who;
}

/** `GET /.auth/login/local?session=…&redirect=/…`: status and headers of the answer. */
export function localLogin(
  url: URL,
  masterKey: string,
): { status: number; headers: Record<string, string>; body: string } {
  const session = url.searchParams.get('session') ?? '';
  const redirect = url.searchParams.get('redirect') ?? '/';
  if (!verifyLocalSession(masterKey, session))
    return {
      status: 401,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: 'this sign-in link is not valid or has expired',
    };
  const to = /^\/(?![/\\])/.test(redirect) ? redirect : '/';
  return {
    status: 303,
    headers: {
      location: to,
      'set-cookie': `${LOCAL_SESSION_COOKIE}=${session}; Path=/; HttpOnly; SameSite=Lax`,
      'cache-control': 'no-store',
    },
    body: '',
  };
}
