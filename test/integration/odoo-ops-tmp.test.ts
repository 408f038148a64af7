/**
 * odoo-ops keeps one scratch folder per run (stderr captures such as pg_dump.err, which can quote
 * data) and removes it on every way out: success, a refusal or failure after it was made, an
 * uncreatable folder, SIGTERM and SIGPIPE. The real script runs under real bash against a real
 * PostgreSQL 15 (ODOO_OPS_PG=host: the VM's own pg_dump/psql/pg_restore, as with a managed server);
 * docker is a stand-in that fails, as in the engine-less suite of docker-files.test.ts, so the
 * verbs that need an engine fail where a VM without one would. Every run gets TMPDIR = a fresh
 * empty folder, which must be empty again when the run ends.
 *
 * ODOO_OPS_UNDER_TEST=<path> runs the same checks against another copy of the script (used to show
 * they fail on the version that leaked: `git show <rev>:docker/ops/odoo-ops`).
 */
import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PgServer, startPostgres } from '../support/postgres';
import { OPS_SCRIPT } from '../support/sandbox';
import { until } from '../support/until';

jest.setTimeout(3 * 60 * 1000);

const SCRIPT = process.env.ODOO_OPS_UNDER_TEST || OPS_SCRIPT;

interface OpsJson {
  verb: string;
  ok: boolean;
  exit: number;
  message: string;
  [k: string]: unknown;
}
/** the last JSON line of a stream (streaming verbs print theirs on stderr, after progress lines) */
const lastJson = (text: string): OpsJson => JSON.parse(text.trim().split('\n').pop() ?? '') as OpsJson;

let pg: PgServer;
let work: string;

beforeAll(
  async () => {
    pg = await startPostgres();
    // the Odoo database, with one table a restricted role may not read (pg_dump as that role fails
    // after the database was found: the backup-failed path, exit 6)
    pg.createDb('odoo');
    pg.psql(
      'odoo',
      "CREATE TABLE res_partner (id serial PRIMARY KEY, name text); INSERT INTO res_partner (name) VALUES ('Azure Interior'), ('Deco Addict')",
    );
    pg.psql(
      'odoo',
      'CREATE TABLE payroll_secret (id int, iban text); CREATE TABLE ir_attachment (id serial PRIMARY KEY, store_fname text)',
    );
    // what restore-db verifies in an Odoo database: installed modules, none mid-migration
    pg.psql(
      'odoo',
      "CREATE TABLE ir_module_module (id serial PRIMARY KEY, name text, state text); INSERT INTO ir_module_module (name, state) VALUES ('base', 'installed')",
    );
    pg.psql('postgres', 'CREATE ROLE reader LOGIN; GRANT CONNECT ON DATABASE odoo TO reader');
    pg.psql('odoo', 'GRANT USAGE ON SCHEMA public TO reader; GRANT SELECT ON res_partner TO reader');
    work = mkdtempSync(path.join(os.tmpdir(), 'ops-tmp-'));
  },
  2 * 60 * 1000,
);

