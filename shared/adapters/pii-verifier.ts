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
/** @deprecated every table is now unfolded into (column, value) rows; kept for compatibility */
export const LATERAL_ABOVE_COLUMNS = 0;

/**
 * A run of 16 or more hexadecimal characters with at least one letter: a hash or a token (attachment
 * store_fname and checksum, access tokens), not text. Digits inside one are not phone numbers: without
 * this, one hash in a few thousand holds nine digits in a row that end like a sampled phone number,
 * and the refresh fails on a false finding.
 */
export const HEX_RUN = '(?<![0-9A-Fa-f])(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{16,}(?![0-9A-Fa-f])';

/** Lookup sets: w = whole keys, s = short texts, p = phone keys, e = e-mail addresses. */
type KeyKind = 'w' | 's' | 'p' | 'e';
/** Parameter numbers of the lookup arrays in hash mode ($1 is always the allowed e-mail domains). */
const PARAM: Record<KeyKind, number> = { w: 2, p: 3, e: 4, s: 5 };

export interface TableQueryOpts {
  /** include the short-text lookup (only when the sample has short texts) */
  shortTexts?: boolean;
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
export function tableQuery(schema: string, table: string, columns: readonly TextColumn[], mode: LookupMode = 'hash', opts: TableQueryOpts = {}): string {
  const has = (kind: KeyKind, expr: string): string =>
    mode === 'hash' ? `${expr} = ANY ($${PARAM[kind]}::text[])` : `EXISTS (SELECT 1 FROM ${KEYS} k WHERE k.kind = '${kind}' AND k.key = ${expr})`;
  const email = literal(EMAIL_PATTERN);
  const phone = literal(PHONE_PATTERN);
  const x = 'v.val';
  // ASCII values are lower-cased by the C locale's byte loop, others by the database's locale: the
  // same result, several times cheaper (lower() in a UTF-8 locale converts to wide characters)
  const lower = `CASE WHEN octet_length(${x}) = length(${x}) THEN lower(${x} COLLATE "C") ELSE lower(${x}) END`;
  // separators and whitespace dropped with replace(): a no-op replace returns its input uncopied,
  // which makes 12 of them cheaper than one translate() on UTF-8 text
  let whole = lower;
  for (const ch of WHOLE_SEPARATORS) whole = `replace(${whole}, ${ch === '\t' ? "E'\\t'" : ch === '\n' ? "E'\\n'" : ch === '\r' ? "E'\\r'" : literal(ch)}, '')`;
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
  const notEmail = (email: string): string => `(${has('w', whole)}${opts.shortTexts ? `\n      OR ${has('s', `lower(btrim(${x}))`)}` : ''}
      OR (v.ph IS NOT NULL AND (${has('p', phoneKey('v.ph'))} OR (octet_length(${x}) - octet_length(v.ph) >= ${MIN_PHONE_DIGITS} AND regexp_count(${x}, ${phone}) > 1))
          AND EXISTS (SELECT 1 FROM regexp_matches(regexp_replace(${x}, ${literal(HEX_RUN)}, '|', 'g'), ${phone}, 'g') m WHERE ${has('p', phoneKey('m[1]'))}))
      OR ${email})`;
  const hit = notEmail(anyAddress((a) => has('e', a)));
  const foreign = anyAddress(isForeign);
  // the row filter: either finding, each address extracted once
  const either = notEmail(anyAddress((a) => `(${has('e', a)} OR ${isForeign(a)})`));
  const parts: string[] = [];
  const plain = columns.filter((c) => !c.json);
  if (plain.length) parts.push(`SELECT * FROM (VALUES ${plain.map((c) => `(${literal(c.column)}, t.${ident(c.column)}::text)`).join(', ')}) x(c, val)`);
  for (const c of columns.filter((col) => col.json)) {
    // every string and number inside, at any depth (translations, company-dependent values, settings)
    parts.push(
      `SELECT ${literal(c.column)}, j #>> '{}' FROM jsonb_path_query(t.${ident(c.column)}::jsonb, 'strict $.**') j WHERE jsonb_typeof(j) IN ('string', 'number')`,
    );
  }
  return `SELECT v.c AS column, count(DISTINCT t.ctid) FILTER (WHERE ${hit}) AS hits, count(DISTINCT t.ctid) FILTER (WHERE ${foreign}) AS foreign
  FROM ONLY ${ident(schema)}.${ident(table)} t
  CROSS JOIN LATERAL (
    SELECT u.c, u.val, regexp_substr(u.val, ${phone}) AS ph
      FROM (${parts.join('\n    UNION ALL ')}) u(c, val)
     WHERE u.val IS NOT NULL AND u.val <> ''
    OFFSET 0) v
  WHERE ${either}
  GROUP BY v.c`;
}

/** Rows of a table's query result → per-column counts. */
function countsOf(rows: Record<string, string>[]): { column: string; hits: number; foreign: number }[] {
  return rows.map((r) => ({ column: r.column, hits: Number(r.hits), foreign: Number(r.foreign) }));
}

async function loadKeys(c: ClientBase, keys: ReturnType<typeof lookupKeys>): Promise<void> {
  // temp table created inside the verification's transaction, which is rolled back: it never outlives it
  await c.query(`CREATE TEMP TABLE odoo_pii_keys (kind text NOT NULL, key text NOT NULL) ON COMMIT DROP`);
  await c.query(
    `INSERT INTO ${KEYS} (kind, key)
     SELECT 'w', unnest($1::text[]) UNION SELECT 'p', unnest($2::text[]) UNION SELECT 'e', unnest($3::text[]) UNION SELECT 's', unnest($4::text[])`,
    [keys.whole, keys.phones, keys.emails, keys.shortTexts],
  );
  await c.query(`CREATE INDEX ON ${KEYS} (kind, key)`);
  await c.query(`ANALYZE ${KEYS}`);
}

/** Open one more connection to what `db` names (a connection string), or through `opts.connect`. */
function opener(db: Db, opts: VerifyOpts): (() => Promise<{ client: ClientBase; close(): Promise<void> }>) | undefined {
  if (opts.connect) return opts.connect;
  if (typeof db !== 'string') return undefined;
  return async () => {
    const client = new Client({ connectionString: db });
    try {
      await client.connect();
    } catch (err) {
      throw new PipelineError('PII.DB_UNREACHABLE', `cannot connect to the database to verify: ${(err as Error).message}`, true);
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
    // biggest first, so the longest scans start at once and the small ones fill in around them
    const sizes = await c.query<{ t: string; b: string }>(
      `SELECT c.relname AS t, pg_table_size(c.oid)::text AS b FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`,
      [schema],
    );
    const bytes = new Map(sizes.rows.map((r) => [r.t, Number(r.b)]));
    const queue = [...byTable.keys()].sort((a, b) => (bytes.get(b) ?? 0) - (bytes.get(a) ?? 0) || a.localeCompare(b));
    const found = new Map<string, Array<{ column: string; hits: number; foreign: number }>>();

    /** One connection's share: its own transaction, key table and settings; takes tables until none is left. */
    const work = async (w: ClientBase): Promise<void> => {
      // one transaction, rolled back at the end: the settings vanish with it.
      // JIT compilation costs seconds per big query and buys nothing on a single scan.
      await w.query('BEGIN');
      try {
        await w.query('SET LOCAL jit = off');
        await w.query('SET LOCAL enable_memoize = off');
        await loadKeys(w, keys);
        for (let table = queue.shift(); table !== undefined; table = queue.shift()) {
          const cols = byTable.get(table)!;
          const t0 = performance.now();
          try {
            const size = await w.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM ONLY ${ident(schema)}.${ident(table)} LIMIT ${Math.max(1, probeMax)}) s`);
            const rows = size.rows[0].n;
            if (rows === 0) continue;
            const mode: LookupMode = rows < probeMax ? 'probe' : 'hash';
            const params: unknown[] = mode === 'hash' ? [allowed, keys.whole, keys.phones, keys.emails] : [allowed];
            if (mode === 'hash' && shortTexts) params.push(keys.shortTexts);
            const r = await w.query<Record<string, string>>(tableQuery(schema, table, cols, mode, { shortTexts }), params);
            found.set(table, countsOf(r.rows));
          } catch (err) {
            queue.length = 0; // the others stop after their current table
            // the message names the table, never a value (values are parameters or in the temp table, not SQL text)
            throw new PipelineError('PII.VERIFY_FAILED', `searching ${table} failed: ${(err as Error).message}`);
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
    for (const table of byTable.keys()) {
      for (const x of found.get(table) ?? []) {
        hits.push({ table, column: x.column, count: x.hits });
        foreignEmails.push({ table, column: x.column, count: x.foreign });
      }
    }
    return buildReport(hits, foreignEmails, { tables: byTable.size, columns, sampled: sample.counts });
  });
}
