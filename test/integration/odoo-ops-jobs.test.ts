/**
 * Long work on the VM as detached jobs (issue #18 item 13): the real docker/ops/odoo-ops, reached over a
 * real sshd (test/support/sshd.ts) with the pipeline's own SshClient, against a real PostgreSQL 15
 * (ODOO_OPS_PG=host). Docker is the stand-in of test/support/ops-docker-standin.ts: its `odoo -u` takes
 * a few seconds and appends one row to `migration_runs` per run, the marker these tests count.
 *
 * What a user would check: the SSH connection that started a migration dies mid-way and the migration
 * still ends, once; starting the same job id again (a retried activity) reports that job instead of
 * migrating a second time; an unknown id, a failed job and bad ids are clear errors.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SshClient, type SshTarget } from '../../shared/adapters/ssh';
import { DOCKER_STANDIN } from '../support/ops-docker-standin';
import { PgServer, startPostgres } from '../support/postgres';
import { OPS_SCRIPT } from '../support/sandbox';
import { generateKeyPair, startSshd, type SshdHandle } from '../support/sshd';
import { until } from '../support/until';

jest.setTimeout(3 * 60 * 1000);

const key = generateKeyPair();
let sshd: SshdHandle;
let target: SshTarget;
let pg: PgServer;
let work: string;

beforeAll(async () => {
  pg = await startPostgres();
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  target = {
    host: sshd.host,
    port: sshd.port,
    username: 'root',
    privateKey: key.privateKey,
    hostKeyFingerprint: sshd.hostKeyFingerprint,
  };
  work = mkdtempSync(path.join(os.tmpdir(), 'ops-jobs-'));
}, 120_000);

afterAll(async () => {
  await sshd?.stop();
  pg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Vm {
  dir: string;
  db: string;
  /** the command the pipeline runs over SSH (a wrapper that sets the VM's environment) */
  ops: string;
  runs(): number;
  moduleState(): string;
}

/** a VM folder with its own Odoo database (ir_module_module as Odoo has it, the marker table) */
function vm(name: string, extra: Record<string, string> = {}): Vm {
  const dir = path.join(work, name);
  const db = `odoo_${name.replace(/[^a-z0-9]/g, '_')}`;
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  writeFileSync(path.join(dir, '.env'), `COMPOSE_PROJECT_NAME=${name}\n`);
  writeFileSync(path.join(dir, 'bin', 'docker'), DOCKER_STANDIN);
  chmodSync(path.join(dir, 'bin', 'docker'), 0o755);
  pg.createDb(db);
  pg.psql(
    db,
    "CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL, state varchar, latest_version varchar); INSERT INTO ir_module_module (name, state, latest_version) VALUES ('base', 'installed', '17.0.1.3'), ('sale', 'installed', '17.0.1.2'); CREATE TABLE migration_runs (id serial PRIMARY KEY, modules text, at timestamptz DEFAULT now())",
  );
  const env: Record<string, string> = {
    PATH: `${dir}/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    ODOO_OPS_DIR: dir,
    ODOO_OPS_PG: 'host',
    ODOO_DB_NAME: db,
    POSTGRES_USER: 'postgres',
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: 'postgres',
    STANDIN_LOG: path.join(dir, 'docker.log'),
    ...extra,
  };
  const wrapper = path.join(dir, 'odoo-ops');
  writeFileSync(
    wrapper,
    `#!/bin/sh\n${Object.entries(env)
      .map(([k, v]) => `export ${k}='${v}'`)
      .join('\n')}\nexec '${OPS_SCRIPT}' "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  return {
    dir,
    db,
    ops: wrapper,
    runs: () => Number(pg.psql(db, 'SELECT count(*) FROM migration_runs')),
    moduleState: () => pg.psql(db, "SELECT state FROM ir_module_module WHERE name = 'base'"),
  };
}

