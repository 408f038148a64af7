/**
 * The ports of a PROD deploy for tests that drive the REAL deployProd orchestrator in the embedded
 * host: PROD runs 1.0.0 (in-memory VM), UAT has 1.1.0 with coverage recorded in the ledger (Azurite),
 * the registry holds both (in memory), backups go to Azurite, Slack is whatever adapter the test gives.
 * Shared by the approval-link and Slack-button suites.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import type { DeployPorts } from '../../functions/activities/deploy';
import type { ProdOptions, ProdPorts } from '../../functions/activities/prod';
import { BackupStore } from '../../shared/adapters/backup-store';
import { createLedger } from '../../shared/adapters/ledger';
import type { SlackPort } from '../../shared/adapters/slack';
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
