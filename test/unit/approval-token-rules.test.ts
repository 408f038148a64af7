/**
 * Approval links, the refusals a person reads (issue #20): what the approval page says for an empty
 * link, a link with characters a genuine one never has, a genuine signature over something that is not
 * a claim set; the key id that names a key without revealing it; the link built from the base URL.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import {
  approvalLink,
  keyFingerprint,
  signApprovalToken,
  signingKeys,
  verifyApprovalToken,
} from '../../shared/domain/approval-token';

const secret = randomBytes(32).toString('base64url');
const [key] = signingKeys({ APPROVAL_SIGNING_KEY: secret });
const NOW = Date.UTC(2026, 11, 6, 5, 0, 0);
const token = signApprovalToken(
  {
    instanceId: 'deploy-prod-1.4.0',
    approver: 'U024BE7LH',
    action: 'approval',
    nonce: 'n-1',
    exp: NOW + 60_000,
  },
  key,
);
/** a genuine signature over any payload text, as only the key holder could make */
const signText = (json: string) => {
  const payload = Buffer.from(json).toString('base64url');
  return `${payload}.${createHmac('sha256', secret).update('odoo-mta/approval/v1.').update(payload).digest('base64url')}`;
};

test('a link without a token says that it carries none', () => {
  expect(verifyApprovalToken('', [key], NOW)).toEqual({
    ok: false,
    code: 'APPROVAL.MALFORMED',
    message: 'the link carries no approval token',
  });
});

test.each([
  ['padding after the signature', (t: string) => `${t}=`],
  ['a character before the payload', (t: string) => `!${t}`],
  ['a space after the payload', (t: string) => t.replace('.', ' .')],
  ['a plus sign before the signature', (t: string) => t.replace('.', '.+')],
])('a token with %s is not in the expected form (refused before any key is tried)', (_n, change) => {
  expect(verifyApprovalToken(change(token), [key], NOW)).toMatchObject({
    ok: false,
    code: 'APPROVAL.MALFORMED',
    message: 'the approval token is not in the expected form (was the link cut or changed?)',
  });
});

test.each([['null'], ['[1,2]'], ['"text"'], ['7'], ['{not json']])(
  'a genuine signature over %s is unreadable content, never a crash',
  (json) => {
    expect(verifyApprovalToken(signText(json), [key], NOW)).toEqual({
      ok: false,
      code: 'APPROVAL.MALFORMED',
      message: 'the approval token content is not readable',
    });
  },
);

test('a signed claim set with an unknown action or a broken expiry is refused, naming the field', () => {
  const base = { v: 1, k: key.id, i: 'deploy-prod-1', a: 'U1', t: 'approval', n: 'n', e: NOW + 1000 };
  for (const t of ['approve', 'APPROVAL', 5])
    expect(verifyApprovalToken(signText(JSON.stringify({ ...base, t })), [key], NOW)).toMatchObject({
      code: 'APPROVAL.MALFORMED',
      message: expect.stringContaining('action must be one of approval, rollback'),
    });
  for (const e of ['2030-01-01', 1.5, 0, -1])
    expect(verifyApprovalToken(signText(JSON.stringify({ ...base, e })), [key], NOW)).toMatchObject({
      code: 'APPROVAL.MALFORMED',
      message: expect.stringContaining('exp must be a positive integer'),
    });
});

test('the key id names a key without being the plain hash of its secret', () => {
  const id = keyFingerprint(secret);
  expect(id).toMatch(/^[0-9a-f]{12}$/);
  expect(id).not.toBe(createHash('sha256').update(secret).digest('hex').slice(0, 12));
  expect(keyFingerprint(secret + 'x')).not.toBe(id);
});

test('the link ignores any number of trailing slashes on the base URL', () => {
  for (const base of [
    'https://deploy.example.com',
    'https://deploy.example.com/',
    'https://deploy.example.com///',
  ])
    expect(approvalLink(base, 'abc.def')).toBe('https://deploy.example.com/api/approvals/abc.def');
});
