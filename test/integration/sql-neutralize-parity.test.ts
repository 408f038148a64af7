/**
 * Issue #16, "no live credential left; UAT stays usable": sql/neutralize.sql against Odoo 16, 17 and 18
 * databases (test/fixtures/odoo + apps/60-integrations.sql: real Odoo table and column names, live-looking
 * planted credentials), on a real PostgreSQL, with the documented command run TWICE:
 *
 *   psql -v ON_ERROR_STOP=1 -d DB -f sql/neutralize.sql -f sql/anonymize.sql
 *
 * (the settings UAT_URL / UAT_PASSWORD_HASH / REFRESH_KEEP_LOGINS in the environment, as on a VM).
 * Afterwards an independent scan of every text-like column of every table finds none of the planted
 * values, each integration is disabled, admin and the kept test login can log in with the configured
 * password (checked with passlib's pbkdf2-sha512 algorithm, not by string equality) and nobody else can.
 * Then, per integration, the statement that handles it is removed from a copy of sql/ and the same
 * check must fail: no statement is dead weight.
 */
import { pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PG_BIN, PgServer, startPostgres } from '../support/postgres';
import {
  FIXTURE_DIR,
  ODOO_VERSIONS,
  OdooVersion,
  appFixtureFiles,
  loadOdooFixture,
  psqlFiles,
} from '../fixtures/odoo/load';
import { SQL_DIR } from '../../shared/adapters/sql-scripts';
import { findSecrets } from '../../shared/adapters/secret-catalogue';
import { Client } from 'pg';

// ---- Odoo's password hashes (passlib pbkdf2_sha512: $pbkdf2-sha512$<rounds>$<salt>$<checksum>, "ab64") ----
const ab64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '').replace(/\+/g, '.');
const unab64 = (s: string): Buffer => Buffer.from(s.replace(/\./g, '+'), 'base64');
function odooHash(password: string, rounds = 25_000): string {
  const salt = randomBytes(16);
  return `$pbkdf2-sha512$${rounds}$${ab64(salt)}$${ab64(pbkdf2Sync(password, salt, rounds, 64, 'sha512'))}`;
}
/** What Odoo's login does with the stored value: verify the password against it. */
function canLogIn(password: string, stored: string | null): boolean {
  const m = /^\$pbkdf2-sha512\$(\d+)\$([./A-Za-z0-9]+)\$([./A-Za-z0-9]+)$/.exec(stored ?? '');
  if (!m) return false;
  const want = unab64(m[3]);
  const got = pbkdf2Sync(password, unab64(m[2]), Number(m[1]), want.length, 'sha512');
  return want.length === 64 && timingSafeEqual(got, want);
}

const PASSWORD = `uat-${randomBytes(6).toString('hex')}`;
const HASH = odooHash(PASSWORD);
const UAT_URL = 'https://uat.fabrikam.test';
const TESTER = 'uat.tester';

let pg: PgServer;
// Odoo's metadata tables (00) and the integrations (60): the per-app files compose
const appsFiles = (): string[] => appFixtureFiles((f) => f.startsWith('00-') || f.startsWith('60-'));

function template(version: OdooVersion): string {
  return `tpl${version}`;
}

beforeAll(async () => {
  pg = await startPostgres();
  for (const v of ODOO_VERSIONS) {
    const db = template(v);
    loadOdooFixture(pg, db, v, { partners: 60 });
    psqlFiles(pg, db, appsFiles(), { odoo_version: v, partners: 60 });
    // a test login, archived on PROD, kept for UAT by REFRESH_KEEP_LOGINS
    pg.psql(
      db,
      `INSERT INTO res_users (login, password, partner_id, company_id, active, share) VALUES ('${TESTER}', '$pbkdf2-sha512$600000$prodTesterSalt$prodTesterHashValue0123456789', 5, 1, false, false)`,
    );
    // 18: the admin's PROD login is a person's address
    if (v === 18)
      pg.psql(db, `UPDATE res_users SET login = 'mitchell.admin@fabrikam-consulting.be' WHERE id = 2`);
  }
}, 180_000);
afterAll(() => pg?.stop());

