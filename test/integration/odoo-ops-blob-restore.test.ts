/**
 * Restores run on the VM as jobs, from Blob Storage (issue #18 item 13): the real docker/ops/odoo-ops,
 * reached over a real sshd, restores a backup that its own backup job wrote to Azurite, reading the parts
 * itself with the read-only blob SAS URLs the pipeline's BackupStore signs, into a real PostgreSQL 15.
 * Docker is the stand-in of test/support/ops-docker-standin.ts, with the VM's data folder as /var/lib/odoo
 * (the filestore round-trips).
 *
 * What a user would check: the restored database (and filestore) holds the same data as the one backed
 * up; a part altered in Blob (same size) is refused — nothing swapped, the live database and filestore
 * as they were, nothing left behind; a read SAS cannot write, delete, list or read another blob; the SAS
 * never shows in `ps`, in argv/env, in the job's files or its log; the SSH client that started the job
 * dies mid-restore and the job still ends, once; a second start with the same id restores nothing;
 * a missing manifest, a missing part and a SAS that cannot read are clear, coded errors.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BlobServiceClient, BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { createDeployActivities, type DeployPorts } from '../../functions/activities/deploy';
import { createRefreshActivities, type RefreshPorts } from '../../functions/activities/refresh';
import type { AzuriteHandle } from '../../local/azurite';
import { BackupStore, backupIdAt } from '../../shared/adapters/backup-store';
import { SshClient, type SshTarget } from '../../shared/adapters/ssh';
import { vmJobId, vmJobRestore, type VmJob } from '../../shared/domain/vm-job';
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
let sh: SshClient;

beforeAll(async () => {
  services = await startOpsServices('ops-restore-');
  ({ work, pg, sshd, az, target, store } = services);
  sh = await SshClient.connect(target);
}, 150_000);

afterAll(async () => {
  await sh?.close();
  await services?.stop();
});

type Json = Record<string, unknown>;
interface Vm extends OpsVm {
  data: string;
}

/**
 * A VM with an Odoo-shaped database (installed modules, ~600 kB of attachments in the database) and a
 * filestore of two files; every curl the jobs run leaves its argv and environment, and waits while the
 * file `hold` exists when it is a part's download (the restore is then mid-way); with the file `cut`, the
 * next part's download stops after 30,000 bytes like a dropped connection (curl exit 56).
 */
