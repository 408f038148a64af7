/**
 * Attack: pretending to be a signed-in person on the embedded host. In Azure, App Service
 * Authentication removes every `X-MS-CLIENT-PRINCIPAL*` / `X-MS-TOKEN-*` header a client sends and
 * injects the principal it signed in itself; the embedded host does the same with a local session
 * signed from its master key (local/local-auth.ts). An attacker without the master key tries:
 * the App Service headers by hand, a session signed with another key, a session whose claims were
 * edited, an expired one, a malformed one; and the sign-in link as an open redirect.
 *
 * Real parts: the embedded host (its HTTP server, auth stand-in and key store); the function behind
 * the route is a test one that answers what the product's `entraCaller` makes of the request it got,
 * i.e. who every Entra-authenticated route (deployments, refresh, approvals) would see.
 */
import { createHmac } from 'node:crypto';
import { app, type HttpRequest } from '@azure/functions';
import type { LocalHost } from '../../local/host';
import { startBareHost } from '../support/bare-host';
import {
  LOCAL_LOGIN_PATH,
  LOCAL_SESSION_COOKIE,
  localSession,
  localSessionCookie,
  localSignInUrl,
  verifyLocalSession,
} from '../../local/local-auth';
import { entraCaller } from '../../shared/domain/identity';
import { PEOPLE } from '../support/identities';

let bare: Awaited<ReturnType<typeof startBareHost>>;
let host: LocalHost;

const alice = { oid: PEOPLE.alice.oid, name: PEOPLE.alice.name, email: PEOPLE.alice.email };
const bob = { oid: PEOPLE.bob.oid, name: PEOPLE.bob.name, email: PEOPLE.bob.email };

app.http('whoami', {
  route: 'whoami',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: (req: HttpRequest) => {
    const forwarded = [...req.headers.entries()]
      .map(([k]) => k)
      .filter((k) => k.startsWith('x-ms-'))
      .sort();
    return { jsonBody: { caller: entraCaller(req.headers) ?? null, forwarded } };
  },
});

beforeAll(async () => {
  bare = await startBareHost('local-auth-');
  host = bare.host;
}, 60000);
afterAll(() => bare?.stop());

interface WhoAmI {
  caller: { id: string; oid: string; name: string; emails: string[] } | null;
  forwarded: string[];
}
async function whoami(headers: Record<string, string>): Promise<WhoAmI> {
  const res = await fetch(`${host.baseUrl}/api/whoami`, { headers });
  expect(res.status).toBe(200);
  return (await res.json()) as WhoAmI;
}

/** The App Service headers an attacker writes by hand to be Alice. */
const forgedAlice = (): Record<string, string> => ({
  'x-ms-client-principal': Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      claims: [
        { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: alice.oid },
        { typ: 'preferred_username', val: alice.email },
      ],
    }),
  ).toString('base64'),
  'x-ms-client-principal-id': alice.oid,
  'x-ms-client-principal-name': alice.email,
  'x-ms-client-principal-idp': 'aad',
  'x-ms-token-aad-access-token': 'forged-token',
});

