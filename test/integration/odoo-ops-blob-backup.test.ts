/**
 * Backups go from the VM straight to Blob Storage (issue #18 item 13): the real docker/ops/odoo-ops,
 * reached over a real sshd with the pipeline's own SshClient, dumps a real PostgreSQL 15 database and
 * uploads the parts itself to Azurite (Put Block + Put Block List over curl) with the write-only SAS the
 * pipeline's BackupStore signs; the pipeline's own BackupStore then reads the manifest and re-hashes every
 * part. Docker is the stand-in of test/support/ops-docker-standin.ts (the filestore archive).
 *
 * What a user would check: the backup is complete and verifies (names, sizes, sha256 the pipeline uses);
 * the SSH client that started it is SIGKILLed mid-backup and the job still ends, once; the SAS never shows
 * in `ps`, in the job's files or in its log; a wrong or expired SAS, an existing backup and bad input are
 * clear, coded errors that leave no manifest; finished job folders are pruned, running ones never.
 */
import { spawn } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BlobServiceClient } from '@azure/storage-blob';
import { createDeployActivities, type DeployPorts } from '../../functions/activities/deploy';
import type { AzuriteHandle } from '../../local/azurite';
import { BackupStore, backupIdAt } from '../../shared/adapters/backup-store';
import { SshClient, type SshTarget } from '../../shared/adapters/ssh';
import { vmJobBackup, vmJobId, type VmJob } from '../../shared/domain/vm-job';
import { createLogger } from '../../shared/log';
import { opsVm, startOpsServices, type OpsServices, type OpsVm } from '../support/ops-vm';
import type { PgServer } from '../support/postgres';
import type { SshdHandle } from '../support/sshd';
import { until } from '../support/until';

jest.setTimeout(3 * 60 * 1000);

let services: OpsServices;
let sshd: SshdHandle;
let target: SshTarget;
let pg: PgServer;
let az: AzuriteHandle;
let store: BackupStore;
let work: string;

beforeAll(async () => {
  services = await startOpsServices('ops-blob-');
  ({ work, pg, sshd, az, target, store } = services);
}, 150_000);

afterAll(() => services?.stop());

type Vm = OpsVm;

/** a VM folder with its own Odoo database holding ~3 MB of incompressible rows (several 1 MiB blocks) */
function vm(name: string, extra: Record<string, string> = {}): Vm {
  return opsVm(
    {
      pg,
      work,
      name,
      sql: "CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL, state varchar); INSERT INTO ir_module_module (name, state) VALUES ('base', 'installed'); CREATE TABLE ir_attachment (id serial PRIMARY KEY, db_datas bytea); INSERT INTO ir_attachment (db_datas) SELECT decode(string_agg(md5(random()::text || g), ''), 'hex') FROM generate_series(1, 200000) g",
    },
    { ODOO_OPS_BLOB_BLOCK_MB: '1', ODOO_IMAGE: 'reg.local/odoo:uat-v1.0.0', ...extra },
  );
}

type Json = Record<string, unknown>;
async function opsJson(
  sh: SshClient,
  v: Vm,
  args: string,
  stdin?: string,
): Promise<{ code: number; json: Json; text: string }> {
  const r = await sh.run(`${v.ops} --json ${args}`, { timeoutMs: 60_000, ...(stdin ? { stdin } : {}) });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  return {
    code: r.code,
    json: (line.startsWith('{') ? JSON.parse(line) : {}) as Json,
    text: `${r.stdout ?? ''}${r.stderrTail}`,
  };
}

async function waitJob(sh: SshClient, v: Vm, id: string): Promise<Json> {
  let st: Json = {};
  await until(
    `job ${id} to end`,
    async () => {
      st = (await opsJson(sh, v, `job status ${id}`)).json;
      return st.state !== 'running' && st.state !== 'starting';
    },
    60_000,
  );
  return st;
}

function everyFile(dir: string): string {
  let out = '';
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out += e.isDirectory() ? everyFile(p) : readFileSync(p, 'latin1');
  }
  return out;
}

