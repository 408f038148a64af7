import path from 'node:path';
import {
  buildRefreshCommand,
  extensionScripts,
  redactPsqlErrors,
  shellCommand,
  SQL_DIR,
} from '../../shared/adapters/sql-scripts';
import { errorCode } from '../../shared/domain/errors';
import { buildSample, lookupKeys, wholeKey } from '../../shared/domain/pii';

const HASH = '$pbkdf2-sha512$600000$c2FsdA$aGFzaA';

describe('buildRefreshCommand', () => {
  test('the full command: variables, the secret on stdin, scripts in order', () => {
    const cmd = buildRefreshCommand({
      database: 'uat',
      uatUrl: 'https://uat.example.com',
      passwordHash: HASH,
      keepLogins: ['admin', 'ops'],
      dropAttachments: true,
      sqlDir: '/opt/odoo-ops/sql',
      extensions: ['10-loyalty.sql', '20-crm.sql'],
    });
    expect(cmd.args).toEqual([
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-d',
      'uat',
      '-v',
      'uat_url=https://uat.example.com',
      '-v',
      'keep_logins=admin,ops',
      '-v',
      'drop_attachments=on',
      '-f',
      '-',
      '-f',
      '/opt/odoo-ops/sql/neutralize.sql',
      '-f',
      '/opt/odoo-ops/sql/anonymize.sql',
      '-f',
      '/opt/odoo-ops/sql/anonymize.d/10-loyalty.sql',
      '-f',
      '/opt/odoo-ops/sql/anonymize.d/20-crm.sql',
    ]);
    expect(cmd.stdin).toBe(`\\set uat_password_hash '${HASH}'\n`);
    expect(cmd.args.join(' ')).not.toContain(HASH);
  });
  test('defaults: only what is given; neutralize only', () => {
    expect(buildRefreshCommand({ database: 'db', sqlDir: '/s' })).toEqual({
      args: [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-d',
        'db',
        '-f',
        '/s/neutralize.sql',
        '-f',
        '/s/anonymize.sql',
      ],
      stdin: '',
    });
    // neutralize.sql sets the kept logins' password: the hash goes with it (on stdin), and 'admin' is always kept
    expect(
      buildRefreshCommand({
        database: 'db',
        sqlDir: '/s',
        neutralizeOnly: true,
        passwordHash: HASH,
        keepLogins: ['tester'],
        extensions: ['x.sql'],
      }),
    ).toEqual({
      args: [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-d',
        'db',
        '-v',
        'keep_logins=admin,tester',
        '-f',
        '-',
        '-f',
        '/s/neutralize.sql',
      ],
      stdin: `\\set uat_password_hash '${HASH}'\n`,
    });
    expect(buildRefreshCommand({ database: 'db', dropAttachments: false }).args).toContain(
      'drop_attachments=off',
    );
    expect(buildRefreshCommand({ database: 'db' }).args).toContain(path.join(SQL_DIR, 'neutralize.sql'));
  });
  test.each([
    [{ database: '' }, /database name/],
    [{ database: 'a b' }, /database name/],
    [{ database: 'db', uatUrl: 'uat.example.com' }, /uatUrl/],
    [{ database: 'db', uatUrl: 'ftp://uat.example.com' }, /uatUrl/],
    [{ database: 'db', passwordHash: 'plaintext' }, /passwordHash/],
    [{ database: 'db', passwordHash: "$pbkdf2-sha512$1$a'b$c" }, /passwordHash/],
    // Odoo 16-18 verify pbkdf2-sha512 only: a sha256 hash would leave nobody able to log in
    [{ database: 'db', passwordHash: '$pbkdf2-sha256$29000$c2FsdA$aGFzaA' }, /passwordHash/],
    [{ database: 'db', keepLogins: ['a,b'] }, /keepLogins/],
    [{ database: 'db', extensions: ['../../etc/x.sql'] }, /extension/],
    [{ database: 'db', extensions: ['notes.txt'] }, /extension/],
  ])('refuses bad input %j', (params, message) => {
    let err: unknown;
    try {
      buildRefreshCommand(params);
    } catch (e) {
      err = e;
    }
    expect(errorCode(err)).toBe('SQL.BAD_PARAMETER');
    expect((err as Error).message).toMatch(message);
    if ('passwordHash' in params) expect((err as Error).message).not.toContain(params.passwordHash);
  });
});

test('shellCommand quotes what the shell would interpret', () => {
  expect(shellCommand('psql', ['-d', 'uat', '-v', "keep_logins=o'neil", '-f', '/a b/x.sql'])).toBe(
    `psql -d uat -v 'keep_logins=o'\\''neil' -f '/a b/x.sql'`,
  );
});

test('redactPsqlErrors keeps the error, drops lines that can quote row values', () => {
  const stderr = [
    'psql:/sql/anonymize.sql:120: ERROR:  new row for relation "res_partner" violates check constraint "x_city"',
    'DETAIL:  Failing row contains (4, Sophie Peeters, sophie@gmail.com).',
    'CONTEXT:  SQL statement "UPDATE res_partner SET ..."',
    'LINE 1: UPDATE res_partner SET name = ...',
    '        ^',
  ].join('\n');
  expect(redactPsqlErrors(stderr)).toBe(
    'psql:/sql/anonymize.sql:120: ERROR:  new row for relation "res_partner" violates check constraint "x_city"',
  );
});

test('extensionScripts lists anonymize.d/*.sql in name order', () => {
  expect(extensionScripts()).toEqual(expect.arrayContaining(['50-example-loyalty-card.sql']));
  expect(extensionScripts('/nonexistent')).toEqual([]);
});

describe("the verifier's lookup keys", () => {
  test('wholeKey: lower case without separators or whitespace, for names and codes alike', () => {
    expect(wholeKey(' Jean-Paul  DUPONT\t')).toBe('jeanpauldupont');
    expect(wholeKey('BE71 0961-2345.6769')).toBe('be71096123456769');
    // folded the same way whatever the database's ctype (sql/lib/pii.sql odoo_fold): no accents
    expect(wholeKey('Élodie Müller')).toBe('elodiemuller');
    expect(wholeKey('ÉLODIE MÜLLER')).toBe('elodiemuller');
  });
  test('texts and codes share one set; texts too short without separators are kept as they are', () => {
    const sample = buildSample([
      { kind: 'name', value: 'Sophie Peeters' },
      { kind: 'name', value: 'Li Na' },
      { kind: 'vat', value: 'BE 0477.472.701' },
      { kind: 'email', value: 'Sophie@Gmail.com' },
      { kind: 'phone', value: '+32 475 12 34 56' },
    ]);
    const keys = lookupKeys(sample);
    expect(keys.whole.sort()).toEqual(['be0477472701', 'sophie@gmailcom', 'sophiepeeters']);
    expect(keys.shortTexts).toEqual(['li na']);
    expect(keys.phones).toEqual(['475123456']);
    expect(keys.emails).toEqual(['sophie@gmail.com']);
  });
});