afterAll(() => {
  pg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** a VM folder, a failing docker on PATH and an empty TMPDIR for one run */
function vm(name: string): { env: NodeJS.ProcessEnv; tmp: string; dir: string } {
  const dir = path.join(work, name);
  const tmp = path.join(dir, 'tmp');
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  mkdirSync(tmp);
  writeFileSync(
    path.join(dir, '.env'),
    `COMPOSE_PROJECT_NAME=tmptest\nODOO_OPS_STATE_DIR=${dir}/state\nODOO_OPS_BACKUP_DIR=${dir}/backups\n`,
  );
  writeFileSync(path.join(dir, 'bin', 'docker'), '#!/bin/sh\necho "no engine in this test" >&2\nexit 1\n');
  chmodSync(path.join(dir, 'bin', 'docker'), 0o755);
  const env: NodeJS.ProcessEnv = {
    PATH: `${dir}/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: dir,
    ODOO_OPS_DIR: dir,
    ODOO_OPS_PG: 'host',
    ODOO_DB_NAME: 'odoo',
    POSTGRES_USER: 'postgres',
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: 'postgres',
    TMPDIR: tmp,
  };
  return { env, tmp, dir };
}

function ops(
  env: NodeJS.ProcessEnv,
  args: string[],
  input: string | Buffer = '',
  extra: NodeJS.ProcessEnv = {},
): SpawnSyncReturns<Buffer> {
  return spawnSync(SCRIPT, args, { env: { ...env, ...extra }, input, maxBuffer: 64 * 1024 * 1024 });
}
const text = (b: Buffer): string => b.toString('utf8');
/** the exit status, or a failure that shows what the script said */
function expectExit(r: SpawnSyncReturns<Buffer>, code: number): void {
  if (r.status !== code)
    throw new Error(
      `odoo-ops exited ${r.status ?? r.signal} (expected ${code})\nstderr: ${text(r.stderr)}\nstdout: ${text(r.stdout.subarray(0, 2000))}`,
    );
}
const leftovers = (tmp: string): string[] => readdirSync(tmp);

test('backup-db: a saved dump and a failing pg_dump both leave TMPDIR empty; results as before', () => {
  const { env, tmp, dir } = vm('backup');
  const ok = ops(env, ['--json', 'backup-db', '--save', 'nightly']);
  expectExit(ok, 0);
  const saved = lastJson(text(ok.stdout));
  expect(saved).toMatchObject({
    verb: 'backup-db',
    ok: true,
    exit: 0,
    database: 'odoo',
    format: 'custom',
    compression: 'zstd',
  });
  expect(saved.file).toBe(path.join(dir, 'backups', 'nightly.db.dump.zst'));
  expect(
    readFileSync(saved.file as string)
      .subarray(0, 4)
      .toString('hex'),
  ).toBe('28b52ffd'); // zstd frame
  expect(leftovers(tmp)).toEqual([]);

  // streamed, uncompressed: the dump is stdout, the JSON line is on stderr
  const streamed = ops(env, ['--json', 'backup-db', '--compress', 'none']);
  expectExit(streamed, 0);
  expect(streamed.stdout.subarray(0, 5).toString('latin1')).toBe('PGDMP');
  expect(lastJson(text(streamed.stderr))).toMatchObject({ ok: true, compression: 'pg-default' });
  expect(leftovers(tmp)).toEqual([]);

  // pg_dump fails after the scratch folder was made (its stderr was captured there): exit 6
  const failed = ops(env, ['--json', 'backup-db', '--compress', 'none'], '', { PGUSER: 'reader' });
  expectExit(failed, 6);
  const res = lastJson(text(failed.stderr));
  expect(res).toMatchObject({
    verb: 'backup-db',
    ok: false,
    exit: 6,
    message: expect.stringContaining("pg_dump of 'odoo' failed"),
  });
  expect(res.stderr).toContain('permission denied for table payroll_secret');
  expect(leftovers(tmp)).toEqual([]);
  // with zstd in the pipe, too
  const failedZstd = ops(env, ['--json', 'backup-db', '--save', 'broken'], '', { PGUSER: 'reader' });
  expectExit(failedZstd, 6);
  expect(existsSync(path.join(dir, 'backups', 'broken.db.dump.zst'))).toBe(false);
  expect(existsSync(path.join(dir, 'backups', 'broken.db.dump.zst.partial'))).toBe(false);
  expect(leftovers(tmp)).toEqual([]);
});

test('restore-db --into, swap-db, drop-db: success and refusals leave TMPDIR empty', () => {
  const { env, tmp } = vm('restore');
  const dump = ops(env, ['backup-db', '--compress', 'none']);
  expectExit(dump, 0);
  expect(leftovers(tmp)).toEqual([]);

  const restored = ops(env, ['--json', 'restore-db', '--into', 'odoo_staged'], dump.stdout);
  expectExit(restored, 0);
  expect(lastJson(text(restored.stdout))).toMatchObject({
    ok: true,
    database: 'odoo_staged',
    format: 'custom',
  });
  expect(pg.psql('odoo_staged', 'SELECT count(*) FROM res_partner')).toBe('2');
  expect(leftovers(tmp)).toEqual([]);

  // not a dump: refused after the scratch folder was made (exit 7), nothing created
  const garbage = ops(env, ['--json', 'restore-db', '--into', 'odoo_garbage'], 'this is not a dump');
  expectExit(garbage, 7);
  expect(lastJson(text(garbage.stdout)).message).toContain('not a pg_dump custom-format archive');
  expect(pg.psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'odoo_garbage'")).toBe('0');
  expect(leftovers(tmp)).toEqual([]);

  // the staged copy becomes the Odoo database; the previous one is kept, then dropped
  const swapped = ops(env, ['--json', 'swap-db', 'odoo_staged']);
  expectExit(swapped, 0);
  const kept = lastJson(text(swapped.stdout)).kept_old as string;
  expect(kept).toMatch(/^odoo_old_\d{14}/);
  expect(leftovers(tmp)).toEqual([]);
  const dropped = ops(env, ['--json', 'drop-db', kept]);
  expectExit(dropped, 0);
  expect(lastJson(text(dropped.stdout))).toMatchObject({
    database: kept,
    existed: true,
    filestore: 'not looked at (no Odoo image known to reach the filestore with)',
  });
  expect(leftovers(tmp)).toEqual([]);
  // an image is known but gone from the VM: the database is dropped and the operator is told the
  // filestore folder stayed (this message used to vanish into a redirected stderr, with exit 8)
  pg.createDb('odoo_scratch');
  const noImage = ops(env, ['--json', 'drop-db', 'odoo_scratch'], '', {
    ODOO_IMAGE: 'registry.example/odoo-mta:uat-v0.9.0',
  });
  expectExit(noImage, 0);
  expect(lastJson(text(noImage.stdout))).toMatchObject({
    database: 'odoo_scratch',
    existed: true,
    filestore:
      'left in place (image registry.example/odoo-mta:uat-v0.9.0 is not on this VM to reach it with)',
    message:
      'database odoo_scratch dropped; filestore folder left in place (image registry.example/odoo-mta:uat-v0.9.0 is not on this VM to reach it with)',
  });
  expect(pg.psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'odoo_scratch'")).toBe('0');
  expect(leftovers(tmp)).toEqual([]);
  // swap-db of a database that does not exist: refused before anything is made
  expect(ops(env, ['swap-db', 'odoo_nowhere']).status).toBe(9);
  expect(leftovers(tmp)).toEqual([]);
});

test('run-sql: rows out on success, exit 1 on a failing script; TMPDIR empty after both', () => {
  const { env, tmp } = vm('runsql');
  const ok = ops(env, ['run-sql', '--db', 'odoo'], 'SELECT name FROM res_partner ORDER BY id;\n');
  expectExit(ok, 0);
  expect(text(ok.stdout)).toBe('Azure Interior\nDeco Addict\npsql script ran in odoo\n');
  expect(leftovers(tmp)).toEqual([]);

  const bad = ops(env, ['--json', 'run-sql', '--db', 'odoo'], 'SELECT * FROM no_such_table;\n');
  expectExit(bad, 1);
  expect(lastJson(text(bad.stdout))).toMatchObject({
    ok: false,
    exit: 1,
    message: expect.stringContaining('relation "no_such_table" does not exist'),
  });
  expect(leftovers(tmp)).toEqual([]);
});

test('verbs that fail for want of an engine after making the folder (pull, prune-filestore, backup-filestore) say why and leave TMPDIR empty', () => {
  const { env, tmp } = vm('noengine');
  const pull = ops(env, ['--json', 'pull', 'registry.example/odoo-mta:uat-v1.0.0']);
  expectExit(pull, 8);
  expect(lastJson(text(pull.stdout))).toMatchObject({ exit: 8, stderr: 'no engine in this test' });
  expect(leftovers(tmp)).toEqual([]);
  // no Odoo image known to read the filestore with: the reason reaches the operator (it used to be
  // lost inside a command substitution, leaving "pruning the filestore of odoo failed: ")
  const prune = ops(env, ['--json', 'prune-filestore', 'odoo']);
  expectExit(prune, 10);
  expect(lastJson(text(prune.stdout)).message).toBe(
    'no Odoo image known to read the filestore with (start one first)',
  );
  expect(leftovers(tmp)).toEqual([]);
  const archive = ops(env, ['--json', 'backup-filestore', '--save', 'fs1']);
  expectExit(archive, 10);
  expect(lastJson(text(archive.stdout)).message).toBe(
    'no Odoo image known to read the filestore with (start one first)',
  );
  expect(leftovers(tmp)).toEqual([]);
});

test('a TMPDIR that cannot hold the folder is a configuration error (exit 10), not files written elsewhere', () => {
  const { env, dir } = vm('badtmp');
  const missing = path.join(dir, 'no-such-dir');
  const r = ops(env, ['--json', 'run-sql', '--db', 'odoo'], 'SELECT 1;\n', { TMPDIR: missing });
  expectExit(r, 10);
  expect(lastJson(text(r.stdout)).message).toBe(
    `cannot create a scratch folder in ${missing} (set TMPDIR to a writable folder)`,
  );
  expect(existsSync(missing)).toBe(false);
  // the streaming verb reports it on stderr and writes no data
  const b = ops(env, ['--json', 'backup-db'], '', { TMPDIR: missing });
  expectExit(b, 10);
  expect(b.stdout.length).toBe(0);
  expect(lastJson(text(b.stderr)).exit).toBe(10);
});

test('SIGTERM to a run in progress: it dies of SIGTERM as before, and the folder is removed', async () => {
  const { env, tmp } = vm('sigterm');
  // its own process group, as an SSH session or a terminal's foreground job: the signal reaches the
  // script and its psql
  const child: ChildProcess = spawn(SCRIPT, ['run-sql', '--db', 'odoo'], {
    env,
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  child.stdin!.end('SELECT pg_sleep(600) /* odoo-ops-tmp-sigterm */;\n');
  try {
    await until(
      'the script to run its psql script',
      () =>
        leftovers(tmp).length === 1 &&
        pg.psql(
          'postgres',
          "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%odoo-ops-tmp-sigterm%' AND pid <> pg_backend_pid()",
        ) === '1',
    );
    process.kill(-child.pid!, 'SIGTERM');
    expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(leftovers(tmp)).toEqual([]);
  } finally {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
    pg.psql(
      'postgres',
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%odoo-ops-tmp-sigterm%' AND pid <> pg_backend_pid()",
    );
  }
});

test('SIGPIPE (the reader of stdout went away): it dies of SIGPIPE as before, and the folder is removed', () => {
  const { env, tmp } = vm('sigpipe');
  // stdout is a pipe whose reading end is closed before the script starts (perl-base is part of
  // every Debian system): the script's result line is written into a broken pipe
  const r = spawnSync(
    'perl',
    [
      '-e',
      'pipe(my $r, my $w) or die; close $r; open(STDOUT, ">&", $w) or die; close $w; exec @ARGV or die',
      SCRIPT,
      '--json',
      'run-sql',
      '--db',
      'odoo',
    ],
    {
      env,
      input: 'SELECT 1;\n',
    },
  );
  expect(r.signal).toBe('SIGPIPE');
  expect(leftovers(tmp)).toEqual([]);
});
