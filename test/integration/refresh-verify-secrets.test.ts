/**
 * Issue #16 wired into the refresh: the verifier the refresh's "anonymize + verify" step runs
 * (`verifyNoPii`, which the activity calls with `secrets: true`) also checks the secret catalogue
 * (sql/lib/secrets.sql) on the same connection. On a real PostgreSQL 15 with the Odoo 17 fixture and
 * its integrations (apps/60-integrations.sql: real Odoo column names, live-looking credentials):
 * the copy refreshed by the same psql script the activity sends to the VM passes; the same copy with
 * one planted live credential — a Stripe key, a Gmail OAuth refresh token, an OAuth client secret in
 * ir_config_parameter, PROD's guest token back on mail_guest — fails, naming each place with a count
 * and never the value.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { refreshScript } from '../../functions/activities/refresh';
import { samplePii, verifyNoPii } from '../../shared/adapters/pii-verifier';
import { buildRefreshCommand, extensionScripts, SQL_DIR } from '../../shared/adapters/sql-scripts';
import { formatReport, type PiiSample } from '../../shared/domain/pii';
import { PG_BIN, startPostgres, type PgServer } from '../support/postgres';
import { loadOdooAppsFixture } from '../fixtures/odoo/load';

jest.setTimeout(180_000);

const HASH = '$pbkdf2-sha512$600000$c2FsdA$aGFzaGhhc2hoYXNo';
let pg: PgServer;
let sample: PiiSample;

beforeAll(async () => {
  pg = await startPostgres();
  loadOdooAppsFixture(pg, 'prod', 17, {
    partners: 60,
    filter: (f) => f.startsWith('00-') || f.startsWith('60-'),
  });
  sample = await samplePii(pg.uri('prod'), { keepLogins: ['admin'] });
  pg.psql('postgres', 'CREATE DATABASE uat TEMPLATE prod');
  // the script the refresh activity feeds to `odoo-ops run-sql` (neutralize + anonymize)
  const cmd = buildRefreshCommand({
    database: 'uat',
    uatUrl: 'https://uat.test',
    passwordHash: HASH,
    keepLogins: ['admin'],
    extensions: extensionScripts(),
  });
  const r = spawnSync(
    path.join(PG_BIN, 'psql'),
    ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', 'uat', '-f', '-'],
    { input: refreshScript(cmd), env: pg.env, encoding: 'utf8', cwd: '/' },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});
afterAll(() => pg?.stop());

const q = (db: string, sql: string): string => pg.psql(db, sql).trim();

test('the un-refreshed PROD copy fails on its credentials, by place', async () => {
  const report = await verifyNoPii(pg.uri('prod'), sample);
  expect(report.ok).toBe(false);
  expect((report.secrets ?? []).map((s) => s.place)).toEqual(
    expect.arrayContaining([
      'payment_provider.stripe_secret_key',
      'ir_mail_server.google_gmail_refresh_token',
      'ir_config_parameter[google_gmail_client_secret]',
    ]),
  );
});

test('the refreshed copy passes; one planted live credential at a time fails, naming the place, never the value', async () => {
  const clean = await verifyNoPii(pg.uri('uat'), sample);
  expect(clean.secrets).toEqual([]);
  expect(clean.ok).toBe(true);

  const guestToken = q('prod', `SELECT access_token FROM mail_guest ORDER BY id LIMIT 1`);
  expect(guestToken).not.toBe('');
  const plants: Array<{ place: string; rule: string; plant: string; undo: string; value: string }> = [
    {
      place: 'payment_provider.stripe_secret_key',
      rule: 'empty',
      value: 'planted-stripe-secret-51Qplanted0000secretKeyUAT',
      plant: `UPDATE payment_provider SET stripe_secret_key = 'planted-stripe-secret-51Qplanted0000secretKeyUAT' WHERE id = (SELECT min(id) FROM payment_provider)`,
      undo: `UPDATE payment_provider SET stripe_secret_key = NULL`,
    },
    {
      place: 'ir_mail_server.google_gmail_refresh_token',
      rule: 'empty',
      value: '1//09plantedGmailRefreshToken-xyz',
      plant: `UPDATE ir_mail_server SET google_gmail_refresh_token = '1//09plantedGmailRefreshToken-xyz' WHERE id = (SELECT min(id) FROM ir_mail_server)`,
      undo: `UPDATE ir_mail_server SET google_gmail_refresh_token = NULL`,
    },
    {
      place: 'ir_config_parameter[google_gmail_client_secret]',
      rule: 'empty',
      value: 'GOCSPX-plantedClientSecret99',
      plant: `INSERT INTO ir_config_parameter (key, value) VALUES ('google_gmail_client_secret', 'GOCSPX-plantedClientSecret99')`,
      undo: `DELETE FROM ir_config_parameter WHERE key = 'google_gmail_client_secret'`,
    },
    {
      // PROD's guest link must not open UAT: the rotated token is the only accepted value
      place: 'mail_guest.access_token',
      rule: 'rotate',
      value: guestToken,
      plant: `UPDATE mail_guest SET access_token = '${guestToken.replace(/'/g, "''")}' WHERE id = (SELECT min(id) FROM mail_guest)`,
      undo: '',
    },
  ];
  for (const p of plants) {
    const before = p.undo ? '' : q('uat', `SELECT access_token FROM mail_guest ORDER BY id LIMIT 1`);
    q('uat', p.plant);
    try {
      const report = await verifyNoPii(pg.uri('uat'), sample);
      expect({ place: p.place, ok: report.ok }).toEqual({ place: p.place, ok: false });
      expect(report.secrets).toEqual([
        {
          place: p.place,
          rule: p.rule,
          count: 1,
          table: p.place.split(/[.[]/)[0],
          column: expect.any(String),
        },
      ]);
      const text = formatReport(report);
      expect(text).toContain(`${p.place}: 1 catalogued credential(s) left (rule: ${p.rule})`);
      expect(JSON.stringify(report) + text).not.toContain(p.value);
    } finally {
      q(
        'uat',
        p.undo ||
          `UPDATE mail_guest SET access_token = '${before}' WHERE id = (SELECT min(id) FROM mail_guest)`,
      );
    }
  }
  // and the copy is clean again: the planted values were the only findings
  expect((await verifyNoPii(pg.uri('uat'), sample)).ok).toBe(true);
});

test('the check changes nothing: PROD credentials are counted, not emptied', async () => {
  const digest = `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM (SELECT p::text AS x FROM payment_provider p UNION ALL SELECT c::text FROM ir_config_parameter c) s`;
  const before = q('prod', digest);
  const report = await verifyNoPii(pg.uri('prod'), sample);
  expect(report.secrets?.length).toBeGreaterThan(3);
  expect(q('prod', digest)).toBe(before);
});

test("the operators' stand-alone sql/verify.sql checks the same catalogue: passes, then fails on a planted key", () => {
  const verify = (): ReturnType<typeof spawnSync> =>
    spawnSync(
      path.join(PG_BIN, 'psql'),
      ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', 'uat', '-f', path.join(SQL_DIR, 'verify.sql')],
      { env: pg.env, encoding: 'utf8' },
    );
  const ok = verify();
  expect({ status: ok.status, findings: String(ok.stdout).trim(), stderr: String(ok.stderr) }).toEqual({
    status: 0,
    findings: '',
    stderr: '',
  });
  const key = 'planted-stripe-secret-51QverifySqlPlantedKey';
  q(
    'uat',
    `UPDATE payment_provider SET stripe_secret_key = '${key}' WHERE id = (SELECT min(id) FROM payment_provider)`,
  );
  try {
    const r = verify();
    expect(r.status).toBe(3);
    expect(String(r.stdout)).toContain('live credential (empty)|payment_provider.stripe_secret_key|1');
    expect(String(r.stderr)).toContain('refresh verification FAILED: 1 finding(s)');
    expect(String(r.stdout) + String(r.stderr)).not.toContain(key);
  } finally {
    q('uat', `UPDATE payment_provider SET stripe_secret_key = NULL`);
  }
});
