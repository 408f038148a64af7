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
import { Client, ClientBase } from 'pg';
import { PipelineError } from '../domain/errors';
import {
  ColumnCount,
  DEFAULT_ALLOWED_EMAIL_DOMAINS,
  CODE_SEPARATORS,
  EMAIL_PATTERN,
  MIN_PHONE_DIGITS,
  PHONE_KEY_DIGITS,
  PHONE_PATTERN,
  PII_SOURCES,
  PiiKind,
  PiiReport,
  PiiSample,
  PiiSource,
  buildReport,
  buildSample,
} from '../domain/pii';

/** A connected `pg` client, or a connection string (a client is opened and closed around the call). */
export type Db = ClientBase | string;

async function withDb<T>(db: Db, fn: (c: ClientBase) => Promise<T>): Promise<T> {
  if (typeof db !== 'string') return fn(db);
  const client = new Client({ connectionString: db });
  try {
    await client.connect();
  } catch (err) {
    throw new PipelineError('PII.DB_UNREACHABLE', `cannot connect to the database to verify: ${(err as Error).message}`, true);
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
    return buildSample(values, { keepLogins: opts.keepLogins, allowedEmailDomains: opts.allowedEmailDomains });
  });
}

export interface VerifyOpts {
  allowedEmailDomains?: readonly string[];
  schema?: string;
  /** tables not searched at all (e.g. a log table the operator accepts); default none */
  excludeTables?: readonly string[];
  /** tables with fewer rows are searched by index probes, bigger ones by hashing (default 5000) */
  probeModeMaxRows?: number;
  /** called after each table (progress) */
  onTable?: (table: string, columns: number) => void;
}

interface TextColumn {
  table: string;
  column: string;
  json: boolean;
}

/** Text-like columns of every base table of the schema (views and foreign tables are not data). */
async function textColumns(c: ClientBase, schema: string, exclude: ReadonlySet<string>): Promise<Map<string, TextColumn[]>> {
  const r = await c.query<{ table_name: string; column_name: string; data_type: string }>(
    `SELECT c.table_name, c.column_name, c.data_type
       FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
      WHERE c.table_schema = $1 AND c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json')
      ORDER BY c.table_name, c.ordinal_position`,
    [schema],
  );
  const byTable = new Map<string, TextColumn[]>();
  for (const row of r.rows) {
    if (exclude.has(row.table_name)) continue;
    const list = byTable.get(row.table_name) ?? [];
    list.push({ table: row.table_name, column: row.column_name, json: row.data_type === 'jsonb' || row.data_type === 'json' });
    byTable.set(row.table_name, list);
  }
  return byTable;
}

/** Session-local table holding the sample for small tables (see `tableQuery`). */
const KEYS = 'pg_temp.odoo_pii_keys';
/** Tables with fewer rows than this are searched by index probes into KEYS, bigger ones by hashing. */
export const PROBE_MODE_MAX_ROWS = 5000;

export type LookupMode = 'hash' | 'probe';
/** In hash mode, tables with more text columns than this are unfolded into rows (one hash table per kind). */
export const LATERAL_ABOVE_COLUMNS = 10;

/**
 * The one-pass query of a table: per column, two counts (rows holding a sampled value; rows holding
 * a foreign address), computed inline in one sequential scan. A value matches when it is a sampled
 * value as a whole (lower-cased; or, as a code, without separators), or contains a sampled phone number
 * or e-mail address. Cheap prefilters (string functions, no regular expression) keep the regex work to
 * the values that can contain a phone number or an address. JSON columns are searched value by value
 * (translations, company-dependent values).
 *
 * Lookup: 'hash' compares with the array parameters $2..$5 (`= ANY`, hashed by PostgreSQL once per
 * query) — for big tables; 'probe' looks keys up in the indexed session table KEYS — for small tables,
 * where building hash tables of tens of thousands of keys per query would cost more than the scan.
 * $1 is always the allowed e-mail domains.
 */
