/**
 * Who is who, tried at the edges (issue #20, round 4): what an APPROVERS entry may contain, how an
 * attacker could try to pass for an approver (forged or odd principal headers, a look-alike Slack id,
 * an e-mail in the wrong claim), and what a function-key caller is recorded as.
 */
import { HttpRequest } from '@azure/functions';
import { createHash } from 'node:crypto';
import {
  approversOf,
  entraCaller,
  isApprover,
  keyId,
  parseApprovers,
  platformAuthEnabled,
  requestCaller,
  type Caller,
} from '../../shared/domain/identity';

const OID = '6f1c2a4e-1b2c-4d3e-8f90-a1b2c3d4e5f6';
const OTHER_OID = '00000000-0000-4000-8000-00000000beef';
const ON = { WEBSITE_AUTH_ENABLED: 'True' };

const headers = (h: Record<string, string>) =>
  new HttpRequest({ method: 'POST', url: 'https://app.example.net/api/x', headers: h }).headers;
const principal = (claims: Array<{ typ: unknown; val: unknown }>) =>
  Buffer.from(JSON.stringify({ auth_typ: 'aad', claims })).toString('base64');

describe('APPROVERS entries at their limits', () => {
  test('an id is 1 to 64 characters of a-z 0-9 . _ -, starting with a letter or digit', () => {
    expect(parseApprovers(`${'a'.repeat(64)}:slack=U0123ABCD`)[0].id).toBe('a'.repeat(64));
    for (const id of ['a'.repeat(65), '-alice', '.alice', 'al ice', 'alice!', 'ali@ce'])
      expect(() => parseApprovers(JSON.stringify([{ id, slack: 'U0123ABCD' }]))).toThrow(
        /id must be lower-case letters, digits/,
      );
    expect(() => parseApprovers(JSON.stringify([{ id: 7, slack: 'U0123ABCD' }]))).toThrow(/approver #1: id/);
    expect(() =>
      parseApprovers(JSON.stringify([{ id: 'a', slack: 'U0123ABCD' }, { slack: 'U0456EFGH' }])),
    ).toThrow(/approver #2: id/);
  });

  test('a Slack id is U or W and 2-20 capitals or digits: display names and look-alikes are refused', () => {
    expect(parseApprovers('a:slack= U0123ABCD ')[0].slack).toBe('U0123ABCD');
    expect(parseApprovers(`a:slack=W${'0'.repeat(20)}`)[0].slack).toBe(`W${'0'.repeat(20)}`);
    expect(parseApprovers('a:slack=U01')[0].slack).toBe('U01');
    for (const bad of [
      'X0123ABCD',
      'u0123abcd',
      'U0',
      `U${'0'.repeat(21)}`,
      'U0123ABCD!',
      'xU0123ABCD',
      'U0123 ABCD',
    ])
      expect(() => parseApprovers(`a:slack=${bad}`)).toThrow(/Slack user id like U0123ABCD/);
    expect(() => parseApprovers(JSON.stringify([{ id: 'a', slack: 12345 }]))).toThrow(/Slack user id/);
  });

  test('an Entra identity is a GUID (any case) or one sign-in e-mail, stored in lower case', () => {
    expect(parseApprovers(`a:entra=${OID.toUpperCase()}`)[0].entra).toBe(OID);
    expect(parseApprovers('a:entra= Alice@Example.COM ')[0].entra).toBe('alice@example.com');
    expect(parseApprovers(`a:entra=${'x'.repeat(64)}@example.com`)[0].entra).toBe(
      `${'x'.repeat(64)}@example.com`,
    );
    for (const bad of [
      `${OID}0`,
      `x${OID}`,
      'alice',
      'alice@',
      '@example.com',
      'ali ce@example.com',
      'alice@example.com bob@example.com',
      'alice@@example.com',
      `${'x'.repeat(65)}@example.com`,
      `alice@${'x'.repeat(191)}`,
    ])
      expect(() => parseApprovers(JSON.stringify([{ id: 'a', entra: bad }]))).toThrow(
        /entra must be an Entra ID object id \(GUID\) or a sign-in e-mail/,
      );
    expect(() => parseApprovers(JSON.stringify([{ id: 'a', entra: 42 }]))).toThrow(/entra must be/);
  });

  test('one Entra identity cannot belong to two approvers, whatever its case', () => {
    expect(() => parseApprovers(`a:entra=${OID}, b:entra=${OID.toUpperCase()}`)).toThrow(
      new RegExp(`Entra ID ${OID} belongs to both a and b`),
    );
    expect(() => parseApprovers('a:entra=x@example.com, b:entra=X@Example.com')).toThrow(/belongs to both/);
    // the same identity under two kinds (a Slack id and an e-mail) of two people is no clash
    expect(parseApprovers('a:slack=U0123ABCD, b:entra=u0123abcd@example.com')).toHaveLength(2);
  });

  test('a display name is 1-100 printable characters without markup, trimmed', () => {
    expect(parseApprovers(`a:slack=U0123ABCD:name=  Alice Martin `)[0].name).toBe('Alice Martin');
    expect(
      parseApprovers(JSON.stringify([{ id: 'a', slack: 'U0123ABCD', name: 'é'.repeat(100) }]))[0].name,
    ).toBe('é'.repeat(100));
    for (const name of ['', '   ', 'é'.repeat(101), '<b>Alice</b>', 'Alice\u0007', 'Alice\u007f', 'A\nB'])
      expect(() => parseApprovers(JSON.stringify([{ id: 'a', slack: 'U0123ABCD', name }]))).toThrow(
        /name must be 1-100 printable characters/,
      );
    expect(() => parseApprovers(JSON.stringify([{ id: 'a', slack: 'U0123ABCD', name: 5 }]))).toThrow(
      /name must be/,
    );
    // no name: the id is shown
    expect(parseApprovers('a:slack=U0123ABCD')[0].name).toBe('a');
  });

  test('the shape of the setting: empty is nobody, JSON must be a list of objects, compact fields need key=value', () => {
    expect(parseApprovers('')).toEqual([]);
    expect(parseApprovers('  \n ')).toEqual([]);
    expect(parseApprovers('[]')).toEqual([]);
    for (const bad of ['[1]', '[null]', '[["a"]]', '["alice"]', '[{"id":"a","slack":"U0123ABCD"},2]'])
      expect(() => parseApprovers(bad)).toThrow(/must be a list of objects/);
    expect(() => parseApprovers('a:slack')).toThrow(/"slack" is not slack=…, entra=… or name=…/);
    expect(() => parseApprovers('a:=U0123ABCD')).toThrow(/is not slack=…, entra=… or name=…/);
    expect(() => parseApprovers('a:id=b:slack=U0123ABCD')).toThrow(/"id=b" is not slack=/);
    // entries are separated by commas; blanks between them are ignored
    expect(parseApprovers(' a:slack=U0123ABCD ,, b:slack=U0456EFGH ,').map((a) => a.id)).toEqual(['a', 'b']);
  });

  test('the setting as people write it: spaces and new lines around entries, keys and values are allowed', () => {
    expect(parseApprovers('\n  [{"id":" Alice ","slack":"U0123ABCD"}]\n')).toEqual([
      { id: 'alice', name: 'alice', slack: 'U0123ABCD' },
    ]);
    expect(parseApprovers('alice: slack = U0123ABCD : name = Alice , ,bob:slack=U0456EFGH')).toEqual([
      { id: 'alice', name: 'Alice', slack: 'U0123ABCD' },
      { id: 'bob', name: 'bob', slack: 'U0456EFGH' },
    ]);
    // a field without "=" is refused even when its name starts like a known field
    expect(() => parseApprovers('a:slack=U0123ABCD:namex')).toThrow(/"namex" is not slack=/);
    expect(() => parseApprovers('a:slack=U0123ABCD:entrax')).toThrow(/"entrax" is not slack=/);
  });

  test('the old names-only form quotes at most three of the names', () => {
    expect(() => parseApprovers('alice,bob,carol,dave')).toThrow(
      /old names-only form \(alice, bob, carol\):/,
    );
  });

  test('errors from APPROVERS are configuration errors that a retry does not fix', () => {
    try {
      parseApprovers('a:slack=nope');
      throw new Error('accepted');
    } catch (e) {
      expect(e).toMatchObject({ code: 'CONFIG.APPROVERS', retryable: false });
    }
  });
});

describe('an attacker trying to pass for an approver', () => {
  test('platform authentication is on only when the platform says exactly true (any case, spaces)', () => {
    expect(platformAuthEnabled({ WEBSITE_AUTH_ENABLED: ' TRUE ' })).toBe(true);
    for (const v of [undefined, '', 'false', '1', 'yes', 'truex', 'xtrue'])
      expect(platformAuthEnabled({ WEBSITE_AUTH_ENABLED: v })).toBe(false);
  });

  test('the object id of the signed principal wins over the plain header, in either claim spelling', () => {
    for (const typ of ['oid', 'http://schemas.microsoft.com/identity/claims/objectidentifier']) {
      const c = entraCaller(
        headers({
          'x-ms-client-principal-id': OTHER_OID,
          'x-ms-client-principal': principal([{ typ, val: ` ${OID.toUpperCase()} ` }]),
        }),
        ON,
      );
      expect(c?.id).toBe(`entra:${OID}`);
    }
  });

  test('sign-in names come from the UPN / preferred_username claims only, and only when they are e-mails', () => {
    const c = entraCaller(
      headers({
        'x-ms-client-principal-id': OID,
        'x-ms-client-principal-idp': 'AAD',
        'x-ms-client-principal': principal([
          { typ: 'upn', val: 'Alice@Example.com' },
          { typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn', val: 'a2@example.com' },
          { typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name', val: 'a3@example.com' },
          { typ: 'name', val: 'mallory@example.com' },
          { typ: 'preferred_username', val: 'not an e-mail' },
          { typ: 'preferred_username', val: 42 },
          { typ: 7, val: 'x@example.com' },
        ]),
      }),
      ON,
    );
    expect(c?.emails?.sort()).toEqual(['a2@example.com', 'a3@example.com', 'alice@example.com']);
    expect(isApprover({ id: 'm', name: 'M', entra: 'mallory@example.com' }, c)).toBe(false);
  });

  test('a malformed claim in the principal is skipped, the claims after it still count', () => {
    const c = entraCaller(
      headers({
        'x-ms-client-principal-id': OTHER_OID,
        'x-ms-client-principal': principal([
          null as never,
          { typ: 'oid', val: 5 },
          { typ: 'oid', val: OID },
          { typ: 'upn', val: 'alice@example.com' },
        ]),
      }),
      ON,
    );
    expect(c).toMatchObject({ id: `entra:${OID}`, emails: ['alice@example.com'] });
  });

  test('an unreadable principal proves nothing more than the plain headers', () => {
    const c = entraCaller(
      headers({
        'x-ms-client-principal-id': OID,
        'x-ms-client-principal-name': 'alice@example.com',
        'x-ms-client-principal': 'not base64 json {',
      }),
      ON,
    );
    expect(c).toEqual({
      kind: 'entra',
      id: `entra:${OID}`,
      name: 'alice@example.com',
      oid: OID,
      emails: ['alice@example.com'],
    });
  });

  test('a principal name that is no e-mail is shown but never matched; without one the object id is shown', () => {
    const c = entraCaller(
      headers({ 'x-ms-client-principal-id': OID, 'x-ms-client-principal-name': 'Alice' }),
      ON,
    );
    expect(c).toMatchObject({ name: 'alice', emails: [] });
    expect(entraCaller(headers({ 'x-ms-client-principal-id': OID }), ON)?.name).toBe(OID);
  });

  test('an object id that is not a GUID is no sign-in', () => {
    for (const id of ['alice', `${OID}x`, `x${OID}`])
      expect(entraCaller(headers({ 'x-ms-client-principal-id': id }), ON)).toBeUndefined();
  });

  test('a function key is never an approver, even if its caller object carries an object id or e-mail', () => {
    const forged: Caller = {
      kind: 'key',
      id: 'key:x',
      name: 'key:x',
      oid: OID,
      emails: ['alice@example.com'],
    };
    expect(isApprover({ id: 'alice', name: 'Alice', entra: OID }, forged)).toBe(false);
    expect(isApprover({ id: 'alice', name: 'Alice', entra: 'alice@example.com' }, forged)).toBe(false);
    expect(isApprover({ id: 'alice', name: 'Alice', entra: OID }, undefined)).toBe(false);
    // a Slack-only approver is never matched by a web sign-in
    const signedIn = entraCaller(headers({ 'x-ms-client-principal-id': OID }), ON);
    expect(isApprover({ id: 'bob', name: 'Bob', slack: 'U0123ABCD' }, signedIn)).toBe(false);
    expect(isApprover({ id: 'bob', name: 'Bob', slack: 'U0123ABCD' }, { ...signedIn!, oid: undefined })).toBe(
      false,
    );
  });

  test('four-eyes knows a requester by approver id, Slack id, Entra id or sign-in e-mail', () => {
    const approvers = parseApprovers(
      `alice:slack=U0123ABCD:entra=${OID}, bob:entra=bob@example.com, carol:slack=U0999ZZZZ`,
    );
    expect(approversOf(approvers, 'slack:U0123ABCD')).toEqual(['alice']);
    expect(approversOf(approvers, 'carol')).toEqual(['carol']);
    expect(approversOf(approvers, 'entra:bob@example.com')).toEqual(['bob']);
    expect(approversOf(approvers, 'slack:U0999ZZZZ', ['bob@example.com'])).toEqual(['bob', 'carol']);
    expect(approversOf(approvers, 'slack:undefined')).toEqual([]);
    expect(approversOf(approvers, 'entra:undefined')).toEqual([]);
  });
});

describe('a function-key caller', () => {
  test('is named by a 12-hex fingerprint that is not a plain hash of the key', () => {
    const id = keyId('secret-key-value');
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(id).not.toBe(keyId('secret-key-valuf'));
    expect(createHash('sha256').update('secret-key-value').digest('hex')).not.toContain(id);
    expect(keyId('secret-key-value')).toBe(id);
  });

  test('the header key is preferred over the query key; no key at all is "unknown"', () => {
    const req = (h: Record<string, string>, url = 'https://app.example.net/api/x') =>
      new HttpRequest({ method: 'POST', url, headers: h });
    expect(requestCaller(req({ 'x-functions-key': 'hk' }, 'https://app.example.net/api/x?code=qk')).id).toBe(
      `key:${keyId('hk')}`,
    );
    expect(requestCaller(req({})).id).toBe('key:unknown');
    expect(requestCaller({ headers: headers({}) })).toEqual({
      kind: 'key',
      id: 'key:unknown',
      name: 'key:unknown',
    });
  });
});
