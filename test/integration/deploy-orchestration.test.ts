/**
 * deployUat's logic through the REAL embedded host (the Durable Task engine driving the real
 * durable-functions orchestrator), real Azurite (backups + ledger), with an in-memory VM (odoo-ops
 * answers), an in-memory registry and a recording notifier. Outcomes, compensation order, retries,
 * custom status.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalHost, type LocalHost } from '../../local/host';
import {
  setDeployPorts,
  type DeployPorts,
  type NotifyEvent,
  type RemoteShell,
} from '../../functions/activities/deploy';
import '../../functions/orchestrators/deployUat';
import { BackupStore } from '../../shared/adapters/backup-store';
import { createLedger } from '../../shared/adapters/ledger';
import { createDeliveriesStore } from '../../shared/adapters/deliveries';
import { createVerificationStore, type VerificationStore } from '../../shared/adapters/backup-verifications';
import type { StatusDocument } from '../../shared/domain/status-view';
import { BlobServiceClient } from '@azure/storage-blob';
import type { RegistryClient } from '../../shared/adapters/registry';
import type { DeployCustomStatus, DeployResult, DeploySettings } from '../../shared/domain/deploy-plan';
import { createLogger, type LogSink } from '../../shared/log';
import { createFakeVm, type FakeVm } from '../support/fake-vm-shell';

const SHA_OLD = 'a'.repeat(40);
const SHA_NEW = 'b'.repeat(40);
const IMG = (v: string) => `reg.local/odoo-mta:uat-v${v}`;

function memoryRegistry(tags: string[]): RegistryClient & { tags: Set<string>; deleted: string[] } {
  const set = new Set(tags);
  const deleted: string[] = [];
  return {
    kind: 'memory',
    tags: set,
    deleted,
    async listTags() {
      return [...set];
    },
    async resolve(_repo, tag) {
      return set.has(tag)
        ? {
            digest: `sha256:${Buffer.from(tag).toString('hex').padEnd(64, '0').slice(0, 64)}`,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
          }
        : undefined;
    },
    async retag() {
      throw new Error('not used');
    },
    async deleteTag(_repo, tag) {
      set.delete(tag);
      deleted.push(tag);
    },
  };
}

/** the engine hops through Azurite queues (≥ 1 s polling when idle): a deploy takes seconds, not ms */
const WAIT_MS = 120000;
const T = 180000;
jest.setTimeout(T);