type Json = Record<string, unknown>;
async function opsJson(sh: SshClient, v: Vm, args: string): Promise<{ code: number; json: Json }> {
  const r = await sh.run(`${v.ops} --json ${args}`, { timeoutMs: 60_000 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  return { code: r.code, json: (line.startsWith('{') ? JSON.parse(line) : {}) as Json };
}

test('a migration job outlives the SSH session that started it, runs once, and a second start reports it', async () => {
  const v = vm('mig', { STANDIN_MIGRATE_SECONDS: '4' });
  const first = await SshClient.connect(target);
  const started = await opsJson(
    first,
    v,
    'job start migrate --id deploy-42.migrate reg.local/odoo:uat-v1.2.0 all',
  );
  expect(started.code).toBe(0);
  expect(started.json).toMatchObject({ ok: true, started: true, id: 'deploy-42.migrate', kind: 'migrate' });
  expect(['running', 'starting']).toContain(started.json.state);
  // the migration is under way: the module is mid-update
  await until('the migration to begin', () => v.moduleState() === 'to upgrade', 10_000);
  // the activity's connection dies (worker recycled): the job does not
  await first.close();

  // a retried activity starts the same job again: it gets that job, nothing new runs
  const again = await SshClient.connect(target);
  try {
    const retried = await opsJson(
      again,
      v,
      'job start migrate --id deploy-42.migrate reg.local/odoo:uat-v1.2.0 all',
    );
    expect(retried.code).toBe(0);
    expect(retried.json).toMatchObject({ started: false, id: 'deploy-42.migrate', state: 'running' });
    expect(retried.json.pid).toBe(started.json.pid);

    let st: Json = {};
    await until(
      'the job to end',
      async () => {
        st = (await opsJson(again, v, 'job status deploy-42.migrate')).json;
        return st.state !== 'running';
      },
      30_000,
    );
    expect(st).toMatchObject({ ok: true, state: 'succeeded', exit_code: 0, kind: 'migrate' });
    expect((st.steps as Json[])[0]).toMatchObject({ verb: 'migrate', ok: true, modules: 'all' });
    expect(v.runs()).toBe(1);
    expect(v.moduleState()).toBe('installed');

    // finished: starting it once more still runs nothing
    const late = await opsJson(
      again,
      v,
      'job start migrate --id deploy-42.migrate reg.local/odoo:uat-v1.2.0 all',
    );
    expect(late.json).toMatchObject({ started: false, state: 'succeeded', exit_code: 0 });
    await new Promise((r) => setTimeout(r, 1500));
    expect(v.runs()).toBe(1);

    // the same id for other work is refused, not silently mapped onto the first job
    const other = await opsJson(
      again,
      v,
      'job start migrate --id deploy-42.migrate reg.local/odoo:uat-v9.9.9 all',
    );
    expect(other.code).toBe(2);
    expect(String(other.json.message)).toContain('exists for other work');

    const log = await again.run(`${v.ops} job log deploy-42.migrate`, { timeoutMs: 30_000 });
    expect(log.stdout).toContain('odoo.modules.loading: modules updated');
  } finally {
    await again.close();
  }
});

test('unknown ids, bad ids and a failed migration are clear errors', async () => {
  const v = vm('bad', { STANDIN_MIGRATE_SECONDS: '0', STANDIN_MIGRATE_FAIL: '1' });
  const sh = await SshClient.connect(target);
  try {
    const unknown = await opsJson(sh, v, 'job status nope.migrate');
    expect(unknown.code).toBe(11);
    expect(unknown.json.message).toBe('no job nope.migrate on this VM');

    for (const bad of ["'../../etc/x'", "'a;touch /tmp/pwned'", "'.hidden'", 'x'.repeat(129)]) {
      const r = await opsJson(sh, v, `job start migrate --id ${bad} reg.local/odoo:uat-v1 all`);
      expect(r.code).toBe(2);
      expect(String(r.json.message)).toContain('is not valid');
    }
    const badImage = await opsJson(sh, v, "job start migrate --id j1 'img;rm -rf /' all");
    expect(badImage.code).toBe(2);
    expect(readFileSync(path.join(v.dir, '.env'), 'utf8')).toContain('COMPOSE_PROJECT_NAME');

    const started = await opsJson(
      sh,
      v,
      'job start migrate --id deploy-7.migrate reg.local/odoo:uat-v2 sale',
    );
    expect(started.code).toBe(0);
    let st: Json = {};
    await until(
      'the job to end',
      async () => {
        st = (await opsJson(sh, v, 'job status deploy-7.migrate')).json;
        return st.state !== 'running' && st.state !== 'starting';
      },
      30_000,
    );
    expect(st).toMatchObject({ state: 'failed', exit_code: 5 });
    expect(String(st.message)).toContain('migration with reg.local/odoo:uat-v2 failed');
    expect(v.runs()).toBe(0);
  } finally {
    await sh.close();
  }
});
