/**
 * The standard apps' person data (test/fixtures/odoo/apps/: Odoo's real table and column names for 16,
 * 17 and 18, registered in ir_model_fields, planted in every form) on a real PostgreSQL:
 * - after TWO runs of the documented command (neutralize.sql + anonymize.sql) the verifier, verify.sql
 *   and an independent scan written here (JavaScript's own Unicode folding, not the project's code)
 *   find nothing;
 * - each form of leak planted in the anonymized copy is found by the verifier;
 * - a database whose ctype is C gives the same verdict as a UTF-8 one.
 */
import path from 'node:path';
import { Client } from 'pg';
import { startPostgres, PgServer } from '../support/postgres';
import {
  loadOdooAppsFixture,
  ODOO_VERSIONS,
  OdooVersion,
  psqlFiles,
  FIXTURE_DIR,
  appFixtureFiles,
} from '../fixtures/odoo/load';
import { samplePii, verifyNoPii } from '../../shared/adapters/pii-verifier';
import { SQL_DIR } from '../../shared/adapters/sql-scripts';
import { PiiReport, PiiSample } from '../../shared/domain/pii';
import { parseColumnReport } from '../../functions/activities/refresh';

let pg: PgServer;
const samples = new Map<string, PiiSample>();
const UAT_URL = 'https://uat.odoo-mta.test';

/** The documented minimal command: psql -v ON_ERROR_STOP=1 -d DB -f sql/neutralize.sql -f sql/anonymize.sql */
function refresh(db: string): string {
  return psqlFiles(pg, db, [path.join(SQL_DIR, 'neutralize.sql'), path.join(SQL_DIR, 'anonymize.sql')], {
    uat_url: UAT_URL,
  });
}

function createCtypeC(db: string, version: OdooVersion): void {
  pg.psql(
    'postgres',
    `CREATE DATABASE "${db}" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`,
  );
  psqlFiles(
    pg,
    db,
    [path.join(FIXTURE_DIR, 'schema.sql'), path.join(FIXTURE_DIR, 'seed.sql'), ...appFixtureFiles()],
    { odoo_version: version, partners: 300 },
  );
}

beforeAll(async () => {
  pg = await startPostgres();
  for (const v of ODOO_VERSIONS) loadOdooAppsFixture(pg, `apps${v}`, v);
  createCtypeC('apps17c', 17);
  for (const db of [...ODOO_VERSIONS.map((v) => `apps${v}`), 'apps17c'])
    samples.set(db, await samplePii(pg.uri(db), { keepLogins: ['admin'] }));
  for (const db of samples.keys()) {
    refresh(db);
    refresh(db);
  }
}, 240_000);
afterAll(() => pg?.stop());

const places = (r: PiiReport): string[] =>
  [
    ...r.hits.map((h) => `hit ${h.table}.${h.column}`),
    ...r.foreignEmails.map((h) => `foreign ${h.table}.${h.column}`),
    ...(r.patterns ?? []).map((h) => `${h.kind} ${h.table}.${h.column}`),
  ].sort();

/** Every text-like value of every table (text, varchar, json/jsonb with keys, text[], bytea), as JavaScript reads it. */
async function allText(db: string): Promise<Array<{ place: string; text: string }>> {
  const c = new Client({ connectionString: pg.uri(db) });
  await c.connect();
  try {
    const cols = await c.query<{ t: string; c: string; d: string }>(
      `SELECT table_name AS t, column_name AS c, data_type AS d FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY', 'bytea')`,
    );
    const out: Array<{ place: string; text: string }> = [];
    for (const col of cols.rows) {
      const r = await c.query<{ v: unknown }>(
        `SELECT "${col.c}" AS v FROM "${col.t}" WHERE "${col.c}" IS NOT NULL`,
      );
      for (const row of r.rows) {
        const v = row.v;
        const text = Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'string' ? v : JSON.stringify(v);
        out.push({ place: `${col.t}.${col.c}`, text });
      }
    }
    return out;
  } finally {
    await c.end();
  }
}

/** What a person reading the value would see: entities and %-escapes decoded, accents dropped, one case, no separators. */
function asRead(text: string): string {
  const decoded = text
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&nbsp;/g, ' ')
    .replace(/&commat;/g, '@')
    .replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return decoded
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[øØ]/g, 'o')
    .toLowerCase()
    .replace(/[\s.\-/()]/g, '');
}

// the planted people and their numbers, as a person would search for them
const PLANTED = [
  'emile',
  'muller',
  'mueller',
  'oberg',
  'oeberg',
  'odegard',
  'oystein',
  'vandenberghe',
  'brasserie-lumiere'.replace('-', ''),
  'nordljus',
  'fjordkraft',
  'telenet',
  'skynet',
  'protonmail',
  '30006000011234567890189',
  '370400440532013000',
  'abna0417164300',
  '096123456769', // IBANs
  '303265045',
  '136695976',
  '004495445', // VAT numbers
  '612345678',
  '781224365',
  '701234567',
  '41234567',
  '478129901',
  '707654321', // phones (national part)
];

