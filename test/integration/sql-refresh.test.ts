/**
 * sql/neutralize.sql + sql/anonymize.sql + the PII verifier on a real PostgreSQL, for Odoo 16, 17
 * and 18 fixture databases seeded with realistic personal data.
 */
import { Client } from 'pg';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startPostgres, PgServer, PG_BIN } from '../support/postgres';
import { loadOdooFixture, ODOO_VERSIONS, OdooVersion, psqlFiles } from '../fixtures/odoo/load';
import { samplePii, verifyNoPii } from '../../shared/adapters/pii-verifier';
import { runRefreshSql, SQL_DIR, extensionScripts } from '../../shared/adapters/sql-scripts';
import { PiiSample, buildSample } from '../../shared/domain/pii';

const HASH =
  '$pbkdf2-sha512$600000$dWF0U2FsdA$uatHashValue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123';
const UAT_URL = 'https://uat.odoo-mta.test';

let pg: PgServer;

beforeAll(async () => {
  pg = await startPostgres();
  for (const v of ODOO_VERSIONS) loadOdooFixture(pg, `odoo${v}`, v);
}, 120_000);
afterAll(() => pg?.stop());

async function withClient<T>(db: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: pg.uri(db) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** md5 of every row of every table: equal checksums = nothing changed */
async function checksums(db: string): Promise<Record<string, string>> {
  return withClient(db, async (c) => {
    const tables = await c.query<{ t: string }>(
      `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`,
    );
    const out: Record<string, string> = {};
    for (const { t } of tables.rows) {
      const r = await c.query<{ h: string }>(
        `SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM "${t}" x`,
      );
      out[t] = r.rows[0].h;
    }
    return out;
  });
}

const q = (db: string, sql: string): string => pg.psql(db, sql);

describe.each(ODOO_VERSIONS.map((v) => [v] as [OdooVersion]))('Odoo %i database', (version) => {
  const db = `odoo${version}`;
  let sample: PiiSample;
  let before: { nullMobiles: string; companies: string; partners: string; noCompany: string };

  test('the sample holds PROD values and the verifier flags the un-anonymized copy', async () => {
    sample = await samplePii(pg.uri(db), { keepLogins: ['admin'] });
    expect(sample.counts.email).toBeGreaterThan(100);
    expect(sample.counts.phone).toBeGreaterThan(100);
    expect(sample.counts.name).toBeGreaterThan(100);
    expect(sample.counts.iban).toBeGreaterThan(10);
    expect(sample.counts.login).toBeGreaterThan(10);
    expect(sample.texts).not.toContain('admin'); // kept login
    expect(sample.texts).not.toContain('odoobot'); // technical partner
    before = {
      nullMobiles: q(db, 'SELECT count(*) FROM res_partner WHERE mobile IS NULL'),
      companies: q(db, 'SELECT count(*) FROM res_partner WHERE is_company'),
      partners: q(db, 'SELECT count(*) FROM res_partner'),
      noCompany: q(db, 'SELECT count(*) FROM res_partner WHERE company_id IS NULL'),
    };
    expect(Number(before.noCompany)).toBeGreaterThan(Number(before.partners) / 2);

    const report = await verifyNoPii(pg.uri(db), sample);
    expect(report.ok).toBe(false);
    const places = report.hits.map((h) => `${h.table}.${h.column}`);
    expect(places).toEqual(
      expect.arrayContaining([
        'res_partner.email',
        'res_partner.phone',
        'res_partner.name',
        'res_users.login',
        'res_partner_bank.acc_number',
        'mail_message.body',
        'hr_employee.work_email',
      ]),
    );
    expect(report.foreignEmails.map((h) => `${h.table}.${h.column}`)).toContain('mail_message.email_from');
  });

  test('neutralize + anonymize run clean, in one psql session', async () => {
    const res = await runRefreshSql(
      { database: db, uatUrl: UAT_URL, passwordHash: HASH, keepLogins: ['admin'] },
      { env: pg.env },
    );
    expect(res.stdout).toContain('res_partner anonymized');
  });

  test('nothing is left that could reach the outside world', () => {
    expect(q(db, `SELECT string_agg(smtp_host, ',') FROM ir_mail_server WHERE active`)).toBe('invalid');
    expect(
      q(db, `SELECT count(*) FROM ir_mail_server WHERE smtp_pass IS NOT NULL OR smtp_user IS NOT NULL`),
    ).toBe('0');
    expect(q(db, `SELECT string_agg(cron_name, ',') FROM ir_cron WHERE active`)).toBe(
      'Base: Auto-vacuum internal data',
    );
    expect(q(db, `SELECT count(*) FROM payment_provider WHERE state NOT IN ('test', 'disabled')`)).toBe('0');
    expect(q(db, `SELECT state FROM payment_provider WHERE code = 'demo'`)).toBe('test');
    expect(q(db, `SELECT count(*) FROM mail_template WHERE mail_server_id IS NOT NULL`)).toBe('0');
    // emptied (Odoo's '+disabled' suffix leaves the token readable): Odoo makes a new one when needed
    expect(q(db, `SELECT count(*) FROM iap_account WHERE account_token IS NOT NULL`)).toBe('0');
    expect(q(db, `SELECT count(*) FROM delivery_carrier WHERE prod_environment`)).toBe('0');
    // calendar tokens where each version keeps them: Google's in google_calendar_credentials (16/17) or
    // res_users_settings (18), Microsoft's on res_users (16-18)
    expect(
      q(
        db,
        version >= 18
          ? `SELECT count(*) FROM res_users_settings WHERE google_calendar_rtoken IS NOT NULL`
          : `SELECT count(*) FROM google_calendar_credentials WHERE calendar_rtoken IS NOT NULL`,
      ),
    ).toBe('0');
    expect(q(db, `SELECT count(*) FROM res_users WHERE microsoft_calendar_rtoken IS NOT NULL`)).toBe('0');
    expect(q(db, `SELECT active FROM ir_ui_view WHERE key = 'web.neutralize_banner'`)).toBe('t');
    const params = Object.fromEntries(
      q(db, `SELECT key || '=' || value FROM ir_config_parameter`)
        .split('\n')
        .map((l) => l.split('=')),
    );
    expect(params['database.is_neutralized']).toBe('True');
    expect(params['web.base.url']).toBe(UAT_URL);
    expect(params['database.secret']).not.toBe('a6c1f0e2-prod-secret-3b5d');
    expect(params['database.uuid']).not.toBe('5d1f7a3e-0000-4a4a-9c9c-prod00000001');
    expect(params['odoo_mta.anonymized']).toBe('True');
    expect(params['mail.web_push_vapid_private_key']).toBeUndefined();
    if (version >= 17) {
      expect(q(db, `SELECT count(*) FROM website WHERE domain IS NOT NULL`)).toBe('0');
      expect(q(db, `SELECT robots_txt FROM website`)).toBe('User-agent: *\nDisallow: /');
      expect(q(db, `SELECT count(*) FROM auth_oauth_provider WHERE enabled`)).toBe('0');
      expect(
        q(db, `SELECT count(*) FROM ir_act_server WHERE state = 'webhook' AND webhook_url IS NOT NULL`),
      ).toBe('0');
      expect(q(db, `SELECT count(*) FROM base_automation WHERE trigger = 'on_webhook' AND active`)).toBe('0');
    }
    if (version <= 17)
      expect(q(db, `SELECT count(*) FROM fetchmail_server WHERE active OR password IS NOT NULL`)).toBe('0');
  });

  test('personal data is replaced everywhere, keeping its shape', () => {
    expect(q(db, 'SELECT count(*) FROM res_partner')).toBe(before.partners);
    expect(q(db, 'SELECT count(*) FROM res_partner WHERE mobile IS NULL')).toBe(before.nullMobiles);
    expect(q(db, `SELECT count(*) FROM res_partner WHERE is_company AND name = 'Company ' || id`)).toBe(
      before.companies,
    );
    expect(
      q(
        db,
        `SELECT count(*) FROM res_partner WHERE email IS NOT NULL AND email <> 'partner' || id || '@example.invalid'`,
      ),
    ).toBe('0');
    expect(
      q(
        db,
        `SELECT count(*) FROM res_partner WHERE company_id IS NULL AND name NOT LIKE 'Partner %' AND name NOT LIKE 'Company %'`,
      ),
    ).toBe('0');
    expect(q(db, `SELECT name FROM res_company`)).toBe(
      q(db, `SELECT p.name FROM res_company c JOIN res_partner p ON p.id = c.partner_id`),
    );
    // admin stays usable: same login, the known UAT password; nobody else has a password
    expect(q(db, `SELECT login || ' ' || active FROM res_users WHERE id = 2`)).toBe('admin true');
    expect(
      q(db, `SELECT string_agg(login || ' ' || password, ',') FROM res_users WHERE password IS NOT NULL`),
    ).toBe(`admin ${HASH}`);
    expect(q(db, `SELECT count(*) FROM res_users WHERE totp_secret IS NOT NULL`)).toBe('0');
    expect(
      q(
        db,
        `SELECT count(*) FROM res_users WHERE login NOT LIKE '%@example.invalid' AND login NOT IN ('admin', '__system__')`,
      ),
    ).toBe('0');
    for (const t of [
      'res_users_apikeys',
      'auth_totp_device',
      'res_users_log',
      'mail_mail',
      ...(version >= 18 ? ['res_device_log'] : []),
    ]) {
      expect(`${t}: ${q(db, `SELECT count(*) FROM ${t}`)}`).toBe(`${t}: 0`);
    }
    expect(
      q(db, `SELECT count(*) FROM mail_message WHERE body LIKE '%@%' OR body ~ '[0-9]{3} [0-9]{2}'`),
    ).toBe('0');
    expect(
      q(
        db,
        `SELECT count(*) FROM mail_tracking_value WHERE old_value_char LIKE '%@%' OR new_value_char LIKE '%@%'`,
      ),
    ).toBe('0');
    expect(
      q(db, `SELECT count(*) FROM ir_attachment WHERE index_content IS NOT NULL OR access_token IS NOT NULL`),
    ).toBe('0');
    expect(q(db, `SELECT name FROM ir_attachment WHERE url LIKE '/web/assets/%'`)).toBe(
      'web.assets_frontend.min.css',
    );
    expect(
      q(
        db,
        `SELECT count(*) FROM ir_attachment WHERE res_model = 'res.partner' AND name NOT LIKE 'attachment%.pdf'`,
      ),
    ).toBe('0');
    expect(
      q(
        db,
        `SELECT count(*) FROM hr_employee WHERE name <> 'Resource ' || resource_id OR ssnid <> 'SSN' || id`,
      ),
    ).toBe('0');
    if (version >= 17)
      expect(
        q(
          db,
          `SELECT count(*) FROM hr_employee WHERE private_email NOT LIKE '%@example.invalid' OR private_street NOT LIKE '%Anonymous Street'`,
        ),
      ).toBe('0');
    if (version <= 17)
      expect(
        q(db, `SELECT count(*) FROM ir_property WHERE name = 'barcode' AND value_text NOT LIKE 'PARTNER%'`),
      ).toBe('0');
    expect(q(db, `SELECT report_header::text FROM res_company`)).toMatch(
      /^\{"en_US": "Company \d+", "fr_BE": "Company \d+"\}$/,
    );
  });

  test('the verifier finds zero original values afterwards', async () => {
    const report = await verifyNoPii(pg.uri(db), sample);
    expect(await verifyNoPii(pg.uri(db), sample, { probeModeMaxRows: 0 })).toEqual(report);
    expect(report.hits).toEqual([]);
    expect(report.foreignEmails).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.scanned.tables).toBeGreaterThan(25);
  });

  test('a second run changes nothing', async () => {
    const first = await checksums(db);
    await runRefreshSql(
      { database: db, uatUrl: UAT_URL, passwordHash: HASH, keepLogins: ['admin'] },
      { env: pg.env },
    );
    const second = await checksums(db);
    expect(second).toEqual(first);
  });

  test('the verifier fails on planted leaks and reports places and counts, never values', async () => {
    const leakDb = `${db}_leak`;
    q('postgres', `CREATE DATABASE ${leakDb} TEMPLATE ${db}`);
    const email = sample.emails[0];
    const name = sample.texts.find((t) => !t.includes('@') && t.includes(' '))!;
    await withClient(leakDb, async (c) => {
      await c.query(`CREATE TABLE x_custom_notes (id serial PRIMARY KEY, note text, payload jsonb)`);
      // an e-mail in an unexpected column, a name whole, a phone (formatted differently) inside free text
      await c.query(`INSERT INTO x_custom_notes (note, payload) VALUES ($1, $2), ($3, NULL)`, [
        `Ping ${email.toUpperCase()} tomorrow`,
        JSON.stringify({ en_US: name.toUpperCase() }),
        `call back on 0032 ${'4'}${sample.phones[0].slice(1, 3)} ${sample.phones[0].slice(3)}`,
      ]);
      await c.query(`UPDATE ir_config_parameter SET value = $1 WHERE key = 'mail.catchall.domain'`, [name]);
      await c.query(
        `UPDATE mail_message SET body = '<p>write to someone@realcorp.example.be</p>' WHERE id = (SELECT min(id) FROM mail_message)`,
      );
    });
    const report = await verifyNoPii(pg.uri(leakDb), sample);
    // the same search by hashing (what big tables get), in both query shapes, finds the same
    const hashed = await verifyNoPii(pg.uri(leakDb), sample, { probeModeMaxRows: 0 });
    expect(hashed).toEqual(report);
    // one connection or several (tables taken biggest first): the same findings, in the same order
    expect(await verifyNoPii(pg.uri(leakDb), sample, { parallel: 1 })).toEqual(report);
    let opened = 0;
    const through = await verifyNoPii(pg.uri(leakDb), sample, {
      parallel: 3,
      connect: async () => {
        opened++;
        const client = new Client({ connectionString: pg.uri(leakDb) });
        await client.connect();
        return { client, close: () => client.end() };
      },
    });
    expect(through).toEqual(report);
    expect(opened).toBe(2);
    // a second session that cannot be opened costs time, not the verdict
    expect(
      await verifyNoPii(pg.uri(leakDb), sample, {
        parallel: 2,
        connect: () => Promise.reject(new Error('no second session')),
      }),
    ).toEqual(report);
    expect(report.ok).toBe(false);
    expect(report.hits).toEqual(
      expect.arrayContaining([
        { table: 'x_custom_notes', column: 'note', count: 2 },
        { table: 'x_custom_notes', column: 'payload', count: 1 },
        { table: 'ir_config_parameter', column: 'value', count: 1 },
      ]),
    );
    expect(report.foreignEmails).toEqual(
      expect.arrayContaining([
        { table: 'mail_message', column: 'body', count: 1 },
        { table: 'x_custom_notes', column: 'note', count: 1 },
      ]),
    );
    const text = JSON.stringify(report);
    for (const v of [email, name, sample.phones[0], 'realcorp'])
      expect(text.toLowerCase()).not.toContain(v.toLowerCase());
    q('postgres', `DROP DATABASE ${leakDb}`);
  });

  test('the verifier finds leaks off its fast paths: second phone or address in a value, spacing variants, nested JSON, accented capitals', async () => {
    const leakDb = `${db}_leak2`;
    q('postgres', `CREATE DATABASE ${leakDb} TEMPLATE ${db}`);
    const phone = sample.phones.find((p) => p.length === 9)!;
    const iban = sample.codes.find((c) => /^[A-Z]{2}[0-9]{2}/.test(c))!;
    const name = sample.texts.find((t) => !t.includes('@') && t.includes(' '))!;
    await withClient(leakDb, async (c) => {
      await c.query(
        `CREATE TABLE x_more (id serial PRIMARY KEY, two_phones text, two_emails text, spaced_name varchar, nested jsonb, accented text, short_name text, clean text, hash text)`,
      );
      await c.query(
        `INSERT INTO x_more (two_phones, two_emails, spaced_name, nested, accented, short_name, clean, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          // the first number is not PROD's, the second is: found past the first match
          `office 02 555 01 00, mobile +32 ${phone.slice(0, 3)} ${phone.slice(3, 5)} ${phone.slice(5, 7)} ${phone.slice(7)}`,
          `to: nobody@example.com; cc: ${sample.emails[1]}`,
          `  ${name.toUpperCase().replace(' ', ' - ')}  `,
          JSON.stringify({
            bank: { accounts: [`${iban.slice(0, 4)} ${iban.slice(4, 8)} ${iban.slice(8)}`] },
          }),
          'ÉLODIE   MÜLLER-DUPONT',
          ' LI NA ',
          'Partner 12 called +1 0000000012 from partner12@example.invalid',
          // a sha1-like file name whose digits end like a PROD phone number: a hash, not a phone (no finding)
          `ab/cdef01${phone}e2f0a9b31c4d5e6f7a8b9`,
        ],
      );
    });
    // extra PROD values the fixtures lack: accents (lower-cased by the database's locale, not byte by
    // byte) and a name too short to be compared without its space
    const accented = buildSample([
      { kind: 'name', value: 'Élodie Müller-Dupont' },
      { kind: 'name', value: 'Li Na' },
    ]);
    const withAccent: PiiSample = { ...sample, texts: [...sample.texts, ...accented.texts] };
    const report = await verifyNoPii(pg.uri(leakDb), withAccent);
    expect(await verifyNoPii(pg.uri(leakDb), withAccent, { probeModeMaxRows: 0 })).toEqual(report);
    const more = report.hits.filter((h) => h.table === 'x_more');
    expect(more).toEqual([
      { table: 'x_more', column: 'accented', count: 1 },
      { table: 'x_more', column: 'nested', count: 1 },
      { table: 'x_more', column: 'short_name', count: 1 },
      { table: 'x_more', column: 'spaced_name', count: 1 },
      { table: 'x_more', column: 'two_emails', count: 1 },
      { table: 'x_more', column: 'two_phones', count: 1 },
    ]);
    expect(report.foreignEmails.filter((h) => h.table === 'x_more')).toEqual([
      { table: 'x_more', column: 'two_emails', count: 1 },
    ]);
    q('postgres', `DROP DATABASE ${leakDb}`);
  });
});

describe('guards and extension point', () => {
  test('the plain operator command works on an Odoo database as it is, and on one without any Odoo table', () => {
    loadOdooFixture(pg, 'plain16', 16, { partners: 40 });
    const out = psqlFiles(pg, 'plain16', [
      path.join(SQL_DIR, 'neutralize.sql'),
      path.join(SQL_DIR, 'anonymize.sql'),
    ]);
    expect(out).toContain('res_partner anonymized');
    // defaults (no UAT_PASSWORD_HASH): admin keeps its login and its own password, nobody else has one; URL is localhost
    expect(
      q(
        'plain16',
        `SELECT string_agg(login || ' ' || password, ',') FROM res_users WHERE password IS NOT NULL`,
      ),
    ).toBe('admin $pbkdf2-sha512$600000$prodadminsalt$prodadminhash');
    expect(q('plain16', `SELECT login FROM res_users WHERE id = 2`)).toBe('admin');
    expect(q('plain16', `SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'`)).toBe(
      'http://localhost:8069',
    );
    pg.createDb('empty');
    expect(() =>
      psqlFiles(pg, 'empty', [path.join(SQL_DIR, 'neutralize.sql'), path.join(SQL_DIR, 'anonymize.sql')]),
    ).not.toThrow();
  });

  test('drop_attachments deletes the attachments of personal records, keeps the technical ones', async () => {
    loadOdooFixture(pg, 'drop17', 17, { partners: 60 });
    const technical = q('drop17', `SELECT count(*) FROM ir_attachment WHERE res_model = 'ir.ui.view'`);
    await runRefreshSql({ database: 'drop17', dropAttachments: true }, { env: pg.env });
    expect(q('drop17', `SELECT count(*) FROM ir_attachment WHERE res_model = 'res.partner'`)).toBe('0');
    expect(q('drop17', `SELECT count(*) FROM ir_attachment WHERE res_model = 'ir.ui.view'`)).toBe(technical);
  });

  test('an anonymize.d extension anonymizes a custom table by rule; without it the default scrub of x_ tables removes what it recognises', async () => {
    loadOdooFixture(pg, 'ext17', 17, { partners: 40 });
    q(
      'ext17',
      `CREATE TABLE x_loyalty_card (id serial PRIMARY KEY, holder_name varchar, holder_email varchar, holder_phone varchar, note text);
                INSERT INTO x_loyalty_card (holder_name, holder_email, holder_phone, note)
                SELECT name, email, phone, 'VIP since 2019' FROM res_partner WHERE id BETWEEN 4 AND 9`,
    );
    q('postgres', 'CREATE DATABASE ext17b TEMPLATE ext17');
    const sample = await samplePii(pg.uri('ext17'));
    expect(extensionScripts()).toContain('50-example-loyalty-card.sql');

    await runRefreshSql({ database: 'ext17b', passwordHash: HASH }, { env: pg.env });
    // no ORM metadata for this raw-SQL table: its text is scrubbed (addresses, phone numbers, the database's people's names)
    const without = await verifyNoPii(pg.uri('ext17b'), sample);
    expect(without).toMatchObject({ ok: true, hits: [], foreignEmails: [] });
    expect(
      q(
        'ext17b',
        `SELECT count(*) FROM x_loyalty_card WHERE holder_email = 'someone@example.invalid' AND holder_phone = '+10000000000' AND holder_name = 'Someone Someone'`,
      ),
    ).toBe('6');
    expect(q('ext17b', `SELECT count(*) FROM x_loyalty_card WHERE note = 'VIP since 2019'`)).toBe('6');

    const res = await runRefreshSql(
      { database: 'ext17', passwordHash: HASH, extensions: extensionScripts() },
      { env: pg.env },
    );
    expect(res.stdout).toMatch(/x_loyalty_card anonymized \| +6/);
    const withExt = await verifyNoPii(pg.uri('ext17'), sample);
    expect(withExt).toMatchObject({ ok: true, hits: [], foreignEmails: [] });
    expect(
      q(
        'ext17',
        `SELECT count(*) FROM x_loyalty_card WHERE note IS NULL AND holder_email LIKE 'card%@example.invalid'`,
      ),
    ).toBe('6');
  });

  test('a failing script stops the run with a clear error that quotes no row values', async () => {
    loadOdooFixture(pg, 'fail17', 17, { partners: 20 });
    // a constraint the anonymization violates (its DETAIL line would quote the whole row)
    q('fail17', `ALTER TABLE res_partner ADD CONSTRAINT x_city CHECK (city <> 'Anytown')`);
    const err = await runRefreshSql({ database: 'fail17' }, { env: pg.env }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /^\[SQL.SCRIPT_FAILED\] psql exited with 3: .*violates check constraint/s,
    );
    expect((err as Error).message).not.toMatch(/DETAIL|Failing row|Namur|@/);
    // the transaction rolled back: partners still hold their PROD names (the refresh keeps UAT stopped)
    expect(q('fail17', `SELECT count(*) FROM res_partner WHERE name LIKE 'Partner %'`)).toBe('0');
  });

  test('verify.sql passes on a refreshed database and fails, naming places not values, on a PROD copy', () => {
    for (const v of ODOO_VERSIONS) {
      expect(psqlFiles(pg, `odoo${v}`, [path.join(SQL_DIR, 'verify.sql')])).toContain('(0 rows)');
    }
    loadOdooFixture(pg, 'prodcopy18', 18, { partners: 30 });
    const err = (() => {
      try {
        psqlFiles(pg, 'prodcopy18', [path.join(SQL_DIR, 'verify.sql')]);
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).toMatch(/refresh verification FAILED: \d+ finding/);
    const r = spawnSync(
      path.join(PG_BIN, 'psql'),
      ['-X', '-q', '-d', 'prodcopy18', '-f', path.join(SQL_DIR, 'verify.sql')],
      { env: pg.env, encoding: 'utf8' },
    );
    expect(r.stdout).toMatch(/res_partner\.email +\| +\d+/);
    expect(r.stdout).toMatch(/active mail server/);
    expect(r.stdout + r.stderr).not.toMatch(/@gmail\.com|Peeters|\+32/);
    // read-only: nothing was changed
    expect(q('prodcopy18', `SELECT count(*) FROM ir_mail_server WHERE active`)).toBe('1');
  });

  test('a missing psql binary and an unreachable database are reported with their codes', async () => {
    await expect(
      runRefreshSql({ database: 'x' }, { psql: path.join(PG_BIN, 'no-such-psql') }),
    ).rejects.toThrow(/\[SQL.PSQL_MISSING\]/);
    const sample = await samplePii(pg.uri('odoo17'), { perColumn: 5 });
    await expect(verifyNoPii(`postgresql://postgres@127.0.0.1:1/none`, sample)).rejects.toThrow(
      /\[PII.DB_UNREACHABLE\]/,
    );
  });
});
