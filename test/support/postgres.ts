/**
 * A real PostgreSQL 15 server for tests: its own cluster in a temp folder, started with pg_ctl on a
 * free loopback port (PostgreSQL refuses to run as root, so it runs as the `postgres` user).
 * `.ci/run` installs postgresql-15; nothing here is mocked.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../local/azurite';

export const PG_BIN = process.env.PG_BIN || '/usr/lib/postgresql/15/bin';

export interface PgServer {
  host: string;
  port: number;
  dir: string;
  user: string;
  /** connection URI for database `db` */
  uri(db?: string): string;
  /** env for pg_dump/psql/pg_restore child processes */
  env: NodeJS.ProcessEnv;
  /** run psql; returns stdout; throws with stderr on failure */
  psql(db: string, sql: string, extraArgs?: string[]): string;
  createDb(name: string): void;
  stop(): void;
}

function asPostgres(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const isRoot = process.getuid?.() === 0;
  const [bin, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return execFileSync(bin, argv, {
    cwd: opts.cwd ?? '/',
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
}

export function requirePostgres(): void {
  if (!existsSync(path.join(PG_BIN, 'initdb'))) {
    throw new Error(
      `PostgreSQL 15 is not installed (${PG_BIN}/initdb missing): apt-get install postgresql-15 (see .ci/run)`,
    );
  }
}

export async function startPostgres(): Promise<PgServer> {
  requirePostgres();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgtest-'));
  chmodSync(dir, 0o777);
  const data = path.join(dir, 'data');
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', dir]);
  asPostgres(path.join(PG_BIN, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
  ]);
  const port = await freePort();
  asPostgres(path.join(PG_BIN, 'pg_ctl'), [
    '-D',
    data,
    '-l',
    path.join(dir, 'server.log'),
    '-o',
    `-c listen_addresses=127.0.0.1 -p ${port} -c unix_socket_directories=${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50`,
    '-w',
    'start',
  ]);
  const env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'postgres' };
  const server: PgServer = {
    host: '127.0.0.1',
    port,
    dir,
    user: 'postgres',
    env,
    uri: (db = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${db}`,
    psql(db, sql, extraArgs = []) {
      const r = spawnSync(
        path.join(PG_BIN, 'psql'),
        ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-d', db, ...extraArgs, '-c', sql],
        { env, encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`psql failed (${r.status}): ${r.stderr}`);
      return r.stdout.trim();
    },
    createDb(name) {
      server.psql('postgres', `CREATE DATABASE "${name}"`);
    },
    stop() {
      try {
        asPostgres(path.join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        /* already stopped */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
