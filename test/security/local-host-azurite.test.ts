/**
 * Attack: the embedded host's Azurite with the public development account key. Any process on the
 * machine that knows Microsoft's documented `devstoreaccount1` key could rewrite the ledger (and so
 * what counts as "ran on UAT") or read the backups. Now each data folder gets its own random account
 * key, generated once and kept 0600 beside the host's other generated secrets; the public key is
 * refused.
 *
 * Real parts: the embedded host and its real Azurite child; the attacker uses the real Blob SDK.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import { azuriteAccountKey } from '../../local/azurite';
import { createLedger } from '../../shared/adapters/ledger';

/** Microsoft's documented development key (https://learn.microsoft.com/azure/storage/common/storage-use-azurite) */
const PUBLIC_DEV_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const saved = { ...process.env };
let dir: string;
let host: LocalHost;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lha-'));
  delete process.env.BACKUP_STORAGE_CONNECTION;
  host = await startLocalHost({
    dataDir: dir,
    port: 0,
    functionsDir: path.resolve(__dirname, '..', '..', 'functions'),
    log: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    },
    env: { LOG_LEVEL: 'error' },
  });
  await createLedger(
    BlobServiceClient.fromConnectionString(host.blobConnectionString!).getContainerClient('ledger'),
  ).record('uat', { version: '1.0.0', sha: 'a'.repeat(40), deployedAt: new Date().toISOString() });
}, 90000);

afterAll(async () => {
  await host?.stop();
  process.env = saved;
  rmSync(dir, { recursive: true, force: true });
});

const endpointOf = (conn: string) => /BlobEndpoint=([^;]+)/.exec(conn)![1];

it('the public development key cannot list, read or rewrite the ledger', async () => {
  const attacker = new BlobServiceClient(
    endpointOf(host.blobConnectionString!),
    new StorageSharedKeyCredential('devstoreaccount1', PUBLIC_DEV_KEY),
    { retryOptions: { maxTries: 1 } },
  );
  const status = async (p: Promise<unknown>) =>
    p.then(
      () => 200,
      (e: { statusCode?: number }) => e.statusCode ?? 0,
    );
  expect(await status(attacker.listContainers().next())).toBe(403);
  const blob = attacker.getContainerClient('ledger').getBlockBlobClient('ledger/uat.json');
  expect(await status(blob.download())).toBe(403);
  expect(await status(blob.upload('{"environment":"uat","history":[]}', 34))).toBe(403);
  // the ledger is intact
  const ledger = createLedger(
    BlobServiceClient.fromConnectionString(host.blobConnectionString!).getContainerClient('ledger'),
  );
  expect((await ledger.current('uat'))?.version).toBe('1.0.0');
});

it('the key is random, kept 0600 with the generated secrets, and is what the host hands the app', () => {
  const key = azuriteAccountKey(dir);
  expect(key).not.toBe(PUBLIC_DEV_KEY);
  expect(Buffer.from(key, 'base64').length).toBeGreaterThanOrEqual(32);
  expect(host.blobConnectionString).toContain(`AccountKey=${key};`);
  expect(process.env.BACKUP_STORAGE_CONNECTION).toContain(`AccountKey=${key};`);
  const files = ['storage-key.json'].map((f) => statSync(path.join(dir, f)));
  for (const f of files) expect(f.mode & 0o077).toBe(0);
  // another data folder, another key
  const other = mkdtempSync(path.join(os.tmpdir(), 'lha2-'));
  try {
    expect(azuriteAccountKey(other)).not.toBe(key);
    expect(azuriteAccountKey(other)).toBe(azuriteAccountKey(other));
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});
