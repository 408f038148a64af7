/**
 * Personal data verification after a PROD → UAT refresh (pure logic; the database side is
 * shared/adapters/pii-verifier.ts).
 *
 * Before the refresh the pipeline samples PROD's real identifying values (e-mails, phones, names, VATs,
 * IBANs, logins) into memory; after anonymization every text column of every table is searched for
 * them, and for e-mail addresses outside the allowed (anonymized) domains. Values are compared in a
 * normalized form so that "+32 475 12 34 56" in a message body matches "+32475123456" on a partner,
 * and "BE71 0961 2345 6769" matches "be71096123456769". A report names table.column and a count,
 * never a value: it goes to logs, Slack and the API.
 */

export type PiiKind = 'email' | 'phone' | 'name' | 'vat' | 'iban' | 'login';

export interface PiiSource {
  table: string;
  column: string;
  kind: PiiKind;
}

/** Where PROD's identifying values are sampled from (absent tables/columns are skipped). */
export const PII_SOURCES: readonly PiiSource[] = [
  { table: 'res_partner', column: 'email', kind: 'email' },
  { table: 'res_partner', column: 'phone', kind: 'phone' },
  { table: 'res_partner', column: 'mobile', kind: 'phone' },
  { table: 'res_partner', column: 'name', kind: 'name' },
  { table: 'res_partner', column: 'vat', kind: 'vat' },
  { table: 'res_partner_bank', column: 'acc_number', kind: 'iban' },
  { table: 'res_partner_bank', column: 'acc_holder_name', kind: 'name' },
  { table: 'res_users', column: 'login', kind: 'login' },
  { table: 'hr_employee', column: 'name', kind: 'name' },
  { table: 'hr_employee', column: 'work_email', kind: 'email' },
  { table: 'hr_employee', column: 'private_email', kind: 'email' },
  { table: 'hr_employee', column: 'private_phone', kind: 'phone' },
  { table: 'hr_employee', column: 'mobile_phone', kind: 'phone' },
  { table: 'hr_employee', column: 'emergency_phone', kind: 'phone' },
  { table: 'hr_employee', column: 'ssnid', kind: 'vat' },
  { table: 'hr_employee', column: 'identification_id', kind: 'vat' },
  { table: 'hr_employee', column: 'passport_id', kind: 'vat' },
  // people who are not partners: leads, applicants (18: candidates), mailing contacts, attendees
  { table: 'crm_lead', column: 'contact_name', kind: 'name' },
  { table: 'crm_lead', column: 'email_from', kind: 'email' },
  { table: 'crm_lead', column: 'phone', kind: 'phone' },
  { table: 'hr_applicant', column: 'partner_name', kind: 'name' },
  { table: 'hr_applicant', column: 'email_from', kind: 'email' },
  { table: 'hr_applicant', column: 'partner_phone', kind: 'phone' },
  { table: 'hr_candidate', column: 'partner_name', kind: 'name' },
  { table: 'hr_candidate', column: 'email_from', kind: 'email' },
  { table: 'hr_candidate', column: 'partner_phone', kind: 'phone' },
  { table: 'mailing_contact', column: 'name', kind: 'name' },
  { table: 'mailing_contact', column: 'email', kind: 'email' },
  { table: 'event_registration', column: 'name', kind: 'name' },
  { table: 'event_registration', column: 'email', kind: 'email' },
  { table: 'event_registration', column: 'phone', kind: 'phone' },
];

/** Reserved domains (RFC 2606/6761) that no real person uses; anonymized addresses use example.invalid. */
export const DEFAULT_ALLOWED_EMAIL_DOMAINS: readonly string[] = [
  'example.invalid',
  'example.com',
  'example.org',
  'example.net',
];

/** E-mail address inside any text, as a PostgreSQL ARE (also valid as a JS RegExp source). */
export const EMAIL_PATTERN = '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}';
/** A phone number inside any text: digits with the usual separators, at least 7 characters. */
export const PHONE_PATTERN = '\\+?[0-9][0-9 ()./-]{5,}[0-9]';

/** Digits a phone key keeps: the last 9 (drops country prefixes and trunk zeros). */
export const PHONE_KEY_DIGITS = 9;
export const MIN_PHONE_DIGITS = 7;
/** Separators dropped from codes (VAT, IBAN, ID numbers) before comparing; the SQL side uses translate(). */
export const CODE_SEPARATORS = ' .-/_,:()';
const MIN_TEXT_LENGTH = 5;
/** name keys shorter than this ("jo li") would match ordinary words */
const MIN_NAME_KEY_LENGTH = 7;
/** keys of the anonymized forms and of company suffixes are not a person's name */
const GENERIC_NAME_KEY =
  /^(partner|company|resource|holder|contact|lead|someone|user|guest|record|channel) |(^| )(sa|srl|bv|nv|gmbh|ltd|inc|llc|as|ab|sas|sarl)$/;
