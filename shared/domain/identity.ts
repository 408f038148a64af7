/**
 * Who is who (issue #15): approvers are identities, not names, and the requester is the authenticated
 * caller.
 *
 * APPROVERS (shared/config.ts) is either a JSON list
 *   [{ "id": "alice", "name": "Alice Martin", "slack": "U0123ABCD", "entra": "alice@example.com" }]
 * or comma-separated compact entries
 *   alice:slack=U0123ABCD:entra=0f8fad5b-d9cb-469f-a165-70867728950e:name=Alice Martin, bob:slack=U0456EFGH
 * - `id`: the approver's canonical id (lower case `[a-z0-9._-]`, ≤ 64): what approval tokens name, what
 *   four-eyes and "N distinct approvers" compare; never shown as proof of anything.
 * - `slack`: the Slack user id (`U…` or `W…`): private delivery (`chat.postMessage` to that id) and the
 *   only thing a Slack interaction is matched on (names can be changed by their owner).
 * - `entra`: the Entra ID object id (a GUID) or the sign-in e-mail / UPN: what the approval page's
 *   signed-in caller must be (App Service Authentication headers).
 * - `name`: for display only.
 * Every approver needs at least one of `slack` / `entra`; an identity may belong to one approver only.
 *
 * The caller of an HTTP function: the Entra ID principal App Service Authentication injects
 * (`X-MS-CLIENT-PRINCIPAL` base64 JSON, `X-MS-CLIENT-PRINCIPAL-ID` / `-NAME` / `-IDP`; the platform
 * strips them from client requests, and so does the embedded host), else the function key presented,
 * recorded as `key:<fingerprint>` (12 hex characters of a domain-separated SHA-256; the worker is not told
 * the key's name in Azure, so its fingerprint names it). A key is a machine: it never matches an approver.
 */
import { createHash } from 'node:crypto';

export interface Approver {
  id: string;
  name: string;
  slack?: string;
  entra?: string;
}

export interface Caller {
  kind: 'entra' | 'key';
  /** canonical: `entra:<object id>` or `key:<fingerprint>` */
  id: string;
  /** for display: the sign-in name (e-mail / UPN) or the key id */
  name: string;
  /** entra: the object id and the sign-in names (e-mail, UPN), lower case */
  oid?: string;
  emails?: string[];
}

export const APPROVER_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const SLACK_USER_ID = /^[UW][A-Z0-9]{2,20}$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// eslint-disable-next-line no-control-regex
const CONTROL_OR_MARKUP = /[\u0000-\u001f\u007f<>]/;
const EMAIL = /^[^\s@:,]{1,64}@[^\s@:,]{1,190}$/;

/** The example printed with every APPROVERS error. */
export const APPROVERS_EXAMPLE = 'alice:slack=U0123ABCD:entra=alice@example.com, bob:slack=U0456EFGH';

export class ApproversError extends Error {
  readonly code = 'CONFIG.APPROVERS';
  readonly retryable = false;
}

