/**
 * Approval links at their limits, tried as an attacker would (issue #20): the checks that refuse a
 * forged or absurd link must hold exactly at their edges — the 2,048-character token cap, the 32-byte
 * signature, the 256-character claim fields, the 32-character key minimum and a non-positive expiry —
 * and verification answers every refusal with a code, never by throwing.
 */
import { createHmac, randomBytes } from 'node:crypto';
import {
  ApprovalClaims,
  MAX_TOKEN_LENGTH,
  signApprovalToken,
  signingKeys,
  verifyApprovalToken,
} from '../../shared/domain/approval-token';

const secret = randomBytes(32).toString('base64url');
const [key] = signingKeys({ APPROVAL_SIGNING_KEY: secret });
const NOW = Date.UTC(2026, 11, 6, 5, 0, 0);
const claims: ApprovalClaims = {
  instanceId: 'deploy-prod-1.4.0-0123456789ab',
  approver: 'U024BE7LH',
  action: 'approval',
  nonce: 'f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
  exp: NOW + 3600_000,
};

/** a payload signed with the real key, as someone holding the key (or the pipeline) would */
const signRaw = (body: unknown) => {
  const payload = Buffer.from(JSON.stringify(body)).toString('base64url');
  return `${payload}.${createHmac('sha256', secret).update('odoo-mta/approval/v1.').update(payload).digest('base64url')}`;
};
const body = (c: Partial<Record<string, unknown>> = {}) => ({
  v: 1,
  k: key.id,
  i: claims.instanceId,
  a: claims.approver,
  t: claims.action,
  n: claims.nonce,
  e: claims.exp,
  ...c,
});

describe('the 2,048-character token cap', () => {
  /** a genuine token padded (with a field the verifier ignores) to exactly `length` characters */
  const tokenOfLength = (length: number) => {
    for (let pad = 0; pad < 2 * length; pad++) {
      const t = signRaw(body({ x: 'p'.repeat(pad) }));
      if (t.length === length) return t;
      if (t.length > length) break;
    }
    throw new Error(`no token of length ${length}`);
  };

  test('a genuine token of exactly 2,048 characters is accepted', () => {
    const t = tokenOfLength(MAX_TOKEN_LENGTH);
    expect(MAX_TOKEN_LENGTH).toBe(2048);
    expect(verifyApprovalToken(t, [key], NOW)).toMatchObject({ ok: true, claims });
  });

  test('past the cap a token is refused as too long, even when genuinely signed', () => {
    // the nearest genuine token past the cap (unpadded base64url has no 2,049-character form of this payload)
    const t = tokenOfLength(MAX_TOKEN_LENGTH + 2);
    expect(verifyApprovalToken(t, [key], NOW)).toEqual({
      ok: false,
      code: 'APPROVAL.MALFORMED',
      message: 'the approval token is too long',
    });
    expect(verifyApprovalToken('a'.repeat(MAX_TOKEN_LENGTH + 1), [key], NOW)).toEqual({
      ok: false,
      code: 'APPROVAL.MALFORMED',
      message: 'the approval token is too long',
    });
  });
});

describe('the signature must be exactly 32 bytes', () => {
  const [payload, sig] = signApprovalToken(claims, key).split('.');
  const raw = Buffer.from(sig, 'base64url');

  test('a token with a short signature is refused without throwing', () => {
    for (const n of [0, 1, 16, 31]) {
      const short = `${payload}.${raw.subarray(0, n).toString('base64url') || 'A'}`;
      let r: ReturnType<typeof verifyApprovalToken> | undefined;
      expect(() => (r = verifyApprovalToken(short, [key], NOW))).not.toThrow();
      expect(r).toEqual({
        ok: false,
        code: 'APPROVAL.TAMPERED',
        message: 'the approval token signature is not valid',
      });
    }
  });

  test('a token with the real signature plus extra bytes is refused without throwing', () => {
    const long = `${payload}.${Buffer.concat([raw, Buffer.from([0])]).toString('base64url')}`;
    expect(() => verifyApprovalToken(long, [key], NOW)).not.toThrow();
    expect(verifyApprovalToken(long, [key], NOW)).toMatchObject({ ok: false, code: 'APPROVAL.TAMPERED' });
  });

  test("a well-formed 32-byte signature that is not the key's is refused, and which key signed is not revealed", () => {
    const forged = `${payload}.${randomBytes(32).toString('base64url')}`;
    const r = verifyApprovalToken(forged, [key], NOW);
    expect(r).toMatchObject({ ok: false, code: 'APPROVAL.TAMPERED' });
    if (!r.ok) expect(r.message).toMatch(/changed, or signed with a key that has been retired/);
  });
});

