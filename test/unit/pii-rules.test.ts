/**
 * The rules of the personal-data verification after a PROD → UAT refresh, as a data owner would state
 * them (issue #20): where PROD's identifying values are sampled from, what is not personal data
 * (anonymized addresses, kept logins, company suffixes), how the same value written differently is
 * still found, and what the report says — never a value.
 */
import {
  CODE_SEPARATORS,
  DEFAULT_ALLOWED_EMAIL_DOMAINS,
  EMAIL_PATTERN,
  PATTERN_KINDS,
  PHONE_PATTERN,
  PII_SOURCES,
  WHOLE_SEPARATORS,
  WORD_PATTERN,
  buildReport,
  buildSample,
  formatReport,
  lookupKeys,
  nameKeys,
  normalizeCode,
  phoneKey,
  wholeKey,
  type PiiKind,
} from '../../shared/domain/pii';

const KINDS: PiiKind[] = ['email', 'phone', 'name', 'vat', 'iban', 'login'];
const IDENT = /^[a-z][a-z0-9_]*$/;

describe('where PROD values are sampled from', () => {
  test('every source is a PostgreSQL table and column name and a known kind (a misspelt one would silently sample nothing)', () => {
    expect(PII_SOURCES.length).toBeGreaterThan(0);
    for (const s of PII_SOURCES) {
      expect(s.table).toMatch(IDENT);
      expect(s.column).toMatch(IDENT);
      expect(KINDS).toContain(s.kind);
    }
    const places = PII_SOURCES.map((s) => `${s.table}.${s.column}`);
    expect(new Set(places).size).toBe(places.length);
  });

  test('every kind of identifying value is sampled, and partners and employees for each of theirs', () => {
    for (const k of KINDS) expect(PII_SOURCES.some((s) => s.kind === k)).toBe(true);
    const of = (table: string) =>
      PII_SOURCES.filter((s) => s.table === table).map((s) => `${s.column}:${s.kind}`);
    // Odoo's contact (res.partner) and employee (hr.employee) fields that name, reach or identify a person
    expect(of('res_partner')).toEqual(
      expect.arrayContaining(['email:email', 'phone:phone', 'mobile:phone', 'name:name', 'vat:vat']),
    );
    expect(of('hr_employee')).toEqual(
      expect.arrayContaining([
        'name:name',
        'work_email:email',
        'private_email:email',
        'private_phone:phone',
        'ssnid:vat',
        'identification_id:vat',
        'passport_id:vat',
      ]),
    );
    expect(of('res_partner_bank')).toEqual(expect.arrayContaining(['acc_number:iban']));
    expect(of('res_users')).toEqual(['login:login']);
  });

  test('people who are not partners are sampled too: leads, applicants, mailing contacts, attendees', () => {
    for (const table of ['crm_lead', 'hr_applicant', 'mailing_contact', 'event_registration']) {
      const kinds = PII_SOURCES.filter((s) => s.table === table).map((s) => s.kind);
      expect(kinds).toEqual(expect.arrayContaining(['name', 'email']));
    }
  });
});

