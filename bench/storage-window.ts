/**
 * `npm run bench -- storage-window`: how much acknowledged work a crash of the MACHINE could lose from the
 * local storage (issue #19). The supervised Azurite (local/azurite.ts) survives a crash of the host, but it
 * keeps its metadata (blob, queue, table: LokiJS) in memory and saves it every 5 s. A machine crash is
 * played by SIGKILL of Azurite's own process group (supervisor and Azurite) `d` ms after a write was
 * acknowledged (a container created); Azurite is started again on the same folder and the write looked
 * for. value = the longest delay after which a write was still lost; baseline = Azurite's autosave interval.
 * (A real power loss can lose more: the saves are plain writes, not fsync'ed, so the OS's own write-back
 * delay comes on top.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startSupervisedAzurite, type AzuriteHandle } from '../local/azurite';
import type { Bench } from './harness';

const AUTOSAVE_MS = 5000; // Azurite 3.35's LokiJS autosaveInterval (blob, queue and table stores)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function crash(h: AzuriteHandle): Promise<void> {
  const pid = h.supervisorPid!;
  process.kill(-pid, 'SIGKILL'); // the supervisor's whole group: supervisor and Azurite, no save
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(25);
  }
}

const bench: Bench = {
  name: 'storage-window',
  description:
    'longest delay between an acknowledged write to the local storage (supervised Azurite) and a machine crash that still lost it',
  async run({ quick, log }) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-storage-window-'));
    const delays = quick ? [0, 2000, 4000, 6000] : [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000];
    const trials = quick ? 1 : 2;
    const rows: Array<{ delayMs: number; trial: number; survived: boolean }> = [];
    let h = await startSupervisedAzurite({ dir, queueAndTable: true, timeoutMs: 60000 });
    try {
      for (let trial = 1; trial <= trials; trial++)
        for (const delayMs of delays) {
          const name = `w-${trial}-${delayMs}`;
          await BlobServiceClient.fromConnectionString(h.connectionString).getContainerClient(name).create();
          await sleep(delayMs);
          await crash(h);
          h = await startSupervisedAzurite({ dir, queueAndTable: true, timeoutMs: 60000 });
          const survived = await BlobServiceClient.fromConnectionString(h.connectionString)
            .getContainerClient(name)
            .exists();
          rows.push({ delayMs, trial, survived });
          log(`write then crash after ${delayMs} ms: ${survived ? 'kept' : 'LOST'}`);
        }
    } finally {
      await h.stop();
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    }
    const lost = rows.filter((r) => !r.survived).map((r) => r.delayMs);
    const window = lost.length ? Math.max(...lost) : 0;
    return {
      name: 'storage-window',
      unit: 'ms',
      value: window,
      baseline: AUTOSAVE_MS,
      ratio: +(window / AUTOSAVE_MS).toFixed(3),
      description: `longest write→machine-crash delay that still lost the write (${lost.length} of ${rows.length} writes lost); baseline = Azurite's autosave interval`,
      targets: {
        'lost window ≤ autosave interval + 1 s': {
          target: `≤ ${AUTOSAVE_MS + 1000} ms`,
          actual: window,
          met: window <= AUTOSAVE_MS + 1000,
        },
      },
      details: { rows },
    };
  },
};

export default bench;
