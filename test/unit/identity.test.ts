import { HttpRequest } from '@azure/functions';
import { loadConfig } from '../../shared/config';
import {
  approversOf,
  callerLabel,
  entraCaller,
  isApprover,
  keyId,
  parseApprovers,
  requestCaller,
} from '../../shared/domain/identity';

const OID = '6f1c2a4e-1b2c-4d3e-8f90-a1b2c3d4e5f6';

describe('APPROVERS: approvers are identities', () => {
  it('reads the compact form and the JSON list to the same identities', () => {
    const compact = parseApprovers(
      `Alice:slack=U0123ABCD:entra=${OID}:name=Alice Martin, bob:slack=W0456EFGH`,
    );
    const json = parseApprovers(
      JSON.stringify([
        { id: 'alice', name: 'Alice Martin', slack: 'U0123ABCD', entra: OID.toUpperCase() },
        { id: 'bob', slack: 'W0456EFGH' },
      ]),
    );
    expect(compact).toEqual(json);
    expect(compact[0]).toEqual({ id: 'alice', name: 'Alice Martin', slack: 'U0123ABCD', entra: OID });
  });

  it('the old names-only form is refused with a migration message naming the new form', () => {
    expect(() => parseApprovers('alice,bob')).toThrow(
      /old names-only form \(alice, bob\).*alice:slack=U0123ABCD:entra=alice@example.com/,
    );
    const err = (() => {
      try {
        loadConfig({ APPROVERS: 'alice,bob' });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(err).toMatch(/APPROVERS is malformed \(got "alice,bob"\): APPROVERS uses the old names-only form/);
  });

  it.each([
    ['alice:slack=alice', /Slack user id like U0123ABCD/],
    ['alice:slack=@alice', /Slack user id/],
    ['alice:entra=not-an-id', /object id \(GUID\) or a sign-in e-mail/],
    ['alice:name=Alice', /has no identity/],
    ['alice:slack=U0123ABCD, bob:slack=U0123ABCD', /belongs to both alice and bob/],
    ['alice:slack=U0123ABCD, alice:slack=U0999ABCD', /listed twice/],
    ['alice:team=x', /not slack=…, entra=… or name=…/],
    ['[{"id":"alice","slack":"U0123ABCD","role":"admin"}]', /unknown approver field "role"/],
    ['[oops', /not valid JSON/],
  ])('%s is refused: %s', (raw, why) => {
    expect(() => parseApprovers(raw)).toThrow(why);
  });
});

describe('the caller', () => {
  const req = (headers: Record<string, string>, url = 'https://app.example.net/api/deployments') =>
    new HttpRequest({ method: 'POST', url, headers });
  const principal = (claims: Array<{ typ: string; val: string }>) =>
    Buffer.from(JSON.stringify({ auth_typ: 'aad', claims })).toString('base64');

  it('an Entra sign-in (App Service Authentication headers) is entra:<object id>, with its e-mail', () => {
    const c = entraCaller(
      req({
        'x-ms-client-principal-id': OID,
        'x-ms-client-principal-name': 'Alice@Example.com',
        'x-ms-client-principal-idp': 'aad',
        'x-ms-client-principal': principal([{ typ: 'preferred_username', val: 'alice@example.com' }]),
      }).headers,
      { WEBSITE_AUTH_ENABLED: 'True' },
    );
    expect(c).toMatchObject({ kind: 'entra', id: `entra:${OID}`, oid: OID, emails: ['alice@example.com'] });
    expect(isApprover({ id: 'alice', name: 'A', entra: 'alice@example.com' }, c)).toBe(true);
    expect(isApprover({ id: 'alice', name: 'A', entra: OID }, c)).toBe(true);
    expect(isApprover({ id: 'bob', name: 'B', entra: 'bob@example.com' }, c)).toBe(false);
  });

  it('principal headers count only behind platform authentication (App Service sets WEBSITE_AUTH_ENABLED)', () => {
    // an attacker calling a site whose built-in authentication is off sends the headers App Service
    // would have set: nobody stripped them, so they must not make the attacker "alice"
    const forged = req({
      'x-ms-client-principal-id': OID,
      'x-ms-client-principal-name': 'alice@example.com',
      'x-ms-client-principal-idp': 'aad',
      'x-ms-client-principal': principal([{ typ: 'oid', val: OID }]),
      'x-functions-key': 'a-key-the-attacker-holds',
    });
    for (const env of [{}, { WEBSITE_AUTH_ENABLED: 'False' }, { WEBSITE_AUTH_ENABLED: '' }]) {
      const c = entraCaller(forged.headers, env);
      expect(c).toBeUndefined();
      expect(isApprover({ id: 'alice', name: 'Alice', entra: OID }, c)).toBe(false);
    }
    expect(entraCaller(forged.headers, { WEBSITE_AUTH_ENABLED: 'True' })?.id).toBe(`entra:${OID}`);
    // the request-level rule reads the process environment: without platform auth the caller is the key
    const saved = process.env.WEBSITE_AUTH_ENABLED;
    try {
      delete process.env.WEBSITE_AUTH_ENABLED;
      expect(requestCaller(forged).id).toBe(`key:${keyId('a-key-the-attacker-holds')}`);
      expect(callerLabel(forged)).toBe(`key:${keyId('a-key-the-attacker-holds')}`);
      process.env.WEBSITE_AUTH_ENABLED = 'True';
      expect(callerLabel(forged)).toBe(`entra:${OID} (alice@example.com)`);
    } finally {
      if (saved === undefined) delete process.env.WEBSITE_AUTH_ENABLED;
      else process.env.WEBSITE_AUTH_ENABLED = saved;
    }
  });

  it("an unverified e-mail claim is not the approver's sign-in name", () => {
    // Entra does not verify `email`: an account may carry someone else's address there
    const c = entraCaller(
      req({
        'x-ms-client-principal-id': '00000000-0000-4000-8000-00000000beef',
        'x-ms-client-principal-idp': 'aad',
        'x-ms-client-principal': principal([
          { typ: 'email', val: 'alice@example.com' },
          {
            typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
            val: 'alice@example.com',
          },
        ]),
      }).headers,
      { WEBSITE_AUTH_ENABLED: 'True' },
    );
    expect(c?.emails).toEqual([]);
    expect(isApprover({ id: 'alice', name: 'Alice', entra: 'alice@example.com' }, c)).toBe(false);
  });

  it('another identity provider, or no object id, is no Entra sign-in', () => {
    expect(
      entraCaller(req({ 'x-ms-client-principal-id': OID, 'x-ms-client-principal-idp': 'github' }).headers, {
        WEBSITE_AUTH_ENABLED: 'True',
      }),
    ).toBeUndefined();
    expect(
      entraCaller(
        req({ 'x-ms-client-principal-name': 'alice@example.com', 'x-ms-client-principal-idp': 'aad' })
          .headers,
        { WEBSITE_AUTH_ENABLED: 'True' },
      ),
    ).toBeUndefined();
  });

  it('a function-key caller is key:<fingerprint> of the key, never the key, and never an approver', () => {
    const c = requestCaller(req({ 'x-functions-key': 'secret-key-value' }));
    expect(c).toEqual({
      kind: 'key',
      id: `key:${keyId('secret-key-value')}`,
      name: `key:${keyId('secret-key-value')}`,
    });
    expect(JSON.stringify(c)).not.toContain('secret-key-value');
    expect(requestCaller(req({}, 'https://app.example.net/api/deployments?code=other')).id).toBe(
      `key:${keyId('other')}`,
    );
    expect(isApprover({ id: 'alice', name: 'A', entra: OID }, c)).toBe(false);
  });

  it('four-eyes: the approvers a requester is, by identity (not by name text)', () => {
    const approvers = parseApprovers(`alice:slack=U0123ABCD:entra=${OID}, bob:entra=bob@example.com`);
    expect(approversOf(approvers, `entra:${OID}`)).toEqual(['alice']);
    expect(approversOf(approvers, 'entra:00000000-0000-4000-8000-000000000000', ['bob@example.com'])).toEqual(
      ['bob'],
    );
    expect(approversOf(approvers, 'ALICE')).toEqual([]);
    expect(approversOf(approvers, `key:${keyId('k')}`)).toEqual([]);
  });
});