function vm(name: string): Vm {
  const data = path.join(work, name, 'data');
  const v = opsVm(
    {
      pg,
      work,
      name,
      sql: "CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL, state varchar); INSERT INTO ir_module_module (name, state) VALUES ('base', 'installed'), ('sale', 'installed'); CREATE TABLE ir_attachment (id serial PRIMARY KEY, name varchar, store_fname varchar, db_datas bytea); INSERT INTO ir_attachment (name, db_datas) SELECT 'inline ' || g, decode(md5(random()::text || g) || md5(g::text), 'hex') FROM generate_series(1, 20000) g; INSERT INTO ir_attachment (name, store_fname) VALUES ('invoice.pdf', 'ab/ab12'), ('logo.png', 'cd/cd34')",
    },
    { ODOO_OPS_BLOB_BLOCK_MB: '1', ODOO_IMAGE: 'reg.local/odoo:uat-v1.0.0', STANDIN_DATA: data },
  );
  const fs = path.join(data, 'filestore', v.db);
  mkdirSync(path.join(fs, 'ab'), { recursive: true });
  mkdirSync(path.join(fs, 'cd'), { recursive: true });
  writeFileSync(path.join(fs, 'ab', 'ab12'), `%PDF-1.4 invoice of ${name}\n`);
  writeFileSync(path.join(fs, 'cd', 'cd34'), Buffer.alloc(4096, 0x89));
  writeFileSync(
    path.join(v.dir, 'bin', 'curl'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${v.dir}/curl-argv.log'\nenv >> '${v.dir}/curl-env.log'\ncase "$*" in *--fail*) while [ -e '${v.dir}/hold' ]; do sleep 0.1; done\n  if [ -e '${v.dir}/cut' ]; then rm -f '${v.dir}/cut'; /usr/bin/curl "$@" | head -c 30000; exit 56; fi ;; esac\nexec /usr/bin/curl "$@"\n`,
  );
  chmodSync(path.join(v.dir, 'bin', 'curl'), 0o755);
  return { ...v, data };
}

async function opsJson(
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

async function waitJob(v: Vm, id: string): Promise<Json> {
  let st: Json = {};
  await until(
    `job ${id} to end`,
    async () => {
      st = (await opsJson(v, `job status ${id}`)).json;
      return st.state !== 'running' && st.state !== 'starting';
    },
    90_000,
  );
  return st;
}

/** a backup of the VM's database and filestore, written to Blob by the VM's own backup job */
async function backupOf(v: Vm, version: string, at: string): Promise<string> {
  const id = backupIdAt('uat', version, new Date(at));
  const job = `b-${version}`;
  const meta = JSON.stringify({ version, gitSha: 'e'.repeat(40), reason: 'pre-deploy' });
  expect(
    (
      await opsJson(
        v,
        `job start backup --id ${job} --blob ${id}`,
        `${await store.uploadSasUrl(30)}\n${meta}\n`,
      )
    ).code,
  ).toBe(0);
  expect(await waitJob(v, job)).toMatchObject({ state: 'succeeded' });
  expect((await store.verify(id)).ok).toBe(true);
  return id;
}

const readLine = async (id: string) => `${(await store.readSasUrls(id, 30)).join(' ')}\n`;

/** what a user compares: every row of the attachments and the modules, as one digest */
function dataOf(db: string): string {
  return pg.psql(
    db,
    "SELECT md5(string_agg(id || ':' || name || ':' || coalesce(store_fname, '') || ':' || coalesce(encode(db_datas, 'hex'), ''), ',' ORDER BY id)) || '/' || (SELECT string_agg(name || '=' || state, ',' ORDER BY id) FROM ir_module_module) FROM ir_attachment",
  );
}
function filesOf(v: Vm, db: string): Record<string, string> {
  const root = path.join(v.data, 'filestore', db);
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(root, p)] = readFileSync(p).toString('hex');
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}
const databases = (prefix: string) =>
  pg
    .psql(
      'postgres',
      `SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE '${prefix}%'`,
    )
    .trim();

function everyFile(dir: string): string {
  let out = '';
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out += e.isDirectory() ? everyFile(p) : readFileSync(p, 'latin1');
  }
  return out;
}