/** The documented minimal command, settings in the environment (as the VM / an operator has them). */
function refresh(
  db: string,
  sqlDir = SQL_DIR,
  env: Record<string, string> = {},
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    path.join(PG_BIN, 'psql'),
    [
      '-X',
      '-v',
      'ON_ERROR_STOP=1',
      '-d',
      db,
      '-f',
      path.join(sqlDir, 'neutralize.sql'),
      '-f',
      path.join(sqlDir, 'anonymize.sql'),
    ],
    {
      env: { ...pg.env, UAT_URL, UAT_PASSWORD_HASH: HASH, REFRESH_KEEP_LOGINS: `admin,${TESTER}`, ...env },
      encoding: 'utf8',
    },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function mustRefresh(db: string, sqlDir?: string): string {
  const r = refresh(db, sqlDir);
  if (r.status !== 0) throw new Error(`refresh failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
const q = (db: string, sql: string): string => pg.psql(db, sql);
/** psql with the query on stdin (the scan's query is too long for an argument) */
function qLong(db: string, sql: string): string {
  const r = spawnSync(
    path.join(PG_BIN, 'psql'),
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-d', db, '-f', '-'],
    { env: pg.env, input: sql, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 },
  );
  if (r.status !== 0) throw new Error(`psql failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

// ---- what a person would look for: the planted credentials, read from PROD before the refresh -------
/** [table, column] of the planted credentials (hand-written from Odoo's field names, not from the catalogue) */
const PLANTED_COLUMNS: Array<[string, string]> = [
  ['ir_mail_server', 'smtp_pass'],
  ['ir_mail_server', 'google_gmail_authorization_code'],
  ['ir_mail_server', 'google_gmail_refresh_token'],
  ['ir_mail_server', 'google_gmail_access_token'],
  ['ir_mail_server', 'microsoft_outlook_refresh_token'],
  ['ir_mail_server', 'microsoft_outlook_access_token'],
  ['ir_mail_server', 'smtp_ssl_private_key'],
  ['fetchmail_server', 'password'],
  ['fetchmail_server', 'google_gmail_refresh_token'],
  ['fetchmail_server', 'google_gmail_access_token'],
  ['fetchmail_server', 'microsoft_outlook_refresh_token'],
  ['mail_ice_server', 'credential'],
  ['mail_partner_device', 'endpoint'],
  ['mail_push_device', 'endpoint'],
  ...[
    'stripe_secret_key',
    'stripe_publishable_key',
    'stripe_webhook_secret',
    'adyen_api_key',
    'adyen_client_key',
    'adyen_hmac_key',
    'adyen_merchant_account',
    'authorize_login',
    'authorize_transaction_key',
    'authorize_signature_key',
    'authorize_client_key',
    'mollie_api_key',
    'razorpay_key_id',
    'razorpay_key_secret',
    'razorpay_webhook_secret',
    'acmepay_login',
    'acmepay_api_key',
    'paypal_email_account',
    'paypal_seller_account',
    'paypal_pdt_token',
    'ogone_pspid',
    'ogone_userid',
    'ogone_password',
    'ogone_shakey_in',
    'ogone_shakey_out',
    'xendit_public_key',
    'xendit_secret_key',
    'xendit_webhook_token',
    'aps_merchant_identifier',
    'aps_access_code',
    'aps_sha_request',
    'aps_sha_response',
    'paypal_client_id',
    'paypal_client_secret',
    'paypal_access_token',
    'worldline_pspid',
    'worldline_api_key',
    'worldline_api_secret',
    'worldline_webhook_key',
    'worldline_webhook_secret',
  ].map((c): [string, string] => ['payment_provider', c]),
  ['payment_token', 'provider_ref'],
  ['payment_token', 'stripe_payment_method'],
  ['pos_payment_method', 'adyen_api_key'],
  ...[
    'dhl_SiteID',
    'dhl_password',
    'dhl_account_number',
    'fedex_developer_key',
    'fedex_developer_password',
    'fedex_account_number',
    'fedex_meter_number',
    'ups_username',
    'ups_passwd',
    'ups_shipper_number',
    'ups_access_number',
    'sendcloud_public_key',
    'sendcloud_secret_key',
    'easypost_test_api_key',
    'easypost_production_api_key',
  ].map((c): [string, string] => ['delivery_carrier', c]),
  ['google_calendar_credentials', 'calendar_rtoken'],
  ['google_calendar_credentials', 'calendar_token'],
  ['google_calendar_credentials', 'calendar_sync_token'],
  ['microsoft_calendar_credentials', 'calendar_sync_token'],
  ['res_users_settings', 'google_calendar_rtoken'],
  ['res_users_settings', 'google_calendar_token'],
  ['res_users_settings', 'google_calendar_sync_token'],
  ['res_users_settings', 'microsoft_calendar_sync_token'],
  ['res_users', 'microsoft_calendar_sync_token'],
  ['res_users', 'microsoft_calendar_rtoken'],
  ['res_users', 'microsoft_calendar_token'],
  ['res_users', 'oauth_access_token'],
  ['res_users', 'totp_secret'],
  ['account_edi_proxy_client_user', 'refresh_token'],
  ['account_edi_proxy_client_user', 'private_key'],
  ['website', 'google_maps_api_key'],
  ['website', 'plausible_shared_key'],
  ['iap_account', 'account_token'],
  ['sale_order', 'access_token'],
  ['account_move', 'access_token'],
  ['mail_guest', 'access_token'],
  ['survey_user_input', 'access_token'],
  ['website_visitor', 'access_token'],
  ['discuss_channel', 'uuid'],
  ['mail_channel', 'uuid'],
  ['base_automation', 'webhook_uuid'],
  ['ir_act_server', 'webhook_url'],
  ['x_acme_connector', 'x_api_token'],
  ['x_acme_connector', 'x_client_secret'],
];
const PLANTED_PARAMS = [
  'mail.web_push_vapid_private_key',
  'mail.web_push_vapid_public_key',
  'mail.sfu_server_key',
  'mail.twilio_account_token',
  'google_gmail_client_secret',
  'microsoft_outlook_client_secret',
  'google_calendar_client_secret',
  'recaptcha_private_key',
  'x_acme_connector.api_token',
  'cloud_storage_azure_client_secret',
  'discuss.tenor_api_key',
  'database.secret',
];

function hasColumn(db: string, t: string, c: string): boolean {
  return (
    q(
      db,
      `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '${t}' AND column_name = '${c}'`,
    ) === '1'
  );
}
/** Every planted value of this database (what PROD holds), by place. */
function plantedValues(db: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [t, c] of PLANTED_COLUMNS) {
    if (!hasColumn(db, t, c)) continue;
    const expr =
      q(
        db,
        `SELECT data_type FROM information_schema.columns WHERE table_name = '${t}' AND column_name = '${c}'`,
      ) === 'bytea'
        ? `convert_from("${c}", 'UTF8')`
        : `"${c}"`;
    const vals = q(
      db,
      `SELECT replace(${expr}, E'\\n', ' ') FROM "${t}" WHERE "${c}" IS NOT NULL AND length("${c}"::text) >= 8`,
    );
    for (const v of vals.split('\n').filter(Boolean)) {
      // the scan looks for the secret part (a PEM's body, not its armour)
      const needle = v.includes('-----') ? v.replace(/-----[A-Z ]+-----/g, ' ').trim() : v;
      out.set(needle, `${t}.${c}`);
    }
  }
  for (const k of PLANTED_PARAMS) {
    const v = q(db, `SELECT value FROM ir_config_parameter WHERE key = '${k}'`);
    if (v) out.set(v, `ir_config_parameter[${k}]`);
  }
  return out;
}
/** An independent scan: every text, varchar, char, json(b), text[] and bytea column of every table, in one query. */
function scan(db: string, planted: Map<string, string>): string[] {
  const needles = [...planted.keys()].map((v) => `'${v.replace(/'/g, "''").toLowerCase()}'`).join(',');
  const cols = q(
    db,
    `SELECT c.table_name || '|' || c.column_name || '|' || c.data_type FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND (c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json', 'bytea') OR c.udt_name = '_text')`,
  )
    .split('\n')
    .map((l) => l.split('|'));
  const parts = cols.map(([t, c, typ]) => {
    const expr = typ === 'bytea' ? `encode("${c}", 'escape')` : `"${c}"::text`;
    return `SELECT DISTINCT '${t}.${c}' AS place, n FROM "${t}", unnest(ARRAY[${needles}]) n WHERE strpos(lower(${expr}), n) > 0`;
  });
  const rows = qLong(db, `SELECT place || '|' || n FROM (${parts.join('\nUNION ALL ')}) x ORDER BY 1`);
  return rows
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [place, n] = l.split('|');
      return `${place} holds ${[...planted.entries()].find(([v]) => v.toLowerCase() === n)?.[1] ?? n}`;
    });
}

