/**
 * The secret catalogue (sql/lib/secrets.sql) as the pipeline's verifier uses it: run the catalogue in a
 * transaction that is rolled back, and list every place of the database that still holds a catalogued
 * credential. The catalogue itself is SQL (one source for operators' psql and for this module); its
 * shape is documented at the top of sql/lib/secrets.sql and in docs/REFRESH_AND_ANONYMIZATION.md.
 *
 * A finding names a place and a count, never a value:
 *   { place: 'payment_provider.stripe_secret_key', rule: 'empty', count: 1 }
 *   { place: 'mail_push_device (rows)', rule: 'delete', count: 3 }
 *   { place: 'ir_config_parameter[google_gmail_client_secret]', rule: 'empty', count: 1 }
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ClientBase } from 'pg';
import { SQL_DIR } from './sql-scripts';

export interface SecretFinding {
  /** `table.column`, `table (rows)` or `ir_config_parameter[key]` */
  place: string;
  /** the rule that is not met: empty | rotate | delete */
  rule: string;
  count: number;
}

/** The SQL that defines the catalogue and its functions (plain SQL: no psql meta-command). */
export function secretCatalogueSql(sqlDir = SQL_DIR): string {
  return ['guards.sql', 'secrets.sql']
    .map((f) => readFileSync(path.join(sqlDir, 'lib', f), 'utf8'))
    .join('\n');
}

/** Every place of the connected database that still holds a catalogued credential (read-only). */
export async function findSecrets(client: ClientBase, sqlDir = SQL_DIR): Promise<SecretFinding[]> {
  const sql = secretCatalogueSql(sqlDir);
  await client.query('BEGIN');
  try {
    await client.query(sql);
    const r = await client.query<{ place: string; rule: string; count: string }>(
      'SELECT place, rule, count FROM pg_temp.odoo_secret_findings() ORDER BY place',
    );
    return r.rows.map((row) => ({ place: row.place, rule: row.rule, count: Number(row.count) }));
  } finally {
    await client.query('ROLLBACK');
  }
}
