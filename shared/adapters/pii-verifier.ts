/**
 * PII verifier: samples PROD's identifying values into memory (`samplePii`) and, after the refresh
 * anonymized the copy, searches every text/varchar/jsonb column of every table for them
 * (`verifyNoPii`). Columns come from information_schema, not from a list of known fields: columns of
 * removed Odoo fields and custom modules are searched too.
 *
 * One pass per table, all its text columns at once, whatever the sample size: big tables compare with
 * the sample passed as array parameters (`= ANY`, hashed by PostgreSQL ≥ 14), small ones probe an
 * indexed session table (see `tableQuery`). JIT is switched off for the verification: compiling costs
 * ~0.3–3 s per query and buys nothing on one scan. The sample lives in this process and, during the
 * verification, in a temporary table of a transaction that is rolled back (session-local, never
 * WAL-logged): never in a regular table, a file or a log.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, ClientBase } from 'pg';
import { SQL_DIR } from './sql-scripts';
import { findSecrets, type SecretFinding } from './secret-catalogue';
import { PipelineError } from '../domain/errors';
import {
  ColumnCount,
  DEFAULT_ALLOWED_EMAIL_DOMAINS,
  EMAIL_PATTERN,
  MIN_PHONE_DIGITS,
  PHONE_KEY_DIGITS,
  PHONE_PATTERN,
  PII_SOURCES,
  PiiKind,
  PiiReport,
  PiiSample,
  PiiSource,
  SecretCount,
  PATTERN_KINDS,
  PatternCount,
  PatternKind,
  buildReport,
  WHOLE_SEPARATORS,
  buildSample,
  lookupKeys,
} from '../domain/pii';

/** A connected `pg` client, or a connection string (a client is opened and closed around the call). */
export type Db = ClientBase | string;

