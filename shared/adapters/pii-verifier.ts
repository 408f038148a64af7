/**
 * PII verifier: samples PROD's identifying values into memory (`samplePii`) and, after the refresh
 * anonymized the copy, searches every text/varchar/jsonb column of every table for them
 * (`verifyNoPii`). Columns come from information_schema, not from a list of known fields: columns of
 * removed Odoo fields and custom modules are searched too.
 *
 * One pass per table: all its text columns are unfolded with a LATERAL VALUES list and compared with
 * the sample passed as array parameters (`= ANY($1)`, which PostgreSQL ≥ 14 evaluates with a hash
 * table), so the cost is one sequential scan per table whatever the sample size. The sample is never
 * written anywhere: not to a table, not to a file, not to a log.
 */
import { Client, ClientBase } from 'pg';
import { PipelineError } from '../domain/errors';
import {
  ColumnCount,
  DEFAULT_ALLOWED_EMAIL_DOMAINS,
  EMAIL_PATTERN,
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

/**
 * The one-pass query of a table. Parameters: $1 texts, $2 codes, $3 phone keys, $4 e-mails,
 * $5 allowed e-mail domains. A JSON column is unfolded into its string values (translations,
 * company-dependent values) so that whole-value matching works on them too.
 */
export function tableQuery(schema: string, table: string, columns: readonly TextColumn[]): string {
  const parts: string[] = [];
  const plain = columns.filter((c) => !c.json);
  if (plain.length) parts.push(`SELECT * FROM (VALUES ${plain.map((c) => `(${literal(c.column)}, t.${ident(c.column)}::text)`).join(', ')}) x(c, val)`);
  for (const c of columns.filter((x) => x.json)) {
    const col = `t.${ident(c.column)}::jsonb`;
    parts.push(`SELECT ${literal(c.column)}, e.value FROM jsonb_each_text(CASE WHEN jsonb_typeof(${col}) = 'object' THEN ${col} END) e`);
    parts.push(`SELECT ${literal(c.column)}, ${col} #>> '{}' WHERE jsonb_typeof(${col}) <> 'object'`);
  }
  const email = literal(EMAIL_PATTERN);
  const phone = literal(PHONE_PATTERN);
  return `SELECT v.c AS column,
    count(*) FILTER (WHERE
         lower(btrim(v.val)) = ANY ($1::text[])
      OR (length(v.val) <= 64 AND regexp_replace(upper(v.val), '[^A-Z0-9]', '', 'g') = ANY ($2::text[]))
      OR (v.val ~ '[0-9]{3}' AND EXISTS (SELECT 1 FROM regexp_matches(v.val, ${phone}, 'g') m
            WHERE right(regexp_replace(m[1], '[^0-9]', '', 'g'), ${PHONE_KEY_DIGITS}) = ANY ($3::text[])))
      OR (strpos(v.val, '@') > 0 AND EXISTS (SELECT 1 FROM regexp_matches(v.val, '(' || ${email} || ')', 'g') m
            WHERE lower(m[1]) = ANY ($4::text[])))
    )::bigint AS hits,
    count(*) FILTER (WHERE strpos(v.val, '@') > 0 AND EXISTS (SELECT 1 FROM regexp_matches(v.val, '(' || ${email} || ')', 'g') m
            WHERE lower(substring(m[1] from '@(.*)$')) <> ALL ($5::text[])))::bigint AS foreign
  FROM ${ident(schema)}.${ident(table)} t
  CROSS JOIN LATERAL (${parts.join(' UNION ALL ')}) v(c, val)
  WHERE v.val IS NOT NULL AND v.val <> ''
  GROUP BY v.c`;
}

/**
 * Search every text column of every table for the sampled values and for foreign e-mail addresses.
 * `ok` is false when anything is found; the report carries table.column and counts only.
 */
export async function verifyNoPii(db: Db, sample: PiiSample, opts: VerifyOpts = {}): Promise<PiiReport> {
  const allowed = (opts.allowedEmailDomains ?? DEFAULT_ALLOWED_EMAIL_DOMAINS).map((d) => d.toLowerCase());
  return withDb(db, async (c) => {
    const schema = await schemaOf(c, opts.schema);
    const byTable = await textColumns(c, schema, new Set(opts.excludeTables ?? []));
    const hits: ColumnCount[] = [];
    const foreignEmails: ColumnCount[] = [];
    let columns = 0;
    const params = [sample.texts, sample.codes, sample.phones, sample.emails, allowed];
    for (const [table, cols] of byTable) {
      columns += cols.length;
      let r;
      try {
        r = await c.query<{ column: string; hits: string; foreign: string }>(tableQuery(schema, table, cols), params);
      } catch (err) {
        // the message names the table, never a value (values are parameters, not SQL text)
        throw new PipelineError('PII.VERIFY_FAILED', `searching ${table} failed: ${(err as Error).message}`);
      }
      for (const row of r.rows) {
        hits.push({ table, column: row.column, count: Number(row.hits) });
        foreignEmails.push({ table, column: row.column, count: Number(row.foreign) });
      }
      opts.onTable?.(table, cols.length);
    }
    return buildReport(hits, foreignEmails, { tables: byTable.size, columns, sampled: sample.counts });
  });
}
