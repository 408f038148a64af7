/**
 * Attack: the deployments API and the Odoo.sh target as side doors around the coverage gate.
 *
 * - A UAT deploy through `POST /api/deployments` needed no passed gate: any commit (by `sha`), or a
 *   version whose commit the gate blocked, went to UAT — and its ledger entry then made the release
 *   eligible for PROD and for Odoo.sh.
 * - The Odoo.sh "passed the gate" check trusted a `deploy/uat` GitHub commit status, which anyone with
 *   write access to the repository can post.
 *
 * Now: an API deploy to UAT needs the commit's gate to have passed as the intake recorded it (and the
 * version the intake accepted for it); `overrideGate` with a reason deploys anyway, records who and
 * why, and the release it puts on UAT is never eligible for PROD or Odoo.sh. Odoo.sh eligibility comes
 * from the pipeline's own UAT ledger.
 *
 * Real parts: the embedded host with the app's functions, Azurite (ledger, intake records), the real
 * deployLane/deployUat orchestrations; the VM is the in-memory VM shell, the registry in memory, GitHub
 * a fake speaking its REST API (test/support/fake-github.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import { setDeployPorts, type DeployPorts } from '../../functions/activities/deploy';
import { createOdooShActivities } from '../../functions/activities/odoosh';
import { createLedger, type Ledger } from '../../shared/adapters/ledger';
import { createDeliveriesStore, type DeliveriesStore } from '../../shared/adapters/deliveries';
import { BackupStore } from '../../shared/adapters/backup-store';
import { createVerificationStore } from '../../shared/adapters/backup-verifications';
import type { RegistryClient } from '../../shared/adapters/registry';
import type { OdooShRepoPort } from '../../shared/adapters/odoosh';
import type { GitHubPort } from '../../shared/adapters/github';
import type { DeployResult, DeploySettings } from '../../shared/domain/deploy-plan';
import { createLogger } from '../../shared/log';
import { createFakeVm } from '../support/fake-vm-shell';

const IMG = (v: string) => `reg.local/odoo-mta:uat-v${v}`;
const SHA = {
  gated: '1'.repeat(40),
  blocked: '2'.repeat(40),
  unknown: '3'.repeat(40),
  override: '4'.repeat(40),
  ran: '5'.repeat(40),
};

let dir: string;
let host: LocalHost;
let container: ContainerClient;
let ledger: Ledger;
let store: DeliveriesStore;

const registry: RegistryClient = {
  kind: 'memory',
  async listTags() {
    return ['uat-v1.0.0', 'uat-v1.5.0', 'uat-v1.6.0', 'uat-v1.7.0', 'uat-v6.6.6'];
  },
  async resolve(_repo, tag) {
    return {
      digest: `sha256:${Buffer.from(tag).toString('hex').padEnd(64, '0').slice(0, 64)}`,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
    };
  },
  async retag() {
    throw new Error('not used');
  },
  async deleteTag() {
    /* retention: nothing */
  },
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sidedoors-api-'));
  host = await startLocalHost({
    dataDir: dir,
    port: 0,
    log: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    },
    env: { LOG_LEVEL: 'error', REGISTRY_URL: 'http://reg.local', REGISTRY_REPOSITORY: 'odoo-mta' },
  });
  const conn = host.blobConnectionString ?? process.env.BACKUP_STORAGE_CONNECTION!;
  container = BlobServiceClient.fromConnectionString(conn).getContainerClient('ledger');
  await container.createIfNotExists();
  ledger = createLedger(container);
  store = createDeliveriesStore(container);
  const vm = createFakeVm();
  const settings: DeploySettings = {
    environment: 'uat',
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
  };
  const ports: DeployPorts = {
    settings: () => settings,
    ssh: { connect: () => vm.connect() },
    backups: new BackupStore({ connectionString: conn, container: 'backups' }),
    verifications: createVerificationStore(container),
    registry,
    ledger,
    notify: {
      async notify() {
        return {};
      },
    },
    changedFiles: async () => ['addons/sale_custom/models/sale.py'],
    log: createLogger({ level: 'error', sink: () => undefined }),
  };
  setDeployPorts(ports);

  // the intake's records: what the gate decided for each commit (as functions/activities/intake.ts writes them)
  const now = new Date().toISOString();
  const gate = (sha: string, state: 'passed' | 'blocked', reason: string) =>
    store.putCommit({
      sha,
      state,
      firstSeenAt: now,
      deadline: now,
      trigger: 'workflow_run',
      branch: 'main',
      mergedBy: 'alice',
      deliveryId: `d-${sha.slice(0, 4)}`,
      reason,
      ...(state === 'passed' ? { messageId: `deploy-uat-${sha}` } : {}),
    });
  await gate(SHA.gated, 'passed', 'coverage 91.5 % ≥ 80 %');
  await store.record({
    decision: 'accepted',
    reason: 'coverage 91.5 % ≥ 80 %',
    sha: SHA.gated,
    version: '1.5.0',
    deliveryId: `d-${SHA.gated.slice(0, 4)}`,
    status: 202,
  });
  await gate(SHA.blocked, 'blocked', 'coverage 41.0 % < 80 %');
  await gate(SHA.ran, 'passed', 'coverage 88.0 % ≥ 80 %');
  // UAT ran 1.0.0 from a gated commit, and 6.6.6 from a commit the gate blocked (e.g. deployed by hand)
  await ledger.record('uat', {
    version: '6.6.6',
    sha: SHA.blocked,
    imageRef: IMG('6.6.6'),
    deployedAt: now,
    coverage: 41,
  });
  await ledger.record('uat', {
    version: '1.0.0',
    sha: SHA.ran,
    imageRef: IMG('1.0.0'),
    deployedAt: now,
    coverage: 88,
  });
}, 270000);

