/**
 * The embedded host as the PROD deploy API tests need it: its real HTTP routes, Azurite (the ledger),
 * a real docker-registry (the `uat-vX.Y.Z` image check) and the fake Slack behind the product's adapter
 * (the approval request reaches it). No VM: the deploys stop at the approval wait. Each test file
 * records the UAT releases it needs in `ledger`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalHost, type LocalHost } from '../../local/host';
import { freePort } from '../../local/azurite';
import { setProdPorts } from '../../functions/activities/prod';
import { createLedger, ledgerContainer, type Ledger } from '../../shared/adapters/ledger';
import { loadConfig } from '../../shared/config';
import { startRegistry, type RegistryHandle } from './registry';
import { startFakeSlack, type FakeSlack } from './fake-slack';

export interface ProdApiRig {
  host: LocalHost;
  reg: RegistryHandle;
  /** `host:port` of the registry, as image references name it */
  registryHost: string;
  slack: FakeSlack;
  ledger: Ledger;
  stop(): Promise<void>;
}

/** `approvers`: the APPROVERS setting (test/support/identities `approversSetting`). */
export async function startProdApiHost(prefix: string, approvers: string): Promise<ProdApiRig> {
  const reg = await startRegistry();
  const slack = await startFakeSlack();
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  setProdPorts(undefined);
  const port = await freePort();
  const host = await startLocalHost({
    dataDir: dir,
    port,
    env: {
      LOG_LEVEL: 'error',
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      REGISTRY_KIND: 'oci',
      REGISTRY_URL: reg.url,
      REGISTRY_REPOSITORY: 'odoo-mta',
      APPROVAL_SIGNING_KEY: randomBytes(32).toString('base64url'),
      APPROVERS: approvers,
      SLACK_BOT_TOKEN: slack.token,
      SLACK_API_URL: slack.apiUrl,
    },
  });
  return {
    host,
    reg,
    registryHost: new URL(reg.url).host,
    slack,
    ledger: createLedger(ledgerContainer(loadConfig(process.env))),
    async stop() {
      await host.stop();
      setProdPorts(undefined);
      await slack.stop();
      await reg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
