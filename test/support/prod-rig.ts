/**
 * The ports of a PROD deploy for tests that drive the REAL deployProd orchestrator in the embedded
 * host: PROD runs 1.0.0 (in-memory VM), UAT has 1.1.0 with coverage recorded in the ledger (Azurite),
 * the registry holds both (in memory), backups go to Azurite, Slack is whatever adapter the test gives.
 * Shared by the approval-link and Slack-button suites.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import type { DeployPorts } from '../../functions/activities/deploy';
import { setProdPorts, type ProdOptions, type ProdPorts } from '../../functions/activities/prod';
import { BackupStore } from '../../shared/adapters/backup-store';
import { createLedger } from '../../shared/adapters/ledger';
import { createSlack, type SlackPort } from '../../shared/adapters/slack';
import { startFakeSlack, type FakeSlack } from './fake-slack';
import { signingKeys } from '../../shared/domain/approval-token';
import type { DeploySettings } from '../../shared/domain/deploy-plan';
import { createLogger, type Logger } from '../../shared/log';
import { createFakeVm } from './fake-vm-shell';
import { digestOf, memoryRegistry, prodImage, uatImage } from './memory-registry';
import { approverList } from './identities';

export const PROD_SHA_OLD = 'a'.repeat(40);
export const PROD_SHA_NEW = 'b'.repeat(40);

export interface ProdRigInput {
  /** the embedded host's Azurite and public URL */
  blobConnectionString: string;
  publicBaseUrl: string;
  /** a container name unique to this run (ledger + decisions; backups go to `<name>bk`) */
  container: string;
  signingKey: string;
  slack(log: Logger): SlackPort;
  options?: Partial<ProdOptions>;
  vmBehaviour?: Parameters<typeof createFakeVm>[1];
}

export async function prodRig(i: ProdRigInput) {
  const vm = createFakeVm({ image: prodImage('1.0.0') }, i.vmBehaviour ?? {});
  const registry = memoryRegistry({
    'uat-v1.0.0': digestOf('one'),
    'prod-v1.0.0': digestOf('one'),
    'uat-v1.1.0': digestOf('eleven'),
  });
  const container = BlobServiceClient.fromConnectionString(i.blobConnectionString).getContainerClient(
    i.container,
  );
  await container.createIfNotExists();
  const ledger = createLedger(container);
  await ledger.record('prod', {
    version: '1.0.0',
    sha: PROD_SHA_OLD,
    imageRef: prodImage('1.0.0'),
    imageDigest: digestOf('one'),
    deployedAt: new Date().toISOString(),
  });
  await ledger.record('uat', {
    version: '1.1.0',
    sha: PROD_SHA_NEW,
    imageRef: uatImage('1.1.0'),
    imageDigest: digestOf('eleven'),
    coverage: 91,
    deployedAt: new Date().toISOString(),
    instanceId: 'deploy-uat-1.1.0-bbbbbbbbbbbb',
  });
  const settings: DeploySettings = {
    environment: 'prod',
    url: 'http://prod.invalid',
    minFreeDiskGb: 1,
    imageWaitMinutes: 0,
    imagePollSeconds: 1,
    jobPollSeconds: 1,
    healthTimeoutSeconds: 1,
    keyUrls: [],
    keepCount: 5,
    retryFirstMs: 10,
    retryAttempts: 2,
  };
  const log = createLogger({ level: 'error', sink: () => undefined });
  const deploy: DeployPorts = {
    settings: () => settings,
    ssh: { connect: () => vm.connect() },
    backups: new BackupStore({ connectionString: i.blobConnectionString, container: `${i.container}bk` }),
    registry,
    ledger,
    notify: { notify: async () => ({ githubDeploymentId: 1 }) },
    changedFiles: async () => ['addons/sale_custom/models/sale.py'],
    log,
  };
  const options: ProdOptions = {
    approvers: approverList('alice', 'bob', 'carol'),
    approvalsRequired: 1,
    approvalTimeoutHours: 24,
    approvalReminderMinutes: 0,
    fourEyes: true,
    autoRollback: false,
    healthStableSeconds: 0,
    diskSnapshot: false,
    publicBaseUrl: i.publicBaseUrl,
    repositoryUrl: 'https://github.com/acme/odoo-mta',
    ...i.options,
  };
  const ports: ProdPorts = {
    deploy,
    options,
    keys: () => signingKeys({ APPROVAL_SIGNING_KEY: i.signingKey }),
    slack: i.slack(log),
    decisions: container,
    log,
  };
  return { vm, registry, ports };
}

/**
 * An embedded host with the whole app and the fake Slack, for the tests that drive the REAL deployProd
 * through it; `stop()` also unwires the PROD ports a test set.
 */
export async function startProdHost(
  prefix: string,
  env: Record<string, string>,
): Promise<{ host: LocalHost; slack: FakeSlack; stop(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const host = await startLocalHost({ dataDir: dir, port: 0, env: { LOG_LEVEL: 'error', ...env } });
  const slack = await startFakeSlack();
  return {
    host,
    slack,
    async stop() {
      setProdPorts(undefined);
      await host.stop();
      await slack.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A real deployProd of 1.1.0 (PROD runs 1.0.0) on `host`, its ports from `prodRig` (Slack through the
 * product's adapter to the fake Slack), requested by `requestedBy` for `reason`.
 */
export async function startProdDeploy(o: {
  host: LocalHost;
  slack: FakeSlack;
  signingKey: string;
  container: string;
  instanceId: string;
  requestedBy: string;
  reason: string;
  vmBehaviour?: ProdRigInput['vmBehaviour'];
  /** the approval policy and the rest of PROD's options, over prodRig's */
  options?: Partial<ProdOptions>;
}) {
  const r = await prodRig({
    blobConnectionString: o.host.blobConnectionString!,
    publicBaseUrl: o.host.baseUrl,
    container: o.container,
    signingKey: o.signingKey,
    slack: (log) =>
      createSlack({ botToken: o.slack.token, apiUrl: o.slack.apiUrl, channel: '#deployments', log }),
    vmBehaviour: o.vmBehaviour,
    options: o.options,
  });
  setProdPorts(r.ports);
  await o.host.durable.startNew('deployProd', {
    instanceId: o.instanceId,
    input: {
      environment: 'prod',
      version: '1.1.0',
      sha: PROD_SHA_NEW,
      imageRef: uatImage('1.1.0'),
      requestedBy: o.requestedBy,
      reason: o.reason,
    },
  });
  return r;
}
