/**
 * The backups a refresh takes (UAT before the refresh, a fresh PROD dump) and the PROD backups it
 * checks (`backup: latest`) are verified by the refresh; that verification is recorded in the backups
 * API's store, so GET /api/backups/{env} and the status page show them "verified" (or "corrupt"), not
 * merely "complete". A failure to record is logged and never fails the refresh step.
 *
 * Real services: the embedded host (its Azurite holds the backups and the ledger; GET /api/backups and
 * GET /api/status are the real routes), a real OpenSSH sshd as both VMs, running an `odoo-ops`
 * stand-in whose `backup-db` / `backup-filestore` write the parts to stdout.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import {
  createRefreshActivities,
  type RefreshActivities,
  type SourceOut,
  type UatBackupOut,
} from '../../functions/activities/refresh';
import { BackupStore } from '../../shared/adapters/backup-store';
import { createVerificationStore, type VerificationStore } from '../../shared/adapters/backup-verifications';
import { SshClient } from '../../shared/adapters/ssh';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/log';
import type { StatusDocument } from '../../shared/domain/status-view';
import { generateKeyPair, startSshd, type SshdHandle } from '../support/sshd';

jest.setTimeout(120_000);

let work: string;
let host: LocalHost;
let sshd: SshdHandle;
let backups: BackupStore;
let conn: string;
let privateKey: string;
let ops: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'refresh-backup-verified-'));
  writeFileSync(path.join(work, 'db.bin'), randomBytes(300_000));
  writeFileSync(path.join(work, 'fs.bin'), randomBytes(50_000));
  const script = path.join(work, 'ops.sh');
  writeFileSync(
    script,
    `#!/bin/sh
case "$2" in
  backup-db) cat "${work}/db.bin" ;;
  backup-filestore) cat "${work}/fs.bin" ;;
  *) echo "unknown verb $2" >&2; exit 2 ;;
esac
`,
    { mode: 0o755 },
  );
  ops = `sh ${script}`;
  const key = generateKeyPair();
  privateKey = key.privateKey;
  [host, sshd] = await Promise.all([
    startLocalHost({ dataDir: path.join(work, 'host'), port: 0, env: { LOG_LEVEL: 'error' } }),
    startSshd({ authorizedKeys: [key.publicKey] }),
  ]);
  const config = loadConfig(process.env);
  conn = host.blobConnectionString ?? config.BACKUP_STORAGE_CONNECTION!;
  backups = new BackupStore({ connectionString: conn, container: config.BACKUP_CONTAINER ?? 'backups' });
}, 120_000);

afterAll(async () => {
  await sshd?.stop();
  await host?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The refresh activities on these services; `verifications` defaults to the store the backups API reads. */
function activities(o: { verifications?: VerificationStore; lines?: string[] } = {}): RefreshActivities {
  const config = loadConfig(process.env);
  const ledger = BlobServiceClient.fromConnectionString(conn).getContainerClient(
    config.LEDGER_CONTAINER ?? 'ledger',
  );
  return createRefreshActivities({
    settings: () => {
      throw new Error('not used here');
    },
    ssh: {
      connect: () =>
        SshClient.connect({
          host: sshd.host,
          port: sshd.port,
          username: 'root',
          privateKey,
          hostKeyFingerprint: sshd.hostKeyFingerprint,
        }),
    },
    backups,
    verifications: o.verifications ?? createVerificationStore(ledger),
    opsCommand: ops,
    commandTimeoutMs: 60_000,
    log: createLogger({ level: 'info', sink: (line) => o.lines?.push(line) }),
  });
}

const key = () => ({ 'x-functions-key': host.keys.functionKey });
async function listed(env: string): Promise<Array<{ id: string; state: string; verifiedAt?: string }>> {
  const res = await fetch(`${host.baseUrl}/api/backups/${env}?limit=200`, { headers: key() });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Array<{ id: string; state: string; verifiedAt?: string }> }).items;
}
function ok<T extends object>(r: T | { failed: { code: string; message: string } }): T {
  if ('failed' in r) throw new Error(`step failed: ${r.failed.message}`);
  return r;
}

it('the UAT backup taken before a refresh shows as verified in GET /api/backups/uat and on the status page', async () => {
  const b = ok<UatBackupOut>(
    await activities().backupUat({ instanceId: 'refresh-uat-20261127t220000z-test01' }),
  );
  expect(b.backupId).toMatch(/^uat\//);
  const item = (await listed('uat')).find((x) => x.id === b.backupId);
  expect(item).toMatchObject({ id: b.backupId, state: 'verified' });
  expect(Number.isNaN(Date.parse(item?.verifiedAt ?? ''))).toBe(false);
  const doc = (await (
    await fetch(`${host.baseUrl}/api/status?backups=50`, { headers: key() })
  ).json()) as StatusDocument;
  const uat = doc.environments.find((e) => e.name === 'uat');
  expect(uat?.backups.ok && uat.backups.value.find((x) => x.id === b.backupId)).toMatchObject({
    state: 'verified',
  });
});

it('a fresh PROD dump taken by the refresh shows as verified in GET /api/backups/prod', async () => {
  const s = ok<SourceOut>(
    await activities().source({ mode: 'fresh', instanceId: 'refresh-uat-20261127t220000z-test02' }),
  );
  expect(s).toMatchObject({ fresh: true, hasFilestore: true });
  expect((await listed('prod')).find((x) => x.id === s.backupId)).toMatchObject({ state: 'verified' });
});

it('backup "latest": a PROD backup that fails the refresh\'s verification shows as corrupt, the older one it used as verified', async () => {
  const acts = activities();
  const older = ok<SourceOut>(
    await acts.source({ mode: 'fresh', instanceId: 'refresh-uat-20261127t220000z-test03' }),
  );
  const newer = ok<SourceOut>(
    await acts.source({ mode: 'fresh', instanceId: 'refresh-uat-20261127t220000z-test04' }),
  );
  expect(newer.backupId).not.toBe(older.backupId);
  // damage the newer backup's dump after the fact (same size, other bytes)
  await backups.container.getBlockBlobClient(`${newer.backupId}/db.dump`).uploadData(randomBytes(300_000));
  const lines: string[] = [];
  const s = ok<SourceOut>(
    await activities({ lines }).source({ mode: 'latest', instanceId: 'refresh-uat-20261127t220000z-test05' }),
  );
  expect(s).toMatchObject({ backupId: older.backupId, fresh: false });
  const items = await listed('prod');
  expect(items.find((x) => x.id === newer.backupId)).toMatchObject({ state: 'corrupt' });
  expect(items.find((x) => x.id === older.backupId)).toMatchObject({ state: 'verified' });
  expect(lines.some((l) => l.includes('PROD backup failed verification'))).toBe(true);
});

it('a verification that cannot be recorded is logged and never fails the refresh step (the backup then shows as complete)', async () => {
  const lines: string[] = [];
  const broken: VerificationStore = {
    get: async () => undefined,
    record: async () => {
      throw new Error('[BLOB.UNAVAILABLE] ledger storage is down');
    },
  };
  const b = ok<UatBackupOut>(
    await activities({ verifications: broken, lines }).backupUat({
      instanceId: 'refresh-uat-20261127t220000z-test06',
    }),
  );
  expect((await backups.verify(b.backupId)).ok).toBe(true);
  const warned = lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => String(l.msg).startsWith('could not record the backup verification'));
  expect(warned).toMatchObject({
    level: 'warn',
    backupId: b.backupId,
    error: expect.stringContaining('ledger storage is down'),
  });
  expect((await listed('uat')).find((x) => x.id === b.backupId)).toMatchObject({ state: 'complete' });
});