/** a session payload re-encoded with other claims, the signature of the original kept */
function edited(session: string, change: (claims: Record<string, unknown>) => void): string {
  const [payload, sig] = session.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  change(claims);
  return `${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
}

describe('the embedded host signs people in like App Service Authentication', () => {
  it('a signed-in session is the Entra principal the functions see (object id, name, e-mail)', async () => {
    const r = await whoami({ cookie: `theme=dark; ${localSessionCookie(host.keys.masterKey, bob)}` });
    expect(r.caller).toMatchObject({ id: `entra:${bob.oid}`, oid: bob.oid, emails: [bob.email] });
    expect(r.forwarded).toEqual([
      'x-ms-client-principal',
      'x-ms-client-principal-id',
      'x-ms-client-principal-idp',
      'x-ms-client-principal-name',
    ]);
  });

  it('App Service identity headers sent by the client never reach a function', async () => {
    const r = await whoami(forgedAlice());
    expect(r.caller).toBeNull();
    expect(r.forwarded).toEqual([]);
  });

  it('forged headers next to a real session: the session decides, the forged ones are dropped', async () => {
    const r = await whoami({ ...forgedAlice(), cookie: localSessionCookie(host.keys.masterKey, bob) });
    expect(r.caller?.oid).toBe(bob.oid);
    expect(r.caller?.emails).toEqual([bob.email]);
    expect(r.forwarded).not.toContain('x-ms-token-aad-access-token');
  });

  it.each([
    ['signed with another key', () => localSession('not-the-master-key', alice)],
    [
      'its oid edited to Alice (signature of Bob kept)',
      () => edited(localSession(host.keys.masterKey, bob), (c) => (c.oid = alice.oid)),
    ],
    [
      'its expiry pushed out (signature kept)',
      () => edited(localSession(host.keys.masterKey, alice, -1000), (c) => (c.exp = Date.now() + 3600_000)),
    ],
    ['expired', () => localSession(host.keys.masterKey, alice, -1000)],
    ['without a signature', () => localSession(host.keys.masterKey, alice).split('.')[0]],
    ['with a third segment', () => `${localSession(host.keys.masterKey, alice)}.x`],
    ['with a truncated signature', () => localSession(host.keys.masterKey, alice).slice(0, -4)],
    [
      'longer than 2048 characters',
      () => localSession(host.keys.masterKey, { ...alice, name: 'A'.repeat(3000) }),
    ],
  ])('a session %s is nobody', async (_what, make) => {
    const session = make();
    const r = await whoami({ cookie: `${LOCAL_SESSION_COOKIE}=${session}` });
    expect(r.caller).toBeNull();
    expect(r.forwarded).toEqual([]);
    // and the sign-in link with it is refused without setting a cookie
    const login = await fetch(
      `${host.baseUrl}${LOCAL_LOGIN_PATH}?session=${encodeURIComponent(session)}&redirect=/api/status`,
      { redirect: 'manual' },
    );
    expect(login.status).toBe(401);
    expect(login.headers.get('set-cookie')).toBeNull();
    expect(await login.text()).toMatch(/not valid or has expired/);
  });

  it('the session format is the documented one; signed claims of the wrong shape are nobody', () => {
    const key = host.keys.masterKey;
    // base64url(JSON).HMAC-SHA256(key derived from the master key, "odoo-mta/local-session/v1." + payload)
    const derived = createHmac('sha256', key).update('odoo-mta/local-session-key').digest();
    const signed = (json: string) => {
      const payload = Buffer.from(json).toString('base64url');
      const mac = createHmac('sha256', derived).update('odoo-mta/local-session/v1.').update(payload);
      return `${payload}.${mac.digest('base64url')}`;
    };
    const exp = Date.now() + 60_000;
    expect(verifyLocalSession(key, signed(JSON.stringify({ oid: alice.oid, name: 'Alice', exp })))).toEqual({
      oid: alice.oid,
      name: 'Alice',
      email: undefined,
    });
    for (const json of [
      'not json',
      JSON.stringify({ name: 'Alice', exp }),
      JSON.stringify({ oid: alice.oid, name: 'Alice', exp: String(exp) }),
      JSON.stringify({ oid: alice.oid, name: 42, exp }),
    ])
      expect(verifyLocalSession(key, signed(json))).toBeUndefined();
    expect(verifyLocalSession(key, undefined)).toBeUndefined();
    // valid until exp, nobody from exp on
    const t0 = 1_800_000_000_000;
    const s = localSession(key, alice, 60_000, t0);
    expect(verifyLocalSession(key, s, t0 + 59_999)?.name).toBe(alice.name);
    expect(verifyLocalSession(key, s, t0 + 60_000)).toBeUndefined();
  });
});

describe('GET /.auth/login/local', () => {
  it('a valid sign-in link sets an HttpOnly, SameSite cookie and opens the page asked for', async () => {
    const url = localSignInUrl(host.baseUrl, host.keys.masterKey, alice, '/api/approvals/abc?x=1');
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/api/approvals/abc?x=1');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(new RegExp(`^${LOCAL_SESSION_COOKIE}=[^;]+; Path=/; HttpOnly; SameSite=Lax$`));
    // the cookie it set is Alice for the functions
    const r = await whoami({ cookie: cookie.split(';')[0] });
    expect(r.caller?.oid).toBe(alice.oid);
  });

  it.each([
    ['another site, protocol-relative', '//evil.example/phish'],
    ['another site, backslash', '/\\evil.example/phish'],
    ['an absolute URL', 'https://evil.example/phish'],
    ['a javascript: URL', 'javascript:alert(1)'],
    ['a relative path', 'api/status'],
  ])('the redirect cannot leave the host (%s): it goes to /', async (_what, redirect) => {
    const res = await fetch(localSignInUrl(host.baseUrl, host.keys.masterKey, alice, redirect), {
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
  });

  it('without a session parameter: 401, no cookie', async () => {
    const res = await fetch(`${host.baseUrl}${LOCAL_LOGIN_PATH}?redirect=/`, { redirect: 'manual' });
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
  });
});