describe('what is not personal data', () => {
  test.each(DEFAULT_ALLOWED_EMAIL_DOMAINS.map((d) => [d]))(
    'an address at the reserved domain %s (what anonymization writes) is not sampled',
    (domain) => {
      const s = buildSample([{ kind: 'email', value: `partner42@${domain}` }]);
      expect(s.emails).toEqual([]);
      expect(s.texts).toEqual([]);
      expect(s.counts.email).toBe(0);
    },
  );

  test('the reserved domains are the RFC 2606 ones; a real domain next to them is sampled', () => {
    expect([...DEFAULT_ALLOWED_EMAIL_DOMAINS].sort()).toEqual([
      'example.com',
      'example.invalid',
      'example.net',
      'example.org',
    ]);
    const s = buildSample([{ kind: 'email', value: 'jan@example.be' }]);
    expect(s.emails).toEqual(['jan@example.be']);
  });

  test('configured allowed domains replace the defaults, compared without case', () => {
    const s = buildSample(
      [
        { kind: 'email', value: 'qa@Test.Fabrikam.BE' },
        { kind: 'email', value: 'partner1@example.invalid' },
      ],
      { allowedEmailDomains: ['TEST.fabrikam.be'] },
    );
    expect(s.emails).toEqual(['partner1@example.invalid']);
  });

  test('kept logins and technical logins are not leaks; other logins are, even short e-mails', () => {
    const s = buildSample(
      [
        { kind: 'login', value: 'Tester' },
        { kind: 'login', value: '__system__' },
        { kind: 'login', value: 'admin' },
        { kind: 'login', value: 'a@b.co' },
      ],
      { keepLogins: ['tester'] },
    );
    // admin is kept only by default: here the keep-list is "tester"
    expect(s.texts.sort()).toEqual(['a@b.co', 'admin']);
    expect(s.counts.login).toBe(2);
    expect(buildSample([{ kind: 'login', value: 'admin' }]).texts).toEqual([]);
  });

  test('an e-mail field holding no address but a long enough text is still sampled as text; a short one is not', () => {
    expect(buildSample([{ kind: 'email', value: 'jan peeters' }]).texts).toEqual(['jan peeters']);
    expect(buildSample([{ kind: 'email', value: 'jan peeters' }]).emails).toEqual([]);
    expect(buildSample([{ kind: 'email', value: 'jan' }]).texts).toEqual([]);
    expect(buildSample([{ kind: 'email', value: 'jan' }]).counts.email).toBe(0);
  });

  test.each([
    'Partner Dupont',
    'Company Janssens',
    'Resource Maes',
    'Holder Jacobs',
    'Contact Mertens',
    'Lead Willems',
    'Someone Claes',
    'User Goossens',
    'Guest Wouters',
    'Record Dubois',
    'Channel Lambert',
  ])('the anonymized form "%s" gives no name key', (name) => {
    const s = buildSample([{ kind: 'name', value: name }]);
    expect(s.names).toEqual([]);
    expect(s.texts).toEqual([name.toLowerCase()]);
  });

  test.each(['sa', 'srl', 'bv', 'nv', 'gmbh', 'ltd', 'inc', 'llc', 'as', 'ab', 'sas', 'sarl'])(
    'a company suffix "%s" makes no name key, the words before it do',
    (suffix) => {
      const s = buildSample([{ kind: 'name', value: `Peeters Logistics ${suffix.toUpperCase()}` }]);
      expect(s.names).toEqual(['peeters logistics']);
    },
  );

  test('those words inside a real name do not hide it', () => {
    const s = buildSample([{ kind: 'name', value: 'Sabine Partner Lambert' }]);
    expect(s.names).toEqual(expect.arrayContaining(['sabine partner']));
    const t = buildSample([{ kind: 'name', value: 'Inca Ltdova Sarlat' }]);
    expect(t.names).toEqual(expect.arrayContaining(['inca ltdova', 'ltdova sarlat']));
  });

  test('a name key shorter than 7 characters would match ordinary words: dropped', () => {
    expect(buildSample([{ kind: 'name', value: 'Li Wei Chen' }]).names).toEqual(['wei chen']);
    expect(buildSample([{ kind: 'name', value: 'Jo Li Ma Yu' }]).names).toEqual([]);
  });

  test('a name without letters, or shorter than 5 characters, is not sampled', () => {
    const s = buildSample([
      { kind: 'name', value: '12-45' },
      { kind: 'name', value: 'Anna' },
    ]);
    expect(s.texts).toEqual([]);
    expect(s.counts.name).toBe(0);
    expect(buildSample([{ kind: 'name', value: 'Ánnie' }]).texts).toEqual(['annie']);
  });

  test('a code needs six characters and a digit to be sampled', () => {
    const s = buildSample([
      { kind: 'vat', value: 'BE 12' },
      { kind: 'vat', value: 'ABCDEFG' },
      { kind: 'iban', value: 'BE1234' },
      { kind: 'vat', value: 'be-12345' },
    ]);
    expect(s.codes.sort()).toEqual(['BE1234', 'BE12345']);
    expect(s.counts).toMatchObject({ vat: 1, iban: 1 });
  });

  test('a phone needs at least 7 digits; its key is the last 9', () => {
    expect(phoneKey('12 34 56')).toBeUndefined();
    expect(phoneKey('123 45 67')).toBe('1234567');
    expect(phoneKey('+32 2 123 45 67')).toBe('221234567');
    expect(phoneKey('0032 475 12 34 56')).toBe('475123456');
    const s = buildSample([
      { kind: 'phone', value: '12 34 56' },
      { kind: 'phone', value: '+32 475 12 34 56' },
      { kind: 'phone', value: '0475 12 34 56' },
    ]);
    expect(s.phones).toEqual(['475123456']);
    expect(s.counts.phone).toBe(2);
  });
});