const MIN_CODE_LENGTH = 6;

/**
 * Case and accent folding that does not depend on the database's ctype (PostgreSQL's lower() leaves
 * É, Ü, Ø as they are under ctype C): the Latin letters of FOLD_FROM become those of FOLD_TO, then
 * A-Z are lower-cased. The SQL side is `pg_temp.odoo_fold` in sql/lib/pii.sql, with the same two
 * strings (a unit test compares them).
 */
export const FOLD_FROM =
  'ÀÁÂÃÄÅĀĂĄàáâãäåāăąÆæÇĆĈĊČçćĉċčĎĐďđÐðÈÉÊËĒĔĖĘĚèéêëēĕėęěĜĞĠĢĝğġģĤĦĥħÌÍÎÏĨĪĬĮİìíîïĩīĭįıĴĵĶķĹĻĽĿŁĺļľŀłÑŃŅŇñńņňÒÓÔÕÖØŌŎŐòóôõöøōŏőŒœŔŖŘŕŗřŚŜŞŠśŝşšßŢŤŦţťŧÞþÙÚÛÜŨŪŬŮŰŲùúûüũūŭůűųŴŵÝŸŶýÿŷŹŻŽźżž';
export const FOLD_TO =
  'AAAAAAAAAaaaaaaaaaAaCCCCCcccccDDddDdEEEEEEEEEeeeeeeeeeGGGGggggHHhhIIIIIIIIIiiiiiiiiiJjKkLLLLLlllllNNNNnnnnOOOOOOOOOoooooooooOoRRRrrrSSSSssssSTTTtttTtUUUUUUUUUUuuuuuuuuuuWwYYYyyyZZZzzz';
const FOLD = new Map([...FOLD_FROM].map((ch, i) => [ch, [...FOLD_TO][i]]));

export function fold(value: string): string {
  let out = '';
  for (const ch of value) {
    const f = FOLD.get(ch) ?? ch;
    out += f >= 'A' && f <= 'Z' ? f.toLowerCase() : f;
  }
  return out;
}

/** German/Scandinavian transliteration, then fold: Müller → mueller, Åsa → aasa, Øystein → oeystein. */
export function translit(value: string): string {
  const map: Record<string, string> = {
    ä: 'ae',
    ö: 'oe',
    ü: 'ue',
    Ä: 'Ae',
    Ö: 'Oe',
    Ü: 'Ue',
    ß: 'ss',
    å: 'aa',
    Å: 'Aa',
    ø: 'oe',
    Ø: 'Oe',
  };
  return fold(value.replace(/[äöüÄÖÜßåÅøØ]/g, (c) => map[c]));
}

/** Words of a text, as sql/lib/pii.sql's odoo_words: Latin letters (code points A-Z, a-z, U+00C0-U+024F but × and ÷), apostrophes inside. */
export const WORD_PATTERN = "[A-Za-zÀ-ÖØ-öø-ɏ][A-Za-zÀ-ÖØ-öø-ɏ'’]*";

/**
 * The keys a name is searched by inside any text: each pair of consecutive words (2+ letters each),
 * folded and transliterated, so "Meeting with ÉMILE MUELLER" finds "Émile Müller".
 */
export function nameKeys(name: string): string[] {
  const words = name.match(new RegExp(WORD_PATTERN, 'g')) ?? [];
  const keys = new Set<string>();
  for (let i = 0; i + 1 < words.length; i++) {
    if (words[i].length < 2 || words[i + 1].length < 2) continue;
    const pair = `${words[i]} ${words[i + 1]}`;
    keys.add(fold(pair));
    keys.add(translit(pair));
  }
  return [...keys];
}

/** folded (ctype-independent lower case, no accents), trimmed, inner whitespace collapsed */
export function normalizeText(value: string): string {
  return fold(value.trim().replace(/\s+/g, ' '));
}

/** upper case without the usual separators (VATs, IBANs, ID numbers): "be71 0961-2345" → "BE7109612345" */
export function normalizeCode(value: string): string {
  let out = '';
  for (const ch of value.toUpperCase()) if (!CODE_SEPARATORS.includes(ch)) out += ch;
  return out;
}

/** last 9 digits of a phone number, or undefined when it has fewer than 7 digits */
export function phoneKey(value: string): string | undefined {
  const digits = value.replace(/\D/g, '');
  return digits.length >= MIN_PHONE_DIGITS ? digits.slice(-PHONE_KEY_DIGITS) : undefined;
}

