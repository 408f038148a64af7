/**
 * `npm run bench -- deploy`: what the pipeline adds to a UAT deploy on top of the remote commands.
 *
 * Runs complete `deployUat` orchestrations through the embedded host (on the Durable Task extension;
 * real Azurite for its task hub, the backup parts + manifest + verify and the ledger),
 * against an in-memory VM that answers the odoo-ops verbs after a fixed simulated latency per command.
 * Every remote call (SSH connect, command, streamed backup) is timed; then
 *   pipeline overhead = total deploy time − time spent in remote calls           (target ≤ 2 s)
 *   downtime overhead = (stop → healthy) − time spent in remote calls in between  (target ≤ 1 s)
 * The baseline is the remote time itself (what running the same odoo-ops commands by hand would take),
 * measured in the same run; ratio = total / remote.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Bench, BenchResult, percentile } from './harness';
import { startLocalHost } from '../local/host';
// type-only: the module itself must be loaded by the host (after its @azure/functions-core hook)
import type { RemoteShell } from '../functions/activities/deploy';
import { BackupStore } from '../shared/adapters/backup-store';
import { createLedger } from '../shared/adapters/ledger';
import { BlobServiceClient } from '@azure/storage-blob';
import type { RegistryClient } from '../shared/adapters/registry';
import type { DeployResult } from '../shared/domain/deploy-plan';
import { createLogger } from '../shared/log';
import { createFakeVm } from '../test/support/fake-vm-shell';

const LATENCY_MS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Span {
  start: number;
  end: number;
  label: string;
}

const bench: Bench = {
  name: 'deploy',
  description:
    'deployUat pipeline overhead (total minus remote commands) and downtime overhead, embedded host + Azurite',
  async run({ quick, log }): Promise<BenchResult> {
    const runs = quick ? 3 : 10;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-deploy-'));
    const host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: { LOG_LEVEL: 'error' },
      log: createLogger({ level: 'error' }),
    });
    const { setDeployPorts } =
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('../functions/activities/deploy') as typeof import('../functions/activities/deploy');
    try {
      const conn = host.blobConnectionString ?? process.env.BACKUP_STORAGE_CONNECTION!;
      const container = BlobServiceClient.fromConnectionString(conn).getContainerClient('ledger');
      await container.createIfNotExists();
      const ledger = createLedger(container);
      const backups = new BackupStore({ connectionString: conn, container: 'backups' });
      const registry: RegistryClient = {
        kind: 'memory',
        listTags: async () => [],
        resolve: async (_r, tag) => ({
          digest: `sha256:${'0'.repeat(56)}${Buffer.from(tag).toString('hex').slice(0, 8).padEnd(8, '0')}`,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
        }),
        retag: async () => {
          throw new Error('unused');
        },
        deleteTag: async () => undefined,
      };
      const overheads: number[] = [];
      const downOverheads: number[] = [];
      const remotes: number[] = [];
      const totals: number[] = [];
      for (let i = 0; i < runs + 1; i++) {
        const env = `bench${i}`;
        await ledger.record(env, {
          version: '1.0.0',
          sha: 'a'.repeat(40),
          imageRef: 'reg.local/odoo-mta:uat-v1.0.0',
          deployedAt: new Date().toISOString(),
        });
        // ~1 MB database + 256 KiB filestore, streamed to Azurite
        const vm = createFakeVm({ db: 'D'.repeat(1024 * 1024), filestore: 'F'.repeat(256 * 1024) });
        const spans: Span[] = [];
        const timed = async <T>(fn: () => Promise<T>, label = 'connect'): Promise<T> => {
          const s: Span = { start: performance.now(), end: 0, label };
          try {
            await sleep(LATENCY_MS);
            return await fn();
          } finally {
            s.end = performance.now();
            spans.push(s);
          }
        };
        setDeployPorts({
          settings: (e) => ({
            environment: e,
            minFreeDiskGb: 1,
            imageWaitMinutes: 0,
            imagePollSeconds: 1,
            healthTimeoutSeconds: 5,
            keyUrls: [],
            keepCount: 5,
            retryFirstMs: 100,
            retryAttempts: 2,
          }),
          ssh: {
            connect: () =>
              timed(async () => {
                const sh = await vm.connect();
                const wrapped: RemoteShell = {
                  run: (c, o) => timed(() => sh.run(c, o), c.replace(/^odoo-ops --json /, '').split(' ')[0]),
                  stream: (c, o) => {
                    const s: Span = { start: performance.now(), end: 0, label: 'stream' };
                    const r = sh.stream(c, o);
                    const done = sleep(LATENCY_MS).then(() => r.done);
                    void done.then(
                      () => ((s.end = performance.now()), spans.push(s)),
                      () => ((s.end = performance.now()), spans.push(s)),
                    );
                    return { stdout: r.stdout, done };
                  },
                  close: () => sh.close(),
                };
                return wrapped;
              }),
          },
          backups,
          registry,
          ledger,
          notify: { notify: async () => ({}) },
          log: createLogger({ level: 'error', sink: () => undefined }),
        });
        const t0 = performance.now();
        const id = await host.durable.startNew('deployUat', {
          input: {
            environment: env,
            version: '1.1.0',
            sha: 'b'.repeat(40),
            imageRef: 'reg.local/odoo-mta:uat-v1.1.0',
            force: true,
          },
        });
        const st = await host.durable.waitForCompletion(id, 120000);
        const total = performance.now() - t0;
        const out = st.output as DeployResult;
        if (out.outcome !== 'Succeeded')
          throw new Error(`bench deploy ${id} ended ${out.outcome}: ${out.reason}`);
        const remote = spans.reduce((a, s) => a + (s.end - s.start), 0);
        // downtime window: from the start of the `stop` command to the end of the validation after `health`
        const stop = spans.find((x) => x.label === 'stop');
        const healthIdx = spans.findIndex((x) => x.label === 'health');
        const lastCheck = spans.slice(healthIdx).find((x) => x.label === 'status') ?? spans[healthIdx];
        const window = stop && lastCheck ? lastCheck.end - stop.start : 0;
        const downRemote =
          stop && lastCheck
            ? spans
                .filter((x) => x.start >= stop.start && x.end <= lastCheck.end)
                .reduce((a, x) => a + (x.end - x.start), 0)
            : 0;
        if (i === 0) continue; // warm-up (module loading, container creation)
        totals.push(total);
        remotes.push(remote);
        overheads.push(total - remote);
        downOverheads.push(window - downRemote);
        log(
          `run ${i}: total ${total.toFixed(0)} ms, remote ${remote.toFixed(0)} ms, overhead ${(total - remote).toFixed(0)} ms, downtime ${window.toFixed(0)} ms (remote ${downRemote.toFixed(0)} ms)`,
        );
      }
      const p50 = (a: number[]) => percentile(a, 50);
      const overhead = p50(overheads);
      const downOverhead = p50(downOverheads);
      return {
        name: 'deploy',
        unit: 'ms',
        value: Math.round(overhead),
        baseline: Math.round(p50(remotes)),
        ratio: +(p50(totals) / p50(remotes)).toFixed(3),
        description: `median pipeline overhead per UAT deploy (total − remote command time) over ${runs} deploys; baseline = median remote command time (${LATENCY_MS} ms simulated per SSH connect / command)`,
        targets: {
          pipelineOverhead: { target: '≤ 2000 ms', actual: Math.round(overhead), met: overhead <= 2000 },
          downtimeOverhead: {
            target: '≤ 1000 ms',
            actual: Math.round(downOverhead),
            met: downOverhead <= 1000,
          },
        },
        details: {
          runs,
          latencyPerRemoteCallMs: LATENCY_MS,
          totalsMs: totals.map(Math.round),
          remoteMs: remotes.map(Math.round),
          overheadMs: overheads.map(Math.round),
          downtimeOverheadMs: downOverheads.map(Math.round),
          p95OverheadMs: Math.round(percentile(overheads, 95)),
        },
      };
    } finally {
      setDeployPorts(undefined);
      await host.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default bench;
