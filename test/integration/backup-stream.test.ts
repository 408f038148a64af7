/**
 * The one backup streaming loop (shared/adapters/backup-stream.ts) over a REAL OpenSSH sshd into REAL
 * Azurite: an `odoo-ops`-like script on the "VM" writes each part to stdout; the loop stores the parts
 * with their size and sha256, maps a failing remote command to [BACKUP.FAILED] naming the verb (and the
 * VM when told), leaves no committed part for a failed source, and passes other errors through as they
 * are (so the callers' retry on [BACKUP.EXISTS] still works).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteHandle } from '../../local/azurite';
import { BackupStore } from '../../shared/adapters/backup-store';
import { streamOpsPart, streamVmBackup } from '../../shared/adapters/backup-stream';
import { SshClient } from '../../shared/adapters/ssh';
import { errorCode } from '../../shared/domain/errors';
import { generateKeyPair, startSshd, type SshdHandle } from '../support/sshd';

jest.setTimeout(120_000);

let work: string;
let az: AzuriteHandle;
let sshd: SshdHandle;
let ssh: SshClient;
let store: BackupStore;
let ops: string;
const db = randomBytes(3 * 1024 * 1024 + 123); // more than one 1 MiB block
const fs = randomBytes(200_000);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'backup-stream-'));
  writeFileSync(path.join(work, 'db.bin'), db);
  writeFileSync(path.join(work, 'fs.bin'), fs);
  // odoo-ops stand-in: `--json backup-db` / `--json backup-filestore` write the part to stdout; the
  // filestore fails half-way (exit 6, like odoo-ops) while the file `fail-fs` exists
  const script = path.join(work, 'ops.sh');
  writeFileSync(
    script,
    `#!/bin/sh
case "$2" in
  backup-db) cat "${work}/db.bin" ;;
  backup-filestore)
    if [ -e "${work}/fail-fs" ]; then head -c 1000 "${work}/fs.bin"; echo "tar: disk read error" >&2; exit 6; fi
    cat "${work}/fs.bin" ;;
  *) echo "unknown verb $2" >&2; exit 2 ;;
esac
`,
    { mode: 0o755 },
  );
  ops = `sh ${script}`;
  const key = generateKeyPair();
  [az, sshd] = await Promise.all([
    startAzurite({ dir: path.join(work, 'azurite'), timeoutMs: 120_000 }),
    startSshd({ authorizedKeys: [key.publicKey] }),
  ]);
  ssh = await SshClient.connect({
    host: sshd.host,
    port: sshd.port,
    username: 'root',
    privateKey: key.privateKey,
    hostKeyFingerprint: sshd.hostKeyFingerprint,
  });
  store = new BackupStore({
    connectionString: az.connectionString,
    container: 'backups',
    bufferSize: 1024 * 1024,
    concurrency: 2,
  });
  await store.ensureContainer();
});

afterAll(async () => {
  await ssh?.close();
  await sshd?.stop();
  await az?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function blobNames(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const b of store.container.listBlobsFlat({ prefix })) names.push(b.name);
  return names.sort();
}

it('streams the database and the filestore into the backup with their size and sha256; the backup verifies', async () => {
  const writer = store.begin('uat', { version: '1.0.0', reason: 'test' });
  const parts = await streamVmBackup(writer, ssh, { ops, timeoutMs: 60_000 });
  expect(parts).toEqual({
    'db.dump': { size: db.length, sha256: sha(db) },
    'filestore.tar': { size: fs.length, sha256: sha(fs) },
  });
  const manifest = await writer.finish();
  expect(manifest.parts).toEqual(parts);
  expect(await store.verify(manifest.id)).toMatchObject({ ok: true, problems: [] });
});

it('a remote command that fails becomes [BACKUP.FAILED] naming the verb and the VM; the failed part is never committed', async () => {
  writeFileSync(path.join(work, 'fail-fs'), '');
  try {
    const writer = store.begin('uat', { version: '1.0.1', reason: 'test' });
    const err = await streamVmBackup(writer, ssh, { ops, timeoutMs: 60_000, where: 'uat' }).catch(
      (e: unknown) => e,
    );
    expect(errorCode(err)).toBe('BACKUP.FAILED');
    expect((err as Error).message).toMatch(/^\[BACKUP\.FAILED\] backup-filestore on uat failed: .*exit.*6/s);
    expect((err as Error).message).toContain('tar: disk read error');
    // the database part was stored, the filestore part not, and there is no manifest (incomplete)
    expect(await blobNames(`${writer.id}/`)).toEqual([`${writer.id}/db.dump`]);
    expect((await store.list('uat')).find((b) => b.id === writer.id)).toMatchObject({ complete: false });
    // without `where` the message names only the verb (the deploys' wording)
    const other = store.begin('uat', { version: '1.0.2', reason: 'test' });
    const err2 = await streamOpsPart(other, ssh, 'backup-filestore', 'filestore.tar', {
      ops,
      timeoutMs: 60_000,
    }).catch((e: unknown) => e);
    expect((err2 as Error).message).toMatch(/^\[BACKUP\.FAILED\] backup-filestore failed: /);
  } finally {
    rmSync(path.join(work, 'fail-fs'), { force: true });
  }
  // the SSH session is still usable: the failed command ended and nothing is left streaming
  expect((await ssh.run('echo still-here')).stdout?.trim()).toBe('still-here');
});

it('other errors pass through with their own code (a part written twice: [BACKUP.EXISTS]) and the remote command is ended', async () => {
  const writer = store.begin('uat', { version: '1.0.3', reason: 'test' });
  await streamOpsPart(writer, ssh, 'backup-db', 'db.dump', { ops, timeoutMs: 60_000 });
  const err = await streamOpsPart(writer, ssh, 'backup-db', 'db.dump', { ops, timeoutMs: 60_000 }).catch(
    (e: unknown) => e,
  );
  expect(errorCode(err)).toBe('BACKUP.EXISTS');
  expect((await ssh.run('echo still-here')).stdout?.trim()).toBe('still-here');
});