test('a backup the backup job wrote restores through the restore job: into a new database (refresh), then swapped in (rollback)', async () => {
  const v = vm('rt');
  const before = dataOf(v.db);
  const files = filesOf(v, v.db);
  expect(Object.keys(files).sort()).toEqual(['ab/ab12', 'cd/cd34']);
  const id = await backupOf(v, '1.0.0', '2026-12-06T12:00:00Z');

  // --into: a new database with the same data and filestore; the live one untouched. The first download
  // of the dump is cut on the way: the job downloads it again and restores it once
  writeFileSync(path.join(v.dir, 'cut'), '');
  const into = `${v.db}_copy`;
  const r = await opsJson(v, `job start restore --id r-into --blob ${id} --into ${into}`, await readLine(id));
  expect(r.code).toBe(0);
  expect(r.json).toMatchObject({ started: true, kind: 'restore' });
  const st = await waitJob(v, 'r-into');
  expect(st).toMatchObject({ state: 'succeeded', exit_code: 0 });
  const steps = (st.steps as Json[]).slice(-5);
  expect((st.steps as Json[]).map((s) => s.verb)).toEqual([
    'restore',
    'restore-db',
    'verify',
    'restore-filestore',
    'verify',
    'restore',
  ]);
  expect((st.steps as Json[])[0]).toMatchObject({ ok: false, code: 'BLOB.UNAVAILABLE' });
  expect(readFileSync(path.join(v.dir, 'state', 'jobs', 'r-into', 'log'), 'utf8')).toContain(
    'failed on the way: attempt 2 of 3',
  );
  const manifest = await store.manifest(id);
  expect(steps[1]).toMatchObject({ part: 'db.dump', ...manifest.parts['db.dump'] });
  expect(steps[3]).toMatchObject({ part: 'filestore.tar', ...manifest.parts['filestore.tar'] });
  expect(steps[4]).toMatchObject({ ok: true, backup_id: id, database: into, parts: manifest.parts });
  expect(dataOf(into)).toBe(before);
  expect(filesOf(v, into)).toEqual(files);

  // the live database changes (a half-migrated deploy); the rollback restore swaps the backup back in
  pg.psql(
    v.db,
    "UPDATE ir_module_module SET state = 'to upgrade'; DELETE FROM ir_attachment WHERE id % 2 = 0",
  );
  writeFileSync(path.join(v.data, 'filestore', v.db, 'ab', 'ab12'), 'overwritten by the new release');
  expect(dataOf(v.db)).not.toBe(before);
  const rb = await opsJson(v, `job start restore --id r-back --blob ${id}`, await readLine(id));
  expect(rb.code).toBe(0);
  const st2 = await waitJob(v, 'r-back');
  expect(st2).toMatchObject({ state: 'succeeded' });
  expect((st2.steps as Json[]).map((s) => s.verb)).toEqual([
    'restore-db',
    'verify',
    'restore-filestore',
    'verify',
    'swap-db',
    'drop-db',
    'restore',
  ]);
  expect(dataOf(v.db)).toBe(before);
  expect(filesOf(v, v.db)).toEqual(files);
  // no staging or previous database left behind (the broken one is dropped, as restore-db did)
  expect(databases(v.db)).toBe(`${v.db},${into}`);
  // the job folder never held the SAS, and no file named sas is left
  const sig = new URL((await store.readSasUrls(id, 30))[0]).searchParams.get('sig')!;
  const jobDir = path.join(v.dir, 'state', 'jobs', 'r-back');
  expect(readdirSync(jobDir)).not.toContain('sas');
  expect(everyFile(path.join(v.dir, 'state'))).not.toMatch(/sig=/);
  expect(everyFile(path.join(v.dir, 'state'))).not.toContain(sig);
});

test('a part altered in Blob (same size) is refused: nothing swapped, the live database and filestore untouched, nothing left', async () => {
  const v = vm('tamper');
  const id = await backupOf(v, '1.1.0', '2026-12-06T12:10:00Z');
  const before = dataOf(v.db);
  const files = filesOf(v, v.db);
  const service = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient('backups');
  const flip = async (part: string, at: (b: Buffer) => number) => {
    const blob = service.getBlockBlobClient(`${id}/${part}`);
    const buf = await blob.downloadToBuffer();
    const i = at(buf);
    buf[i] ^= 0x01;
    await blob.upload(buf, buf.length);
    return buf.length;
  };

  // the filestore archive: one byte of a file's content (tar checks headers, not content: it extracts it)
  const size = await flip('filestore.tar', (b) => b.indexOf(Buffer.from('%PDF-1.4')) + 2);
  expect(size).toBe((await store.manifest(id)).parts['filestore.tar'].size);
  const r = await opsJson(v, `job start restore --id t-fs --blob ${id}`, await readLine(id));
  expect(r.code).toBe(0);
  const st = await waitJob(v, 't-fs');
  expect(st).toMatchObject({ state: 'failed', exit_code: 7 });
  const last = (st.steps as Json[]).at(-1)!;
  expect(last).toMatchObject({ verb: 'restore', ok: false, code: 'BACKUP.CORRUPT' });
  expect(String(last.message)).toMatch(/filestore\.tar differs from its manifest.*nothing swapped/);
  expect(dataOf(v.db)).toBe(before);
  expect(filesOf(v, v.db)).toEqual(files);
  expect(databases(v.db)).toBe(v.db);
  expect(readdirSync(path.join(v.data, 'filestore')).sort()).toEqual([v.db]);

  // the dump: a byte in the middle; into a new database: that database is not left behind
  await flip('db.dump', (b) => Math.floor(b.length / 2));
  const into = `${v.db}_copy`;
  await opsJson(v, `job start restore --id t-db --blob ${id} --into ${into}`, await readLine(id));
  const st2 = await waitJob(v, 't-db');
  expect(st2).toMatchObject({ state: 'failed', exit_code: 7 });
  expect((st2.steps as Json[]).at(-1)).toMatchObject({ verb: 'restore', code: 'BACKUP.CORRUPT' });
  expect(databases(v.db)).toBe(v.db);
  expect(dataOf(v.db)).toBe(before);
  // the pipeline's own reader agrees: the backup does not verify
  expect((await store.verify(id)).ok).toBe(false);
});