function check(list: Array<Partial<Record<keyof Approver, unknown>>>): Approver[] {
  const out: Approver[] = [];
  const seen = new Map<string, string>();
  const claim = (key: string, owner: string, what: string) => {
    const prev = seen.get(key);
    if (prev && prev !== owner)
      throw new ApproversError(
        `${what} belongs to both ${prev} and ${owner}: an identity may belong to one approver only`,
      );
    seen.set(key, owner);
  };
  for (const [i, raw] of list.entries()) {
    const where = `approver #${i + 1}`;
    if (typeof raw.id !== 'string' || !APPROVER_ID.test(raw.id.trim().toLowerCase()))
      throw new ApproversError(
        `${where}: id must be lower-case letters, digits, . _ - (up to 64 characters)`,
      );
    const id = raw.id.trim().toLowerCase();
    if (out.some((a) => a.id === id)) throw new ApproversError(`approver ${id} is listed twice`);
    const a: Approver = { id, name: id };
    if (raw.name !== undefined) {
      if (
        typeof raw.name !== 'string' ||
        !raw.name.trim() ||
        raw.name.length > 100 ||
        CONTROL_OR_MARKUP.test(raw.name)
      )
        throw new ApproversError(`approver ${id}: name must be 1-100 printable characters`);
      a.name = raw.name.trim();
    }
    if (raw.slack !== undefined) {
      if (typeof raw.slack !== 'string' || !SLACK_USER_ID.test(raw.slack.trim()))
        throw new ApproversError(
          `approver ${id}: slack must be a Slack user id like U0123ABCD (profile → ⋮ → Copy member ID), not a display name`,
        );
      a.slack = raw.slack.trim();
      claim(`slack:${a.slack}`, id, `Slack user ${a.slack}`);
    }
    if (raw.entra !== undefined) {
      const e = typeof raw.entra === 'string' ? raw.entra.trim().toLowerCase() : '';
      if (!GUID.test(e) && !EMAIL.test(e))
        throw new ApproversError(
          `approver ${id}: entra must be an Entra ID object id (GUID) or a sign-in e-mail`,
        );
      a.entra = e;
      claim(`entra:${e}`, id, `Entra ID ${e}`);
    }
    if (!a.slack && !a.entra)
      throw new ApproversError(
        `approver ${id} has no identity: give a Slack user id (slack=U…) and/or an Entra ID object id or e-mail (entra=…)`,
      );
    out.push(a);
  }
  return out;
}

/** Parse APPROVERS; throws ApproversError with a message that says what to write instead. */
export function parseApprovers(raw: string): Approver[] {
  const text = raw.trim();
  // Stryker disable next-line ConditionalExpression: without this early return an empty text still gives [] (no entries)
  if (!text) return [];
  if (text.startsWith('[')) {
    let list: unknown;
    try {
      list = JSON.parse(text);
    } catch {
      throw new ApproversError('APPROVERS starts with "[" but is not valid JSON');
    }
    if (!Array.isArray(list) || list.some((x) => !x || typeof x !== 'object' || Array.isArray(x)))
      throw new ApproversError('APPROVERS as JSON must be a list of objects { id, name?, slack?, entra? }');
    for (const x of list as Array<Record<string, unknown>>) {
      const unknownKeys = Object.keys(x).filter((k) => !['id', 'name', 'slack', 'entra'].includes(k));
      if (unknownKeys.length)
        throw new ApproversError(
          `unknown approver field "${unknownKeys[0]}" (expected id, name, slack, entra)`,
        );
    }
    return check(list as Array<Record<string, unknown>>);
  }
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const old = entries.filter((e) => !e.includes(':'));
  if (old.length) {
    throw new ApproversError(
      `APPROVERS uses the old names-only form (${old.slice(0, 3).join(', ')}): approvers are identities now. Give each a Slack user id and/or an Entra ID object id or e-mail, e.g. "${APPROVERS_EXAMPLE}" (docs/APPROVAL_LINKS.md)`,
    );
  }
  return check(
    entries.map((e) => {
      const [id, ...fields] = e.split(':');
      const a: Record<string, string> = { id };
      for (const f of fields) {
        const eq = f.indexOf('=');
        // Stryker disable next-line EqualityOperator: at eq = 0 both branches give '' (an empty key, refused below)
        const k = eq > 0 ? f.slice(0, eq).trim() : '';
        if (!['slack', 'entra', 'name'].includes(k))
          throw new ApproversError(`approver ${id.trim()}: "${f}" is not slack=…, entra=… or name=…`);
        a[k] = f.slice(eq + 1);
      }
      return a;
    }),
  );
}

/** 12 hex characters naming a function key without revealing it. */
export function keyId(key: string): string {
  return createHash('sha256').update('odoo-mta/function-key-id\0').update(key).digest('hex').slice(0, 12);
}

type HeaderGet = { get(name: string): string | null };

const OID_CLAIMS = ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid'];
/**
 * Sign-in names an `entra=<e-mail>` approver may be matched on: the user principal name and Entra's
 * `preferred_username`. The `email` claims are left out on purpose: Entra does not verify them (an
 * account's owner or another tenant can set one to someone else's address), so they prove nothing.
 */
const NAME_CLAIMS = [
  'preferred_username',
  'upn',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
];

