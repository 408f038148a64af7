import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  FOLD_FROM,
  FOLD_TO,
  fold,
  nameKeys,
  translit,
  buildReport,
  buildSample,
  emailDomain,
  EMAIL_PATTERN,
  formatReport,
  normalizeCode,
  normalizeText,
  PHONE_PATTERN,
  phoneKey,
  sampleSize,
} from '../../shared/domain/pii';

describe('normalization', () => {
  test('phones written differently give the same key', () => {
    expect(phoneKey('+32 475 12 34 56')).toBe('475123456');
    expect(phoneKey('0475/12.34.56')).toBe('475123456');
    expect(phoneKey('0032 (475) 12-34-56')).toBe('475123456');
    expect(phoneKey('12 34')).toBeUndefined();
  });
  test('codes drop separators and case; texts collapse whitespace', () => {
    expect(normalizeCode('be71 0961-2345.6769')).toBe('BE71096123456769');
    expect(normalizeText('  Sophie   PEETERS ')).toBe('sophie peeters');
    expect(emailDomain('A.B@Mail.Example.BE')).toBe('mail.example.be');
  });
  test('the SQL patterns find addresses and phone numbers inside text', () => {
    const text = 'Hello, call +32 475 12 34 56 or write to "Jo" <jo.smith+x@mail.acme-corp.be>.';
    expect(text.match(new RegExp(EMAIL_PATTERN, 'g'))).toEqual(['jo.smith+x@mail.acme-corp.be']);
    expect(text.match(new RegExp(PHONE_PATTERN, 'g'))?.map((m) => phoneKey(m))).toEqual(['475123456']);
  });
});

describe('buildSample', () => {
  const sample = buildSample(
    [
      { kind: 'email', value: 'Sophie.Peeters@Gmail.com' },
      { kind: 'email', value: 'someone@example.invalid' },
      { kind: 'login', value: 'admin' },
      { kind: 'login', value: '__system__' },
      { kind: 'login', value: 'jules' },
      { kind: 'login', value: 'ops@fabrikam.be' },
      { kind: 'name', value: 'Sophie Peeters' },
      { kind: 'name', value: 'Jo' },
      { kind: 'name', value: '12345' },
      { kind: 'phone', value: '+32 475 12 34 56' },
      { kind: 'phone', value: '112' },
      { kind: 'vat', value: 'BE 0477.472.701' },
      { kind: 'vat', value: 'ABCDEFGH' },
      { kind: 'iban', value: 'BE71 0961 2345 6769' },
      { kind: 'name', value: null },
      { kind: 'name', value: '   ' },
    ],
    { keepLogins: ['admin'] },
  );
  test('keeps identifying values in their matching form', () => {
    expect(sample.emails.sort()).toEqual(['ops@fabrikam.be', 'sophie.peeters@gmail.com']);
    expect(sample.texts.sort()).toEqual([
      'jules',
      'ops@fabrikam.be',
      'sophie peeters',
      'sophie.peeters@gmail.com',
    ]);
    expect(sample.phones).toEqual(['475123456']);
    expect(sample.codes.sort()).toEqual(['BE0477472701', 'BE71096123456769']);
    expect(sample.counts).toEqual({ email: 1, phone: 1, name: 1, vat: 1, iban: 1, login: 2 });
    expect(sampleSize(sample)).toBe(9);
  });
  test('drops kept logins, technical logins, anonymized addresses and values too short or generic to match safely', () => {
    const all = [...sample.texts, ...sample.codes, ...sample.phones, ...sample.emails];
    for (const v of ['admin', '__system__', 'someone@example.invalid', 'jo', '12345', '112', 'ABCDEFGH'])
      expect(all).not.toContain(v);
  });
});