describe.each(ODOO_VERSIONS.map((v) => [v] as [OdooVersion]))('Odoo %i with the standard apps', (version) => {
  const db = `apps${version}`;

  test('before: the sample holds the planted people', () => {
    const s = samples.get(db)!;
    expect(s.names).toEqual(
      expect.arrayContaining([
        'emile muller',
        'emile mueller',
        'asa oberg',
        'aasa oeberg',
        'zoe vandenberghe',
      ]),
    );
    expect(s.emails).toEqual(
      expect.arrayContaining(['emile.muller@brasserie-lumiere.fr', 'zoe.vdb@telenet.be']),
    );
  });

  test('after two runs the verifier finds nothing', async () => {
    const report = await verifyNoPii(pg.uri(db), samples.get(db)!);
    expect(places(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.scanned.columns).toBeGreaterThan(150);
  });

  test('after two runs verify.sql passes', () => {
    const out = psqlFiles(pg, db, [path.join(SQL_DIR, 'verify.sql')]);
    expect(out).not.toMatch(/FAILED/);
  });

  test('after two runs an independent scan finds none of the planted values', async () => {
    const left = (await allText(db)).flatMap(({ place, text }) => {
      const read = asRead(text);
      return PLANTED.filter((p) => read.includes(p)).map((p) => `${place}: ${p}`);
    });
    expect(left).toEqual([]);
  });

  test('the copy stays usable: valid unique IBAN/VAT, non-personal tracking kept, placeholders kept', () => {
    const q = (sql: string): string => pg.psql(db, sql);
    expect(q(`SELECT count(*) = count(DISTINCT acc_number) FROM res_partner_bank`)).toBe('t');
    expect(q(`SELECT count(*) FROM res_partner_bank WHERE acc_number !~ '^NL[0-9]{2}ANON[0-9]{10}$'`)).toBe(
      '0',
    );
    expect(q(`SELECT count(*) FROM res_partner WHERE vat IS NOT NULL AND vat !~ '^BE1[0-9]{9}$'`)).toBe('0');
    expect(q(`SELECT count(*) = count(DISTINCT vat) FROM res_partner WHERE vat IS NOT NULL`)).toBe('t');
    const field = version >= 17 ? 'field_id' : 'field';
    expect(
      q(
        `SELECT old_value_char || '>' || new_value_char FROM mail_tracking_value t JOIN ir_model_fields f ON f.id = t.${field} WHERE f.name = 'stage_id'`,
      ),
    ).toBe('New>Qualified');
    expect(
      q(
        `SELECT new_value_char FROM mail_tracking_value t JOIN ir_model_fields f ON f.id = t.${field} WHERE f.name = 'email_from'`,
      ),
    ).toMatch(/^Value \d+$/);
    expect(q(`SELECT email_to FROM mail_template WHERE email_to LIKE '{{%'`)).toBe(
      '{{ object.partner_id.email }}',
    );
    expect(q(`SELECT (SELECT value FROM ir_config_parameter WHERE key = 'web.base.url')`)).toBe(UAT_URL);
  });
});

describe('the column report', () => {
  test('lists every table.column treated with its rule, and the text columns left untouched (no values)', () => {
    const out = refresh('apps18');
    const { treated, untouched } = parseColumnReport(out);
    const rule = (t: string, c: string): string | undefined =>
      treated.find((x) => x.table === t && x.column === c)?.rule;
    expect(rule('hr_candidate', 'email_from')).toBe('email');
    expect(rule('hr_candidate', 'partner_name')).toBe('name');
    expect(rule('payment_transaction', 'partner_phone')).toBe('phone');
    expect(rule('account_bank_statement_line', 'account_number')).toBe('iban');
    expect(rule('hr_employee', 'departure_description')).toBe('html');
    expect(rule('res_partner', 'x_studio_linkedin')).toBe('website');
    expect(rule('x_customer_feedback', 'tags')).toBe('scrub');
    expect(rule('res_partner', 'email')).toBe('explicit');
    expect(untouched).toEqual(expect.arrayContaining(['crm_stage.name', 'ir_config_parameter.key']));
    expect(out).toMatch(new RegExp(`columns treated +\\| +${treated.length}\\b`));
    expect(out).not.toMatch(/Müller|brasserie|@telenet/);
  });
});

describe('every form of leak planted after anonymization is found', () => {
  const db = 'apps17';
  // each form: `UPDATE <table> SET <column> = <value> <where>`; the report must name `<finding> <table>.<column>`
  type Form = { form: string; finding: string; table: string; column: string; value: string; where: string };
  test.each`
    form                                      | finding      | table                    | column                | value                                                        | where
    ${'e-mail written &#64;'}                 | ${'hit'}     | ${'crm_lead'}            | ${'description'}      | ${`'<p>write to emile.muller&#64;brasserie-lumiere.fr</p>'`} | ${'WHERE id = 1'}
    ${'e-mail written %40 (unknown address)'} | ${'foreign'} | ${'sale_order'}          | ${'client_order_ref'} | ${`'ops%40new-customer.de'`}                                 | ${''}
    ${'e-mail as a JSON key'}                 | ${'foreign'} | ${'x_customer_feedback'} | ${'payload'}          | ${`'{"someone.real@acme-corp.de": 1}'`}                      | ${''}
    ${'phone with &nbsp;'}                    | ${'hit'}     | ${'calendar_event'}      | ${'description'}      | ${`'<p>+33&nbsp;6&nbsp;12&nbsp;34&nbsp;56&nbsp;78</p>'`}     | ${''}
    ${'unknown international phone'}          | ${'phone'}   | ${'stock_picking'}       | ${'note'}             | ${`'<p>call +49 171 9876543</p>'`}                           | ${''}
    ${'name inside text'}                     | ${'hit'}     | ${'mail_activity'}       | ${'summary'}          | ${`'Meeting with Émile Müller'`}                             | ${''}
    ${'transliterated name'}                  | ${'hit'}     | ${'account_move'}        | ${'ref'}              | ${`'for Emile Mueller'`}                                     | ${'WHERE ref IS NOT NULL'}
    ${'upper-case non-ASCII capital'}         | ${'hit'}     | ${'event_registration'}  | ${'company_name'}     | ${`'ÉMILE MÜLLER'`}                                          | ${''}
    ${'IBAN inside text'}                     | ${'iban'}    | ${'hr_contract'}         | ${'notes'}            | ${`'<p>pay to GB29 NWBK 6016 1331 9268 19 monthly</p>'`}     | ${''}
    ${'VAT inside text'}                      | ${'vat'}     | ${'payment_transaction'} | ${'partner_address'}  | ${`'VAT DE 136 695 976'`}                                    | ${''}
    ${'text[]'}                               | ${'hit'}     | ${'x_customer_feedback'} | ${'tags'}             | ${`ARRAY['ok', 'reach zoe.vdb@telenet.be']`}                 | ${''}
    ${'small bytea'}                          | ${'hit'}     | ${'ir_attachment'}       | ${'db_datas'}         | ${`convert_to('TEL:+47 412 34 567', 'UTF8')`}                | ${'WHERE db_datas IS NOT NULL'}
  `('$form', async ({ finding, table, column, value, where }: Form) => {
    const plant = `UPDATE ${table} SET ${column} = ${value} ${where}`;
    const expected = `${finding} ${table}.${column}`;
    const c = new Client({ connectionString: pg.uri(db) });
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query(plant);
      await c.query('COMMIT');
      const report = await verifyNoPii(pg.uri(db), samples.get(db)!);
      expect(report.ok).toBe(false);
      expect(places(report)).toContain(expected);
    } finally {
      await c.end();
      refresh(db); // the next form starts from a clean copy again
    }
  });
});