describe('the same value written differently is still found', () => {
  test('codes drop every separator the SQL side drops', () => {
    for (const sep of CODE_SEPARATORS) expect(normalizeCode(`be71${sep}0961`)).toBe('BE710961');
    expect(CODE_SEPARATORS).toBe(' .-/_,:()');
  });

  test('whole keys also drop tabs and line breaks (a value copied into a note)', () => {
    for (const sep of [...CODE_SEPARATORS, '\t', '\n', '\r'])
      expect(wholeKey(`Jean${sep}Dupont`)).toBe('jeandupont');
    expect(WHOLE_SEPARATORS).toBe(' .-/_,:()\t\n\r');
  });

  test('the lookup keys: long texts and every code by their whole key; short texts as they are', () => {
    const sample = buildSample([
      { kind: 'name', value: 'Jean-Paul Dupont' },
      { kind: 'login', value: 'x.y.z' },
      { kind: 'vat', value: 'BE 0477.472.701' },
      { kind: 'phone', value: '+32 475 12 34 56' },
      { kind: 'email', value: 'jp@dupont.be' },
    ]);
    const keys = lookupKeys(sample);
    expect(keys.whole.sort()).toEqual(['be0477472701', 'jeanpauldupont', 'jp@dupontbe'].sort());
    expect(keys.shortTexts).toEqual(['x.y.z']);
    expect(keys.phones).toEqual(['475123456']);
    expect(keys.emails).toEqual(['jp@dupont.be']);
    expect(keys.names).toEqual(expect.arrayContaining(['jean paul', 'paul dupont']));
    expect(lookupKeys({ ...sample, names: undefined }).names).toEqual([]);
  });

  test('a whole key of exactly 5 characters is safe on its own; 4 is not', () => {
    const keys = lookupKeys({
      texts: ['ab-cde', 'ab-cd'],
      codes: [],
      phones: [],
      emails: [],
      counts: { email: 0, phone: 0, name: 0, vat: 0, iban: 0, login: 0 },
    });
    expect(keys.whole).toEqual(['abcde']);
    expect(keys.shortTexts).toEqual(['ab-cd']);
  });

  test('name keys skip one-letter words and pair the others in order', () => {
    expect(nameKeys('Jean P. Dupont Martin').sort()).toEqual(['dupont martin']);
    expect(nameKeys("Anne-Marie D'Hondt").sort()).toEqual(["marie d'hondt", 'anne marie'].sort());
    expect("D'Hondt".match(new RegExp(WORD_PATTERN, 'g'))).toEqual(["D'Hondt"]);
    expect('Zoë × Ünal'.match(new RegExp(WORD_PATTERN, 'g'))).toEqual(['Zoë', 'Ünal']);
  });

  test('an address or a phone inside free text is found whole', () => {
    expect('mail: a.b-c@sub.mail.example.be!'.match(new RegExp(EMAIL_PATTERN, 'g'))).toEqual([
      'a.b-c@sub.mail.example.be',
    ]);
    expect('x@localhost'.match(new RegExp(EMAIL_PATTERN, 'g'))).toBeNull();
    expect('tel (02) 123.45.67 ok'.match(new RegExp(PHONE_PATTERN, 'g'))?.map((m) => phoneKey(m))).toEqual([
      '021234567',
    ]);
    expect('room 12-4'.match(new RegExp(PHONE_PATTERN, 'g'))).toBeNull();
  });
});

