/**
 * Decision records of ignored deliveries are handed to the store's next group write instead of being
 * awaited: the answer does not wait for Blob storage, yet every record is listed, survives a storage
 * outage (retried when storage is back), and stays bounded in memory. Against real Azurite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import {
  azuriteAccountKey,
  freePort,
  startAzurite,
  type AzuriteHandle,
  AZURITE_ACCOUNT,
} from '../../local/azurite';
import { createDeliveriesStore } from '../../shared/adapters/deliveries';
import { pushTo } from '../support/github-events';
import { ctx, deliveryId, makeRig, Services, signedRequest, startServices } from '../support/intake-rig';
import { until as waitUntil } from '../support/until';

/** the account key of the Azurite that runs (or will run) on `port`: random per data folder */
const keyOfPort = new Map<number, string>();
const connectionFor = (port: number) =>
  `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${keyOfPort.get(port) ?? Buffer.alloc(64).toString('base64')};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`;
// no retries inside the SDK: an unreachable endpoint fails at once
const containerAt = (port: number, name: string): ContainerClient =>
  BlobServiceClient.fromConnectionString(connectionFor(port), {
    retryOptions: { maxTries: 1 },
  }).getContainerClient(name);

const until = <T>(what: string, probe: () => T | undefined | Promise<T | undefined>) =>
  waitUntil(what, probe, 20000, 25);

describe('ignored deliveries with Blob storage down', () => {
  let tmp: string;
  let port: number;
  let azurite: AzuriteHandle | undefined;
  let svc: Services;
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'intake-records-'));
    port = await freePort();
    // the Azurite that comes back later on this port keeps its key in its data folder: known now
    keyOfPort.set(port, azuriteAccountKey(path.join(tmp, 'azurite')));
    svc = await startServices(); // fake GitHub + queue (its own Azurite is not used here)
  }, 90000);
  afterAll(async () => {
    await azurite?.stop();
    await svc?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('are answered at once, the same on redelivery; a merge is refused (503); records are written when storage is back', async () => {
    const errors: Array<{ records: number; dropped: number }> = [];
    const store = createDeliveriesStore(containerAt(port, 'records'), {
      retryMs: 50,
      lingerMs: 5,
      onBackgroundError: (_e, records, dropped) => void errors.push({ records, dropped }),
    });
    const rig = makeRig(svc, { store });
    const id = deliveryId();
    const feature = pushTo('7'.repeat(40), 'feature/x');
    const first = await rig.intake.handle(signedRequest('push', feature, { id }), ctx());
    const again = await rig.intake.handle(signedRequest('push', feature, { id }), ctx());
    for (const r of [first, again]) {
      expect(r.status).toBe(200);
      expect(r.jsonBody).toEqual({
        decision: 'ignored',
        reason: 'push to refs/heads/feature/x, not refs/heads/master',
      });
    }
    // a merge needs the dedupe claim: with storage down it is refused for a redelivery, never half-done
    const merge = await rig.intake.handle(signedRequest('push', pushTo('8'.repeat(40))), ctx());
    expect(merge.status).toBe(503);
    expect(svc.sends).toHaveLength(0);
    // the handed-over records failed to write and are kept for a retry (logged as decisions already)
    await until('a failed background write', () => (errors.length ? true : undefined));
    expect(errors[0].dropped).toBe(0);
    expect(rig.logs.filter((l) => l.includes('"decision":"ignored"'))).toHaveLength(2);

    // storage comes back on the same endpoint: the kept records are written without anyone asking
    azurite = await startAzurite({ dir: path.join(tmp, 'azurite'), port, timeoutMs: 60000 });
    const reader = createDeliveriesStore(containerAt(port, 'records'));
    const listed = await until('records written after the outage', async () => {
      const items = await reader.list(10).catch(() => []);
      return items.filter((d) => d.decision === 'ignored').length === 2 ? items : undefined;
    });
    expect(listed.filter((d) => d.decision === 'ignored').map((d) => d.deliveryId)).toEqual([id, id]);
  }, 120000);
});