/**
 * Characters dropped from a whole value before it is compared with the sample (the verifier's one
 * whole-value lookup): the code separators plus whitespace. The SQL side is
 * `translate(lower(value), WHOLE_SEPARATORS, '')`.
 */
export const WHOLE_SEPARATORS = `${CODE_SEPARATORS}\t\n\r`;
/** Whole values shorter than this once stripped are also compared the old way (lower-cased, trimmed). */
export const MIN_WHOLE_KEY_LENGTH = 5;

/**
 * One key for every whole-value match (names, logins, e-mails, VATs, IBANs, ID numbers): lower case
 * without separators or whitespace. It matches everything the text form (lower-cased, trimmed) and
 * the code form (upper-cased, no separators) match, and also spacing variants ("Jean-Paul  Dupont").
 */
export function wholeKey(value: string): string {
  let out = '';
  for (const ch of fold(value)) if (!WHOLE_SEPARATORS.includes(ch)) out += ch;
  return out;
}

/**
 * The lookup sets the verifier searches with, derived from a sample: `whole` (wholeKey of every text
 * and code), `shortTexts` (texts whose whole key is too short to be safe on its own: compared as
 * they are), `phones`, `emails`.
 */
export function lookupKeys(sample: PiiSample): {
  whole: string[];
  shortTexts: string[];
  phones: string[];
  emails: string[];
  names: string[];
} {
  const whole = new Set<string>();
  const shortTexts = new Set<string>();
  for (const t of sample.texts) {
    const k = wholeKey(t);
    if (k.length >= MIN_WHOLE_KEY_LENGTH) whole.add(k);
    else shortTexts.add(t);
  }
  for (const c of sample.codes) {
    const k = wholeKey(c);
    if (k) whole.add(k);
  }
  return {
    whole: [...whole],
    shortTexts: [...shortTexts],
    phones: [...sample.phones],
    emails: [...sample.emails],
    names: [...(sample.names ?? [])],
  };
}