describe('report', () => {
  const scanned = {
    tables: 3,
    columns: 12,
    sampled: { email: 2, phone: 1, name: 1, vat: 0, iban: 0, login: 0 },
  };
  test('ok only when nothing is found; sorted; zero counts dropped', () => {
    const r = buildReport(
      [
        { table: 'x_notes', column: 'note', count: 2 },
        { table: 'res_partner', column: 'email', count: 0 },
        { table: 'ir_config_parameter', column: 'value', count: 1 },
      ],
      [{ table: 'mail_message', column: 'body', count: 3 }],
      scanned,
    );
    expect(r.ok).toBe(false);
    expect(r.hits).toEqual([
      { table: 'ir_config_parameter', column: 'value', count: 1 },
      { table: 'x_notes', column: 'note', count: 2 },
    ]);
    expect(formatReport(r)).toBe(
      [
        'PII verification FAILED: 12 columns of 3 tables searched for 4 sampled values',
        '  ir_config_parameter.value: 1 value(s) from PROD',
        '  x_notes.note: 2 value(s) from PROD',
        '  mail_message.body: 3 e-mail address(es) outside the anonymized domains',
      ].join('\n'),
    );
    expect(buildReport([{ table: 'a', column: 'b', count: 0 }], [], scanned)).toMatchObject({
      ok: true,
      hits: [],
      foreignEmails: [],
    });
    expect(formatReport(buildReport([], [], scanned))).toMatch(/^PII verification passed/);
  });
});

describe('verdict: any kind of finding fails it', () => {
  const scanned = {
    tables: 1,
    columns: 1,
    sampled: { email: 1, phone: 0, name: 0, vat: 0, iban: 0, login: 0 },
  };
  const one = [{ table: 'crm_lead', column: 'description', count: 1 }];
  test('PROD-value hits alone fail the verdict', () => {
    expect(buildReport(one, [], scanned).ok).toBe(false);
  });
  test('foreign e-mails alone fail the verdict', () => {
    expect(buildReport([], one, scanned).ok).toBe(false);
  });
  test('a shape (IBAN, VAT, phone, decoded e-mail) alone fails the verdict, and is named with its kind', () => {
    const r = buildReport([], [], scanned, [
      { table: 'hr_contract', column: 'notes', kind: 'iban', count: 2 },
    ]);
    expect(r.ok).toBe(false);
    expect(formatReport(r)).toContain('hr_contract.notes: 2 checksum-valid IBAN(s)');
  });
  test('a live secret alone fails the verdict', () => {
    const r = buildReport(
      [],
      [],
      scanned,
      [],
      [
        {
          table: 'payment_provider',
          column: 'stripe_secret_key',
          count: 1,
          place: 'payment_provider.stripe_secret_key',
          rule: 'empty',
        },
      ],
    );
    expect(r.ok).toBe(false);
    expect(formatReport(r)).toContain(
      'payment_provider.stripe_secret_key: 1 catalogued credential(s) left (rule: empty)',
    );
  });
  test('zero counts of every kind pass', () => {
    const zero = [{ table: 'a', column: 'b', count: 0 }];
    const noSecret = [{ ...zero[0], place: 'a.b', rule: 'empty' }];
    expect(buildReport(zero, zero, scanned, [{ ...zero[0], kind: 'vat' }], noSecret)).toMatchObject({
      ok: true,
      hits: [],
      foreignEmails: [],
      patterns: [],
      secrets: [],
    });
  });
});

describe('folding and names, independent of the database ctype', () => {
  test('fold drops accents and case of Latin capitals that lower() under ctype C leaves', () => {
    expect(fold('ÉMILE MÜLLER')).toBe('emile muller');
    expect(fold('Øystein Ødegård')).toBe('oystein odegard');
    expect(translit('Müller Åsa Øystein')).toBe('mueller aasa oeystein');
  });
  test('the fold table is the one sql/lib/pii.sql uses', () => {
    const sql = readFileSync(path.join(__dirname, '..', '..', 'sql', 'lib', 'pii.sql'), 'utf8');
    expect(FOLD_FROM.length).toBe(FOLD_TO.length);
    expect(sql).toContain(`'${FOLD_FROM}'`);
    expect(sql).toContain(`'${FOLD_TO}'`);
  });
  test('name keys: consecutive word pairs, folded and transliterated', () => {
    expect(nameKeys('Émile Müller').sort()).toEqual(['emile mueller', 'emile muller']);
    expect(nameKeys('Jean-Paul Dupont')).toEqual(expect.arrayContaining(['paul dupont']));
    expect(nameKeys('Zoë')).toEqual([]);
  });
  test('the sample keeps name keys of people, not of company suffixes', () => {
    const s = buildSample([
      { kind: 'name', value: 'Åsa Öberg' },
      { kind: 'name', value: 'Peeters Logistics SRL' },
    ]);
    expect(s.names).toEqual(expect.arrayContaining(['asa oberg', 'aasa oeberg', 'peeters logistics']));
    expect(s.names).not.toContain('logistics srl');
  });
});
