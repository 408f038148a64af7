/**
 * The refresh activities' building blocks on a real PostgreSQL 15 with the Odoo-shaped fixture:
 *  - `refreshScript()`: the psql script fed to `odoo-ops run-sql` on the VM (variables as \set, the
 *    password hash from stdin, `\ir` includes inlined) runs clean through `psql -f -` and its summary
 *    lines become row counts;
 *  - `PgOverSsh`: the `pg` client speaking through a byte stream to the relay of `odoo-ops pg-stream`
 *    (the perl program taken from docker/ops/odoo-ops itself, run here against this server's Unix
 *    socket; the sandbox e2e test runs it over real SSH inside the db container), used by the real
 *    verifier: the un-anonymized copy is flagged, the anonymized one is clean.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import { Client } from 'pg';
import { PgOverSsh, parseRowCounts, refreshScript } from '../../functions/activities/refresh';
import type { RemoteShell } from '../../functions/activities/deploy';
import { samplePii, verifyNoPii } from '../../shared/adapters/pii-verifier';
import { buildRefreshCommand, extensionScripts, SQL_DIR } from '../../shared/adapters/sql-scripts';
import { PipelineError } from '../../shared/domain/errors';
import { refreshDatabaseName, refreshInstanceId } from '../../shared/domain/refresh';
import { OPS_SCRIPT } from '../support/sandbox';
import { PG_BIN, startPostgres, type PgServer } from '../support/postgres';
import { loadOdooFixture } from '../fixtures/odoo/load';

jest.setTimeout(180_000);

/** the perl relay of `odoo-ops pg-stream`, read from the script */
const RELAY = ((): string => {
  const m = /relay='([\s\S]*?)'\n\s+exec docker exec/.exec(readFileSync(OPS_SCRIPT, 'utf8'));
  if (!m) throw new Error('pg-stream relay not found in docker/ops/odoo-ops');
  return m[1];
})();

/** A RemoteShell whose `stream` runs the relay locally against `socket` (stands for the SSH channel). */
function relayShell(socket: string): RemoteShell & { runs: number } {
  const sh = {
    runs: 0,
    run: () => Promise.reject(new Error('not used')),
    close: async () => undefined,
    stream(_command: string, o: { stdin?: NodeJS.ReadableStream | Buffer | string } = {}) {
      sh.runs++;
      const child = spawn('perl', ['-e', RELAY, socket], { stdio: ['pipe', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      (o.stdin as Readable).pipe(child.stdin);
      child.stdin.on('error', () => undefined);
      const done = new Promise<{ code: number; stderrTail: string }>((resolve, reject) =>
        child.on('close', (code) =>
          code === 0
            ? resolve({ code: 0, stderrTail: err })
            : reject(new PipelineError('SSH.COMMAND_FAILED', `relay exited ${code}: ${err}`)),
        ),
      );
      done.catch(() => undefined);
      return { stdout: child.stdout as Readable, done };
    },
  };
  return sh;
}

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres();
  loadOdooFixture(server, 'prodcopy', 17);
});
afterAll(() => server?.stop());

describe('refresh building blocks', () => {
  const client = (shell: RemoteShell, database: string) =>
    new Client({
      user: 'postgres',
      database,
      stream: () => new PgOverSsh(shell, 'odoo-ops pg-stream') as unknown as Socket,
    });

  it('pg over the pg-stream relay: queries, a clean end, and the verifier flags the un-anonymized copy', async () => {
    const shell = relayShell(path.join(server.dir, `.s.PGSQL.${server.port}`));
    const c = client(shell, 'prodcopy');
    await c.connect();
    try {
      const r = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM res_partner');
      expect(r.rows[0].n).toBeGreaterThan(250);
      const sample = await samplePii(c, { keepLogins: ['admin'] });
      expect(sample.counts.email).toBeGreaterThan(100);
      const report = await verifyNoPii(c, sample);
      expect(report.ok).toBe(false);
      expect(report.hits.map((h) => `${h.table}.${h.column}`)).toContain('res_partner.email');
    } finally {
      await c.end();
    }
    expect(shell.runs).toBe(1);
  });

  it('an unreachable socket is a clear connection error, not a hang', async () => {
    const c = client(relayShell(path.join(server.dir, 'no-such-socket')), 'prodcopy');
    c.on('error', () => undefined);
    await expect(c.connect()).rejects.toThrow(/pg-stream|database stream|Connection terminated/i);
  });

  it('refreshScript: the stdin script runs clean with psql -f -, the hash never on the command line; summaries become counts; then the verifier is clean', async () => {
    loadOdooFixture(server, 'refreshme', 17);
    const hash = '$pbkdf2-sha512$600000$c2FsdA$aGFzaGhhc2hoYXNo';
    const shell = relayShell(path.join(server.dir, `.s.PGSQL.${server.port}`));
    const before = client(shell, 'refreshme');
    await before.connect();
    const sample = await samplePii(before, { keepLogins: ['admin'] });
    await before.end();

    const cmd = buildRefreshCommand({
      database: 'refreshme',
      uatUrl: 'https://uat.test',
      passwordHash: hash,
      keepLogins: ['admin'],
      extensions: extensionScripts(),
    });
    const script = refreshScript(cmd);
    expect(script).not.toMatch(/^\\ir /m);
    expect(script).toContain(`\\set uat_password_hash '${hash}'`);
    expect(script).toContain("\\set uat_url 'https://uat.test'");
    const r = spawnSync(
      path.join(PG_BIN, 'psql'),
      ['-X', '-q', '-A', '-t', '-F', '|', '-v', 'ON_ERROR_STOP=1', '-d', 'refreshme', '-f', '-'],
      { input: script, env: server.env, encoding: 'utf8', cwd: '/' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const rows = parseRowCounts(r.stdout);
    expect(rows['res_partner anonymized']).toBeGreaterThan(250);
    expect(Object.keys(rows).length).toBeGreaterThan(5);
    expect(
      server.psql('refreshme', "SELECT count(*) FROM res_users WHERE password = '" + hash + "'"),
    ).not.toBe('0');

    const after = client(shell, 'refreshme');
    await after.connect();
    try {
      const report = await verifyNoPii(after, sample);
      expect(report.hits).toEqual([]);
      expect(report.ok).toBe(true);
    } finally {
      await after.end();
    }
  });

  it('refreshScript: bad parameters are refused, a missing file throws, quotes in values are escaped', () => {
    expect(() => buildRefreshCommand({ database: 'x', passwordHash: 'plain-text' })).toThrow(
      /SQL.BAD_PARAMETER/,
    );
    expect(() => refreshScript({ args: ['-f', path.join(__dirname, 'no-such.sql')], stdin: '' })).toThrow();
    expect(
      refreshScript({
        args: ['-v', "keep_logins=o'brien", '-f', path.join(SQL_DIR, 'lib', 'guards.sql')],
        stdin: '',
      }),
    ).toContain("\\set keep_logins 'o''brien'");
  });

  it('names and ids', () => {
    const at = new Date('2026-11-27T19:05:06.789Z');
    expect(refreshDatabaseName('odoo', at)).toBe('odoo_refresh_20261127190506');
    expect(refreshDatabaseName('x'.repeat(80), at).length).toBeLessThanOrEqual(63);
    expect(refreshInstanceId(at, 'AB-12-cd')).toBe('refresh-uat-20261127t190506z-ab12cd');
    expect(parseRowCounts('a|1\nnoise\nb b|20\na|2\n')).toEqual({ a: 3, 'b b': 20 });
  });
});