const meta = (version: string) =>
  JSON.stringify({ version, gitSha: 'c'.repeat(40), reason: 'pre-deploy', deployInstance: 'deploy-uat-x' });

test('the VM uploads the backup itself; the SSH client dies mid-way; the job ends once and the pipeline verifies it', async () => {
  const v = vm('up');
  // every curl the job runs leaves its command line and its environment (what `ps e` would show)
  writeFileSync(
    path.join(v.dir, 'bin', 'curl'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${v.dir}/curl-argv.log'\nenv >> '${v.dir}/curl-env.log'\nexec /usr/bin/curl "$@"\n`,
  );
  chmodSync(path.join(v.dir, 'bin', 'curl'), 0o755);
  const id = backupIdAt('uat', '1.4.0', new Date('2026-12-06T10:00:00Z'));
  const sas = await store.uploadSasUrl(30);
  const sig = new URL(sas).searchParams.get('sig') as string;
  expect(sig.length).toBeGreaterThan(20);

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
  // the `ssh` client of a worker that is about to be recycled starts the job, the SAS on its stdin
  const client = spawn(
    'ssh',
    [
      ...['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
      ...['-i', path.join(work, 'id'), '-p', String(sshd.port), `root@${sshd.host}`],
      `${v.ops} --json job start backup --id deploy-9.backup --blob ${id}`,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  client.stdin.end(`${sas}\n${meta('1.4.0')}\n`);
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
    // mid-backup: the SAS is in no command line and in no file of the job
    const ps = await sh.run('ps -eww -o args', { timeoutMs: 30_000 });
    expect(ps.stdout).toContain('__job-run deploy-9.backup');
    expect(ps.stdout).not.toContain(sig);
    const jobDir = path.join(v.dir, 'state', 'jobs', 'deploy-9.backup');
    expect(readdirSync(jobDir)).not.toContain('sas');
    expect(everyFile(jobDir)).not.toContain(sig);
    expect((await opsJson(sh, v, 'job status deploy-9.backup')).json).toMatchObject({
      state: 'running',
      kind: 'backup',
    });
    // a retried activity starts it again: it gets that job, nothing new
    const again = await opsJson(
      sh,
      v,
      `job start backup --id deploy-9.backup --blob ${id}`,
      `${sas}\n${meta('1.4.0')}\n`,
    );
    expect(again.json).toMatchObject({ started: false, state: 'running' });

    holder.stdin.end('COMMIT;\n');
    const st = await waitJob(sh, v, 'deploy-9.backup');
    expect(st).toMatchObject({ state: 'succeeded', exit_code: 0 });
    const steps = st.steps as Json[];
    expect(steps.map((s) => s.verb)).toEqual([
      'backup-db',
      'upload',
      'backup-filestore',
      'upload',
      'manifest',
    ]);
    expect(steps[1]).toMatchObject({ part: 'db.dump', ok: true });
    expect(Number(steps[1].blocks)).toBeGreaterThan(1);

    // the pipeline's own reader: manifest (same names and fields), every part re-hashed
    const v1 = await store.verify(id);
    expect(v1.problems).toEqual([]);
    expect(v1.ok).toBe(true);
    expect(v1.manifest).toMatchObject({
      format: 1,
      id,
      environment: 'uat',
      version: '1.4.0',
      gitSha: 'c'.repeat(40),
      reason: 'pre-deploy',
      parts: { 'db.dump': { size: steps[1].size, sha256: steps[1].sha256 } },
    });
    expect(Object.keys(v1.manifest!.parts).sort()).toEqual(['db.dump', 'filestore.tar']);
    expect(steps[4]).toMatchObject({ backup_id: id, parts: v1.manifest!.parts });
    expect((await store.list('uat')).find((b) => b.id === id)).toMatchObject({ complete: true });

    // the dump is a real pg_dump archive of that database (zstd-compressed custom format)
    const dump = await store.container.getBlockBlobClient(`${id}/db.dump`).downloadToBuffer();
    expect(dump.length).toBe(v1.manifest!.parts['db.dump'].size);

    // ran once: one backup-db in the VM's history, and the log never held the SAS
    const history = readFileSync(path.join(v.dir, 'state', 'history.jsonl'), 'utf8');
    expect(history.split('\n').filter((l) => l.includes('"job":"deploy-9.backup"'))).toHaveLength(1);
    const log = readFileSync(path.join(jobDir, 'log'), 'utf8');
    expect(log.match(/odoo-ops backup-db \| upload/g)).toHaveLength(1);
    expect(everyFile(jobDir)).not.toContain(sig);
    // curl never had it on its command line or in its environment: only in the config it read from a pipe
    const argv = readFileSync(path.join(v.dir, 'curl-argv.log'), 'utf8');
    expect(argv.match(/comp=block|-K/g)?.length).toBeGreaterThan(3);
    expect(argv).not.toContain(sig);
    expect(argv).not.toContain('sig=');
    expect(readFileSync(path.join(v.dir, 'curl-env.log'), 'utf8')).not.toContain(sig);
  } finally {
    holder.kill();
    await sh.close();
  }
});

test('a wrong or expired SAS, an existing backup and bad input are coded errors that leave no manifest', async () => {
  const v = vm('bad');
  const sh = await SshClient.connect(target);
  try {
    // a tampered signature: Blob refuses the first block
    const good = await store.uploadSasUrl(30);
    const u = new URL(good);
    u.searchParams.set('sig', Buffer.alloc(32, 7).toString('base64'));
    const wrongId = backupIdAt('uat', '2.0.0', new Date('2026-12-06T10:01:00Z'));
    const r1 = await opsJson(
      sh,
      v,
      `job start backup --id j-wrong --blob ${wrongId}`,
      `${u}\n${meta('2.0.0')}\n`,
    );
    expect(r1.code).toBe(0);
    const st1 = await waitJob(sh, v, 'j-wrong');
    expect(st1).toMatchObject({ state: 'failed', exit_code: 6 });
    const last1 = (st1.steps as Json[]).at(-1)!;
    expect(last1).toMatchObject({ verb: 'upload', ok: false, code: 'BLOB.FORBIDDEN' });
    expect(String(last1.message)).toMatch(/refused it \(403 .*the upload SAS is wrong, expired/);
    expect(JSON.stringify(st1)).not.toContain(u.searchParams.get('sig')!);
    expect((await store.verify(wrongId)).ok).toBe(false);
    expect(await store.container.getBlockBlobClient(`${wrongId}/manifest.json`).exists()).toBe(false);

    // an expired SAS (signed by a store whose clock is two hours behind, valid 30 min)
    const past = new BackupStore({
      connectionString: az.connectionString,
      container: 'backups',
      now: () => new Date(Date.now() - 2 * 3600_000),
    });
    const expired = await past.uploadSasUrl(30);
    const expId = backupIdAt('uat', '2.0.1', new Date('2026-12-06T10:02:00Z'));
    await opsJson(sh, v, `job start backup --id j-expired --blob ${expId}`, `${expired}\n${meta('2.0.1')}\n`);
    const st2 = await waitJob(sh, v, 'j-expired');
    expect(st2).toMatchObject({ state: 'failed', exit_code: 6 });
    expect((st2.steps as Json[]).at(-1)).toMatchObject({ code: 'BLOB.FORBIDDEN' });
    expect(await store.container.getBlockBlobClient(`${expId}/manifest.json`).exists()).toBe(false);

    // a backup id that is complete already stays as it was (every commit is If-None-Match: *)
    const takenId = backupIdAt('uat', '2.0.2', new Date('2026-12-06T10:03:00Z'));
    const w = store.begin('uat', { version: '2.0.2' }, new Date('2026-12-06T10:03:00Z'));
    expect(w.id).toBe(takenId);
    await w.part('db.dump', Readable.from([Buffer.from('first')]));
    const first = await w.finish();
    await opsJson(sh, v, `job start backup --id j-exists --blob ${takenId}`, `${good}\n${meta('2.0.2')}\n`);
    const st3 = await waitJob(sh, v, 'j-exists');
    expect(st3).toMatchObject({ state: 'failed', exit_code: 6 });
    expect((st3.steps as Json[]).at(-1)).toMatchObject({ verb: 'upload', code: 'BACKUP.EXISTS' });
    expect(await store.manifest(takenId)).toEqual(first);
    expect(
      (await store.container.getBlockBlobClient(`${takenId}/db.dump`).downloadToBuffer()).toString(),
    ).toBe('first');

    // bad input: nothing started, no job folder, the SAS not echoed
    const noSas = await opsJson(
      sh,
      v,
      `job start backup --id j-nosas --blob ${wrongId}`,
      `\n${meta('2.0.0')}\n`,
    );
    expect(noSas.code).toBe(2);
    expect(String(noSas.json.message)).toContain('upload SAS URL on its first stdin line');
    const noMeta = await opsJson(
      sh,
      v,
      `job start backup --id j-nometa --blob ${wrongId}`,
      `${good}\nnot json\n`,
    );
    expect(noMeta.code).toBe(2);
    expect(noMeta.text).not.toContain(new URL(good).searchParams.get('sig')!);
    const jobs = readdirSync(path.join(v.dir, 'state', 'jobs'));
    expect(jobs).not.toContain('j-nosas');
    expect(jobs).not.toContain('j-nometa');
    for (const bad of ["'uat/../../x'", "'prod/2026-x'", "'uat/20261206T100000Z-1.0;id'"]) {
      const r = await opsJson(sh, v, `job start backup --id j-badid --blob ${bad}`, `${good}\n{}\n`);
      expect(r.code).toBe(2);
      expect(String(r.json.message)).toContain('is not <env>/<yyyymmddThhmmssZ>-<version>');
    }
    const badPart = await opsJson(
      sh,
      v,
      `job start backup --id j-badpart --blob ${wrongId} --part 'db.dump=1:${'a'.repeat(64)}'`,
      `${good}\n{}\n`,
    );
    expect(badPart.code).toBe(2);
  } finally {
    await sh.close();
  }
});

test('job prune removes finished job folders past the retention, never a running job', async () => {
  const v = vm('prune', { STANDIN_MIGRATE_SECONDS: '20' });
  const sh = await SshClient.connect(target);
  const jobs = path.join(v.dir, 'state', 'jobs');
  try {
    // a finished backup (to a local file) and a running migration, both "40 days old"
    await opsJson(sh, v, 'job start backup --id old-backup');
    expect(await waitJob(sh, v, 'old-backup')).toMatchObject({ state: 'succeeded' });
    await opsJson(sh, v, 'job start backup --id new-backup');
    expect(await waitJob(sh, v, 'new-backup')).toMatchObject({ state: 'succeeded' });
    await opsJson(sh, v, 'job start migrate --id old-migrate reg.local/odoo:uat-v1 all');
    const old = new Date(Date.now() - 40 * 86400_000);
    for (const id of ['old-backup', 'old-migrate'])
      for (const f of readdirSync(path.join(jobs, id))) utimesSync(path.join(jobs, id, f), old, old);
    expect((await opsJson(sh, v, 'job status old-migrate')).json.state).toBe('running');

    const bad = await opsJson(sh, v, 'job prune --older-than soon');
    expect(bad.code).toBe(2);
    const r = await opsJson(sh, v, 'job prune --older-than 30');
    expect(r.code).toBe(0);
    expect(r.json.removed).toEqual(['old-backup']);
    expect(readdirSync(jobs).sort()).toEqual(['new-backup', 'old-migrate']);
    expect((await opsJson(sh, v, 'job status old-migrate')).json.state).toBe('running');
    expect((await opsJson(sh, v, 'job status old-backup')).code).toBe(11);
    // the finished one of today stays until it is old enough
    expect(statSync(path.join(jobs, 'new-backup')).isDirectory()).toBe(true);
  } finally {
    await sh.close();
  }
});

test('BackupStore signs a write-only SAS of the backups container: it writes blobs but cannot read, list or delete', async () => {
  const sas = await store.uploadSasUrl(10);
  const q = new URL(sas).searchParams;
  expect(q.get('sp')).toBe('cw');
  expect(q.get('sr')).toBe('c');
  expect(new URL(sas).pathname).toMatch(/\/backups$/);
  const expiry = new Date(q.get('se') as string).getTime();
  expect(expiry - Date.now()).toBeLessThanOrEqual(10 * 60_000 + 5000);
  expect(expiry - Date.now()).toBeGreaterThan(9 * 60_000);
  const c = new BlobServiceClient(sas.replace(/\/backups\?/, '?')).getContainerClient('backups');
  const blob = c.getBlockBlobClient('uat/sas-probe.bin');
  await blob.upload('new', 3, { conditions: { ifNoneMatch: '*' } });
  await expect(blob.downloadToBuffer()).rejects.toMatchObject({ statusCode: 403 });
  await expect(c.listBlobsFlat().next()).rejects.toMatchObject({ statusCode: 403 });
  await expect(blob.delete()).rejects.toMatchObject({ statusCode: 403 });
});

test("the deploy's own activities: start, the caller dies, the resumed start finds the job; one backup, verified and confirmed", async () => {
  const v = vm('acts');
  const acts = createDeployActivities({
    settings: () => {
      throw new Error('unused');
    },
    ssh: { connect: () => SshClient.connect(target) },
    backups: store,
    opsCommand: v.ops,
    backupSasMinutes: 30,
    log: createLogger({ level: 'error', sink: () => undefined }),
  } as unknown as DeployPorts);
  const input = {
    environment: 'uat',
    version: '1.5.0',
    sha: 'd'.repeat(40),
    runningVersion: '1.4.0',
    instanceId: 'deploy-uat-1.5.0-abc',
    jobId: vmJobId('deploy-uat-1.5.0-abc', 'backup'),
    at: '2026-12-06T11:00:00.000Z',
  };
  // a backup of the same version in that second exists already: the job takes the next second's id
  const taken = store.begin('uat', { version: '1.4.0' }, new Date(input.at));
  await taken.part('db.dump', Readable.from([Buffer.from('other')]));
  await taken.finish();

  const holder = spawn('psql', ['-X', '-q', '-d', v.db], {
    env: { ...process.env, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: 'postgres' },
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  try {
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
    const first = (await acts.backupStart(input)) as VmJob;
    expect(first).toMatchObject({ id: input.jobId, started: true, kind: 'backup' });
    expect(['running', 'starting']).toContain(first.state);
    // the worker that ran it is recycled; the resumed orchestration runs the start again: same job
    const again = (await acts.backupStart(input)) as VmJob;
    expect(again).toMatchObject({ id: input.jobId, started: false, state: 'running' });
    holder.stdin.end('COMMIT;\n');
    let st = again;
    await until(
      'the backup job to end',
      async () => {
        st = (await acts.jobStatus({ environment: 'uat', jobId: input.jobId })) as VmJob;
        return st.state !== 'running' && st.state !== 'starting';
      },
      60_000,
    );
    expect(st).toMatchObject({ state: 'succeeded' });
    const written = vmJobBackup(st)!;
    expect(written.backupId).toBe('uat/20261206T110001Z-1.4.0');
    // finished: a late start still starts nothing
    expect(await acts.backupStart(input)).toMatchObject({ started: false, state: 'succeeded' });
    const verified = await acts.backupVerify({ backupId: written.backupId });
    expect(verified).toMatchObject({
      backupId: written.backupId,
      parts: written.parts,
      bytes: written.bytes,
    });
    expect((verified as { manifest: Json }).manifest).toMatchObject({
      version: '1.4.0',
      gitSha: input.sha,
      deployInstance: input.instanceId,
      reason: 'pre-deploy',
    });
    expect(await acts.confirmBackup({ backupId: written.backupId })).toEqual({
      backupId: written.backupId,
      parts: {
        'db.dump': written.parts['db.dump'].size,
        'filestore.tar': written.parts['filestore.tar'].size,
      },
    });
    const log = readFileSync(path.join(v.dir, 'state', 'jobs', input.jobId, 'log'), 'utf8');
    expect(log.match(/odoo-ops backup-db \| upload/g)).toHaveLength(1);
  } finally {
    holder.kill();
  }
});