describe('handed-over records', () => {
  let tmp: string;
  let azurite: AzuriteHandle;
  let n = 0;
  const container = () => containerAt(azurite.port, `handed${n++}`);
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'intake-records2-'));
    azurite = await startAzurite({ dir: path.join(tmp, 'azurite'), timeoutMs: 60000 });
    keyOfPort.set(azurite.port, azurite.accountKey);
  }, 90000);
  afterAll(async () => {
    await azurite?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('are listed right away by the same process, together with awaited ones, newest first', async () => {
    const c = container();
    const s = createDeliveriesStore(c, { lingerMs: 60000 }); // would not write on its own during this test
    const at = (i: number) => new Date(Date.UTC(2026, 10, 27, 12, 0, i)).toISOString();
    await s.record({ decision: 'ignored', reason: 'r0', at: at(0) }, { wait: false });
    await s.record({ decision: 'accepted', reason: 'r1', at: at(1) });
    await s.record({ decision: 'ignored', reason: 'r2', at: at(2) }, { wait: false });
    expect((await s.list(10)).map((d) => d.reason)).toEqual(['r2', 'r1', 'r0']);
    // and by another process (a second store on the same container) once written
    expect((await createDeliveriesStore(c).list(10)).map((d) => d.reason)).toEqual(['r2', 'r1', 'r0']);
  });

  it('a burst is written in full batches at once, without waiting for the linger', async () => {
    const c = container();
    const s = createDeliveriesStore(c, { lingerMs: 60000 }); // the linger alone would write nothing during this test
    for (let i = 0; i < 1100; i++) await s.record({ decision: 'ignored', reason: `r${i}` }, { wait: false });
    const sizes = async () => {
      const out: number[] = [];
      for await (const b of c.listBlobsFlat({ prefix: 'intake/log/' })) {
        const body = await c.getBlobClient(b.name).downloadToBuffer();
        out.push((JSON.parse(body.toString()) as unknown[]).length);
      }
      return out.sort((a, b) => a - b);
    };
    // two full batches of 500 are written without anyone asking; the last 100 wait for the linger
    expect(
      await until('two full batches written', async () => ((await sizes()).length === 2 ? true : undefined)),
    ).toBe(true);
    expect(await sizes()).toEqual([500, 500]);
    await s.flush();
    expect(await sizes()).toEqual([100, 500, 500]);
  });

  it('close() ends the retries of a store whose storage went away: nothing runs or logs after it', async () => {
    const dead = await freePort();
    const errors: string[] = [];
    const s = createDeliveriesStore(containerAt(dead, 'gone'), {
      retryMs: 20,
      lingerMs: 1,
      onBackgroundError: (e) => void errors.push(String((e as Error).message)),
    });
    await s.record({ decision: 'ignored', reason: 'r0' }, { wait: false });
    await s.flush();
    await new Promise((r) => setTimeout(r, 100));
    const retrying = errors.length;
    expect(retrying).toBeGreaterThan(1); // it was retrying every 20 ms
    s.close();
    expect(errors.at(-1)).toBe('closed with 1 unwritten decision records');
    const atClose = errors.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(errors.length).toBe(atClose);
  });

  it('flush() does not hang while storage is down, and the bound drops the oldest first', async () => {
    const dead = await freePort();
    const dropped: number[] = [];
    const s = createDeliveriesStore(containerAt(dead, 'nowhere'), {
      retryMs: 60000,
      lingerMs: 1,
      maxUnwritten: 3,
      onBackgroundError: (_e, _r, d) => void dropped.push(d),
    });
    for (let i = 0; i < 5; i++) await s.record({ decision: 'ignored', reason: `r${i}` }, { wait: false });
    await s.flush();
    expect(dropped.filter((d) => d > 0)).toEqual([2]); // one report for the two dropped, not one error line per record
    await expect(s.list(10)).rejects.toThrow(/BLOB/);
    // an awaited record is refused with a clear error, not left waiting for the retry pause
    await expect(s.record({ decision: 'accepted', reason: 'x' })).rejects.toThrow(/BLOB.UNAVAILABLE/);
  });
});
