/** Environment ledger and intake store on a real Azurite. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { startAzurite, AzuriteHandle } from '../../local/azurite';
import { createLedger, ledgerContainer, Release } from '../../shared/adapters/ledger';
import { createDeliveriesStore } from '../../shared/adapters/deliveries';
import { loadConfig } from '../../shared/config';
import { errorCode } from '../../shared/domain/errors';

let azurite: AzuriteHandle;
let tmp: string;
let n = 0;
const container = (): ContainerClient =>
  BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(`ledger${n++}`);
const rel = (version: string, extra: Partial<Release> = {}): Release => ({
  version,
  sha: version.replace(/\D/g, '').padEnd(40, '0').slice(0, 40),
  deployedAt: `2026-11-0${(n % 9) + 1}T00:00:00Z`,
  ...extra,
});

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ledger-'));
  azurite = await startAzurite({ dir: tmp, timeoutMs: 60000 }).catch((err) => {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  });
}, 90000);
afterAll(async () => {
  await azurite?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('ledger', () => {
  it('nothing recorded: current is undefined, history empty', async () => {
    const l = createLedger(container());
    expect(await l.current('uat')).toBeUndefined();
    expect(await l.history('uat')).toEqual([]);
  });

  it('records releases per environment; current is the newest; history newest first', async () => {
    const l = createLedger(container());
    await l.record(
      'uat',
      rel('1.0.0', {
        coverage: 81.5,
        imageDigest: 'sha256:' + 'a'.repeat(64),
        backupId: 'uat/20261101-1.0.0',
      }),
    );
    await l.record('uat', rel('1.1.0', { coverage: 82.3 }));
    await l.record('prod', rel('1.0.0'));
    expect(await l.current('uat')).toMatchObject({ version: '1.1.0', coverage: 82.3 });
    expect((await l.history('uat', 5)).map((r) => r.version)).toEqual(['1.1.0', '1.0.0']);
    expect((await l.history('uat', 1)).map((r) => r.version)).toEqual(['1.1.0']);
    expect(await l.current('prod')).toMatchObject({ version: '1.0.0' });
  });

  it('concurrent writers lose nothing (ETag optimistic concurrency)', async () => {
    const l = createLedger(container());
    await Promise.all(Array.from({ length: 12 }, (_, i) => l.record('uat', rel(`2.0.${i}`))));
    const h = await l.history('uat', 50);
    expect(h.map((r) => r.version).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `2.0.${i}`).sort());
    expect(h[0].version).toBe((await l.current('uat'))?.version);
  });

  it('refuses an environment name that is not a plain name', async () => {
    const l = createLedger(container());
    await expect(l.record('../prod', rel('1.0.0'))).rejects.toThrow(/LEDGER.BAD_ENVIRONMENT/);
  });

  it('a corrupt ledger blob is reported, not silently replaced', async () => {
    const c = container();
    await c.createIfNotExists();
    await c.getBlockBlobClient('ledger/uat.json').upload('{not json', 9);
    await expect(createLedger(c).current('uat')).rejects.toThrow(/BLOB.CORRUPT/);
  });

  it('an unreachable storage account is a retryable BLOB.UNAVAILABLE', async () => {
    const c = BlobServiceClient.fromConnectionString(
      azurite.connectionString.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:1'),
      { retryOptions: { maxTries: 1 } },
    ).getContainerClient('x-unreachable');
    const err = await createLedger(c)
      .current('uat')
      .catch((e) => e);
    expect(errorCode(err)).toBe('BLOB.UNAVAILABLE');
  });

  it('builds its container from the settings', () => {
    const c = ledgerContainer(
      loadConfig({ BACKUP_STORAGE_CONNECTION: azurite.connectionString, LEDGER_CONTAINER: 'my-ledger' }),
    );
    expect(c.containerName).toBe('my-ledger');
    expect(() => ledgerContainer(loadConfig({}))).toThrow(/CONFIG.STORAGE_MISSING/);
  });
});

describe('deliveries store', () => {
  it('exactly one of many concurrent claims wins', async () => {
    const s = createDeliveriesStore(container());
    const wins = await Promise.all(Array.from({ length: 30 }, () => s.claim('d-1', 'push')));
    expect(wins.filter(Boolean)).toHaveLength(1);
    await s.complete('d-1', 'push', { status: 202, body: { decision: 'accepted' } });
    expect(await s.waitForAnswer('d-1', 1000)).toEqual({ status: 202, body: { decision: 'accepted' } });
    expect(await s.claim('d-1', 'push')).toBe(false);
  });

  it('a released claim can be taken again; waiting on it returns nothing', async () => {
    const s = createDeliveriesStore(container());
    expect(await s.claim('d-2', 'push')).toBe(true);
    expect(await s.waitForAnswer('d-2', 50)).toBeUndefined();
    await s.release('d-2');
    expect(await s.waitForAnswer('d-2', 50)).toBeUndefined();
    expect(await s.claim('d-2', 'push')).toBe(true);
  });

  it('lists decisions newest first, up to the limit', async () => {
    const s = createDeliveriesStore(container());
    expect(await s.list(5)).toEqual([]);
    for (let i = 0; i < 7; i++)
      await s.record({
        decision: 'ignored',
        reason: `r${i}`,
        deliveryId: `d${i}`,
        at: new Date(Date.UTC(2026, 10, 27, 12, 0, i)).toISOString(),
      });
    const got = await s.list(5);
    expect(got.map((d) => d.reason)).toEqual(['r6', 'r5', 'r4', 'r3', 'r2']);
    expect((await s.list(1000)).length).toBe(7);
  });

  it('commit gate state: create once, then replace only with the current ETag', async () => {
    const s = createDeliveriesStore(container());
    const st = {
      sha: 'c'.repeat(40),
      state: 'waiting' as const,
      firstSeenAt: 'x',
      deadline: 'y',
      trigger: 'push' as const,
      branch: 'main',
      mergedBy: 'me',
      deliveryId: 'd',
    };
    expect(await s.putCommit(st)).toBe(true);
    expect(await s.putCommit(st)).toBe(false);
    const cur = await s.commit(st.sha);
    expect(await s.putCommit({ ...st, state: 'passed' }, cur!.etag)).toBe(true);
    expect(await s.putCommit({ ...st, state: 'blocked' }, cur!.etag)).toBe(false);
    expect((await s.commit(st.sha))?.value.state).toBe('passed');
  });
});