describe.each(ODOO_VERSIONS.map((v) => [v] as [OdooVersion]))(
  'Odoo %i: the documented command, twice',
  (version) => {
    const db = `uat${version}`;
    let planted: Map<string, string>;

    beforeAll(() => {
      q('postgres', `CREATE DATABASE ${db} TEMPLATE ${template(version)}`);
      planted = plantedValues(db);
    });

    test('the fixture plants live credentials of every integration, and the scan finds them', () => {
      expect(planted.size).toBeGreaterThan(version === 16 ? 60 : 65);
      const places = new Set(planted.values());
      for (const p of [
        'payment_provider.stripe_secret_key',
        'delivery_carrier.dhl_password',
        'ir_mail_server.google_gmail_refresh_token',
        'iap_account.account_token',
        'mail_guest.access_token',
      ]) {
        expect(places).toContain(p);
      }
      expect(places).toContain(
        version === 18
          ? 'res_users_settings.google_calendar_rtoken'
          : 'google_calendar_credentials.calendar_rtoken',
      );
      expect(scan(db, planted).length).toBeGreaterThanOrEqual(planted.size);
    });

    // Odoo 16-18 disable every OAuth provider; the 'auth_oauth.dont_neutralize_providers' parameter
    // that would keep some comes from an open pull request (odoo/odoo#234130), not from 18.0: a PROD
    // that carries it (set for a patched module, or by hand) still gets every provider disabled
    test('a provider listed in auth_oauth.dont_neutralize_providers is disabled all the same', () => {
      const odb = `oauth${version}`;
      q('postgres', `CREATE DATABASE ${odb} TEMPLATE ${template(version)}`);
      try {
        q(
          odb,
          `INSERT INTO ir_config_parameter (key, value) SELECT 'auth_oauth.dont_neutralize_providers', jsonb_agg(id)::text FROM auth_oauth_provider`,
        );
        // every provider enabled on PROD, each of them listed in the parameter
        expect(
          q(odb, `SELECT count(*) > 0 AND bool_and(enabled) FROM auth_oauth_provider`) +
            q(
              odb,
              `SELECT value FROM ir_config_parameter WHERE key = 'auth_oauth.dont_neutralize_providers'`,
            ),
        ).toMatch(/^t\[\d+(, \d+)*\]$/);
        mustRefresh(odb);
        expect(q(odb, `SELECT count(*) FROM auth_oauth_provider WHERE enabled`)).toBe('0');
      } finally {
        q('postgres', `DROP DATABASE ${odb}`);
      }
    });

    test('runs clean twice; the second run changes nothing', () => {
      mustRefresh(db);
      const dump1 =
        q(db, `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM (SELECT * FROM res_users) x`) +
        q(db, `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM ir_config_parameter x`);
      mustRefresh(db);
      const dump2 =
        q(db, `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM (SELECT * FROM res_users) x`) +
        q(db, `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM ir_config_parameter x`);
      expect(dump2).toBe(dump1);
    });

    test('no planted credential is left anywhere (independent scan of every text-like column)', () => {
      expect(scan(db, planted)).toEqual([]);
    });

    test('every integration is disabled', () => {
      expect(q(db, `SELECT string_agg(smtp_host, ',') FROM ir_mail_server WHERE active`)).toBe('invalid');
      expect(q(db, `SELECT count(*) FROM fetchmail_server WHERE active`)).toBe('0');
      expect(q(db, `SELECT count(*) FROM payment_provider WHERE state NOT IN ('test', 'disabled')`)).toBe(
        '0',
      );
      expect(q(db, `SELECT count(*) FROM payment_token WHERE active`)).toBe('0');
      expect(q(db, `SELECT count(*) FROM payment_token WHERE provider_ref IS NULL`)).toBe('0'); // required: emptied, not NULL
      expect(q(db, `SELECT count(*) FROM pos_payment_method WHERE use_payment_terminal IS NOT NULL`)).toBe(
        '0',
      );
      expect(q(db, `SELECT count(*) FROM delivery_carrier WHERE prod_environment`)).toBe('0');
      expect(
        q(
          db,
          `SELECT string_agg(delivery_type, ',' ORDER BY delivery_type) FROM delivery_carrier WHERE active`,
        ),
      ).toBe('base_on_rule,fixed');
      expect(q(db, `SELECT count(*) FROM auth_oauth_provider WHERE enabled`)).toBe('0');
      expect(
        q(db, `SELECT count(*) FROM iap_account WHERE account_token IS NOT NULL AND account_token <> ''`),
      ).toBe('0');
      expect(q(db, `SELECT count(*) FROM website WHERE domain IS NOT NULL OR cdn_activated`)).toBe('0');
      expect(
        q(
          db,
          `SELECT string_agg(key, ',' ORDER BY key) FROM ir_ui_view WHERE key LIKE '%neutralize%' AND active`,
        ),
      ).toBe('web.neutralize_banner,website.neutralize_ribbon');
      // calendar sync stopped where each version keeps it (16/17: credential tables; 18: settings)
      if (version === 18) {
        expect(
          q(
            db,
            `SELECT bool_and(google_synchronization_stopped AND microsoft_synchronization_stopped) FROM res_users_settings WHERE google_synchronization_stopped IS NOT NULL`,
          ),
        ).toBe('t');
      } else {
        expect(q(db, `SELECT bool_and(synchronization_stopped) FROM google_calendar_credentials`)).toBe('t');
        expect(
          q(
            db,
            version === 16
              ? `SELECT bool_and(microsoft_synchronization_stopped) FROM res_users WHERE microsoft_synchronization_stopped IS NOT NULL`
              : `SELECT bool_and(synchronization_stopped) || ' ' || count(last_sync_date) FROM microsoft_calendar_credentials`,
          ),
        ).toBe(version === 16 ? 't' : 'true 0');
      }
      if (version === 16) {
        // 16: no edi_mode on the user: the whole client goes to demo mode, IAP to its sandbox (as Odoo 16)
        expect(
          q(
            db,
            `SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM ir_config_parameter WHERE key IN ('account_edi_proxy_client.demo', 'iap.endpoint')`,
          ),
        ).toBe('account_edi_proxy_client.demo=True,iap.endpoint=https://iap-sandbox.odoo.com');
        expect(q(db, `SELECT count(*) FROM mail_partner_device`)).toBe('0');
      } else {
        expect(
          q(
            db,
            `SELECT string_agg(proxy_type || '=' || edi_mode || '/' || active, ',' ORDER BY proxy_type) FROM account_edi_proxy_client_user`,
          ),
        ).toBe('l10n_in_edi=test/true,l10n_my_edi=prod/false,peppol=demo/true');
        expect(q(db, `SELECT count(*) FROM base_automation WHERE trigger = 'on_webhook' AND active`)).toBe(
          '0',
        );
        expect(
          q(db, `SELECT count(*) FROM ${version >= 18 ? 'mail_push_device' : 'mail_partner_device'}`),
        ).toBe('0');
      }
      const params = new Set(q(db, `SELECT key FROM ir_config_parameter`).split('\n'));
      for (const k of [
        'mail.sfu_server_url',
        'mail.use_sfu_server',
        'mail.sfu_server_key',
        'google_gmail_client_id',
        'x_acme_connector.api_token',
      ])
        expect(params).not.toContain(k);
      expect(params).toContain('auth_signup.reset_password'); // a setting, not a secret
    });

    test("portal, guest and invitation tokens are rotated: present (Odoo needs them), not PROD's", () => {
      for (const [t, c] of [
        ['sale_order', 'access_token'],
        ['mail_guest', 'access_token'],
        ['website_visitor', 'access_token'],
        [version >= 17 ? 'discuss_channel' : 'mail_channel', 'uuid'],
      ]) {
        expect(`${t}.${c}: ${q(db, `SELECT count(*) FROM ${t} WHERE ${c} ~ '^[0-9a-f-]{32,36}$'`)}`).toBe(
          `${t}.${c}: 1`,
        );
      }
      if (version >= 17)
        expect(
          q(db, `SELECT webhook_uuid ~ '^[0-9a-f-]{36}$' FROM base_automation WHERE trigger = 'on_webhook'`),
        ).toBe('t');
    });

    test('UAT is usable: web.base.url, admin and the test login log in with the configured password, nobody else can', () => {
      expect(q(db, `SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'`)).toBe(UAT_URL);
      expect(q(db, `SELECT value FROM ir_config_parameter WHERE key = 'web.base.url.freeze'`)).toBe('True');
      const users = q(
        db,
        `SELECT login || '|' || active || '|' || coalesce(password, '') FROM res_users ORDER BY id`,
      )
        .split('\n')
        .map((l) => l.split('|'));
      const canLog = users
        .filter(([, active, pw]) => active === 'true' && canLogIn(PASSWORD, pw))
        .map(([login]) => login);
      expect(canLog.sort()).toEqual(['admin', TESTER]);
      // nobody else has any password at all (not PROD's either)
      expect(
        users.filter(([login, , pw]) => pw && !['admin', TESTER].includes(login)).map(([login]) => login),
      ).toEqual([]);
      expect(q(db, `SELECT login FROM res_users WHERE id = 2`)).toBe('admin'); // 18: was a person's address
      expect(q(db, `SELECT count(*) FROM res_users WHERE totp_secret IS NOT NULL`)).toBe('0');
      expect(canLogIn('wrong-password', users.find(([l]) => l === 'admin')![2])).toBe(false);
    });
  },
);