export function tableQuery(schema: string, table: string, columns: readonly TextColumn[], mode: LookupMode = 'hash'): string {
  const param: Record<string, number> = { t: 2, c: 3, p: 4, e: 5 };
  const has = (kind: string, expr: string): string =>
    mode === 'hash' ? `${expr} = ANY ($${param[kind]}::text[])` : `EXISTS (SELECT 1 FROM ${KEYS} k WHERE k.kind = '${kind}' AND k.key = ${expr})`;
  const email = literal(`(${EMAIL_PATTERN})`);
  const phone = literal(PHONE_PATTERN);
  const seps = literal(CODE_SEPARATORS);
  // a value that is one bare address ("a@b.c" or "<a@b.c>") needs no regular expression
  const emails = (x: string): string => `CASE WHEN length(${x}) - length(replace(${x}, '@', '')) = 1 AND strpos(${x}, ' ') = 0 AND strpos(${x}, ',') = 0
      AND strpos(${x}, ';') = 0 AND strpos(substr(${x}, 2), '<') = 0 AND strpos(left(${x}, -1), '>') = 0
    THEN ARRAY[lower(btrim(${x}, '<>'))] ELSE ARRAY(SELECT lower(m[1]) FROM regexp_matches(${x}, ${email}, 'g') m) END`;
  const hit = (x: string): string => `(${has('t', `lower(btrim(${x}))`)}
      OR (length(${x}) <= 64 AND ${has('c', `translate(upper(${x}), ${seps}, '')`)})
      OR (length(${x}) - length(translate(${x}, '0123456789', '')) >= ${MIN_PHONE_DIGITS}
          AND EXISTS (SELECT 1 FROM regexp_matches(${x}, ${phone}, 'g') m WHERE ${has('p', `right(regexp_replace(m[1], '[^0-9]', '', 'g'), ${PHONE_KEY_DIGITS})`)}))
      OR (strpos(${x}, '@') > 0 AND EXISTS (SELECT 1 FROM unnest(${emails(x)}) a WHERE ${has('e', 'a')})))`;
  const foreign = (x: string): string =>
    `(strpos(${x}, '@') > 0 AND EXISTS (SELECT 1 FROM unnest(${emails(x)}) a WHERE substring(a from '@(.*)$') <> ALL ($1::text[])))`;
  if (mode === 'hash' && columns.length > LATERAL_ABOVE_COLUMNS) {
    // many columns: unfold them into rows so each sample array is hashed once, not once per column
    const parts: string[] = [];
    const plain = columns.filter((c) => !c.json);
    if (plain.length) parts.push(`SELECT * FROM (VALUES ${plain.map((c) => `(${literal(c.column)}, t.${ident(c.column)}::text)`).join(', ')}) x(c, val)`);
    for (const c of columns.filter((x) => x.json)) {
      const j = `t.${ident(c.column)}::jsonb`;
      parts.push(`SELECT ${literal(c.column)}, e.value FROM jsonb_each_text(CASE WHEN jsonb_typeof(${j}) = 'object' THEN ${j} END) e`);
      parts.push(`SELECT ${literal(c.column)}, ${j} #>> '{}' WHERE jsonb_typeof(${j}) <> 'object'`);
    }
    return `SELECT v.c AS column, count(*) FILTER (WHERE ${hit('v.val')}) AS hits, count(*) FILTER (WHERE ${foreign('v.val')}) AS foreign
  FROM ONLY ${ident(schema)}.${ident(table)} t
  CROSS JOIN LATERAL (${parts.join(' UNION ALL ')}) v(c, val)
  WHERE v.val IS NOT NULL AND v.val <> ''
  GROUP BY v.c`;
  }
  const aggregates: string[] = [];
  columns.forEach((c, i) => {
    const col = `t.${ident(c.column)}`;
    if (!c.json) {
      aggregates.push(`count(*) FILTER (WHERE ${col} IS NOT NULL AND ${hit(`${col}::text`)}) AS h${i}`);
      aggregates.push(`count(*) FILTER (WHERE ${col} IS NOT NULL AND ${foreign(`${col}::text`)}) AS f${i}`);
    } else {
      const j = `${col}::jsonb`;
      const values = `(SELECT e.value AS v FROM jsonb_each_text(CASE WHEN jsonb_typeof(${j}) = 'object' THEN ${j} END) e
                       UNION ALL SELECT ${j} #>> '{}' WHERE jsonb_typeof(${j}) <> 'object') jv`;
      aggregates.push(`count(*) FILTER (WHERE ${col} IS NOT NULL AND EXISTS (SELECT 1 FROM ${values} WHERE jv.v <> '' AND ${hit('jv.v')})) AS h${i}`);
      aggregates.push(`count(*) FILTER (WHERE ${col} IS NOT NULL AND EXISTS (SELECT 1 FROM ${values} WHERE ${foreign('jv.v')})) AS f${i}`);
    }
  });
  return `SELECT ${aggregates.join(',\n  ')}\nFROM ONLY ${ident(schema)}.${ident(table)} t`;
}

