/**
 * Signed approval / rollback link tokens (issue #6, the approval contract).
 *
 * Form: `<payload>.<signature>` where
 *   payload   = base64url(JSON { v: 1, k: keyId, i: instanceId, a: approver, t: action, n: nonce, e: exp })
 *   signature = base64url(HMAC-SHA256(secret, "odoo-mta/approval/v1." + payload))
 * Both parts are unpadded base64url, so a token is safe in a URL path and in a Slack button value.
 *
 * - The HMAC covers the exact payload characters, and the signature must be the canonical encoding
 *   of 32 bytes: changing any character of a token makes it fail (`APPROVAL.TAMPERED`).
 * - Verification tries every configured key (current first, then previous) with a constant-time
 *   compare; `k` in the payload only names which key signed it (a short fingerprint, never the
 *   secret). A token signed with a key that is no longer configured fails like a forged one.
 * - Expiry is checked only after the signature, so an unauthenticated token never learns anything
 *   about its claims, and an expired genuine token is reported as expired (not as tampered).
 * - The token is single-use only together with the nonce claim: the HTTP function claims the nonce
 *   once (Blob marker) and the orchestration accepts a nonce only while it is pending.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { PipelineError } from './errors';

export type ApprovalAction = 'approval' | 'rollback';
export interface ApprovalClaims {
  instanceId: string;
  approver: string;
  action: ApprovalAction;
  nonce: string;
  /** expiry, epoch milliseconds */
  exp: number;
}
/** id = short fingerprint of the secret, never the secret */
export interface SigningKey {
  id: string;
  secret: string;
}
export type VerifyResult =
  | { ok: true; claims: ApprovalClaims; keyId: string }
  | { ok: false; code: 'APPROVAL.MALFORMED' | 'APPROVAL.TAMPERED' | 'APPROVAL.EXPIRED'; message: string };

const VERSION = 1;
const DOMAIN = 'odoo-mta/approval/v1.';
/** Far above any real token (~300 characters); refuses absurd inputs before any work. */
export const MAX_TOKEN_LENGTH = 2048;
const MAX_FIELD = 256;
const B64URL = /^[A-Za-z0-9_-]+$/;
const ACTIONS: readonly ApprovalAction[] = ['approval', 'rollback'];

/** Short public fingerprint of a key secret (12 hex characters of a domain-separated SHA-256). */
export function keyFingerprint(secret: string): string {
  return createHash('sha256').update('odoo-mta/approval-key-id\0').update(secret).digest('hex').slice(0, 12);
}

/** The configured signing keys, current first; an empty list when no key is configured. */
export function signingKeys(config: {
  APPROVAL_SIGNING_KEY?: string;
  APPROVAL_SIGNING_KEY_PREVIOUS?: string;
}): SigningKey[] {
  const keys: SigningKey[] = [];
  for (const secret of [config.APPROVAL_SIGNING_KEY, config.APPROVAL_SIGNING_KEY_PREVIOUS]) {
    if (!secret) continue;
    const id = keyFingerprint(secret);
    if (!keys.some((k) => k.id === id)) keys.push({ id, secret });
  }
  return keys;
}

function claimsProblem(c: Partial<Record<keyof ApprovalClaims, unknown>>): string | undefined {
  for (const f of ['instanceId', 'approver', 'nonce'] as const) {
    const v = c[f];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_FIELD)
      return `${f} must be a non-empty string of at most ${MAX_FIELD} characters`;
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(v)) return `${f} must not contain control characters`;
  }
  if (typeof c.action !== 'string' || !ACTIONS.includes(c.action as ApprovalAction))
    return `action must be one of ${ACTIONS.join(', ')}`;
  if (typeof c.exp !== 'number' || !Number.isSafeInteger(c.exp) || c.exp <= 0)
    return 'exp must be a positive integer (epoch ms)';
  return undefined;
}

function mac(secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(DOMAIN).update(payload).digest();
}

export function signApprovalToken(claims: ApprovalClaims, key: SigningKey): string {
  const problem = claimsProblem(claims);
  if (problem) throw new PipelineError('APPROVAL.INVALID_CLAIMS', `cannot sign approval token: ${problem}`);
  if (!key || typeof key.secret !== 'string' || key.secret.length < 32) {
    throw new PipelineError(
      'APPROVAL.NO_KEY',
      'cannot sign approval token: APPROVAL_SIGNING_KEY must be at least 32 characters',
    );
  }
  const body = {
    v: VERSION,
    k: key.id,
    i: claims.instanceId,
    a: claims.approver,
    t: claims.action,
    n: claims.nonce,
    e: claims.exp,
  };
  const payload = Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
  return `${payload}.${mac(key.secret, payload).toString('base64url')}`;
}

function fail(
  code: 'APPROVAL.MALFORMED' | 'APPROVAL.TAMPERED' | 'APPROVAL.EXPIRED',
  message: string,
): VerifyResult {
  return { ok: false, code, message };
}

export function verifyApprovalToken(token: string, keys: SigningKey[], nowMs: number): VerifyResult {
  if (typeof token !== 'string' || token.length === 0)
    return fail('APPROVAL.MALFORMED', 'the link carries no approval token');
  if (token.length > MAX_TOKEN_LENGTH) return fail('APPROVAL.MALFORMED', 'the approval token is too long');
  const parts = token.split('.');
  if (parts.length !== 2 || !B64URL.test(parts[0]) || !B64URL.test(parts[1])) {
    return fail(
      'APPROVAL.MALFORMED',
      'the approval token is not in the expected form (was the link cut or changed?)',
    );
  }
  const [payload, sigText] = parts;
  const sig = Buffer.from(sigText, 'base64url');
  // Canonical encoding only: an altered last character can otherwise decode to the same bytes.
  if (sig.length !== 32 || sig.toString('base64url') !== sigText)
    return fail('APPROVAL.TAMPERED', 'the approval token signature is not valid');

  let matchedKey: SigningKey | undefined;
  for (const key of keys) {
    // compare against every key (no early exit) so timing does not reveal which key matched
    if (timingSafeEqual(mac(key.secret, payload), sig) && !matchedKey) matchedKey = key;
  }
  if (!matchedKey) {
    return fail(
      'APPROVAL.TAMPERED',
      keys.length === 0
        ? 'no approval signing key is configured, so no link can be verified'
        : 'the approval token signature is not valid (the link was changed, or signed with a key that has been retired)',
    );
  }

  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    body = parsed as Record<string, unknown>;
  } catch {
    return fail('APPROVAL.MALFORMED', 'the approval token content is not readable');
  }
  if (body.v !== VERSION)
    return fail('APPROVAL.MALFORMED', `unsupported approval token version ${String(body.v)}`);
  const claims = { instanceId: body.i, approver: body.a, action: body.t, nonce: body.n, exp: body.e };
  const problem = claimsProblem(claims);
  if (problem) return fail('APPROVAL.MALFORMED', `the approval token content is invalid: ${problem}`);
  const valid = claims as ApprovalClaims;
  if (nowMs >= valid.exp)
    return fail('APPROVAL.EXPIRED', `this link expired at ${new Date(valid.exp).toISOString()}`);
  return { ok: true, claims: valid, keyId: matchedKey.id };
}

/** `${PUBLIC_BASE_URL}/api/approvals/${token}` (a trailing slash on the base is ignored). */
export function approvalLink(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/api/approvals/${token}`;
}