describe('claim fields: at most 256 characters, no control characters', () => {
  const at = (n: number) => 'a'.repeat(n);

  test.each(['instanceId', 'approver', 'nonce'] as const)(
    '%s of 256 characters is signed and verified; 257 is refused on both sides',
    (field) => {
      const ok = signApprovalToken({ ...claims, [field]: at(256) }, key);
      expect(verifyApprovalToken(ok, [key], NOW)).toMatchObject({ ok: true, claims: { [field]: at(256) } });
      expect(() => signApprovalToken({ ...claims, [field]: at(257) }, key)).toThrow(
        `[APPROVAL.INVALID_CLAIMS] cannot sign approval token: ${field} must be a non-empty string of at most 256 characters`,
      );
      const short = { instanceId: 'i', approver: 'a', nonce: 'n' }[field];
      const r = verifyApprovalToken(signRaw(body({ [short]: at(257) })), [key], NOW);
      expect(r).toEqual({
        ok: false,
        code: 'APPROVAL.MALFORMED',
        message: `the approval token content is invalid: ${field} must be a non-empty string of at most 256 characters`,
      });
    },
  );

  test('control characters (NUL, unit separator, DEL) in a claim are refused; printable edges are fine', () => {
    for (const c of ['\u0000', '\u001f', '\u007f']) {
      expect(() => signApprovalToken({ ...claims, approver: `ali${c}ce` }, key)).toThrow(
        'approver must not contain control characters',
      );
      expect(verifyApprovalToken(signRaw(body({ n: `x${c}` })), [key], NOW)).toMatchObject({
        ok: false,
        message: 'the approval token content is invalid: nonce must not contain control characters',
      });
    }
    for (const c of [' ', '~', '\u0080', 'é'])
      expect(
        verifyApprovalToken(signApprovalToken({ ...claims, approver: `a${c}b` }, key), [key], NOW).ok,
      ).toBe(true);
  });

  test('an unknown action is refused, naming the two that exist', () => {
    expect(() => signApprovalToken({ ...claims, action: 'deploy' as 'approval' }, key)).toThrow(
      'action must be one of approval, rollback',
    );
    expect(verifyApprovalToken(signRaw(body({ t: 7 })), [key], NOW)).toMatchObject({
      ok: false,
      code: 'APPROVAL.MALFORMED',
    });
  });
});

describe('expiry must be a positive whole number of milliseconds', () => {
  test('exp 0 and negative exp are refused when signing and when verifying', () => {
    for (const exp of [0, -1, -NOW]) {
      expect(() => signApprovalToken({ ...claims, exp }, key)).toThrow(
        'exp must be a positive integer (epoch ms)',
      );
      expect(verifyApprovalToken(signRaw(body({ e: exp })), [key], NOW)).toMatchObject({
        ok: false,
        code: 'APPROVAL.MALFORMED',
      });
    }
  });

  test('exp 1 is a valid (long expired) link: reported as expired, not as malformed', () => {
    expect(signApprovalToken({ ...claims, exp: 1 }, key)).toMatch(/\./);
    expect(verifyApprovalToken(signRaw(body({ e: 1 })), [key], 0)).toMatchObject({ ok: true });
    expect(verifyApprovalToken(signRaw(body({ e: 1 })), [key], NOW)).toEqual({
      ok: false,
      code: 'APPROVAL.EXPIRED',
      message: 'this link expired at 1970-01-01T00:00:00.001Z',
    });
  });

  test('an expiry beyond safe integers or given as text is refused', () => {
    expect(() => signApprovalToken({ ...claims, exp: 2 ** 53 }, key)).toThrow(/INVALID_CLAIMS/);
    expect(verifyApprovalToken(signRaw(body({ e: String(claims.exp) })), [key], NOW)).toMatchObject({
      ok: false,
      code: 'APPROVAL.MALFORMED',
    });
  });
});

describe('signing keys: 32 characters at least', () => {
  test('a 32-character key signs; a 31-character key, an empty one or none is refused with the setting named', () => {
    const k32 = { id: 'k32', secret: 'k'.repeat(32) };
    expect(verifyApprovalToken(signApprovalToken(claims, k32), [k32], NOW)).toMatchObject({
      ok: true,
      keyId: 'k32',
    });
    const refusal =
      '[APPROVAL.NO_KEY] cannot sign approval token: APPROVAL_SIGNING_KEY must be at least 32 characters';
    for (const bad of [
      { id: 'k31', secret: 'k'.repeat(31) },
      { id: 'e', secret: '' },
      { id: 'n', secret: undefined as unknown as string },
      undefined as unknown as { id: string; secret: string },
    ]) {
      expect(() => signApprovalToken(claims, bad)).toThrow(refusal);
    }
  });

  test('the signing error carries a code and is not retryable (a configuration problem)', () => {
    try {
      signApprovalToken(claims, { id: 'x', secret: 'short' });
      throw new Error('signed with a short key');
    } catch (e) {
      expect(e).toMatchObject({ code: 'APPROVAL.NO_KEY', retryable: false });
    }
  });

  test('a token version other than 1, or none, is refused', () => {
    for (const v of [0, 2, '1', undefined]) {
      const r = verifyApprovalToken(signRaw(body({ v })), [key], NOW);
      expect(r).toEqual({
        ok: false,
        code: 'APPROVAL.MALFORMED',
        message: `unsupported approval token version ${String(v)}`,
      });
    }
  });

  test('with two keys configured, a token signed by the second is verified and attributed to it; the first still wins for its own tokens', () => {
    const other = randomBytes(32).toString('base64url');
    const keys = signingKeys({ APPROVAL_SIGNING_KEY: other, APPROVAL_SIGNING_KEY_PREVIOUS: secret });
    expect(verifyApprovalToken(signApprovalToken(claims, key), keys, NOW)).toMatchObject({
      ok: true,
      keyId: key.id,
    });
    expect(verifyApprovalToken(signApprovalToken(claims, keys[0]), keys, NOW)).toMatchObject({
      ok: true,
      keyId: keys[0].id,
    });
    // the same secret configured twice under two ids: the first configured id is the one reported
    const twice = [
      { id: 'first', secret },
      { id: 'second', secret },
    ];
    expect(verifyApprovalToken(signApprovalToken(claims, key), twice, NOW)).toMatchObject({
      ok: true,
      keyId: 'first',
    });
  });
});