/** Rows of a table's query result → per-column counts (both query shapes). */
function countsOf(rows: Record<string, string>[], columns: readonly TextColumn[]): { column: string; hits: number; foreign: number }[] {
  if (rows.length && 'column' in rows[0]) return rows.map((r) => ({ column: r.column, hits: Number(r.hits), foreign: Number(r.foreign) }));
  const row = rows[0] ?? {};
  return columns.map((c, i) => ({ column: c.column, hits: Number(row[`h${i}`] ?? 0), foreign: Number(row[`f${i}`] ?? 0) }));
}

async function loadKeys(c: ClientBase, sample: PiiSample): Promise<void> {
  // temp table created inside the verification's transaction, which is rolled back: it never outlives it
  await c.query(`CREATE TEMP TABLE odoo_pii_keys (kind text NOT NULL, key text NOT NULL) ON COMMIT DROP`);
  await c.query(
    `INSERT INTO ${KEYS} (kind, key)
     SELECT 't', unnest($1::text[]) UNION SELECT 'c', unnest($2::text[]) UNION SELECT 'p', unnest($3::text[]) UNION SELECT 'e', unnest($4::text[])`,
    [sample.texts, sample.codes, sample.phones, sample.emails],
  );
  await c.query(`CREATE INDEX ON ${KEYS} (kind, key)`);
  await c.query(`ANALYZE ${KEYS}`);
}

/**
 * Search every text column of every table for the sampled values and for foreign e-mail addresses.
 * `ok` is false when anything is found; the report carries table.column and counts only.
 */
export async function verifyNoPii(db: Db, sample: PiiSample, opts: VerifyOpts = {}): Promise<PiiReport> {
  const allowed = (opts.allowedEmailDomains ?? DEFAULT_ALLOWED_EMAIL_DOMAINS).map((d) => d.toLowerCase());
  const probeMax = opts.probeModeMaxRows ?? PROBE_MODE_MAX_ROWS;
  return withDb(db, async (c) => {
    const schema = await schemaOf(c, opts.schema);
    const byTable = await textColumns(c, schema, new Set(opts.excludeTables ?? []));
    const hits: ColumnCount[] = [];
    const foreignEmails: ColumnCount[] = [];
    let columns = 0;
    // one transaction, rolled back at the end: the settings vanish with it.
    // JIT compilation costs seconds per big query and buys nothing on a single scan.
    await c.query('BEGIN');
    try {
      await c.query('SET LOCAL jit = off');
      await c.query('SET LOCAL enable_memoize = off');
      await loadKeys(c, sample);
      for (const [table, cols] of byTable) {
        columns += cols.length;
        try {
          const size = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM ONLY ${ident(schema)}.${ident(table)} LIMIT ${Math.max(1, probeMax)}) s`);
          const rows = size.rows[0].n;
          if (rows === 0) continue;
          const mode: LookupMode = rows < probeMax ? 'probe' : 'hash';
          const r = await c.query<Record<string, string>>(tableQuery(schema, table, cols, mode), mode === 'hash' ? [allowed, sample.texts, sample.codes, sample.phones, sample.emails] : [allowed]);
          for (const x of countsOf(r.rows, cols)) {
            hits.push({ table, column: x.column, count: x.hits });
            foreignEmails.push({ table, column: x.column, count: x.foreign });
          }
        } catch (err) {
          // the message names the table, never a value (values are parameters or in the temp table, not SQL text)
          throw new PipelineError('PII.VERIFY_FAILED', `searching ${table} failed: ${(err as Error).message}`);
        } finally {
          opts.onTable?.(table, cols.length);
        }
      }
    } finally {
      await c.query('ROLLBACK').catch(() => undefined);
    }
    return buildReport(hits, foreignEmails, { tables: byTable.size, columns, sampled: sample.counts });
  });
}