describe('what only looks like personal data', () => {
  test('a file hash that reads like a VAT number is not one; the same number in text still is', async () => {
    const db = 'apps17';
    // DE136695976 is a checksum-valid German VAT number; here it opens a sha1 (attachment file name, checksum)
    const sha1 = `de136695976${'ab12cd34ef'.repeat(3)}`.slice(0, 40);
    pg.psql(db, `UPDATE ir_attachment SET store_fname = 'de/${sha1}', checksum = '${sha1}'`);
    try {
      expect(places(await verifyNoPii(pg.uri(db), samples.get(db)!))).toEqual([]);
      pg.psql(db, `UPDATE ir_attachment SET description = 'VAT DE136695976'`);
      expect(places(await verifyNoPii(pg.uri(db), samples.get(db)!))).toContain(
        'vat ir_attachment.description',
      );
    } finally {
      refresh(db);
    }
  });
});

describe('ctype C', () => {
  test('a database created with LC_CTYPE=C gives the same verdict as a UTF-8 one', async () => {
    const plant = `UPDATE mail_activity SET summary = 'RDV ÉMILE MÜLLER / ÅSA ÖBERG'; UPDATE res_partner SET comment = 'Zoë VANDENBERGHE' WHERE id = 5`;
    pg.psql('apps17', plant);
    pg.psql('apps17c', plant);
    const [utf8, c] = await Promise.all([
      verifyNoPii(pg.uri('apps17'), samples.get('apps17')!),
      verifyNoPii(pg.uri('apps17c'), samples.get('apps17c')!),
    ]);
    expect(places(c)).toEqual(places(utf8));
    expect(places(c)).toEqual(
      expect.arrayContaining(['hit mail_activity.summary', 'hit res_partner.comment']),
    );
    refresh('apps17');
    refresh('apps17c');
    const [u2, c2] = await Promise.all([
      verifyNoPii(pg.uri('apps17'), samples.get('apps17')!),
      verifyNoPii(pg.uri('apps17c'), samples.get('apps17c')!),
    ]);
    expect([places(u2), places(c2)]).toEqual([[], []]);
  });
});
