/**
 * Long work on the VM as detached jobs (issue #18 item 13): the real docker/ops/odoo-ops, reached over a
 * real sshd (test/support/sshd.ts) with the pipeline's own SshClient, against a real PostgreSQL 15
 * (ODOO_OPS_PG=host). Docker is the stand-in of test/support/ops-docker-standin.ts: its `odoo -u` takes
 * a few seconds and appends one row to `migration_runs` per run, the marker these tests count.
 *
 * What a user would check: the SSH connection that started a migration dies mid-way and the migration
 * still ends, once; starting the same job id again (a retried activity) reports that job instead of
 * migrating a second time; an unknown id, a failed job and bad ids are clear errors. Then the process
 * running the real migrateStart activity (compiled fresh, in a child process) is SIGKILLed while odoo -u
 * runs, and the resumed call finds the job and sees it end with one migration; and an `ssh` client that
 * started a backup job is SIGKILLed while pg_dump waits on a locked table, the backup ending once with
 * the sha256 of its file.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDeployActivities, type DeployPorts } from '../../functions/activities/deploy';
import { SshClient, type SshTarget } from '../../shared/adapters/ssh';
import { vmJobId, type VmJob } from '../../shared/domain/vm-job';
import { createLogger } from '../../shared/log';
import { opsVm, type OpsVm } from '../support/ops-vm';
import { PgServer, startPostgres } from '../support/postgres';
import { generateKeyPair, startSshd, type SshdHandle } from '../support/sshd';
import { until } from '../support/until';

jest.setTimeout(3 * 60 * 1000);

const ROOT = path.resolve(__dirname, '..', '..');

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
  writeFileSync(path.join(work, 'id'), key.privateKey, { mode: 0o600 });
}, 120_000);
const keyFile = () => path.join(work, 'id');

afterAll(async () => {
  await sshd?.stop();
  pg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Vm extends OpsVm {
  runs(): number;
  moduleState(): string;
}

/** a VM folder with its own Odoo database (ir_module_module as Odoo has it, the marker table) */
function vm(name: string, extra: Record<string, string> = {}): Vm {
  const v = opsVm(
    {
      pg,
      work,
      name,
      sql: "CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL, state varchar, latest_version varchar); INSERT INTO ir_module_module (name, state, latest_version) VALUES ('base', 'installed', '17.0.1.3'), ('sale', 'installed', '17.0.1.2'); CREATE TABLE migration_runs (id serial PRIMARY KEY, modules text, at timestamptz DEFAULT now())",
    },
    extra,
  );
  return {
    ...v,
    runs: () => Number(pg.psql(v.db, 'SELECT count(*) FROM migration_runs')),
    moduleState: () => pg.psql(v.db, "SELECT state FROM ir_module_module WHERE name = 'base'"),
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

test('a job that ends while its status is being read is reported finished, never lost', () => {
  // The race a poller meets every time a job ends: the runner writes its exit file and ends between
  // the two things `job status` looks at. A `tr` ahead of the system's on the VM's PATH (job_alive
  // reads the runner's /proc cmdline through it) lets the runner finish exactly there: it stops the
  // runner, which writes its exit file as the real one does, waits until it is gone, then does tr's job.
  const v = vm('race');
  const id = 'deploy-9.migrate';
  const d = path.join(v.dir, 'state', 'jobs', id);
  mkdirSync(d, { recursive: true });
  writeFileSync(path.join(d, 'spec'), ['migrate', 'reg.local/odoo:uat-v9', 'all', ''].join('\0'));
  writeFileSync(path.join(d, 'log'), '');
  // a runner whose command line is the real runner's (`odoo-ops __job-run <id>`)
  const runner = spawn(
    'sh',
    [
      '-c',
      `trap 'echo 0 > "$0/exit.tmp" && mv "$0/exit.tmp" "$0/exit"; exit 0' TERM; while :; do sleep 0.05; done`,
      d,
      '__job-run',
      id,
    ],
    { stdio: 'ignore' },
  );
  try {
    writeFileSync(path.join(d, 'pid'), `${runner.pid}\n`);
    const tr = path.join(v.dir, 'bin', 'tr');
    writeFileSync(
      tr,
      `#!/bin/sh\nif [ ! -e '${d}/raced' ]; then : > '${d}/raced'; kill -TERM ${runner.pid}; while kill -0 ${runner.pid} 2>/dev/null && [ -z "$(ps -o stat= -p ${runner.pid} | grep Z)" ]; do sleep 0.02; done; fi\nexec /usr/bin/tr "$@"\n`,
    );
    chmodSync(tr, 0o755);
    const out = execFileSync(v.ops, ['--json', 'job', 'status', id], { encoding: 'utf8' });
    const st = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Json;
    expect(readFileSync(path.join(d, 'exit'), 'utf8').trim()).toBe('0'); // the race did happen
    expect(st).toMatchObject({ id, state: 'succeeded', exit_code: 0 });
  } finally {
    runner.kill('SIGKILL');
  }
});

describe("the activity's process is killed mid-way (a recycled worker): the job finishes once and is picked up", () => {
  let dist: string;
  beforeAll(() => {
    // the activities compiled fresh (same layout as `npm run build`), for a child process to run them
    dist = mkdtempSync(path.join(os.tmpdir(), 'ops-jobs-dist-'));
    execFileSync(
      process.execPath,
      [
        path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        path.join(ROOT, 'tsconfig.build.json'),
        '--outDir',
        dist,
      ],
      { cwd: ROOT, stdio: 'pipe' },
    );
  }, 180_000);
  afterAll(() => {
    if (dist) rmSync(dist, { recursive: true, force: true });
  });

  /** a "worker": runs the real migrateStart activity, then polls jobStatus like a held activity would */
  function worker(v: Vm, jobId: string): { child: ChildProcess; lines: string[] } {
    const script = `
      const { createDeployActivities } = require(${JSON.stringify(path.join(dist, 'functions/activities/deploy.js'))});
      const { SshClient } = require(${JSON.stringify(path.join(dist, 'shared/adapters/ssh.js'))});
      const target = JSON.parse(process.env.JOB_TARGET);
      const acts = createDeployActivities({
        settings: () => { throw new Error('unused'); },
        ssh: { connect: () => SshClient.connect(target) },
        opsCommand: process.env.JOB_OPS,
        log: require(${JSON.stringify(path.join(dist, 'shared/log.js'))}).createLogger({ level: 'error', sink: () => undefined }),
      });
      (async () => {
        const i = { environment: 'uat', imageRef: 'reg.local/odoo:uat-v1.3.0', modules: 'all', jobId: process.env.JOB_ID };
        console.log(JSON.stringify(await acts.migrateStart(i)));
        for (;;) {
          await new Promise((r) => setTimeout(r, 300));
          console.log(JSON.stringify(await acts.jobStatus(i)));
        }
      })().catch((e) => { console.error(e); process.exit(3); });
    `;
    const child = spawn(process.execPath, ['-e', script], {
      env: {
        ...process.env,
        // the compiled files live outside the checkout: resolve packages from its node_modules
        NODE_PATH: path.join(ROOT, 'node_modules'),
        JOB_TARGET: JSON.stringify(target),
        JOB_OPS: v.ops,
        JOB_ID: jobId,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    child.stdout?.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    child.stderr?.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString()}`));
    return { child, lines };
  }

  test('migration: the worker is SIGKILLed while odoo -u runs; the resumed call finds the job; one migration', async () => {
    const v = vm('kill-mig', { STANDIN_MIGRATE_SECONDS: '5' });
    const jobId = vmJobId('deploy-uat-1.3.0-0123456789ab', 'migrate');
    const w = worker(v, jobId);
    await until(
      'the worker to start the job',
      () => w.lines.some((l) => l.includes('"state":"running"')),
      30_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; the worker said: ${w.lines.join('\n').slice(-2000)}`);
    });
    await until('odoo -u to be updating modules', () => v.moduleState() === 'to upgrade', 10_000);
    w.child.kill('SIGKILL');
    await new Promise((r) => w.child.once('exit', r));

    // the resumed orchestration retries the start activity with the same job id: it finds the job
    const acts = createDeployActivities({
      settings: () => {
        throw new Error('unused');
      },
      ssh: { connect: () => SshClient.connect(target) },
      opsCommand: v.ops,
      log: createLogger({ level: 'error', sink: () => undefined }),
    } as unknown as DeployPorts);
    const input = { environment: 'uat', imageRef: 'reg.local/odoo:uat-v1.3.0', modules: 'all', jobId };
    const again = (await acts.migrateStart(input)) as VmJob;
    expect(again).toMatchObject({ id: jobId, started: false, state: 'running' });
    let st = again;
    await until(
      'the job to end',
      async () => {
        st = (await acts.jobStatus(input)) as VmJob;
        return st.state !== 'running';
      },
      30_000,
    );
    expect(st).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(v.runs()).toBe(1);
    expect(v.moduleState()).toBe('installed');
    // an unknown id is a clear, coded failure (not retried)
    expect(await acts.jobStatus({ environment: 'uat', jobId: 'deploy-uat-9.9.9-x.migrate' })).toEqual({
      failed: {
        code: 'OPS.JOB_UNKNOWN',
        message: expect.stringContaining('no job deploy-uat-9.9.9-x.migrate on this VM'),
      },
    });
  });

  test('backup: the SSH client is SIGKILLed while pg_dump runs; the job ends once with its sha256', async () => {
    const v = vm('kill-bak', { ODOO_IMAGE: 'reg.local/odoo:uat-v1.0.0' });
    // pg_dump waits on a table an open transaction holds: the backup is mid-way until it commits
    const holder = spawn('psql', ['-X', '-q', '-d', v.db], {
      env: { ...process.env, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: 'postgres' },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    holder.stdin.write('BEGIN; LOCK TABLE ir_module_module IN ACCESS EXCLUSIVE MODE;\n');
    await until(
      'the table to be locked',
      () =>
        pg.psql(
          'postgres',
          "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted AND relation IS NOT NULL",
        ) !== '0',
      10_000,
    );
    const client = spawn(
      'ssh',
      [
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-i',
        keyFile(),
        '-p',
        String(sshd.port),
        `root@${sshd.host}`,
        `${v.ops} --json job start backup --id nightly-7`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    await until(
      'pg_dump to be waiting on the lock',
      () =>
        pg.psql(
          'postgres',
          "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'",
        ) !== '0',
      30_000,
    );
    client.kill('SIGKILL');
    const sh = await SshClient.connect(target);
    try {
      expect((await opsJson(sh, v, 'job status nightly-7')).json).toMatchObject({
        state: 'running',
        kind: 'backup',
      });
      holder.stdin.end('COMMIT;\n');
      let st: Json = {};
      await until(
        'the backup job to end',
        async () => {
          st = (await opsJson(sh, v, 'job status nightly-7')).json;
          return st.state !== 'running';
        },
        30_000,
      );
      expect(st).toMatchObject({ state: 'succeeded', exit_code: 0 });
      const steps = st.steps as Json[];
      expect(steps.map((s) => s.verb)).toEqual(['backup-db', 'backup-filestore']);
      const file = String(steps[0].file);
      expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(steps[0].sha256);
      const history = readFileSync(path.join(v.dir, 'state', 'history.jsonl'), 'utf8');
      expect(history.split('\n').filter((l) => l.includes('"verb":"backup-db"'))).toHaveLength(1);
    } finally {
      holder.kill();
      await sh.close();
    }
  });
});
