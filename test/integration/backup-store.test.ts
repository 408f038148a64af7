/**
 * Backups through real services: PostgreSQL (pg_dump/pg_restore), OpenSSH sshd (the "VM"), Azurite (Blob).
 * VM stdout → SSH → Blob uploadStream, and back for the restore; no temp file on the pipeline side.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { createServer, request as httpRequest } from 'node:http';
import { AddressInfo } from 'node:net';
import { BlobServiceClient, ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { BackupStore, parseBackupId } from '../../shared/adapters/backup-store';
import { SshClient } from '../../shared/adapters/ssh';
import { errorCode } from '../../shared/domain/errors';
import { AZURITE_ACCOUNT, AzuriteHandle, startAzurite } from '../../local/azurite';
import { PG_BIN, PgServer, startPostgres } from '../support/postgres';
import { generateKeyPair, startSshd, SshdHandle } from '../support/sshd';

let az: AzuriteHandle;
let pg: PgServer;
let sshd: SshdHandle;
let ssh: SshClient;
let container: ContainerClient;
let store: BackupStore;
let work: string;

const CHECKSUM_SQL = `SELECT string_agg(t || ':' || c, ',' ORDER BY t) FROM (
  SELECT 'partner' t, md5(string_agg(p::text, '|' ORDER BY id)) c FROM partner p
  UNION ALL SELECT 'attachment', md5(string_agg(a::text, '|' ORDER BY id)) FROM attachment a) x`;

function pgEnv(): string {
  return `PGHOST=127.0.0.1 PGPORT=${pg.port} PGUSER=postgres PATH=${PG_BIN}:$PATH`;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return errorCode(e);
  }
  return 'RESOLVED';
}

async function takeBackup(s: BackupStore, env: string, version: string, db: string, filestore: string) {
  const w = s.begin(env, {
    version,
    gitSha: 'a'.repeat(40),
    imageDigest: 'sha256:' + 'b'.repeat(64),
    reason: 'test',
  });
  const dump = ssh.stream(`set -o pipefail; ${pgEnv()} pg_dump -Fc -Z0 -d ${db} | zstd -1 -T2 -q -c`);
  const [dbPart] = await Promise.all([
    w.part('db.dump.zst', dump.stdout, { contentEncoding: 'zstd' }),
    dump.done,
  ]);
  const tar = ssh.stream(`set -o pipefail; tar -C ${filestore} -cf - . | zstd -1 -q -c`);
  await Promise.all([w.part('filestore.tar.zst', tar.stdout, { contentEncoding: 'zstd' }), tar.done]);
  const pgVersion = pg.psql(db, 'SHOW server_version');
  const manifest = await w.finish({ odooVersion: '17.0', modules: ['base', 'sale'], pgVersion });
  return { id: w.id, manifest, dbPart };
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'backup-test-'));
  [az, pg] = await Promise.all([
    startAzurite({ dir: path.join(work, 'azurite'), timeoutMs: 120000 }),
    startPostgres(),
  ]);
  const key = generateKeyPair();
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  ssh = await SshClient.connect({
    host: sshd.host,
    port: sshd.port,
    username: 'root',
    privateKey: key.privateKey,
    hostKeyFingerprint: sshd.hostKeyFingerprint,
  });
  container = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient('backups');
  store = new BackupStore({
    connectionString: az.connectionString,
    container: 'backups',
    bufferSize: 1024 * 1024,
    concurrency: 2,
  });
  await store.ensureContainer();

  pg.createDb('odoo');
  pg.psql(
    'odoo',
    `CREATE TABLE partner (id serial PRIMARY KEY, name text, email text, note text);
     INSERT INTO partner (name, email, note) SELECT 'Partner ' || g, 'p' || g || '@example.com', repeat(md5(g::text), 20) FROM generate_series(1, 20000) g;
     CREATE TABLE attachment (id serial PRIMARY KEY, name text, datas bytea);
     INSERT INTO attachment (name, datas) SELECT 'file' || g, decode(repeat(md5(g::text), 64), 'hex') FROM generate_series(1, 3000) g;`,
  );
  const fs = path.join(work, 'filestore');
  mkdirSync(path.join(fs, 'ab'), { recursive: true });
  writeFileSync(path.join(fs, 'ab', 'abcdef'), Buffer.alloc(300_000, 3));
  writeFileSync(path.join(fs, 'readme.txt'), 'filestore');
}, 300000);

jest.setTimeout(180000); // real PG + sshd + Azurite on a possibly busy machine

afterAll(async () => {
  await ssh?.close();
  await sshd?.stop();
  pg?.stop();
  await az?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('BackupStore round trip', () => {
  test('backup → restore gives identical table checksums and filestore', async () => {
    const before = pg.psql('odoo', CHECKSUM_SQL);
    const { id, manifest, dbPart } = await takeBackup(
      store,
      'uat',
      '1.2.3',
      'odoo',
      path.join(work, 'filestore'),
    );

    expect(id).toMatch(/^uat\/\d{8}T\d{6}Z-1\.2\.3$/);
    expect(manifest).toMatchObject({
      environment: 'uat',
      version: '1.2.3',
      gitSha: 'a'.repeat(40),
      odooVersion: '17.0',
      modules: ['base', 'sale'],
      reason: 'test',
    });
    expect(manifest.pgVersion).toMatch(/^15\./);
    expect(manifest.parts['db.dump.zst']).toEqual({ ...dbPart, contentEncoding: 'zstd' });
    expect(Object.keys(manifest.parts).sort()).toEqual(['db.dump.zst', 'filestore.tar.zst']);
    expect(Date.parse(manifest.finishedAt)).toBeGreaterThanOrEqual(Date.parse(manifest.startedAt));
    expect(await store.verify(id)).toMatchObject({ ok: true, problems: [] });

    // restore into a fresh database, streamed Blob → SSH stdin → zstd → pg_restore
    pg.createDb('odoo_restored');
    const m = await store.assertRestorable(id);
    const dump = await store.openPart(id, 'db.dump.zst', m);
    await ssh.exec(`set -o pipefail; zstd -dc | ${pgEnv()} pg_restore --no-owner -d odoo_restored`, {
      stdin: dump,
    });
    expect(pg.psql('odoo_restored', CHECKSUM_SQL)).toBe(before);

    const target = path.join(work, 'restored-fs');
    mkdirSync(target);
    await ssh.exec(`set -o pipefail; zstd -dc | tar -C ${target} -xf -`, {
      stdin: await store.openPart(id, 'filestore.tar.zst'),
    });
    const listing = (dir: string) =>
      ssh.exec(`cd ${dir} && find . -type f -exec sha256sum {} + | sort`).then((r) => r.stdout);
    expect(await listing(target)).toBe(await listing(path.join(work, 'filestore')));

    const listed = await store.list('uat');
    expect(listed.find((b) => b.id === id)).toMatchObject({
      complete: true,
      version: '1.2.3',
      parts: ['db.dump.zst', 'filestore.tar.zst'],
    });
    expect((await store.latest('uat'))?.id).toBe(id);
  });

  test('a corrupted part is detected by verify, refused by assertRestorable, and openPart errors at the end', async () => {
    const s = new BackupStore({ containerClient: container, now: () => new Date('2026-01-02T03:04:05Z') });
    const { id } = await takeBackup(s, 'prod', '2.0.0', 'odoo', path.join(work, 'filestore'));
    const blob = container.getBlockBlobClient(`${id}/db.dump.zst`);
    const bytes = await blob.downloadToBuffer();
    bytes[Math.floor(bytes.length / 2)] ^= 0xff; // one flipped byte, same size
    await blob.upload(bytes, bytes.length); // an outside actor bypassing the store

    const v = await s.verify(id);
    expect(v.ok).toBe(false);
    expect(v.problems.join()).toMatch(/db\.dump\.zst: sha256 .* differs/);
    expect(await codeOf(s.assertRestorable(id))).toBe('BACKUP.CORRUPT');

    const stream = await s.openPart(id, 'db.dump.zst');
    const consume = (async () => {
      for await (const _ of stream) void _;
    })();
    expect(await codeOf(consume)).toBe('BACKUP.CORRUPT');

    // a restore streaming it fails too (the error reaches the SSH stdin)
    pg.createDb('odoo_bad');
    expect(await codeOf(ssh.exec(`cat > /dev/null`, { stdin: await s.openPart(id, 'db.dump.zst') }))).toBe(
      'SSH.STDIN',
    );

    // truncated part and missing part
    await blob.upload(bytes.subarray(0, 100), 100);
    await container.getBlockBlobClient(`${id}/filestore.tar.zst`).delete();
    const v2 = await s.verify(id);
    expect(v2.problems).toEqual([
      expect.stringMatching(/db\.dump\.zst: size 100 differs/),
      'filestore.tar.zst: missing',
    ]);
  });

  test('an existing backup is never overwritten (If-None-Match: *)', async () => {
    const fixed = () => new Date('2026-02-03T04:05:06Z');
    const s = new BackupStore({ containerClient: container, now: fixed });
    const w1 = s.begin('uat', { version: '3.0.0' });
    await w1.part('db.dump', Readable.from([Buffer.from('original')]));
    await w1.finish();
    const w2 = s.begin('uat', { version: '3.0.0' });
    expect(w2.id).toBe(w1.id);
    expect(await codeOf(w2.part('db.dump', Readable.from([Buffer.from('replacement')])))).toBe(
      'BACKUP.EXISTS',
    );
    expect(await codeOf(w2.part('db.dump', Readable.from([Buffer.from('again')])))).toBe('BACKUP.EXISTS');
    await w2.part('other.bin', Readable.from([Buffer.from('x')]));
    expect(await codeOf(w2.finish())).toBe('BACKUP.EXISTS');
    expect((await container.getBlockBlobClient(`${w1.id}/db.dump`).downloadToBuffer()).toString()).toBe(
      'original',
    );
    expect((await s.verify(w1.id)).ok).toBe(true);
  });

  test('a failing dump never leaves a committed part or a manifest', async () => {
    const s = new BackupStore({ containerClient: container, now: () => new Date('2026-03-04T05:06:07Z') });
    const w = s.begin('uat', { version: '4.0.0' });
    const dump = ssh.stream(`set -o pipefail; ${pgEnv()} pg_dump -Fc -Z0 -d no_such_db | zstd -1 -q -c`);
    const [part, done] = await Promise.allSettled([w.part('db.dump.zst', dump.stdout), dump.done]);
    expect(part.status).toBe('rejected');
    expect(done.status === 'rejected' && errorCode(done.reason)).toBe('SSH.COMMAND_FAILED');
    expect(done.status === 'rejected' && done.reason.message).toContain('no_such_db');
    expect(await container.getBlockBlobClient(`${w.id}/db.dump.zst`).exists()).toBe(false);
    expect(await codeOf(w.finish())).toBe('BACKUP.INCOMPLETE');
    expect(await codeOf(s.manifest(w.id))).toBe('BACKUP.NOT_FOUND');
  });

  test('an incomplete backup (no manifest) is listed as incomplete and not restorable', async () => {
    const s = new BackupStore({ containerClient: container, now: () => new Date('2026-03-05T00:00:00Z') });
    const w = s.begin('uat', { version: '4.1.0' });
    await w.part('db.dump', Readable.from([Buffer.from('half')]));
    const b = (await s.list('uat')).find((x) => x.id === w.id);
    expect(b).toMatchObject({ complete: false });
    expect(await codeOf(s.assertRestorable(w.id))).toBe('BACKUP.CORRUPT');
  });

  test('a part of many blocks streamed over SSH through a small block pool: exact bytes, sha256 and block layout', async () => {
    // 6 MiB of random data through 256 KiB blocks and 2 in flight: the uploader must wait for free
    // buffers many times (backpressure reaches the SSH window) and still store every byte in order
    const s = new BackupStore({
      containerClient: container,
      bufferSize: 256 * 1024,
      concurrency: 2,
      now: () => new Date('2026-04-01T00:00:00Z'),
    });
    const w = s.begin('uat', { version: '6.0.0' });
    const src = ssh.stream('head -c 6291459 /dev/urandom | tee >(sha256sum >&2)');
    const [info, run] = await Promise.all([w.part('db.dump', src.stdout), src.done]);
    const remoteSha = /^([0-9a-f]{64})/m.exec(run.stderrTail)?.[1];
    expect(info).toEqual({ size: 6291459, sha256: remoteSha });
    const blob = container.getBlockBlobClient(`${w.id}/db.dump`);
    const blocks = await blob.getBlockList('committed');
    expect(blocks.committedBlocks?.length).toBe(Math.ceil(6291459 / (256 * 1024)));
    expect(blocks.committedBlocks?.every((b, i, all) => i === all.length - 1 || b.size === 256 * 1024)).toBe(
      true,
    );
    await w.finish();
    expect(await s.verify(w.id)).toMatchObject({ ok: true });
  });

  test('an empty part is stored as an empty blob with the sha256 of nothing', async () => {
    const s = new BackupStore({ containerClient: container, now: () => new Date('2026-04-02T00:00:00Z') });
    const w = s.begin('uat', { version: '6.1.0' });
    const info = await w.part('filestore.tar', Readable.from([]));
    expect(info).toEqual({
      size: 0,
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
    await w.finish();
    expect((await s.verify(w.id)).ok).toBe(true);
  });

  test('a source that fails after several blocks were staged commits nothing', async () => {
    const s = new BackupStore({
      containerClient: container,
      bufferSize: 256 * 1024,
      concurrency: 2,
      now: () => new Date('2026-04-03T00:00:00Z'),
    });
    const w = s.begin('uat', { version: '6.2.0' });
    // 2 MiB of output (8 blocks), then the command fails: its stdout stream is destroyed with the error
    const dump = ssh.stream(
      'head -c 2097152 /dev/urandom; echo "pg_dump: error: connection lost" >&2; exit 1',
    );
    const [part, done] = await Promise.allSettled([w.part('db.dump', dump.stdout), dump.done]);
    expect(part.status === 'rejected' && errorCode(part.reason)).toBe('SSH.COMMAND_FAILED');
    expect(done.status === 'rejected' && done.reason.message).toContain('connection lost');
    const blob = container.getBlockBlobClient(`${w.id}/db.dump`);
    expect(await blob.exists()).toBe(false);
    expect(await codeOf(w.finish())).toBe('BACKUP.INCOMPLETE');
  });

  test('an upload that fails stops the remote command (no orphaned dump on the VM)', async () => {
    // a container that does not exist: the first Put Block fails with 404
    const s = new BackupStore({
      connectionString: az.connectionString,
      container: 'no-such-container',
      bufferSize: 256 * 1024,
      concurrency: 2,
    });
    const w = s.begin('uat', { version: '6.3.0' });
    const marker = path.join(work, 'endless-finished');
    const endless = ssh.stream(`cat /dev/zero; touch ${marker}`);
    const [part, done] = await Promise.allSettled([w.part('db.dump', endless.stdout), endless.done]);
    expect(part.status === 'rejected' && errorCode(part.reason)).toBe('BACKUP.NOT_FOUND');
    expect(done.status).toBe('rejected');
    // the channel was closed: cat got SIGPIPE and the command ended (the marker is written after cat)
    let state = '';
    for (let i = 0; i < 100 && state !== 'done'; i++) {
      state = (await ssh.exec(`test -e ${marker} && echo done || echo running`)).stdout?.trim() ?? '';
      if (state !== 'done') await new Promise((r) => setTimeout(r, 100));
    }
    expect(state).toBe('done');
  });

  test('a commit whose response was lost is retried and recognised as our own (not [BACKUP.EXISTS]); a foreign blob still is', async () => {
    // a pass-through proxy in front of Azurite that forwards the first Put Block List, lets Azurite
    // commit it, then drops the connection instead of answering: the SDK retries and gets 409
    let dropped = 0;
    const proxy = createServer((req, res) => {
      const upstream = new URL(az.blobEndpoint);
      const fwd = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (up) => {
          if (/comp=blocklist/.test(req.url ?? '') && req.method === 'PUT' && dropped === 0) {
            dropped++;
            up.resume();
            up.on('end', () => res.socket?.destroy());
            return;
          }
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(fwd);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (proxy.address() as AddressInfo).port;
      const cred = new StorageSharedKeyCredential(AZURITE_ACCOUNT, az.accountKey);
      const via = new BlobServiceClient(`http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`, cred, {
        retryOptions: { retryDelayInMs: 50, maxRetryDelayInMs: 200 },
      }).getContainerClient('backups');
      const s = new BackupStore({
        containerClient: via,
        bufferSize: 256 * 1024,
        concurrency: 2,
        now: () => new Date('2026-04-04T00:00:00Z'),
      });
      const w = s.begin('uat', { version: '6.4.0' });
      const data = Buffer.alloc(700 * 1024, 7);
      const info = await w.part('db.dump', Readable.from([data]));
      expect(dropped).toBe(1);
      expect(info.size).toBe(data.length);
      expect((await container.getBlockBlobClient(`${w.id}/db.dump`).downloadToBuffer()).equals(data)).toBe(
        true,
      );
      // the same name written by another upload (other block ids) is refused
      const w2 = s.begin('uat', { version: '6.4.0' });
      expect(await codeOf(w2.part('db.dump', Readable.from([Buffer.alloc(300 * 1024, 8)])))).toBe(
        'BACKUP.EXISTS',
      );
      expect((await container.getBlockBlobClient(`${w.id}/db.dump`).downloadToBuffer()).equals(data)).toBe(
        true,
      );
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });

  test('bad input gets clear errors', async () => {
    expect(() => store.begin('UAT!', { version: '1.0.0' })).toThrow(/BACKUP.INVALID/);
    expect(() => store.begin('uat', { version: '../etc' })).toThrow(/BACKUP.INVALID/);
    const w = store.begin('uat', { version: '9.9.9' });
    expect(await codeOf(w.part('manifest.json', Readable.from([])))).toBe('BACKUP.INVALID_PART');
    expect(await codeOf(w.part('../x', Readable.from([])))).toBe('BACKUP.INVALID_PART');
    expect(await codeOf(w.finish())).toBe('BACKUP.INCOMPLETE');
    expect(await codeOf(store.manifest('nope'))).toBe('BACKUP.INVALID_ID');
    expect(await codeOf(store.manifest('uat/20200101T000000Z-0.0.1'))).toBe('BACKUP.NOT_FOUND');
    expect((await store.verify('uat/20200101T000000Z-0.0.1')).ok).toBe(false);
    expect(() => parseBackupId('uat/2020-01-01-1.0')).toThrow(/BACKUP.INVALID_ID/);
    await expect(store.list('Bad Env')).rejects.toThrow(/BACKUP.INVALID/);
    expect(await store.list('staging')).toEqual([]);
  });

  test('a malformed manifest is reported, and a missing part name is refused', async () => {
    const s = new BackupStore({ containerClient: container, now: () => new Date('2026-03-06T00:00:00Z') });
    const w = s.begin('uat', { version: '5.0.0' });
    await w.part('db.dump', Readable.from([Buffer.from('x')]));
    await w.finish();
    expect(await codeOf(s.openPart(w.id, 'filestore.tar'))).toBe('BACKUP.NOT_FOUND');
    expect(await codeOf(w.finish())).toBe('BACKUP.FINISHED');
    expect(await codeOf(w.part('late', Readable.from([])))).toBe('BACKUP.FINISHED');
    await container.getBlockBlobClient(`${w.id}/manifest.json`).upload('{not json', 9);
    expect(await codeOf(s.manifest(w.id))).toBe('BACKUP.MANIFEST_INVALID');
    await container.getBlockBlobClient(`${w.id}/manifest.json`).upload('{"id":"other"}', 14);
    expect(await codeOf(s.manifest(w.id))).toBe('BACKUP.MANIFEST_INVALID');
  });

  test('logs are saved beside the backup, from text or a stream', async () => {
    const { id } = (await store.list('uat')).find((b) => b.complete)!;
    await store.saveLog(id, 'deploy.log', 'step 1\nstep 2\n');
    expect(await store.readLog(id, 'deploy.log')).toBe('step 1\nstep 2\n');
    const p = new PassThrough();
    const saving = store.saveLog(id, 'migrate.log', p);
    p.end('migrating…\n');
    await saving;
    expect(await store.readLog(id, 'migrate.log')).toBe('migrating…\n');
    expect(await codeOf(store.saveLog(id, 'bad/name', 'x'))).toBe('BACKUP.INVALID_PART');
    expect(await codeOf(store.readLog(id, 'none.log'))).toBe('BACKUP.NOT_FOUND');
    // a log never makes a backup incomplete or corrupt
    expect((await store.verify(id)).ok).toBe(true);
  });

  test('retention deletes old backups but keeps the newest complete one and recent incomplete ones', async () => {
    const mk = async (when: string, version: string, complete = true) => {
      const s = new BackupStore({ containerClient: container, now: () => new Date(when) });
      const w = s.begin('ret', { version });
      await w.part('db.dump', Readable.from([Buffer.from(version)]));
      if (complete) await w.finish();
      return w.id;
    };
    const oldest = await mk('2026-01-01T00:00:00Z', '1.0.0');
    const old = await mk('2026-01-10T00:00:00Z', '1.1.0');
    const oldIncomplete = await mk('2026-01-11T00:00:00Z', '1.1.1', false);
    const now = new Date('2026-02-01T00:00:00Z');
    // everything older than 14 days: only the newest complete one survives
    const plan = await store.applyRetention('ret', 14, now);
    expect(plan.deleted.sort()).toEqual([oldIncomplete, oldest].sort());
    expect(plan.kept).toEqual([old]);
    expect((await store.list('ret')).map((b) => b.id)).toEqual([old]);

    const recent = await mk('2026-01-30T00:00:00Z', '1.2.0');
    const running = await mk('2026-01-31T23:00:00Z', '1.3.0', false);
    const dry = await store.applyRetention('ret', 14, now, { dryRun: true });
    expect(dry).toEqual({ kept: [running, recent], deleted: [old] });
    expect((await store.list('ret')).length).toBe(3);
    await store.applyRetention('ret', 14, now);
    expect((await store.list('ret')).map((b) => b.id)).toEqual([running, recent]);
  });
});