describe('what the report says', () => {
  const scanned = {
    tables: 2,
    columns: 5,
    sampled: { email: 3, phone: 2, name: 0, vat: 0, iban: 1, login: 0 },
  };

  test('each kind of shape is named in words, and the kinds are the four the SQL side recognises', () => {
    expect([...PATTERN_KINDS]).toEqual(['email', 'phone', 'iban', 'vat']);
    const r = buildReport(
      [],
      [],
      scanned,
      PATTERN_KINDS.map((kind) => ({ table: 'mail_message', column: 'body', kind, count: 1 })),
    );
    expect(formatReport(r).split('\n').slice(1)).toEqual([
      '  mail_message.body: 1 e-mail address(es) outside the anonymized domains (decoded: &#64;, %40, ...)',
      '  mail_message.body: 1 checksum-valid IBAN(s)',
      '  mail_message.body: 1 international phone number(s)',
      '  mail_message.body: 1 checksum-valid VAT number(s)',
    ]);
  });

  test('findings are sorted by table, then column, then kind; secrets by place', () => {
    const r = buildReport(
      [
        { table: 'res_partner', column: 'comment', count: 1 },
        { table: 'res_partner', column: 'atext', count: 1 },
        { table: 'crm_lead', column: 'zz', count: 1 },
      ],
      [
        { table: 'b', column: 'x', count: 2 },
        { table: 'a', column: 'y', count: 1 },
      ],
      scanned,
      [
        { table: 't', column: 'c', kind: 'phone', count: 1 },
        { table: 't', column: 'c', kind: 'email', count: 1 },
        { table: 's', column: 'c', kind: 'vat', count: 1 },
      ],
      [
        { table: 'z', column: 'a', count: 1, place: 'z.a', rule: 'empty' },
        {
          table: 'ir_config_parameter',
          column: 'value',
          count: 1,
          place: 'ir_config_parameter[k]',
          rule: 'delete',
        },
      ],
    );
    expect(r.hits.map((h) => `${h.table}.${h.column}`)).toEqual([
      'crm_lead.zz',
      'res_partner.atext',
      'res_partner.comment',
    ]);
    expect(r.foreignEmails.map((h) => h.table)).toEqual(['a', 'b']);
    expect(r.patterns!.map((p) => `${p.table}:${p.kind}`)).toEqual(['s:vat', 't:email', 't:phone']);
    expect(r.secrets!.map((s) => s.place)).toEqual(['ir_config_parameter[k]', 'z.a']);
    expect(r.ok).toBe(false);
  });

  test('the head counts every sampled value of every kind', () => {
    expect(formatReport(buildReport([], [], scanned))).toBe(
      'PII verification passed: 5 columns of 2 tables searched for 6 sampled values',
    );
  });

  test('zero-count patterns and secrets are dropped and do not fail the verdict', () => {
    const r = buildReport(
      [],
      [],
      scanned,
      [{ table: 't', column: 'c', kind: 'iban', count: 0 }],
      [{ table: 'z', column: 'a', count: 0, place: 'z.a', rule: 'empty' }],
    );
    expect(r).toMatchObject({ ok: true, patterns: [], secrets: [] });
  });
});