describe('the catalogue check (sql/verify-secrets.sql and findSecrets): places and counts, never values', () => {
  async function viaClient(db: string): Promise<Awaited<ReturnType<typeof findSecrets>>> {
    const c = new Client({ connectionString: pg.uri(db) });
    await c.connect();
    try {
      return await findSecrets(c);
    } finally {
      await c.end();
    }
  }
  const verify = (db: string): ReturnType<typeof spawnSync> =>
    spawnSync(
      path.join(PG_BIN, 'psql'),
      ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', db, '-f', path.join(SQL_DIR, 'verify-secrets.sql')],
      { env: pg.env, encoding: 'utf8' },
    );

  test('a PROD copy fails, naming each place; the refreshed copy passes; nothing is changed by checking', async () => {
    const prod = template(17);
    const before = q(prod, `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM payment_provider x`);
    const findings = await viaClient(prod);
    const places = findings.map((f) => f.place);
    expect(places).toEqual(
      expect.arrayContaining([
        'payment_provider.stripe_secret_key',
        'delivery_carrier.dhl_password',
        'ir_mail_server.google_gmail_refresh_token',
        'ir_mail_server.smtp_ssl_private_key',
        'mail_guest.access_token',
        'discuss_channel.uuid',
        'mail_partner_device (rows)',
        'x_acme_connector.x_api_token',
        'ir_config_parameter[google_gmail_client_secret]',
        'ir_config_parameter[x_acme_connector.api_token]',
      ]),
    );
    expect(places).not.toContain('ir_config_parameter[auth_signup.reset_password]');
    expect(places).not.toContain('res_users.password');
    const planted = plantedValues(prod);
    const text = JSON.stringify(findings);
    for (const v of planted.keys()) expect(text).not.toContain(v);
    const r = verify(prod);
    expect(r.status).toBe(3);
    expect(String(r.stdout)).toContain('payment_provider.stripe_secret_key|empty|1');
    expect(String(r.stderr)).toContain('secret check FAILED');
    for (const v of planted.keys()) expect(String(r.stdout) + String(r.stderr)).not.toContain(v);
    expect(q(prod, `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM payment_provider x`)).toBe(
      before,
    );

    for (const v of ODOO_VERSIONS) {
      expect(`${v}: ${JSON.stringify(await viaClient(`uat${v}`))}`).toBe(`${v}: []`);
      expect(verify(`uat${v}`).status).toBe(0);
    }
  }, 300_000);
});