/**
 * Is a platform in front of this worker that strips client-sent `X-MS-CLIENT-PRINCIPAL*` headers and
 * sets them itself? App Service sets `WEBSITE_AUTH_ENABLED=True` on a site whose built-in authentication
 * is on (the variable Microsoft.Identity.Web reads for the same question); the embedded host sets it
 * because it strips and re-creates those headers the same way (`local/local-auth.ts`). Without it the
 * headers are whatever the client sent, so they are no identity at all.
 */
export function platformAuthEnabled(env: Record<string, string | undefined> = process.env): boolean {
  return (env.WEBSITE_AUTH_ENABLED ?? '').trim().toLowerCase() === 'true';
}

/**
 * The Entra ID principal App Service Authentication put on the request, or undefined (always undefined
 * when no platform authentication strips client-sent principal headers: `platformAuthEnabled`). The object id
 * comes from the principal's `oid` claim when the full principal is there, else from
 * `X-MS-CLIENT-PRINCIPAL-ID` (for the Microsoft identity provider that is the object id).
 */
export function entraCaller(
  headers: HeaderGet,
  env: Record<string, string | undefined> = process.env,
): Caller | undefined {
  if (!platformAuthEnabled(env)) return undefined; // nobody stripped forged headers: they prove nothing
  const idp = (headers.get('x-ms-client-principal-idp') ?? '').toLowerCase();
  let oid = headers.get('x-ms-client-principal-id')?.trim().toLowerCase();
  const names = new Set<string>();
  const pname = headers.get('x-ms-client-principal-name')?.trim().toLowerCase();
  if (pname) names.add(pname);
  const b64 = headers.get('x-ms-client-principal');
  if (b64) {
    try {
      const p = JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as {
        claims?: Array<{ typ?: unknown; val?: unknown }>;
      };
      for (const c of Array.isArray(p.claims) ? p.claims : []) {
        if (typeof c?.typ !== 'string' || typeof c.val !== 'string') continue;
        if (OID_CLAIMS.includes(c.typ)) oid = c.val.trim().toLowerCase();
        else if (NAME_CLAIMS.includes(c.typ) && EMAIL.test(c.val.trim()))
          names.add(c.val.trim().toLowerCase());
      }
    } catch {
      /* an unreadable principal proves nothing: fall back to the plain headers */
    }
  }
  if (idp && idp !== 'aad') return undefined; // only Microsoft Entra ID sign-ins count
  if (!oid || !GUID.test(oid)) return undefined;
  return {
    kind: 'entra',
    id: `entra:${oid}`,
    name: pname || oid,
    oid,
    emails: [...names].filter((n) => EMAIL.test(n)),
  };
}

/** The caller of a function-key route: the Entra principal, else `key:<fingerprint>` of the key presented. */
export function requestCaller(req: {
  headers: HeaderGet;
  query?: { get(name: string): string | null };
}): Caller {
  const entra = entraCaller(req.headers);
  if (entra) return entra;
  const key = req.headers.get('x-functions-key') ?? req.query?.get('code') ?? '';
  const id = key ? keyId(key) : 'unknown';
  return { kind: 'key', id: `key:${id}`, name: `key:${id}` };
}

/** How a request's caller is recorded with what it asked: `entra:<oid> (<sign-in name>)` or `key:<fingerprint>`. */
export function callerLabel(req: Parameters<typeof requestCaller>[0]): string {
  const caller = requestCaller(req);
  return caller.kind === 'entra' ? `${caller.id} (${caller.name})` : caller.id;
}

/** Is this signed-in caller the approver? (Entra only: a key never is.) */
export function isApprover(a: Approver, c: Caller | undefined): boolean {
  if (!c || c.kind !== 'entra' || !a.entra) return false;
  return a.entra === c.oid || (c.emails ?? []).includes(a.entra);
}

/** The approver ids a requester is (four-eyes: none of them may approve the request). */
export function approversOf(
  approvers: readonly Approver[],
  requester: string,
  requesterEmails: readonly string[] = [],
): string[] {
  return approvers
    .filter(
      (a) =>
        a.id === requester ||
        (a.entra && (`entra:${a.entra}` === requester || requesterEmails.includes(a.entra))) ||
        (a.slack && `slack:${a.slack}` === requester),
    )
    .map((a) => a.id);
}