afterAll(async () => {
  setDeployPorts(undefined);
  await host?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const post = async (body: unknown) => {
  const res = await fetch(`${host.baseUrl}/api/deployments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-functions-key': host.keys.functionKey },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

async function finished(id: string): Promise<DeployResult> {
  for (let i = 0; i < 200 && !(await host.durable.getStatus(id)); i++)
    await new Promise((r) => setTimeout(r, 50));
  return (await host.durable.waitForCompletion(id, 60000)).output as DeployResult;
}

it('a commit the gate never saw cannot be deployed to UAT through the API', async () => {
  const r = await post({ environment: 'uat', version: '1.6.0', sha: SHA.unknown });
  expect(r.status).toBe(422);
  expect(r.body.error).toBe('DEPLOYMENTS.GATE_NOT_PASSED');
  expect(String(r.body.message)).toMatch(/overrideGate/);
  expect(await host.durable.getStatus(`deploy-uat-1.6.0-${SHA.unknown.slice(0, 12)}`)).toBeUndefined();
});

it('a commit the gate blocked cannot be (re)deployed to UAT through the API, even though UAT ran it once', async () => {
  const r = await post({ environment: 'uat', version: '6.6.6' });
  expect(r.status).toBe(422);
  expect(r.body.error).toBe('DEPLOYMENTS.GATE_NOT_PASSED');
  expect(String(r.body.message)).toMatch(/coverage 41\.0 %/);
});

it('a gated commit cannot carry another release: the version must be the one the intake accepted for it', async () => {
  const r = await post({ environment: 'uat', version: '1.7.0', sha: SHA.gated });
  expect(r.status).toBe(422);
  expect(r.body.error).toBe('DEPLOYMENTS.VERSION_MISMATCH');
});

it('a release that UAT ran from a blocked commit is not eligible for PROD', async () => {
  const r = await post({ environment: 'prod', version: '6.6.6', requestedBy: 'alice', reason: 'ship it' });
  expect(r.status).toBe(422);
  expect(r.body.error).toBe('DEPLOYMENTS.NOT_ON_UAT');
});

it('overrideGate needs a reason', async () => {
  const r = await post({ environment: 'uat', version: '1.6.0', sha: SHA.override, overrideGate: true });
  expect(r.status).toBe(400);
  expect(String(r.body.message)).toMatch(/reason/);
});

/** Odoo.sh's activities on this file's ledger and gate store, GitHub showing a `deploy/uat: success` status anyone with write access could post by hand. */
const odooShWithPostedStatus = () =>
  createOdooShActivities({
    repo: { branchHead: async () => undefined } as unknown as OdooShRepoPort,
    github: {
      statusHistory: async () => [
        {
          context: 'deploy/uat',
          state: 'success',
          description: 'posted by hand',
          creator: { login: 'mallory', id: 4242 },
        },
      ],
    } as unknown as GitHubPort,
    gateContext: 'deploy/uat',
    ledger,
    gates: store,
    log: createLogger({ level: 'error', sink: () => undefined }),
  });

it('a gate override deploys, records who and why — and the release is never eligible for PROD or Odoo.sh', async () => {
  const r = await post({
    environment: 'uat',
    version: '1.6.0',
    sha: SHA.override,
    overrideGate: true,
    reason: 'hotfix while CI is down',
  });
  expect(r.status).toBe(202);
  const id = String(r.body.id);
  expect((await finished(id)).outcome).toBe('Succeeded');

  // who and why: on the deployment, in the ledger and in the intake's decision records
  const shown = (await (
    await fetch(`${host.baseUrl}/api/deployments/${id}`, {
      headers: { 'x-functions-key': host.keys.functionKey },
    })
  ).json()) as Record<string, unknown>;
  expect(shown.gateOverride).toMatchObject({
    by: expect.stringMatching(/^key:/),
    reason: 'hotfix while CI is down',
  });
  const run = (await ledger.history('uat', 10)).find((x) => x.sha === SHA.override);
  expect(run?.gateOverride).toMatchObject({
    by: expect.stringMatching(/^key:/),
    reason: 'hotfix while CI is down',
  });
  const records = await store.list(50);
  expect(records.find((d) => d.sha === SHA.override && d.decision === 'gate-overridden')).toMatchObject({
    version: '1.6.0',
    reason: expect.stringContaining('hotfix while CI is down'),
  });

  // not eligible for PROD
  const prod = await post({
    environment: 'prod',
    version: '1.6.0',
    requestedBy: 'alice',
    reason: 'ship it',
  });
  expect(prod.status).toBe(422);
  expect(prod.body.error).toBe('DEPLOYMENTS.NOT_ON_UAT');

  // not eligible for Odoo.sh — even with a `deploy/uat: success` status anyone with write access can post
  const odoosh = odooShWithPostedStatus();
  const pre = await odoosh.preflight({
    branch: 'staging',
    stage: 'staging',
    version: '1.6.0',
    sha: SHA.override,
    force: false,
  } as never);
  expect(pre).toMatchObject({ ok: false, code: 'ODOOSH.GATE_NOT_PASSED' });
}, 360000);

it('Odoo.sh: a commit UAT never ran is refused even with a posted deploy/uat success status; one UAT ran from a passed gate goes', async () => {
  const odoosh = odooShWithPostedStatus();
  expect(
    await odoosh.preflight({
      branch: 'staging',
      stage: 'staging',
      version: '1.6.0',
      sha: SHA.unknown,
      force: false,
    } as never),
  ).toMatchObject({ ok: false, code: 'ODOOSH.GATE_NOT_PASSED' });
  expect(
    await odoosh.preflight({
      branch: 'staging',
      stage: 'staging',
      version: '1.0.0',
      sha: SHA.ran,
      force: false,
    } as never),
  ).toMatchObject({ ok: true, gate: 'uat-ledger' });
});

it('a gated release goes to UAT through the API, and a redeploy of what UAT ran from a passed gate too', async () => {
  const first = await post({ environment: 'uat', version: '1.5.0', sha: SHA.gated });
  expect(first.status).toBe(202);
  expect((await finished(String(first.body.id))).outcome).toBe('Succeeded');
  const again = await post({ environment: 'uat', version: '1.0.0' });
  expect(again.status).toBe(202);
  expect((await finished(String(again.body.id))).outcome).toBe('Succeeded');
}, 360000);