describe('bad settings are refused before anything changes', () => {
  test('a password hash Odoo cannot verify, or a URL that is not one', () => {
    const db = 'bad17';
    q('postgres', `CREATE DATABASE ${db} TEMPLATE ${template(17)}`);
    const before = q(db, `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM ir_config_parameter x`);
    const r = refresh(db, SQL_DIR, { UAT_PASSWORD_HASH: '$pbkdf2-sha256$29000$abc$def' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('uat_password_hash is not an Odoo password hash');
    expect(r.stderr).not.toContain('$pbkdf2-sha256$29000$abc$def');
    const r2 = refresh(db, SQL_DIR, { UAT_URL: 'javascript:alert(1)' });
    expect(r2.status).toBe(3);
    expect(r2.stderr).toContain('uat_url must be an absolute http(s) URL');
    expect(q(db, `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM ir_config_parameter x`)).toBe(
      before,
    );
  });
});

// ---- each statement is load-bearing: remove it from a copy of sql/ and the leak must show -----------------
interface Mutation {
  name: string;
  version: OdooVersion;
  file: 'neutralize.sql' | 'lib/secrets.sql' | 'anonymize.sql';
  /** text removed from the file (must occur exactly once) */
  cut: string | RegExp;
  /** a second statement that covers the same thing (defence in depth): removed too */
  also?: { file: 'neutralize.sql' | 'lib/secrets.sql' | 'anonymize.sql'; cut: string | RegExp };
  /** SQL returning a non-zero count when the integration is left live */
  leak: string;
}
// the on/off switches neutralize.sql turns off with one statement each: [name, version, table, column]
const SWITCHES: Array<[string, OdooVersion, string, string]> = [
  ['incoming mail servers', 17, 'fetchmail_server', 'active'],
  ['saved payment methods', 17, 'payment_token', 'active'],
  ['website CDN', 16, 'website', 'cdn_activated'],
  ['OAuth login providers', 17, 'auth_oauth_provider', 'enabled'],
];
const MUTATIONS: Mutation[] = [
  ...SWITCHES.map(
    ([name, version, t, c]): Mutation => ({
      name,
      version,
      file: 'neutralize.sql',
      cut: `PERFORM pg_temp.odoo_exec_if('${t}', '{${c}}', 'UPDATE ${t} SET ${c} = false WHERE ${c}');`,
      leak: `SELECT count(*) FROM ${t} WHERE ${c}`,
    }),
  ),
  {
    name: 'outgoing mail servers',
    version: 17,
    file: 'neutralize.sql',
    cut: /UPDATE ir_mail_server SET active = false WHERE active[^;]*;/,
    leak: `SELECT count(*) FROM ir_mail_server WHERE active AND smtp_host <> 'invalid'`,
  },
  {
    name: 'SMTP login',
    version: 17,
    file: 'lib/secrets.sql',
    cut: `'smtp_user', `,
    leak: `SELECT count(*) FROM ir_mail_server WHERE smtp_user IS NOT NULL`,
  },
  {
    name: 'payment providers',
    version: 17,
    file: 'neutralize.sql',
    cut: /n := pg_temp\.odoo_exec_if\('payment_provider', '\{state\}',[^;]*;/,
    leak: `SELECT count(*) FROM payment_provider WHERE state = 'enabled'`,
  },
  {
    name: 'payment token references',
    version: 17,
    file: 'lib/secrets.sql',
    cut: `  ('payment_token', ARRAY['provider_ref'], 'payment', 'the provider-side reference of a saved payment method'),\n`,
    leak: `SELECT count(*) FROM payment_token WHERE provider_ref <> ''`,
  },
  {
    name: 'carriers in production mode',
    version: 17,
    file: 'neutralize.sql',
    cut: /n := pg_temp\.odoo_exec_if\('delivery_carrier', '\{prod_environment\}',[^;]*;/,
    leak: `SELECT count(*) FROM delivery_carrier WHERE prod_environment`,
  },
  {
    name: 'external carriers',
    version: 18,
    file: 'neutralize.sql',
    cut: /PERFORM pg_temp\.odoo_exec_if\('delivery_carrier', '\{delivery_type,active\}',[^;]*;/,
    leak: `SELECT count(*) FROM delivery_carrier WHERE active AND delivery_type = 'ups'`,
  },
  {
    name: 'calendar sync (16 credential tables)',
    version: 16,
    file: 'neutralize.sql',
    cut: `('google_calendar_credentials', 'synchronization_stopped'), `,
    leak: `SELECT count(*) FROM google_calendar_credentials WHERE NOT synchronization_stopped`,
  },
  {
    name: 'calendar sync (18 settings)',
    version: 18,
    file: 'neutralize.sql',
    cut: `('res_users_settings', 'google_synchronization_stopped'), `,
    leak: `SELECT count(*) FROM res_users_settings WHERE NOT google_synchronization_stopped`,
  },
  {
    name: 'EDI proxy client (16: demo mode)',
    version: 16,
    file: 'neutralize.sql',
    cut: `PERFORM pg_temp.odoo_set_param('account_edi_proxy_client.demo', 'True');`,
    leak: `SELECT count(*) FROM account_edi_proxy_client_user WHERE active AND NOT EXISTS (SELECT 1 FROM ir_config_parameter WHERE key = 'account_edi_proxy_client.demo' AND value = 'True')`,
  },
  {
    name: 'EDI proxy users',
    version: 17,
    file: 'neutralize.sql',
    cut: /UPDATE account_edi_proxy_client_user\s+SET edi_mode = CASE[^;]*;/,
    leak: `SELECT count(*) FROM account_edi_proxy_client_user WHERE edi_mode = 'prod' AND active`,
  },
  {
    name: 'website ribbon',
    version: 18,
    file: 'neutralize.sql',
    cut: `, 'website.neutralize_ribbon'`,
    leak: `SELECT count(*) FROM ir_ui_view WHERE key = 'website.neutralize_ribbon' AND NOT active`,
  },
  {
    name: 'web push devices (18)',
    version: 18,
    file: 'lib/secrets.sql',
    cut: `  ('rows', 'mail_push_device', 'delete', 'mail (18)', 'web push subscriptions of real browsers'),\n`,
    leak: `SELECT count(*) FROM mail_push_device`,
  },
  {
    name: 'Discuss SFU server',
    version: 17,
    file: 'lib/secrets.sql',
    cut: `'mail.use_sfu_server', 'mail.sfu_server_url', `,
    leak: `SELECT count(*) FROM ir_config_parameter WHERE key = 'mail.sfu_server_url'`,
  },
  {
    name: 'portal tokens rotated',
    version: 17,
    file: 'lib/secrets.sql',
    cut: /INSERT INTO odoo_secret_catalogue \(kind, tbl, col, rule, module, note\) VALUES \('column_re', '\.\*', '\^access_token\$'[^;]*;/,
    leak: `SELECT count(*) FROM mail_guest WHERE access_token = ''`,
  },
  {
    name: 'channel invitations',
    version: 16,
    file: 'lib/secrets.sql',
    cut: `  ('column', 'mail_channel', 'uuid', 'rotate', 'mail', '16: channel invitation link'),\n`,
    leak: `SELECT count(*) FROM mail_channel WHERE uuid LIKE '%LIVE%'`,
  },
  {
    name: 'incoming webhook URL',
    version: 17,
    file: 'lib/secrets.sql',
    cut: `,\n  ('column', 'base_automation', 'webhook_uuid', 'rotate', 'base_automation', '17+: secret part of the incoming webhook URL')`,
    leak: `SELECT count(*) FROM base_automation WHERE webhook_uuid LIKE '%LIVE%'`,
  },
  {
    name: 'credential-looking columns of custom modules',
    version: 17,
    file: 'lib/secrets.sql',
    cut: /\s*\('column_re', '\.\*', '\(token\|secret[^)]*\)', 'empty', '\(any\)',\s*'text-like or bytea columns named like a credential'\),/,
    leak: `SELECT count(*) FROM x_acme_connector WHERE x_api_token <> '' OR x_client_secret <> ''`,
  },
  {
    name: 'secret-looking config keys',
    version: 17,
    file: 'lib/secrets.sql',
    cut: /\s*\('param_re', 'ir_config_parameter', '\(secret[^)]*\)', 'empty', '\(any\)', 'keys named like a credential'\),/,
    leak: `SELECT count(*) FROM ir_config_parameter WHERE key = 'x_acme_connector.api_token'`,
  },
  {
    name: "other users' passwords",
    version: 17,
    file: 'neutralize.sql',
    cut: /UPDATE res_users SET password = NULL WHERE NOT[^;]*;/,
    also: { file: 'anonymize.sql', cut: /SELECT pg_temp\.odoo_anon_rule\('res_users', 'password',[^;]*;/ },
    leak: `SELECT count(*) FROM res_users WHERE password IS NOT NULL AND login NOT IN ('admin', '${TESTER}')`,
  },
];

describe('each statement is load-bearing', () => {
  let n = 0;
  test.each(MUTATIONS.map((m) => [m.name, m] as [string, Mutation]))(
    '%s: removed → the leak shows; present → it does not',
    (_name, m) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'neutralize-mut-'));
      try {
        cpSync(SQL_DIR, dir, { recursive: true });
        for (const c of [{ file: m.file, cut: m.cut }, ...(m.also ? [m.also] : [])]) {
          const file = path.join(dir, c.file);
          const text = readFileSync(file, 'utf8');
          const count =
            typeof c.cut === 'string'
              ? text.split(c.cut).length - 1
              : (text.match(new RegExp(c.cut.source, 'g')) ?? []).length;
          expect(`${m.name} in ${c.file}: ${count}`).toBe(`${m.name} in ${c.file}: 1`);
          writeFileSync(file, text.replace(c.cut, ''));
        }
        const mutant = `mut${++n}`;
        const intact = `ok${n}`;
        q('postgres', `CREATE DATABASE ${mutant} TEMPLATE ${template(m.version)}`);
        q('postgres', `CREATE DATABASE ${intact} TEMPLATE ${template(m.version)}`);
        mustRefresh(mutant, dir);
        mustRefresh(intact);
        expect(`${m.name}: ${Number(q(mutant, m.leak)) > 0}`).toBe(`${m.name}: true`);
        expect(`${m.name}: ${q(intact, m.leak)}`).toBe(`${m.name}: 0`);
        q('postgres', `DROP DATABASE ${mutant}`);
        q('postgres', `DROP DATABASE ${intact}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});

test('the fixture folder is the one the loader uses', () => {
  expect(appsFiles().map((f) => path.relative(FIXTURE_DIR, f))).toEqual([
    path.join('apps', '00-metadata.sql'),
    path.join('apps', '60-integrations.sql'),
  ]);
});