async function withDb<T>(db: Db, fn: (c: ClientBase) => Promise<T>): Promise<T> {
  if (typeof db !== 'string') return fn(db);
  const client = new Client({ connectionString: db });
  try {
    await client.connect();
  } catch (err) {
    throw new PipelineError(
      'PII.DB_UNREACHABLE',
      `cannot connect to the database to verify: ${(err as Error).message}`,
      true,
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;

async function schemaOf(c: ClientBase, schema?: string): Promise<string> {
  if (schema) return schema;
  const r = await c.query<{ s: string }>('SELECT current_schema() AS s');
  return r.rows[0].s;
}

export interface SampleOpts {
  /** values sampled per source column (default 5000; random rows) */
  perColumn?: number;
  /** logins kept by the anonymization; they are not PII leaks */
  keepLogins?: readonly string[];
  allowedEmailDomains?: readonly string[];
  schema?: string;
  /** where to sample (default PII_SOURCES) */
  sources?: readonly PiiSource[];
}

/**
 * Sample identifying values of a PROD database (or of the restored copy before anonymization).
 * Odoo's own technical partners (OdooBot, the public user) are left out: they are not people and
 * their names appear in technical data.
 */
export async function samplePii(db: Db, opts: SampleOpts = {}): Promise<PiiSample> {
  const perColumn = opts.perColumn ?? 5000;
  return withDb(db, async (c) => {
    const schema = await schemaOf(c, opts.schema);
    const cols = await c.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1`,
      [schema],
    );
    const present = new Set(cols.rows.map((r) => `${r.table_name}.${r.column_name}`));
    const hasModelData = present.has('ir_model_data.name');
    const values: { kind: PiiKind; value: string }[] = [];
    for (const src of opts.sources ?? PII_SOURCES) {
      if (!present.has(`${src.table}.${src.column}`)) continue;
      const technical =
        src.table === 'res_partner' && hasModelData
          ? ` AND id NOT IN (SELECT res_id FROM ${ident(schema)}.ir_model_data WHERE model = 'res.partner' AND module = 'base' AND name IN ('partner_root', 'public_partner'))`
          : '';
      const r = await c.query<{ v: string }>(
        `SELECT ${ident(src.column)}::text AS v FROM ${ident(schema)}.${ident(src.table)}
          WHERE ${ident(src.column)} IS NOT NULL${technical} ORDER BY random() LIMIT ${Math.max(1, Math.floor(perColumn))}`,
      );
      for (const row of r.rows) values.push({ kind: src.kind, value: row.v });
    }
    return buildSample(values, {
      keepLogins: opts.keepLogins,
      allowedEmailDomains: opts.allowedEmailDomains,
    });
  });
}

export interface VerifyOpts {
  allowedEmailDomains?: readonly string[];
  schema?: string;
  /** tables not searched at all (e.g. a log table the operator accepts); default none */
  excludeTables?: readonly string[];
  /** tables with fewer rows are searched by index probes, bigger ones by hashing (default 5000) */
  probeModeMaxRows?: number;
  /** called after each table (progress), with the time its search took */
  onTable?: (table: string, columns: number, ms: number) => void;
  /**
   * Tables searched at the same time, each connection taking the next biggest table (default 2: a
   * refresh verifies on a VM with ≥ 2 cores; PostgreSQL runs one query per connection on one core).
   * Extra connections come from `connect`, or from the connection string when `db` is one.
   */
  parallel?: number;
  /** opens one more connection to the same database (closed by the verifier) */
  connect?: () => Promise<{ client: ClientBase; close(): Promise<void> }>;
  /** where sql/lib/pii.sql is read from (default: the project's sql/) */
  sqlDir?: string;
  /**
   * Also check the secret catalogue (sql/lib/secrets.sql, through `findSecrets`) on the same connection:
   * every place still holding a catalogued credential is a finding in `secrets` (place and count, never
   * the value). Default true: a refreshed copy that keeps a live credential fails like a PII leak.
   */
  secrets?: boolean;
}

/** A secret-catalogue finding as the report lists it (`place`: see SecretFinding). */
function secretCount(f: SecretFinding): SecretCount {
  const rows = / \(rows\)$/.exec(f.place);
  const param = /^([^[]+)\[(.*)\]$/.exec(f.place);
  const dot = f.place.indexOf('.');
  const [table, column] = rows
    ? [f.place.slice(0, rows.index), '(rows)']
    : param
      ? [param[1], `[${param[2]}]`]
      : [f.place.slice(0, dot), f.place.slice(dot + 1)];
  return { table, column, count: f.count, place: f.place, rule: f.rule };
}

interface TextColumn {
  table: string;
  column: string;
  json: boolean;
  /** how the column is read as text: 'array' (text[]/varchar[]), 'bytea' (small values, as escaped text) */
  form?: 'array' | 'bytea';
}

/** bytea values up to this size are searched (as text, non-ASCII bytes escaped); bigger ones are files */
export const MAX_BYTEA_BYTES = 65536;

/** Text-like columns of every base table of the schema (views and foreign tables are not data). */
async function textColumns(
  c: ClientBase,
  schema: string,
  exclude: ReadonlySet<string>,
): Promise<Map<string, TextColumn[]>> {
  const r = await c.query<{ table_name: string; column_name: string; data_type: string }>(
    `SELECT c.table_name, c.column_name, c.data_type
       FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
      WHERE c.table_schema = $1 AND (c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json', 'bytea')
         OR c.data_type = 'ARRAY' AND c.udt_name IN ('_text', '_varchar', '_bpchar'))
      ORDER BY c.table_name, c.ordinal_position`,
    [schema],
  );
  const byTable = new Map<string, TextColumn[]>();
  for (const row of r.rows) {
    if (exclude.has(row.table_name)) continue;
    const list = byTable.get(row.table_name) ?? [];
    list.push({
      table: row.table_name,
      column: row.column_name,
      json: row.data_type === 'jsonb' || row.data_type === 'json',
      form: row.data_type === 'ARRAY' ? 'array' : row.data_type === 'bytea' ? 'bytea' : undefined,
    });
    byTable.set(row.table_name, list);
  }
  return byTable;
}

/** Session-local table holding the sample for small tables (see `tableQuery`). */
const KEYS = 'pg_temp.odoo_pii_keys';
/** Tables with fewer rows than this are searched by index probes into KEYS, bigger ones by hashing. */
export const PROBE_MODE_MAX_ROWS = 5000;

export type LookupMode = 'hash' | 'probe';
/** @deprecated every table is now unfolded into (column, value) rows; kept for compatibility */
export const LATERAL_ABOVE_COLUMNS = 0;

/**
 * A run of 16 or more hexadecimal characters with at least one letter: a hash or a token (attachment
 * store_fname and checksum, access tokens), not text. Digits inside one are not phone numbers: without
 * this, one hash in a few thousand holds nine digits in a row that end like a sampled phone number,
 * and the refresh fails on a false finding.
 */
export const HEX_RUN = '(?<![0-9A-Fa-f])(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{16,}(?![0-9A-Fa-f])';

/** Lookup sets: w = whole keys, s = short texts, p = phone keys, e = e-mail addresses, n = name keys. */
type KeyKind = 'w' | 's' | 'p' | 'e' | 'n';
/** Parameter numbers of the lookup arrays in hash mode ($1 is always the allowed e-mail domains). */
const PARAM: Record<KeyKind, number> = { w: 2, p: 3, e: 4, n: 5, s: 6 };

/**
 * Values the anonymization writes (sql/anonymize.sql, lib/anonymize-discovery.sql) and nothing else:
 * skipped by the shape search without calling it (the reserved +1 0xx phone range, the ANON bank's
 * IBANs, the BE1 VAT series, addresses at example.invalid).
 */
export const GENERATED_VALUE =
  '^(\\+10[0-9]{9}|NL[0-9]{2}ANON[0-9]{10}|BE1[0-9]{9}|<?[a-z0-9.]+@example\\.invalid>?)$';
/** A value that can hold a shape finding: an '@' (or an encoded one), or 7 digits in a row with single separators. */
const SHAPE_PREFILTER = '[@&%]|[0-9]([ .()/-]?[0-9]){6}';

export interface TableQueryOpts {
  /** include the short-text lookup (only when the sample has short texts) */
  shortTexts?: boolean;
  /** include the names-inside-text lookup (only when the sample has name keys) */
  names?: boolean;
}

/**
 * The one-pass query of a table. Its text columns are unfolded into (column, value) rows (JSON
 * columns: every string or number inside, at any depth), so that each lookup set is hashed once per
 * query, not once per column — with many sets of tens of thousands of keys, one hash table per
 * column no longer fits the CPU caches and costs 2–3× more per lookup. Per column it counts the rows
 * holding a sampled value (`hits`) and the rows holding an e-mail address outside the allowed
 * domains (`foreign`); rows with neither are filtered out before grouping.
 *
 * A value is a hit when:
 * - its whole key (lower case, no separators or whitespace) is a sampled value's whole key (names,
 *   logins, e-mails, VATs, IBANs, ID numbers: one lookup; see `wholeKey`), or — for sampled texts
 *   too short to be safe without separators — it is that text, lower-cased and trimmed;
 * - a phone number inside it (PHONE_PATTERN) ends with a sampled phone key;
 * - an e-mail address inside it (EMAIL_PATTERN) is a sampled address.
 * Every value goes through the cheap paths only: one `regexp_substr` finds its first phone number
 * (computed once per value: the unfolding subquery is kept apart with OFFSET 0), another the only
 * address; `regexp_matches` (a per-row subplan, ~10× the cost) runs only for the rare value whose
 * first phone number is a hit or that can hold a second one (7 more characters and a second match)
 * — to confirm it outside hashes (HEX_RUN) — or that holds two '@'.
 *
 * Lookup: 'hash' compares with array parameters (`= ANY`, hashed by PostgreSQL ≥ 14 once per query)
 * — for big tables; 'probe' looks keys up in the indexed session table KEYS — for small tables,
 * where hashing tens of thousands of keys per query would cost more than the scan.
 */
export function tableQuery(
  schema: string,
  table: string,
  columns: readonly TextColumn[],
  mode: LookupMode = 'hash',
  opts: TableQueryOpts = {},
): string {
  const has = (kind: KeyKind, expr: string): string =>
    mode === 'hash'
      ? `${expr} = ANY ($${PARAM[kind]}::text[])`
      : `EXISTS (SELECT 1 FROM ${KEYS} k WHERE k.kind = '${kind}' AND k.key = ${expr})`;
  const email = literal(EMAIL_PATTERN);
  const phone = literal(PHONE_PATTERN);
  const x = 'v.val';
  // ASCII values are lower-cased by the C collation's byte loop; others are folded by an explicit
  // table (pg_temp.odoo_fold): the same verdict whatever the database's ctype (lower() under ctype C
  // leaves É as it is)
  const lower = `CASE WHEN octet_length(${x}) = length(${x}) THEN lower(${x} COLLATE "C") ELSE pg_temp.odoo_fold(${x}) END`;
  // separators and whitespace dropped with replace(): a no-op replace returns its input uncopied,
  // which makes 12 of them cheaper than one translate() on UTF-8 text
  let whole = lower;
  for (const ch of WHOLE_SEPARATORS)
    whole = `replace(${whole}, ${ch === '\t' ? "E'\\t'" : ch === '\n' ? "E'\\n'" : ch === '\r' ? "E'\\r'" : literal(ch)}, '')`;
  // a value that is one bare address ("a@b.c" or "<a@b.c>": one '@', no space, comma or semicolon,
  // '<' and '>' only around it) is its own address, no extraction needed
  const bare = `${x} ~ '^<?[^@ ,;<>]*@[^@ ,;<>]*>?$'`;
  const ats = `octet_length(${x}) - octet_length(replace(${x}, '@', ''))`;
  /** `test` applied to every address of the value (`a`: the lower-cased address) */
  const anyAddress = (test: (a: string) => string): string => `(strpos(${x}, '@') > 0 AND CASE
      WHEN ${bare} THEN ${test(`lower(btrim(${x}, '<>'))`)}
      WHEN ${ats} = 1 THEN ${test(`lower(regexp_substr(${x}, ${email}))`)}
      ELSE EXISTS (SELECT 1 FROM regexp_matches(${x}, ${literal(`(${EMAIL_PATTERN})`)}, 'g') m WHERE ${test('lower(m[1])')}) END)`;
  const phoneKey = (m: string): string => `right(translate(${m}, ' ()./+-', ''), ${PHONE_KEY_DIGITS})`;
  const isForeign = (a: string): string => `split_part(${a}, '@', 2) <> ALL ($1::text[])`;
  // names inside any text: each pair of consecutive words, folded (keys made by nameKeys)
  const named = opts.names
    ? `\n      OR (${x} ~ '[[:space:]]' AND EXISTS (SELECT 1 FROM (SELECT pg_temp.odoo_words(${x}) AS w) s, generate_series(1, cardinality(s.w) - 1) i
                 WHERE ${has('n', "pg_temp.odoo_fold(s.w[i] || ' ' || s.w[i + 1])")}))`
    : '';
  const notEmail = (
    email: string,
  ): string => `(${has('w', whole)}${opts.shortTexts ? `\n      OR ${has('s', `pg_temp.odoo_fold(btrim(${x}))`)}` : ''}${named}
      OR (v.ph IS NOT NULL AND (${has('p', phoneKey('v.ph'))} OR (octet_length(${x}) - octet_length(v.ph) >= ${MIN_PHONE_DIGITS} AND regexp_count(${x}, ${phone}) > 1))
          AND EXISTS (SELECT 1 FROM regexp_matches(regexp_replace(${x}, ${literal(HEX_RUN)}, '|', 'g'), ${phone}, 'g') m WHERE ${has('p', phoneKey('m[1]'))}))
      OR ${email})`;
  const hit = notEmail(anyAddress((a) => has('e', a)));
  const foreign = anyAddress(isForeign);
  // the row filter: either finding, each address extracted once
  const either = `(${notEmail(anyAddress((a) => `(${has('e', a)} OR ${isForeign(a)})`))} OR cardinality(v.k) > 0)`;
  const parts: string[] = [];
  const plain = columns.filter((c) => !c.json);
  const asText = (c: TextColumn): string => {
    const col = `t.${ident(c.column)}`;
    if (c.form === 'array') return `array_to_string(${col}, E'\\n')`;
    if (c.form === 'bytea')
      return `CASE WHEN octet_length(${col}) <= ${MAX_BYTEA_BYTES} THEN encode(${col}, 'escape') END`;
    return `${col}::text`;
  };
  if (plain.length)
    parts.push(
      `SELECT * FROM (VALUES ${plain.map((c) => `(${literal(c.column)}, ${asText(c)})`).join(', ')}) x(c, val)`,
    );
  for (const c of columns.filter((col) => col.json)) {
    // every string and number inside, at any depth (translations, company-dependent values, settings)
    parts.push(
      `SELECT ${literal(c.column)}, j #>> '{}' FROM jsonb_path_query(t.${ident(c.column)}::jsonb, 'strict $.**') j WHERE jsonb_typeof(j) IN ('string', 'number')`,
    );
    // and every key (an address used as a key)
    parts.push(
      `SELECT ${literal(c.column)}, k FROM jsonb_path_query(t.${ident(c.column)}::jsonb, 'strict $.**') j, jsonb_object_keys(j) k WHERE jsonb_typeof(j) = 'object'`,
    );
  }
  const kinds = PATTERN_KINDS.map(
    (k) => `count(DISTINCT t.ctid) FILTER (WHERE ${literal(k)} = ANY (v.k)) AS ${k}_shape`,
  ).join(', ');
  return `SELECT v.c AS column, count(DISTINCT t.ctid) FILTER (WHERE ${hit}) AS hits, count(DISTINCT t.ctid) FILTER (WHERE ${foreign}) AS foreign, ${kinds}
  FROM ONLY ${ident(schema)}.${ident(table)} t
  CROSS JOIN LATERAL (
    SELECT d.c, d.val, regexp_substr(d.val, ${phone}) AS ph,
           CASE WHEN d.val ~ ${literal(SHAPE_PREFILTER)} AND d.val !~ ${literal(GENERATED_VALUE)} THEN pg_temp.odoo_pii_kinds(d.val, $1::text[]) ELSE '{}' END AS k
      FROM (SELECT u.c, CASE WHEN u.val ~ '[&%\u00a0]' THEN pg_temp.odoo_decode(u.val) ELSE u.val END AS val
              FROM (${parts.join('\n    UNION ALL ')}) u(c, val)
             WHERE u.val IS NOT NULL AND u.val <> '') d
    OFFSET 0) v
  WHERE ${either}
  GROUP BY v.c`;
}

/** Rows of a table's query result → per-column counts. */
interface Counts {
  column: string;
  hits: number;
  foreign: number;
  shapes: Record<PatternKind, number>;
}
function countsOf(rows: Record<string, string>[]): Counts[] {
  return rows.map((r) => ({
    column: r.column,
    hits: Number(r.hits),
    foreign: Number(r.foreign),
    shapes: Object.fromEntries(PATTERN_KINDS.map((k) => [k, Number(r[`${k}_shape`])])) as Record<
      PatternKind,
      number
    >,
  }));
}

async function loadKeys(c: ClientBase, keys: ReturnType<typeof lookupKeys>): Promise<void> {
  // temp table created inside the verification's transaction, which is rolled back: it never outlives it
  await c.query(`CREATE TEMP TABLE odoo_pii_keys (kind text NOT NULL, key text NOT NULL) ON COMMIT DROP`);
  await c.query(
    `INSERT INTO ${KEYS} (kind, key)
     SELECT 'w', unnest($1::text[]) UNION SELECT 'p', unnest($2::text[]) UNION SELECT 'e', unnest($3::text[]) UNION SELECT 's', unnest($4::text[])
     UNION SELECT 'n', unnest($5::text[])`,
    [keys.whole, keys.phones, keys.emails, keys.shortTexts, keys.names],
  );
  await c.query(`CREATE INDEX ON ${KEYS} (kind, key)`);
  await c.query(`ANALYZE ${KEYS}`);
}

/** Open one more connection to what `db` names (a connection string), or through `opts.connect`. */
function opener(
  db: Db,
  opts: VerifyOpts,
): (() => Promise<{ client: ClientBase; close(): Promise<void> }>) | undefined {
  if (opts.connect) return opts.connect;
  if (typeof db !== 'string') return undefined;
  return async () => {
    const client = new Client({ connectionString: db });
    try {
      await client.connect();
    } catch (err) {
      throw new PipelineError(
        'PII.DB_UNREACHABLE',
        `cannot connect to the database to verify: ${(err as Error).message}`,
        true,
      );
    }
    return { client, close: () => client.end().catch(() => undefined) };
  };
}

/**
 * Search every text column of every table for the sampled values and for foreign e-mail addresses.
 * `ok` is false when anything is found; the report carries table.column and counts only.
 *
 * Tables are searched biggest first by `parallel` connections, each in its own transaction that is
 * rolled back (settings and the temporary key table vanish with it). The report is the same whatever
 * the order: findings are listed in table order.
 */
export async function verifyNoPii(db: Db, sample: PiiSample, opts: VerifyOpts = {}): Promise<PiiReport> {
  const allowed = (opts.allowedEmailDomains ?? DEFAULT_ALLOWED_EMAIL_DOMAINS).map((d) => d.toLowerCase());
  const probeMax = opts.probeModeMaxRows ?? PROBE_MODE_MAX_ROWS;
  const open = opener(db, opts);
  const parallel = open ? Math.max(1, Math.floor(opts.parallel ?? 2)) : 1;
  return withDb(db, async (c) => {
    const schema = await schemaOf(c, opts.schema);
    const byTable = await textColumns(c, schema, new Set(opts.excludeTables ?? []));
    const columns = [...byTable.values()].reduce((n, cols) => n + cols.length, 0);
    const keys = lookupKeys(sample);
    const shortTexts = keys.shortTexts.length > 0;
    const names = keys.names.length > 0;
    const piiSql = readFileSync(path.join(opts.sqlDir ?? SQL_DIR, 'lib', 'pii.sql'), 'utf8');
    // biggest first, so the longest scans start at once and the small ones fill in around them
    const sizes = await c.query<{ t: string; b: string }>(
      `SELECT c.relname AS t, pg_table_size(c.oid)::text AS b FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`,
      [schema],
    );
    const bytes = new Map(sizes.rows.map((r) => [r.t, Number(r.b)]));
    const queue = [...byTable.keys()].sort(
      (a, b) => (bytes.get(b) ?? 0) - (bytes.get(a) ?? 0) || a.localeCompare(b),
    );
    const found = new Map<string, Counts[]>();

    /** One connection's share: its own transaction, key table and settings; takes tables until none is left. */
    const work = async (w: ClientBase): Promise<void> => {
      // one transaction, rolled back at the end: the settings vanish with it.
      // JIT compilation costs seconds per big query and buys nothing on a single scan.
      await w.query('BEGIN');
      try {
        await w.query('SET LOCAL jit = off');
        await w.query('SET LOCAL enable_memoize = off');
        // the shape search and the ctype-independent folding (sql/lib/pii.sql: pg_temp functions, gone with the session)
        await w.query(piiSql);
        await loadKeys(w, keys);
        for (let table = queue.shift(); table !== undefined; table = queue.shift()) {
          const cols = byTable.get(table)!;
          const t0 = performance.now();
          try {
            const size = await w.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM (SELECT 1 FROM ONLY ${ident(schema)}.${ident(table)} LIMIT ${Math.max(1, probeMax)}) s`,
            );
            const rows = size.rows[0].n;
            if (rows === 0) continue;
            const mode: LookupMode = rows < probeMax ? 'probe' : 'hash';
            const params: unknown[] =
              mode === 'hash' ? [allowed, keys.whole, keys.phones, keys.emails, keys.names] : [allowed];
            if (mode === 'hash' && shortTexts) params.push(keys.shortTexts);
            const r = await w.query<Record<string, string>>(
              tableQuery(schema, table, cols, mode, { shortTexts, names }),
              params,
            );
            found.set(table, countsOf(r.rows));
          } catch (err) {
            queue.length = 0; // the others stop after their current table
            // the message names the table, never a value (values are parameters or in the temp table, not SQL text)
            throw new PipelineError(
              'PII.VERIFY_FAILED',
              `searching ${table} failed: ${(err as Error).message}`,
            );
          } finally {
            opts.onTable?.(table, cols.length, Math.round(performance.now() - t0));
          }
        }
      } finally {
        await w.query('ROLLBACK').catch(() => undefined);
      }
    };

    const extra: Array<{ client: ClientBase; close(): Promise<void> }> = [];
    try {
      const wanted = Math.min(parallel, queue.length) - 1;
      for (let k = 0; k < wanted; k++) {
        try {
          extra.push(await open!());
        } catch {
          break; // fewer connections, same result
        }
      }
      const results = await Promise.allSettled([work(c), ...extra.map((e) => work(e.client))]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      await Promise.all(extra.map((e) => e.close().catch(() => undefined)));
    }
    const hits: ColumnCount[] = [];
    const foreignEmails: ColumnCount[] = [];
    const patterns: PatternCount[] = [];
    for (const table of byTable.keys()) {
      for (const x of found.get(table) ?? []) {
        hits.push({ table, column: x.column, count: x.hits });
        foreignEmails.push({ table, column: x.column, count: x.foreign });
        // an address outside the allowed domains is reported once: as a foreign e-mail when it is
        // written plainly, as a decoded shape only when only the decoded form shows it
        for (const k of PATTERN_KINDS)
          if (k !== 'email' || x.foreign === 0)
            patterns.push({ table, column: x.column, kind: k, count: x.shapes[k] });
      }
    }
    // the catalogue runs in its own transaction (rolled back), after the workers rolled theirs back
    const secrets = opts.secrets === false ? [] : (await findSecrets(c, opts.sqlDir)).map(secretCount);
    return buildReport(
      hits,
      foreignEmails,
      { tables: byTable.size, columns, sampled: sample.counts },
      patterns,
      secrets,
    );
  });
}