test('the SSH client dies mid-restore: the job ends once; a second start restores nothing; the SAS is in no ps, argv, env or job file', async () => {
  const v = vm('kill');
  const id = await backupOf(v, '1.2.0', '2026-12-06T12:20:00Z');
  const before = dataOf(v.db);
  const urls = await store.readSasUrls(id, 30);
  const sigs = urls.map((u) => new URL(u).searchParams.get('sig')!);
  writeFileSync(path.join(v.dir, 'hold'), '');
  const client = spawn(
    'ssh',
    [
      ...['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
      ...['-i', path.join(work, 'id'), '-p', String(sshd.port), `root@${sshd.host}`],
      `${v.ops} --json job start restore --id deploy-7.restore --blob ${id}`,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  client.stdin.end(`${urls.join(' ')}\n`);
  // mid-restore: the job is downloading db.dump (held by the curl wrapper)
  await until(
    'the download to be under way',
    () =>
      existsSync(path.join(v.dir, 'curl-argv.log')) &&
      readFileSync(path.join(v.dir, 'curl-argv.log'), 'utf8').includes('--fail'),
    30_000,
  );
  client.kill('SIGKILL');
  const ps = await sh.run('ps -eww -o args', { timeoutMs: 30_000 });
  expect(ps.stdout).toContain('__job-run deploy-7.restore');
  for (const s of sigs) expect(ps.stdout).not.toContain(s);
  const jobDir = path.join(v.dir, 'state', 'jobs', 'deploy-7.restore');
  expect(readdirSync(jobDir)).not.toContain('sas');
  for (const s of sigs) expect(everyFile(jobDir)).not.toContain(s);
  expect((await opsJson(v, 'job status deploy-7.restore')).json).toMatchObject({
    state: 'running',
    kind: 'restore',
  });
  // a retried activity starts it again: that job, nothing new
  const again = await opsJson(
    v,
    `job start restore --id deploy-7.restore --blob ${id}`,
    `${urls.join(' ')}\n`,
  );
  expect(again.json).toMatchObject({ started: false, state: 'running' });
  // the same id for other work is refused
  const other = await opsJson(
    v,
    `job start restore --id deploy-7.restore --blob ${id} --into x_other`,
    `${urls.join(' ')}\n`,
  );
  expect(other.code).toBe(2);
  expect(String(other.json.message)).toContain('exists for other work');

  pg.psql(v.db, 'DELETE FROM ir_attachment WHERE id > 100');
  rmSync(path.join(v.dir, 'hold'));
  const st = await waitJob(v, 'deploy-7.restore');
  expect(st).toMatchObject({ state: 'succeeded' });
  expect(dataOf(v.db)).toBe(before);
  // once: one restore of the dump in the job's log, one job start in the VM's history, one swap
  const log = readFileSync(path.join(jobDir, 'log'), 'utf8');
  expect(log.match(/download \S+\/db\.dump \| odoo-ops restore-db/g)).toHaveLength(1);
  const history = readFileSync(path.join(v.dir, 'state', 'history.jsonl'), 'utf8').split('\n');
  expect(history.filter((l) => l.includes('"job":"deploy-7.restore"'))).toHaveLength(1);
  expect(history.filter((l) => l.includes('"verb":"swap-db"'))).toHaveLength(1);
  // a late start after the end: still nothing new
  expect(
    (await opsJson(v, `job start restore --id deploy-7.restore --blob ${id}`, `${urls.join(' ')}\n`)).json,
  ).toMatchObject({
    started: false,
    state: 'succeeded',
  });
  expect(
    readFileSync(path.join(v.dir, 'state', 'history.jsonl'), 'utf8').match(/"verb":"swap-db"/g),
  ).toHaveLength(1);
  // curl only ever had the URLs through its config on a pipe: not in argv, not in its environment
  const argv = readFileSync(path.join(v.dir, 'curl-argv.log'), 'utf8');
  expect(argv).toContain('-K');
  expect(argv).not.toContain('sig=');
  const env = readFileSync(path.join(v.dir, 'curl-env.log'), 'utf8');
  for (const s of sigs) {
    expect(argv).not.toContain(s);
    expect(env).not.toContain(s);
    expect(everyFile(path.join(v.dir, 'state'))).not.toContain(s);
  }
});

test('the read SAS URLs read their own blob only: no write, delete, list, nor any other blob', async () => {
  const v = vm('sas');
  const id = await backupOf(v, '1.3.0', '2026-12-06T12:30:00Z');
  const other = store.begin('prod', { version: '9.9.9' }, new Date('2026-12-06T12:31:00Z'));
  await other.part('db.dump', Readable.from([Buffer.from('PROD data')]));
  await other.finish();

  const urls = await store.readSasUrls(id, 10);
  expect(urls.map((u) => new URL(u).pathname.split('/').pop()).sort()).toEqual([
    'db.dump',
    'filestore.tar',
    'manifest.json',
  ]);
  const man = urls.find((u) => new URL(u).pathname.endsWith('/manifest.json'))!;
  const q = new URL(man).searchParams;
  expect(q.get('sp')).toBe('r');
  expect(q.get('sr')).toBe('b');
  const expiry = new Date(q.get('se') as string).getTime();
  expect(expiry - Date.now()).toBeLessThanOrEqual(10 * 60_000 + 5000);
  expect(expiry - Date.now()).toBeGreaterThan(9 * 60_000);

  const blob = new BlockBlobClient(man);
  expect(JSON.parse((await blob.downloadToBuffer()).toString())).toMatchObject({ id });
  // an attacker holding it: overwrite, delete, list, read the part next to it, read another backup
  await expect(blob.upload('{}', 2)).rejects.toMatchObject({ statusCode: 403 });
  await expect(blob.delete()).rejects.toMatchObject({ statusCode: 403 });
  const base = new URL(man);
  const container = new ContainerClient(
    `${base.origin}/${base.pathname.split('/')[1]}/backups?${base.search.slice(1)}`,
  );
  await expect(container.listBlobsFlat().next()).rejects.toMatchObject({ statusCode: 403 });
  const sideways = (name: string) => {
    const u = new URL(man);
    u.pathname = u.pathname.replace(/[^/]+\/[^/]+\/manifest\.json$/, name);
    return new BlockBlobClient(u.toString());
  };
  await expect(sideways(`${id}/db.dump`).downloadToBuffer()).rejects.toMatchObject({ statusCode: 403 });
  await expect(sideways(`${other.id}/manifest.json`).downloadToBuffer()).rejects.toMatchObject({
    statusCode: 403,
  });
  await expect(sideways(`${other.id}/db.dump`).downloadToBuffer()).rejects.toMatchObject({ statusCode: 403 });
  await expect(
    new BlockBlobClient(
      `${base.origin}${base.pathname.replace(/manifest\.json$/, 'new.bin')}${base.search}`,
    ).upload('x', 1),
  ).rejects.toMatchObject({ statusCode: 403 });

  // the VM job refuses URLs of another backup before it starts anything
  const wrong = await opsJson(
    v,
    `job start restore --id s-wrong --blob ${id}`,
    `${(await store.readSasUrls(other.id, 10)).join(' ')}\n`,
  );
  expect(wrong.code).toBe(2);
  expect(String(wrong.json.message)).toContain(`is not a blob of backup ${id}`);
  expect(wrong.text).not.toContain('sig=');
  expect(readdirSync(path.join(v.dir, 'state', 'jobs'))).not.toContain('s-wrong');
});

test('a missing manifest, a missing part, a SAS that cannot read and bad input are clear, coded errors; the live database untouched', async () => {
  const v = vm('bad');
  const before = dataOf(v.db);
  // no backup at all under that id: no manifest (a URL for it can still be signed)
  const none = backupIdAt('uat', '0.0.1', new Date('2026-12-06T12:40:00Z'));
  const r1 = await opsJson(
    v,
    `job start restore --id e-none --blob ${none}`,
    `${(await store.readSasUrls(none, 10, [])).join(' ')}\n`,
  );
  expect(r1.code).toBe(0);
  const st1 = await waitJob(v, 'e-none');
  expect(st1).toMatchObject({ state: 'failed', exit_code: 7 });
  expect((st1.steps as Json[]).at(-1)).toMatchObject({ code: 'BACKUP.NOT_FOUND' });
  expect(String((st1.steps as Json[]).at(-1)!.message)).toContain(`backup ${none} has no manifest`);

  // a part the manifest lists is gone
  const id = await backupOf(v, '1.4.0', '2026-12-06T12:41:00Z');
  const line = await readLine(id);
  await BlobServiceClient.fromConnectionString(az.connectionString)
    .getContainerClient('backups')
    .getBlockBlobClient(`${id}/filestore.tar`)
    .delete();
  await opsJson(v, `job start restore --id e-part --blob ${id}`, line);
  const st2 = await waitJob(v, 'e-part');
  expect(st2).toMatchObject({ state: 'failed', exit_code: 7 });
  const last2 = (st2.steps as Json[]).at(-1)!;
  expect(last2).toMatchObject({ code: 'BACKUP.NOT_FOUND' });
  expect(String(last2.message)).toMatch(/filestore\.tar is missing.*nothing restored/);
  // checked before anything was restored: no restore step ran
  expect((st2.steps as Json[]).map((s) => s.verb)).toEqual(['restore']);

  // a signature that cannot read
  const bad = line
    .trim()
    .split(' ')
    .map((u) => {
      const x = new URL(u);
      x.searchParams.set('sig', Buffer.alloc(32, 9).toString('base64'));
      return x.toString();
    });
  await opsJson(v, `job start restore --id e-sig --blob ${id}`, `${bad.join(' ')}\n`);
  const st3 = await waitJob(v, 'e-sig');
  expect((st3.steps as Json[]).at(-1)).toMatchObject({ code: 'BLOB.FORBIDDEN' });
  expect(String((st3.steps as Json[]).at(-1)!.message)).toContain(
    'the read SAS is wrong, expired or lacks read permission',
  );
  expect(JSON.stringify(st3)).not.toContain(new URL(bad[0]).searchParams.get('sig')!);

  // bad input: nothing started, no job folder
  for (const [args, stdin, want] of [
    [`--blob ${id}`, '\n', 'read SAS URLs'],
    [`--blob ${id}`, 'not a url\n', 'is not a URL with a SAS query'],
    [
      `--blob ${id}`,
      `${line
        .trim()
        .split(' ')
        .filter((u) => !u.includes('manifest.json'))
        .join(' ')}\n`,
      'no URL of',
    ],
    [`--blob 'uat/../x'`, line, 'is not <env>/<yyyymmddThhmmssZ>-<version>'],
    [`--blob ${id} --into '${v.db}'`, line, 'not the Odoo database'],
    [`--blob ${id} --into 'x;drop'`, line, 'is not a plain database name'],
  ]) {
    const r = await opsJson(v, `job start restore --id e-input ${args}`, stdin);
    expect(r.code).toBe(2);
    expect(String(r.json.message)).toContain(want);
    expect(r.text).not.toContain('sig=');
  }
  expect(readdirSync(path.join(v.dir, 'state', 'jobs'))).not.toContain('e-input');
  expect(dataOf(v.db)).toBe(before);
  expect(databases(v.db)).toBe(v.db);
});

test("the pipeline's own activities: the rollback's restoreStart and the refresh's restoreStart start the job once, it is polled to the end", async () => {
  const v = vm('acts');
  const before = dataOf(v.db);
  const files = filesOf(v, v.db);
  const id = await backupOf(v, '1.5.0', '2026-12-06T12:50:00Z');
  const log = createLogger({ level: 'error', sink: () => undefined });
  const deploy = createDeployActivities({
    ssh: { connect: () => SshClient.connect(target) },
    backups: store,
    opsCommand: v.ops,
    backupSasMinutes: 30,
    log,
  } as unknown as DeployPorts);
  const poll = async (status: () => Promise<unknown>): Promise<VmJob> => {
    let st = {} as VmJob;
    await until(
      'the restore job to end',
      async () => {
        st = (await status()) as VmJob;
        return st.state !== 'running' && st.state !== 'starting';
      },
      90_000,
    );
    return st;
  };

  // rollback: the new release broke the database; the restore job puts the backup back
  pg.psql(v.db, "UPDATE ir_module_module SET state = 'to upgrade'; DELETE FROM ir_attachment");
  const jobId = vmJobId('deploy-uat-1.6.0-abc', 'restore');
  writeFileSync(path.join(v.dir, 'hold'), '');
  const first = (await deploy.restoreStart({ environment: 'uat', backupId: id, jobId })) as VmJob;
  expect(first).toMatchObject({ id: jobId, kind: 'restore', started: true });
  // the worker is recycled; the replayed start finds the job and starts nothing
  expect(await deploy.restoreStart({ environment: 'uat', backupId: id, jobId })).toMatchObject({
    started: false,
    state: 'running',
  });
  rmSync(path.join(v.dir, 'hold'));
  const st = await poll(() => deploy.jobStatus({ environment: 'uat', jobId }));
  expect(st).toMatchObject({ state: 'succeeded' });
  expect(vmJobRestore(st)).toMatchObject({ backupId: id, database: v.db, files: 2 });
  expect(dataOf(v.db)).toBe(before);
  expect(filesOf(v, v.db)).toEqual(files);
  const jlog = readFileSync(path.join(v.dir, 'state', 'jobs', jobId, 'log'), 'utf8');
  expect(jlog.match(/download \S+\/db\.dump \| odoo-ops restore-db/g)).toHaveLength(1);
  expect(jlog).not.toContain('sig=');

  // refresh: into a new database, without the filestore when the refresh copies none
  const refresh = createRefreshActivities({
    ssh: { connect: () => SshClient.connect(target) },
    backups: store,
    opsCommand: v.ops,
    readSasMinutes: 30,
    log,
  } as unknown as RefreshPorts);
  const database = `${v.db}_refresh_1`;
  const rj = vmJobId('refresh-uat-1', 'restore');
  const started = (await refresh.restoreStart({
    backupId: id,
    database,
    jobId: rj,
    filestore: false,
  })) as VmJob;
  expect(started).toMatchObject({ started: true });
  const rst = await poll(() => refresh.jobStatus({ jobId: rj }));
  expect(rst).toMatchObject({ state: 'succeeded' });
  expect(vmJobRestore(rst)).toMatchObject({ database, pgUser: 'postgres', tables: 2 });
  expect(vmJobRestore(rst)!.files).toBeUndefined();
  expect(dataOf(database)).toBe(before);
  expect(existsSync(path.join(v.data, 'filestore', database))).toBe(false);

  // a backup that cannot be restored: refused before anything starts on the VM
  const gone = backupIdAt('uat', '0.0.2', new Date('2026-12-06T12:55:00Z'));
  expect(await deploy.restoreStart({ environment: 'uat', backupId: gone, jobId: 'x-gone' })).toMatchObject({
    failed: { code: 'BACKUP.NOT_FOUND' },
  });
  expect(readdirSync(path.join(v.dir, 'state', 'jobs'))).not.toContain('x-gone');
});