export function emailDomain(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** The in-memory sample: normalized keys only, grouped by how they are matched. Never persisted. */
export interface PiiSample {
  /** whole values compared lower-cased and trimmed (names, logins, e-mails) */
  texts: string[];
  /** whole values compared as upper-case alphanumerics (VATs, IBANs, ID numbers) */
  codes: string[];
  /** phone keys, matched against every phone-looking run of digits in any text */
  phones: string[];
  /** e-mail addresses, matched against every address found in any text */
  emails: string[];
  /** two-word keys of names (see nameKeys), matched against each pair of consecutive words of any text */
  names?: string[];
  /** how many values of each kind were sampled (for the report; no values) */
  counts: Record<PiiKind, number>;
}

export interface SampleOptions {
  /** logins kept by the anonymization (REFRESH_KEEP_LOGINS): never counted as leaks */
  keepLogins?: readonly string[];
  /** e-mail domains that are not personal data (default: reserved example domains) */
  allowedEmailDomains?: readonly string[];
}

/** Build the sample from raw values; too-short or generic values are dropped (they would match anything). */
export function buildSample(
  values: readonly { kind: PiiKind; value: string | null | undefined }[],
  opts: SampleOptions = {},
): PiiSample {
  const keep = new Set((opts.keepLogins ?? ['admin']).map(normalizeText));
  const allowed = new Set(
    (opts.allowedEmailDomains ?? DEFAULT_ALLOWED_EMAIL_DOMAINS).map((d) => d.toLowerCase()),
  );
  const texts = new Set<string>();
  const codes = new Set<string>();
  const phones = new Set<string>();
  const emails = new Set<string>();
  const names = new Set<string>();
  const counts: Record<PiiKind, number> = { email: 0, phone: 0, name: 0, vat: 0, iban: 0, login: 0 };
  for (const { kind, value } of values) {
    if (value === null || value === undefined) continue;
    const text = normalizeText(value);
    if (!text) continue;
    let added = false;
    switch (kind) {
      case 'email':
      case 'login': {
        if (kind === 'login' && (keep.has(text) || text.startsWith('__'))) break;
        const isEmail = new RegExp(`^${EMAIL_PATTERN}$`).test(text);
        if (isEmail && allowed.has(emailDomain(text))) break;
        if (isEmail) emails.add(text);
        if (text.length >= MIN_TEXT_LENGTH || isEmail) {
          texts.add(text);
          added = true;
        }
        break;
      }
      case 'name':
        if (text.length >= MIN_TEXT_LENGTH && /\p{L}/u.test(text)) {
          texts.add(text);
          for (const k of nameKeys(value))
            if (k.length >= MIN_NAME_KEY_LENGTH && !GENERIC_NAME_KEY.test(k)) names.add(k);
          added = true;
        }
        break;
      case 'phone': {
        const key = phoneKey(value);
        if (key) {
          phones.add(key);
          added = true;
        }
        break;
      }
      case 'vat':
      case 'iban': {
        const code = normalizeCode(value);
        if (code.length >= MIN_CODE_LENGTH && /[0-9]/.test(code)) {
          codes.add(code);
          added = true;
        }
        break;
      }
    }
    if (added) counts[kind]++;
  }
  return {
    texts: [...texts],
    codes: [...codes],
    phones: [...phones],
    emails: [...emails],
    names: [...names],
    counts,
  };
}

export function sampleSize(sample: PiiSample): number {
  return sample.texts.length + sample.codes.length + sample.phones.length + sample.emails.length;
}

/** One column where something was found: where and how many values, never which. */
export interface ColumnCount {
  table: string;
  column: string;
  count: number;
}

/** Personal data recognised by its shape alone, without a sample (see sql/lib/pii.sql odoo_pii_kinds). */
export type PatternKind = 'email' | 'phone' | 'iban' | 'vat';
export const PATTERN_KINDS: readonly PatternKind[] = ['email', 'phone', 'iban', 'vat'];
export interface PatternCount extends ColumnCount {
  kind: PatternKind;
}

/**
 * A place still holding a catalogued credential: `place` is 'table.column', 'table (rows)' or
 * 'ir_config_parameter[key]' (table and column split from it), `rule` the catalogue rule it breaks
 * (empty | rotate | delete). Never the value.
 */
export interface SecretCount extends ColumnCount {
  place: string;
  rule: string;
}

export interface PiiReport {
  ok: boolean;
  /** columns holding one of the sampled PROD values */
  hits: ColumnCount[];
  /** columns holding e-mail addresses outside the allowed domains */
  foreignEmails: ColumnCount[];
  /** columns holding values shaped like personal data (decoded e-mails, international phones, valid IBANs/VATs) */
  patterns?: PatternCount[];
  /** places still holding a catalogued credential (sql/lib/secrets.sql; see VerifyOpts.secrets) */
  secrets?: SecretCount[];
  /** what was searched */
  scanned: { tables: number; columns: number; sampled: Record<PiiKind, number> };
}

function byPlace(a: ColumnCount, b: ColumnCount): number {
  return a.table.localeCompare(b.table) || a.column.localeCompare(b.column);
}

export function buildReport(
  hits: ColumnCount[],
  foreignEmails: ColumnCount[],
  scanned: PiiReport['scanned'],
  patterns: PatternCount[] = [],
  secrets: SecretCount[] = [],
): PiiReport {
  const h = hits.filter((x) => x.count > 0).sort(byPlace);
  const f = foreignEmails.filter((x) => x.count > 0).sort(byPlace);
  const p = patterns.filter((x) => x.count > 0).sort((a, b) => byPlace(a, b) || a.kind.localeCompare(b.kind));
  const s = secrets.filter((x) => x.count > 0).sort((a, b) => a.place.localeCompare(b.place));
  return {
    ok: h.length === 0 && f.length === 0 && p.length === 0 && s.length === 0,
    hits: h,
    foreignEmails: f,
    patterns: p,
    secrets: s,
    scanned,
  };
}

const PATTERN_LABEL: Record<PatternKind, string> = {
  email: 'e-mail address(es) outside the anonymized domains (decoded: &#64;, %40, ...)',
  phone: 'international phone number(s)',
  iban: 'checksum-valid IBAN(s)',
  vat: 'checksum-valid VAT number(s)',
};

/** One line per finding, for logs, alerts and the refresh result (no values, by construction). */
export function formatReport(report: PiiReport): string {
  const { tables, columns, sampled } = report.scanned;
  const total = Object.values(sampled).reduce((a, b) => a + b, 0);
  const head = `PII verification ${report.ok ? 'passed' : 'FAILED'}: ${columns} columns of ${tables} tables searched for ${total} sampled values`;
  const lines = [
    ...report.hits.map((h) => `  ${h.table}.${h.column}: ${h.count} value(s) from PROD`),
    ...report.foreignEmails.map(
      (h) => `  ${h.table}.${h.column}: ${h.count} e-mail address(es) outside the anonymized domains`,
    ),
    ...(report.patterns ?? []).map((h) => `  ${h.table}.${h.column}: ${h.count} ${PATTERN_LABEL[h.kind]}`),
    ...(report.secrets ?? []).map(
      (h) => `  ${h.place}: ${h.count} catalogued credential(s) left (rule: ${h.rule})`,
    ),
  ];
  return [head, ...lines].join('\n');
}
