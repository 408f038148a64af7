import { createHmac, randomBytes } from 'node:crypto';
import {
  ApprovalClaims,
  MAX_TOKEN_LENGTH,
  approvalLink,
  keyFingerprint,
  signApprovalToken,
  signingKeys,
  verifyApprovalToken,
} from '../../shared/domain/approval-token';

// keys are generated at test time (never a committed secret)
const secretA = randomBytes(32).toString('base64url');
const secretB = randomBytes(32).toString('base64url');
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const claims: ApprovalClaims = {
  instanceId: 'deploy-prod-1.4.0-0123456789ab',
  approver: 'alice',
  action: 'approval',
  nonce: '8d3c8f0e-4b7a-5e1e-9c1d-2f6a1b0c9d7e',
  exp: NOW + 60 * 60 * 1000,
};

describe('approval token', () => {
  const [keyA] = signingKeys({ APPROVAL_SIGNING_KEY: secretA });

  test('round trip: URL-safe, no padding, claims and key id come back', () => {
    const token = signApprovalToken(claims, keyA);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(encodeURIComponent(token)).toBe(token);
    const r = verifyApprovalToken(token, [keyA], NOW);
    expect(r).toEqual({ ok: true, claims, keyId: keyA.id });
    // rollback action too
    const rb = signApprovalToken({ ...claims, action: 'rollback' }, keyA);
    const r2 = verifyApprovalToken(rb, [keyA], NOW);
    expect(r2.ok && r2.claims.action).toBe('rollback');
  });

  test('the token never contains the secret, and the key id is a fingerprint, not the secret', () => {
    const token = signApprovalToken(claims, keyA);
    expect(token).not.toContain(secretA);
    expect(Buffer.from(token.split('.')[0], 'base64url').toString()).not.toContain(secretA);
    expect(keyA.id).toMatch(/^[0-9a-f]{12}$/);
    expect(secretA).not.toContain(keyA.id);
    expect(keyFingerprint(secretA)).toBe(keyA.id);
    expect(keyFingerprint(secretB)).not.toBe(keyA.id);
  });

  test('changing any single character of the token is refused', () => {
    const token = signApprovalToken(claims, keyA);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    let refused = 0;
    for (let i = 0; i < token.length; i++) {
      if (token[i] === '.') continue;
      // the next character in the alphabet: also covers the low "unused" bits of the last character
      const next = alphabet[(alphabet.indexOf(token[i]) + 1) % alphabet.length];
      const tampered = token.slice(0, i) + next + token.slice(i + 1);
      const r = verifyApprovalToken(tampered, [keyA], NOW);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(['APPROVAL.TAMPERED', 'APPROVAL.MALFORMED']).toContain(r.code);
      refused++;
    }
    expect(refused).toBe(token.length - 1);
  });

  test('claims changed and re-encoded without the key are refused as tampered', () => {
    const token = signApprovalToken(claims, keyA);
    const [payload, sig] = token.split('.');
    const body = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    for (const change of [
      { i: 'deploy-prod-9.9.9-ffffffffffff' },
      { a: 'mallory' },
      { t: 'rollback' },
      { e: NOW + 1e10 },
      { n: 'other' },
    ]) {
      const forged = Buffer.from(JSON.stringify({ ...body, ...change })).toString('base64url') + '.' + sig;
      const r = verifyApprovalToken(forged, [keyA], NOW);
      expect(r).toMatchObject({ ok: false, code: 'APPROVAL.TAMPERED' });
    }
  });

  test('a token signed with another key is refused', () => {
    const [keyB] = signingKeys({ APPROVAL_SIGNING_KEY: secretB });
    const token = signApprovalToken(claims, keyB);
    expect(verifyApprovalToken(token, [keyA], NOW)).toMatchObject({ ok: false, code: 'APPROVAL.TAMPERED' });
  });

  test('expiry: valid until exp, expired from exp on (checked after the signature)', () => {
    const token = signApprovalToken(claims, keyA);
    expect(verifyApprovalToken(token, [keyA], claims.exp - 1).ok).toBe(true);
    const r = verifyApprovalToken(token, [keyA], claims.exp);
    expect(r).toMatchObject({ ok: false, code: 'APPROVAL.EXPIRED' });
    if (!r.ok) expect(r.message).toContain(new Date(claims.exp).toISOString());
    // an expired token that is also forged is reported as tampered, not expired
    const [payload] = token.split('.');
    const forged = `${payload}.${randomBytes(32).toString('base64url')}`;
    expect(verifyApprovalToken(forged, [keyA], claims.exp + 1)).toMatchObject({
      ok: false,
      code: 'APPROVAL.TAMPERED',
    });
  });

  test('key rotation: the old key is accepted while configured as previous, refused after removal', () => {
    const before = signingKeys({ APPROVAL_SIGNING_KEY: secretA });
    const oldToken = signApprovalToken(claims, before[0]);

    const during = signingKeys({ APPROVAL_SIGNING_KEY: secretB, APPROVAL_SIGNING_KEY_PREVIOUS: secretA });
    expect(during.map((k) => k.id)).toEqual([keyFingerprint(secretB), keyFingerprint(secretA)]); // current first
    expect(verifyApprovalToken(oldToken, during, NOW)).toMatchObject({
      ok: true,
      keyId: keyFingerprint(secretA),
    });
    const newToken = signApprovalToken(claims, during[0]);
    expect(verifyApprovalToken(newToken, during, NOW)).toMatchObject({
      ok: true,
      keyId: keyFingerprint(secretB),
    });

    const after = signingKeys({ APPROVAL_SIGNING_KEY: secretB });
    const r = verifyApprovalToken(oldToken, after, NOW);
    expect(r).toMatchObject({ ok: false, code: 'APPROVAL.TAMPERED' });
    if (!r.ok) expect(r.message).toMatch(/retired/);
    expect(verifyApprovalToken(newToken, after, NOW).ok).toBe(true);
  });

  test('signingKeys: none configured, duplicate previous, empty strings', () => {
    expect(signingKeys({})).toEqual([]);
    expect(signingKeys({ APPROVAL_SIGNING_KEY: '', APPROVAL_SIGNING_KEY_PREVIOUS: '' })).toEqual([]);
    expect(
      signingKeys({ APPROVAL_SIGNING_KEY: secretA, APPROVAL_SIGNING_KEY_PREVIOUS: secretA }),
    ).toHaveLength(1);
    const token = signApprovalToken(claims, keyA);
    const r = verifyApprovalToken(token, [], NOW);
    expect(r).toMatchObject({ ok: false, code: 'APPROVAL.TAMPERED' });
    if (!r.ok) expect(r.message).toMatch(/no approval signing key/);
  });

  test('malformed inputs get a clear MALFORMED/TAMPERED result, never a throw', () => {
    const token = signApprovalToken(claims, keyA);
    const cases: unknown[] = [
      '',
      'abc',
      'a.b.c',
      '.',
      token + '.',
      token.replace('.', ''),
      token + '=',
      token.replace('.', '/'),
      'x'.repeat(MAX_TOKEN_LENGTH + 1),
      '%2e%2e',
      '🙂.🙂',
      undefined,
      null,
      42,
    ];
    for (const bad of cases) {
      const r = verifyApprovalToken(bad as string, [keyA], NOW);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(['APPROVAL.MALFORMED', 'APPROVAL.TAMPERED']).toContain(r.code);
        expect(r.message.length).toBeGreaterThan(10);
        expect(r.message).not.toContain(secretA);
      }
    }
  });

  test('a correctly signed payload with bad content is MALFORMED (version, JSON, claim types)', () => {
    const signRaw = (json: string) => {
      const payload = Buffer.from(json).toString('base64url');
      const sig = createHmac('sha256', secretA)
        .update('odoo-mta/approval/v1.')
        .update(payload)
        .digest('base64url');
      return `${payload}.${sig}`;
    };
    const good = {
      v: 1,
      k: keyA.id,
      i: claims.instanceId,
      a: 'alice',
      t: 'approval',
      n: 'n1',
      e: claims.exp,
    };
    expect(verifyApprovalToken(signRaw(JSON.stringify(good)), [keyA], NOW).ok).toBe(true);
    for (const json of [
      'not json',
      '[1,2]',
      'null',
      JSON.stringify({ ...good, v: 2 }),
      JSON.stringify({ ...good, t: 'merge' }),
      JSON.stringify({ ...good, a: '' }),
      JSON.stringify({ ...good, i: 5 }),
      JSON.stringify({ ...good, e: 'tomorrow' }),
      JSON.stringify({ ...good, n: 'a\nb' }),
    ]) {
      expect(verifyApprovalToken(signRaw(json), [keyA], NOW)).toMatchObject({
        ok: false,
        code: 'APPROVAL.MALFORMED',
      });
    }
  });

  test('signing refuses bad claims and short keys', () => {
    expect(() => signApprovalToken({ ...claims, approver: '' }, keyA)).toThrow(/APPROVAL.INVALID_CLAIMS/);
    expect(() => signApprovalToken({ ...claims, action: 'deploy' as 'approval' }, keyA)).toThrow(
      /APPROVAL.INVALID_CLAIMS/,
    );
    expect(() => signApprovalToken({ ...claims, exp: 1.5 }, keyA)).toThrow(/APPROVAL.INVALID_CLAIMS/);
    expect(() => signApprovalToken(claims, { id: 'x', secret: 'short' })).toThrow(/APPROVAL.NO_KEY/);
  });

  test('approvalLink joins the base URL and the token', () => {
    expect(approvalLink('https://odoo-mta.example.net', 'p.s')).toBe(
      'https://odoo-mta.example.net/api/approvals/p.s',
    );
    expect(approvalLink('https://odoo-mta.example.net/', 'p.s')).toBe(
      'https://odoo-mta.example.net/api/approvals/p.s',
    );
  });
});