describe('deployUat orchestration (embedded host, Azurite, in-memory VM)', () => {
  let dir: string;
  let host: LocalHost;
  let backups: BackupStore;
  let ledgerConn: string;
  let n = 0;
  let lastEnv = '';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-orch-'));
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: { LOG_LEVEL: 'error' },
    });
    ledgerConn = host.blobConnectionString ?? process.env.BACKUP_STORAGE_CONNECTION!;
  }, 300000);
  afterAll(async () => {
    setDeployPorts(undefined);
    await host?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  interface Rig {
    vm: FakeVm;
    registry: ReturnType<typeof memoryRegistry>;
    notices: NotifyEvent[];
    ledger: ReturnType<typeof createLedger>;
    run(
      version?: string,
      extra?: Record<string, unknown>,
    ): Promise<{ result: DeployResult; status: DeployCustomStatus; runtime: string }>;
  }

  async function rig(
    o: {
      vm?: Parameters<typeof createFakeVm>;
      tags?: string[];
      settings?: Partial<DeploySettings>;
      notifyThrows?: boolean;
      env?: string;
      backups?: BackupStore;
      verifications?: VerificationStore;
      logSink?: LogSink;
      wrapShell?: (sh: RemoteShell) => RemoteShell;
    } = {},
  ): Promise<Rig> {
    const env = o.env ?? `uat${++n}`; // a ledger and backup folder per test
    lastEnv = env;
    const vm = createFakeVm(...(o.vm ?? []));
    const registry = memoryRegistry(o.tags ?? ['uat-v1.0.0', 'uat-v1.1.0']);
    const container = BlobServiceClient.fromConnectionString(ledgerConn).getContainerClient('ledger');
    await container.createIfNotExists();
    const ledger = createLedger(container);
    await ledger.record(env, {
      version: '1.0.0',
      sha: SHA_OLD,
      imageRef: IMG('1.0.0'),
      deployedAt: new Date().toISOString(),
      coverage: 85,
    });
    backups = new BackupStore({ connectionString: ledgerConn, container: 'backups' });
    const notices: NotifyEvent[] = [];
    const settings: DeploySettings = {
      environment: env,
      url: 'http://uat.invalid',
      minFreeDiskGb: 1,
      imageWaitMinutes: 0,
      imagePollSeconds: 1,
      jobPollSeconds: 1,
      healthTimeoutSeconds: 1,
      keyUrls: [],
      keepCount: 5,
      retryFirstMs: 10,
      retryAttempts: 3,
      ...o.settings,
    };
    const ports: DeployPorts = {
      settings: () => settings,
      ssh: { connect: async () => (o.wrapShell ? o.wrapShell(await vm.connect()) : vm.connect()) },
      backups: o.backups ?? backups,
      // the store GET /api/backups and the status page read (LEDGER_CONTAINER, default "ledger")
      verifications: o.verifications ?? createVerificationStore(container),
      registry,
      ledger,
      notify: {
        async notify(e) {
          notices.push(e as NotifyEvent);
          if (o.notifyThrows) throw new Error('[SLACK.UNAVAILABLE] slack is down');
          return { githubDeploymentId: 42 };
        },
      },
      changedFiles: async () => ['addons/sale_custom/models/sale.py', 'README.md'],
      log: createLogger({ level: o.logSink ? 'warn' : 'error', sink: o.logSink ?? (() => undefined) }),
    };
    setDeployPorts(ports);
    return {
      vm,
      registry,
      notices,
      ledger,
      async run(version = '1.1.0', extra = {}) {
        const id = await host.durable.startNew('deployUat', {
          input: {
            environment: env,
            version,
            sha: SHA_NEW,
            imageRef: IMG(version),
            coverage: 90,
            mergedBy: 'alice',
            ...extra,
          },
        });
        const st = await host.durable.waitForCompletion(id, WAIT_MS);
        return {
          result: st.output as DeployResult,
          status: st.customStatus as DeployCustomStatus,
          runtime: st.runtimeStatus,
        };
      },
    };
  }

  it(
    'succeeds: backup, pull before stop, changed modules only, ledger, notices, retention',
    async () => {
      const r = await rig({
        tags: [
          'uat-v0.1.0',
          'uat-v0.2.0',
          'uat-v0.3.0',
          'uat-v0.4.0',
          'uat-v0.5.0',
          'uat-v1.0.0',
          'uat-v1.1.0',
        ],
      });
      const { result, status, runtime } = await r.run();
      expect(runtime).toBe('Completed');
      expect(result.outcome).toBe('Succeeded');
      const verbs = r.vm.calls.map((c) => c.split(' ')[0]);
      expect(verbs.indexOf('backup-db')).toBeLessThan(verbs.indexOf('pull'));
      expect(verbs.indexOf('pull')).toBeLessThan(verbs.indexOf('stop'));
      expect(r.vm.calls).toContain(`migrate ${IMG('1.1.0')} sale_custom`);
      expect(r.vm.state.image).toBe(IMG('1.1.0'));
      expect(r.vm.state.webRunning).toBe(true);
      const cur = await r.ledger.current(result.environment);
      expect(cur).toMatchObject({
        version: '1.1.0',
        sha: SHA_NEW,
        coverage: 90,
        backupId: result.backupId,
        previousVersion: '1.0.0',
      });
      expect(cur?.imageDigest).toMatch(/^sha256:/);
      // the backup is complete and verifies
      expect((await backups.verify(result.backupId!)).ok).toBe(true);
      expect(status).toMatchObject({
        step: 'done',
        outcome: 'Succeeded',
        backupBytes: 'DB@1.0.0'.length + 'FS@1.0.0'.length,
      });
      expect(r.notices.map((x) => x.kind)).toEqual(['started', 'succeeded']);
      expect(r.notices[1]).toMatchObject({ githubDeploymentId: 42, mergedBy: 'alice' });
      // retention: 5 newest kept, running + previous never deleted
      expect([...r.registry.tags].sort()).toEqual(
        ['uat-v0.2.0', 'uat-v0.3.0', 'uat-v0.4.0', 'uat-v0.5.0', 'uat-v1.0.0', 'uat-v1.1.0']
          .filter((t) => t !== 'uat-v0.2.0')
          .sort(),
      );
      expect(r.registry.deleted.sort()).toEqual(['uat-v0.1.0', 'uat-v0.2.0']);
    },
    T,
  );

  it(
    'a failure before the stop (backup fails) ends Failed with nothing stopped',
    async () => {
      const r = await rig({ vm: [{}, { failBackup: true }] });
      const { result } = await r.run();
      expect(result.outcome).toBe('Failed');
      expect(result.failedStep).toBe('backup');
      expect(r.vm.calls).not.toContain('stop');
      expect(r.vm.state.webRunning).toBe(true);
      expect(r.vm.state.image).toBe(IMG('1.0.0'));
      expect((await r.ledger.current(result.environment))?.version).toBe('1.0.0');
      expect(r.notices.map((x) => x.kind)).toEqual(['started', 'failed']);
    },
    T,
  );

  it.each([
    [
      'its manifest is gone',
      async (id: string) => void (await backups.container.getBlockBlobClient(`${id}/manifest.json`).delete()),
    ],
    [
      'a part is gone',
      async (id: string) => void (await backups.container.getBlockBlobClient(`${id}/db.dump`).delete()),
    ],
    [
      'a part lost bytes',
      async (id: string) =>
        void (await backups.container.getBlockBlobClient(`${id}/filestore.tar`).upload('FS', 2)),
    ],
  ])(
    'the backup is no longer readable when the stop comes (%s) → Failed, nothing stopped or touched',
    async (_what, damage) => {
      // after the backup was taken and verified, just before the stop: the pull is the last step before it
      const r = await rig({
        wrapShell: (sh) => ({
          ...sh,
          run: async (command, o) => {
            if (/^odoo-ops --json pull /.test(command)) {
              const [latest] = await backups.list(lastEnv);
              await damage(latest.id);
            }
            return sh.run(command, o);
          },
        }),
      });
      const { result } = await r.run();
      expect(result.outcome).toBe('Failed');
      expect(result.code).toBe('BACKUP.UNREADABLE');
      expect(result.reason).toMatch(/nothing was stopped/);
      const verbs = r.vm.calls.map((c) => c.split(' ')[0]);
      expect(verbs).toContain('pull');
      for (const touching of ['stop', 'migrate', 'start', 'restore-db', 'restore-filestore'])
        expect(verbs).not.toContain(touching);
      expect(r.vm.state.webRunning).toBe(true);
      expect(r.vm.state.image).toBe(IMG('1.0.0'));
      expect((await r.ledger.current(result.environment))?.version).toBe('1.0.0');
      expect(r.notices.map((x) => x.kind)).toEqual(['started', 'failed']);
    },
    T,
  );

  it(
    'the backup upload fails (Blob unreachable) → retried, then Failed with nothing stopped',
    async () => {
      const deadConn =
        'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;';
      const dead = new BackupStore({
        containerClient: BlobServiceClient.fromConnectionString(deadConn, {
          retryOptions: { maxTries: 1 },
        }).getContainerClient('backups'),
      });
      const r = await rig({ backups: dead });
      const { result } = await r.run();
      expect(result).toMatchObject({ outcome: 'Failed', failedStep: 'backup' });
      expect(result.code).toMatch(/^BLOB\./);
      expect(r.vm.calls).not.toContain('stop');
      expect(r.vm.state).toMatchObject({ webRunning: true, image: IMG('1.0.0') });
    },
    T,
  );

  it(
    'the upload SAS the VM gets has expired (clock skew) → the backup job fails BLOB.FORBIDDEN, Failed, nothing stopped',
    async () => {
      const skewed = new BackupStore({
        connectionString: ledgerConn,
        container: 'backups',
        now: () => new Date(Date.now() - 6 * 3600_000),
      });
      const r = await rig({ backups: skewed });
      const { result } = await r.run();
      expect(result).toMatchObject({ outcome: 'Failed', failedStep: 'backup', code: 'BLOB.FORBIDDEN' });
      expect(result.reason).toMatch(/403/);
      expect(r.vm.calls).toContain('backup-db');
      expect(r.vm.calls).not.toContain('stop');
      expect(r.vm.state).toMatchObject({ webRunning: true, image: IMG('1.0.0') });
      expect((await r.ledger.current(result.environment))?.version).toBe('1.0.0');
    },
    T,
  );

  it(
    'a missing image (no wait allowed) fails before anything is backed up or stopped',
    async () => {
      const r = await rig({ tags: ['uat-v1.0.0'] });
      const { result } = await r.run();
      expect(result).toMatchObject({ outcome: 'Failed', code: 'DEPLOY.IMAGE_MISSING' });
      expect(r.vm.calls.some((c) => c.startsWith('backup') || c === 'stop')).toBe(false);
    },
    T,
  );

  it(
    'waits for the image with durable timers when the build is still running',
    async () => {
      const r = await rig({ tags: ['uat-v1.0.0'], settings: { imageWaitMinutes: 1, imagePollSeconds: 1 } });
      setTimeout(() => r.registry.tags.add('uat-v1.1.0'), 1500);
      const { result } = await r.run();
      expect(result.outcome).toBe('Succeeded');
      expect(result.durations['wait-image']).toBeDefined();
    },
    T,
  );

  it(
    'migration fails → compensations newest first, DB restored from the backup, RolledBack, logs saved',
    async () => {
      const r = await rig({ vm: [{}, { failMigration: true }] });
      const before = r.vm.state.db;
      const { result } = await r.run();
      expect(result).toMatchObject({
        outcome: 'RolledBack',
        failedStep: 'migrate',
        code: 'DEPLOY.MIGRATION_FAILED',
      });
      const after = r.vm.calls
        .slice(r.vm.calls.findIndex((c) => c.startsWith('migrate')) + 1)
        .map((c) => c.split(' ')[0]);
      // restore (stop, restore-db, restore-filestore) → start previous → health → logs
      expect(after.slice(0, 6)).toEqual([
        'stop',
        'restore-db',
        'restore-filestore',
        'start',
        'health',
        'status',
      ]);
      expect(r.vm.calls).toContain(`start ${IMG('1.0.0')}`);
      expect(r.vm.calls.filter((c) => c.startsWith('migrate'))).toHaveLength(1); // never retried
      expect(r.vm.state.db).toBe(before);
      expect(r.vm.state.image).toBe(IMG('1.0.0'));
      expect(r.vm.state.webRunning).toBe(true);
      expect(result.logs).toEqual(expect.arrayContaining([`${result.backupId}/logs/migration.log`]));
      expect(await backups.readLog(result.backupId!, 'migration.log')).toContain('CRITICAL boom');
      expect((await r.ledger.current(result.environment))?.version).toBe('1.0.0');
      expect(r.notices.map((x) => x.kind)).toEqual(['started', 'rolled-back']);
      expect(r.notices[1].reason).toContain('MIGRATION_FAILED');
    },
    T,
  );

  it(
    'unhealthy after start → stop new, restore, previous started and healthy, RolledBack',
    async () => {
      const r = await rig({ vm: [{}, { unhealthyImage: IMG('1.1.0') }] });
      const before = r.vm.state.db;
      const { result } = await r.run();
      expect(result).toMatchObject({ outcome: 'RolledBack', failedStep: 'health', code: 'DEPLOY.UNHEALTHY' });
      const i = r.vm.calls.lastIndexOf(`start ${IMG('1.1.0')}`);
      expect(
        r.vm.calls
          .slice(i + 1)
          .map((c) => c.split(' ')[0])
          .slice(0, 6),
      ).toEqual(['health', 'stop', 'stop', 'restore-db', 'restore-filestore', 'start']);
      expect(r.vm.state).toMatchObject({ image: IMG('1.0.0'), webRunning: true, db: before });
    },
    T,
  );

  it(
    'SSH dropped mid-migration → the migration job goes on on the VM, is found again, runs once; the deploy succeeds',
    async () => {
      const r = await rig({ vm: [{}, { dropDuringMigrate: true }] });
      const { result } = await r.run();
      expect(result).toMatchObject({ outcome: 'Succeeded' });
      // one migration, whatever the connection did: the retried start found the job by its id
      expect(r.vm.calls.filter((c) => c.startsWith('migrate'))).toEqual([
        `migrate ${IMG('1.1.0')} sale_custom`,
      ]);
      expect(r.vm.state.db.match(/\+migrated/g)).toHaveLength(1);
      expect(Object.keys(r.vm.state.jobs ?? {})).toEqual([
        expect.stringMatching(/\.backup$/),
        expect.stringMatching(/\.migrate$/),
      ]);
      expect(r.vm.state.image).toBe(IMG('1.1.0'));
    },
    T,
  );

  it(
    'the rollback itself fails → NeedsAttention, nothing else touched',
    async () => {
      const r = await rig({ vm: [{}, { failMigration: true, failRestore: true }] });
      const { result } = await r.run();
      expect(result.outcome).toBe('NeedsAttention');
      expect(result.reason).toMatch(/ROLLBACK FAILED: restore failed: \[RESTORE.FAILED\]/);
      const afterRestore = r.vm.calls.slice(r.vm.calls.findIndex((c) => c.startsWith('restore-db')) + 1);
      expect(afterRestore.some((c) => c.startsWith('start'))).toBe(false);
      expect(r.notices.map((x) => x.kind)).toEqual(['started', 'needs-attention']);
    },
    T,
  );

  it(
    'retries transient SSH connect failures with back-off; notification failures never fail a deploy',
    async () => {
      const r = await rig({ vm: [{}, { connectFailures: 2 }], notifyThrows: true });
      const { result } = await r.run();
      expect(result.outcome).toBe('Succeeded');
      expect(r.vm.connects).toBeGreaterThanOrEqual(3);
    },
    T,
  );

  it(
    'a deterministic failure before the stop is not retried (pull: image missing on the VM)',
    async () => {
      const r = await rig({ vm: [{}, { failPull: true }] });
      const { result } = await r.run();
      expect(result).toMatchObject({ outcome: 'Failed', failedStep: 'pull', code: 'REGISTRY.IMAGE_MISSING' });
      expect(r.vm.calls.filter((c) => c.startsWith('pull'))).toHaveLength(1);
      expect(r.vm.state.webRunning).toBe(true);
    },
    T,
  );

  it(
    'force migrates all modules; bad input is refused with a clear reason',
    async () => {
      const r = await rig();
      const { result } = await r.run('1.1.0', { force: true });
      expect(result.outcome).toBe('Succeeded');
      expect(r.vm.calls).toContain(`migrate ${IMG('1.1.0')} all`);
      const bad = await r.run('1.1.0', { sha: 'not-a-sha' });
      expect(bad.result).toMatchObject({ outcome: 'Failed', code: 'DEPLOY.BAD_INPUT' });
      expect(bad.result.reason).toContain('sha');
    },
    T,
  );

  it(
    'two merges during one deploy: the newer one deploys next, the older one is superseded',
    async () => {
      let release!: () => void;
      const hold = new Promise<void>((r2) => (release = r2));
      const r = await rig({
        vm: [{}, { holdMigrate: hold }],
        tags: ['uat-v1.0.0', 'uat-v1.1.0', 'uat-v1.2.0', 'uat-v1.3.0'],
      });
      const envName = lastEnv;
      const req = (version: string, sha: string) => ({
        type: 'deploy-uat',
        environment: envName,
        repository: 'acme/odoo-mta',
        version,
        sha,
        imageRef: IMG(version),
        coverage: 90,
        mergedBy: 'alice',
        trigger: 'push',
        deliveryId: `d-${version}`,
        requestedAt: new Date().toISOString(),
      });
      const SHA_12 = '1'.repeat(40);
      const SHA_13 = '3'.repeat(40);
      await host.durable.startNew('deployLane', {
        instanceId: `lane-${envName}`,
        input: { environment: envName, next: req('1.1.0', SHA_NEW), done: [] },
      });
      for (let i = 0; i < 200 && !r.vm.calls.some((c) => c.startsWith('migrate')); i++)
        await new Promise((r2) => setTimeout(r2, 50));
      expect(r.vm.calls.some((c) => c.startsWith('migrate'))).toBe(true); // deploy 1.1.0 is mid-migration
      await host.durable.raiseEvent(`lane-${envName}`, 'deploy-requested', req('1.2.0', SHA_12));
      await host.durable.raiseEvent(`lane-${envName}`, 'deploy-requested', req('1.3.0', SHA_13));
      await new Promise((r2) => setTimeout(r2, 500));
      release();
      const first = `deploy-${envName}-1.1.0-${SHA_NEW.slice(0, 12)}`;
      const newest = `deploy-${envName}-1.3.0-${SHA_13.slice(0, 12)}`;
      expect(((await host.durable.waitForCompletion(first, WAIT_MS)).output as DeployResult).outcome).toBe(
        'Succeeded',
      );
      for (let i = 0; i < 100 && !(await host.durable.getStatus(newest)); i++)
        await new Promise((r2) => setTimeout(r2, 100));
      expect(((await host.durable.waitForCompletion(newest, WAIT_MS)).output as DeployResult).outcome).toBe(
        'Succeeded',
      );
      expect(await host.durable.getStatus(`deploy-${envName}-1.2.0-${SHA_12.slice(0, 12)}`)).toBeFalsy();
      expect((await r.ledger.current(envName))?.version).toBe('1.3.0');
      expect(r.vm.state.image).toBe(IMG('1.3.0'));
    },
    T + 30000,
  );

  describe('deployments API', () => {
    const key = () => ({ 'x-functions-key': host.keys.functionKey, 'content-type': 'application/json' });
    const post = (body: unknown, headers: Record<string, string> = key()) =>
      fetch(`${host.baseUrl}/api/deployments`, {
        method: 'POST',
        headers,
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });

    it(
      'the backup a deploy took and verified shows as verified in GET /api/backups/uat and on the status page',
      async () => {
        const r = await rig({ env: 'uat' });
        const { result } = await r.run();
        expect(result.outcome).toBe('Succeeded');
        const res = await fetch(`${host.baseUrl}/api/backups/uat?limit=200`, { headers: key() });
        expect(res.status).toBe(200);
        const listed = (
          (await res.json()) as { items: Array<{ id: string; state: string; verifiedAt?: string }> }
        ).items.find((b) => b.id === result.backupId);
        expect(listed).toMatchObject({ id: result.backupId, state: 'verified' });
        expect(Number.isNaN(Date.parse(listed?.verifiedAt ?? ''))).toBe(false);
        const doc = (await (
          await fetch(`${host.baseUrl}/api/status?backups=50`, { headers: key() })
        ).json()) as StatusDocument;
        const uat = doc.environments.find((e) => e.name === 'uat');
        expect(uat?.backups.ok).toBe(true);
        expect(uat?.backups.ok && uat.backups.value.find((b) => b.id === result.backupId)).toMatchObject({
          state: 'verified',
        });
      },
      T,
    );

    it(
      'a verification that cannot be recorded is logged and never fails the deploy (the backup then shows as complete)',
      async () => {
        const lines: string[] = [];
        const broken: VerificationStore = {
          get: async () => undefined,
          record: async () => {
            throw new Error('[BLOB.UNAVAILABLE] ledger storage is down');
          },
        };
        const r = await rig({ env: 'uat', verifications: broken, logSink: (line) => lines.push(line) });
        const { result } = await r.run();
        expect(result.outcome).toBe('Succeeded');
        expect((await backups.verify(result.backupId!)).ok).toBe(true);
        const warned = lines
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => String(l.msg).startsWith('could not record the backup verification'));
        expect(warned).toMatchObject({
          level: 'warn',
          backupId: result.backupId,
          error: expect.stringContaining('ledger storage is down'),
        });
        const listed = (
          (await (await fetch(`${host.baseUrl}/api/backups/uat?limit=200`, { headers: key() })).json()) as {
            items: Array<{ id: string; state: string }>;
          }
        ).items.find((b) => b.id === result.backupId);
        expect(listed).toMatchObject({ state: 'complete' });
      },
      T,
    );

    it('refuses bad requests with clear errors and needs the function key', async () => {
      await rig({ env: 'uat' });
      expect(
        (await post({ environment: 'uat', version: '1.0.0' }, { 'content-type': 'application/json' })).status,
      ).toBe(401);
      expect((await fetch(`${host.baseUrl}/api/deployments?environment=uat`)).status).toBe(401);
      const badJson = await post('{nope');
      expect(badJson.status).toBe(400);
      expect(((await badJson.json()) as { error: string }).error).toBe('DEPLOYMENTS.BAD_JSON');
      const bad = await post({ environment: 'staging', version: 'latest', force: 'yes' });
      expect(bad.status).toBe(400);
      const b = (await bad.json()) as { problems: string[] };
      expect(b.problems).toHaveLength(3);
      const unknown = await post({ environment: 'uat', version: '9.9.9' });
      expect(unknown.status).toBe(422);
      expect(((await unknown.json()) as { message: string }).message).toMatch(/never ran on uat/);
      expect((await fetch(`${host.baseUrl}/api/deployments/not-a-deploy`, { headers: key() })).status).toBe(
        400,
      );
      expect(
        (
          await fetch(`${host.baseUrl}/api/deployments/deploy-uat-0.0.1-${'f'.repeat(12)}`, {
            headers: key(),
          })
        ).status,
      ).toBe(404);
      expect(
        (await fetch(`${host.baseUrl}/api/deployments?environment=UAT!`, { headers: key() })).status,
      ).toBe(400);
    });

    /** the intake's records for a commit the coverage gate let through (an API deploy to UAT needs them) */
    async function gatePassed(sha: string, version?: string): Promise<void> {
      const store = createDeliveriesStore(
        BlobServiceClient.fromConnectionString(ledgerConn).getContainerClient('ledger'),
      );
      const at = new Date().toISOString();
      const cur = await store.commit(sha);
      await store.putCommit(
        {
          sha,
          state: 'passed',
          firstSeenAt: at,
          deadline: at,
          trigger: 'workflow_run',
          branch: 'main',
          mergedBy: 'alice',
          deliveryId: `gate-${sha.slice(0, 8)}`,
          reason: 'coverage 88.0 % ≥ 80 %',
        },
        cur?.etag,
      );
      if (version)
        await store.record({
          decision: 'accepted',
          reason: 'coverage 88.0 % ≥ 80 %',
          sha,
          version,
          deliveryId: `gate-${sha.slice(0, 8)}`,
          status: 202,
        });
    }

    it(
      'redeploys a version from the ledger by hand, then again (force), and lists/shows them',
      async () => {
        const r = await rig({ env: 'uat' });
        await gatePassed(SHA_OLD);
        const res = await post({ environment: 'uat', version: '1.0.0', force: true });
        expect(res.status).toBe(202);
        const { id } = (await res.json()) as { id: string };
        expect(id).toBe(`deploy-uat-1.0.0-${SHA_OLD.slice(0, 12)}`);
        // the lane starts the deploy as its sub-orchestration: wait for it to exist
        for (let i = 0; i < 100 && !(await host.durable.getStatus(id)); i++)
          await new Promise((r2) => setTimeout(r2, 100));
        const st = await host.durable.waitForCompletion(id, WAIT_MS);
        expect(st.output as DeployResult).toMatchObject({ outcome: 'Succeeded' });
        expect(r.vm.calls).toContain(`migrate ${IMG('1.0.0')} all`);
        const one = (await (
          await fetch(`${host.baseUrl}/api/deployments/${id}`, { headers: key() })
        ).json()) as { status: { backupBytes: number; elapsedMs: number } };
        expect(one).toMatchObject({
          id,
          runtimeStatus: 'Completed',
          outcome: 'Succeeded',
          version: '1.0.0',
          force: true,
          status: { step: 'done', outcome: 'Succeeded' },
        });
        expect(one.status.backupBytes).toBeGreaterThan(0);
        expect(typeof one.status.elapsedMs).toBe('number');

        // the same release again: a fresh instance id, through the lane (which is idle: it starts at once)
        const again = await post({ environment: 'uat', version: '1.0.0' });
        expect(again.status).toBe(202);
        const second = (await again.json()) as { id: string; via: string };
        expect(second.id).toBe(`${id}-r1`);
        expect(second.via).toMatch(/^lane (started|raised)$/);
        for (let i = 0; i < 100 && !(await host.durable.getStatus(second.id)); i++)
          await new Promise((r2) => setTimeout(r2, 100));
        expect(
          ((await host.durable.waitForCompletion(second.id, WAIT_MS)).output as DeployResult).outcome,
        ).toBe('Succeeded');
        const list = (await (
          await fetch(`${host.baseUrl}/api/deployments?environment=uat`, { headers: key() })
        ).json()) as { items: Array<{ id: string; environment: string }> };
        expect(list.items.map((x: { id: string }) => x.id)).toEqual(expect.arrayContaining([id, second.id]));
        expect(list.items.every((x: { environment: string }) => x.environment === 'uat')).toBe(true);
      },
      T + 30000,
    );

    it(
      'a forced redeploy while a deploy runs waits in the lane: never two deploys at once on the VM',
      async () => {
        let release!: () => void;
        const hold = new Promise<void>((r2) => (release = r2));
        const r = await rig({
          env: 'uat',
          vm: [{}, { holdMigrate: hold }],
          tags: ['uat-v1.0.0', 'uat-v1.1.0', 'uat-v1.5.0'],
        });
        await gatePassed(SHA_OLD);
        await gatePassed('c'.repeat(40), '1.5.0');
        // a new release (by sha) starts through the lane and holds in its migration
        const first = await post({ environment: 'uat', version: '1.5.0', sha: 'c'.repeat(40) });
        expect(first.status).toBe(202);
        const running = ((await first.json()) as { id: string }).id;
        for (let i = 0; i < 200 && !r.vm.calls.some((c) => c.startsWith('migrate')); i++)
          await new Promise((r2) => setTimeout(r2, 50));
        expect((await host.durable.getStatus(running))?.runtimeStatus).toBe('Running');
        // a forced redeploy of 1.0.0 (which already ran: -r<n>) is queued behind it, not started beside it
        const base = `deploy-uat-1.0.0-${SHA_OLD.slice(0, 12)}`;
        const redeploy = await post({ environment: 'uat', version: '1.0.0', force: true });
        expect(redeploy.status).toBe(202);
        const queued = (await redeploy.json()) as { id: string; via: string };
        expect(queued).toMatchObject({ via: 'lane raised' });
        expect(queued.id).toMatch(new RegExp(`^${base}-r\\d+$`));
        for (
          let i = 0;
          i < 100 &&
          !(
            (await host.durable.getStatus('lane-uat'))?.customStatus as { waiting?: string[] } | undefined
          )?.waiting?.includes(queued.id);
          i++
        )
          await new Promise((r2) => setTimeout(r2, 50));
        expect((await host.durable.getStatus('lane-uat'))?.customStatus).toMatchObject({
          running,
          waiting: [queued.id],
        });
        expect(await host.durable.getStatus(queued.id)).toBeUndefined();
        expect(r.vm.calls.filter((c) => c === 'stop')).toHaveLength(1);
        release();
        expect(
          ((await host.durable.waitForCompletion(running, WAIT_MS)).output as DeployResult).outcome,
        ).toBe('Succeeded');
        for (let i = 0; i < 100 && !(await host.durable.getStatus(queued.id)); i++)
          await new Promise((r2) => setTimeout(r2, 100));
        expect(
          ((await host.durable.waitForCompletion(queued.id, WAIT_MS)).output as DeployResult).outcome,
        ).toBe('Succeeded');
        // one after the other on the VM: the first started its release before the redeploy stopped it
        const c = r.vm.calls;
        expect(c.findIndex((x) => x.startsWith('start ') && x.endsWith(':uat-v1.5.0'))).toBeGreaterThan(-1);
        expect(c.findIndex((x) => x.startsWith('start ') && x.endsWith(':uat-v1.5.0'))).toBeLessThan(
          c.lastIndexOf('stop'),
        );
        expect(c).toContain(`migrate ${IMG('1.0.0')} all`);
        expect(r.vm.state.image).toBe(IMG('1.0.0'));
      },
      T + 30000,
    );
  });
});
