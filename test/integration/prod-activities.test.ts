/**
 * The PROD deploy's activities one by one, on what goes wrong around them (the orchestration tests
 * drive the happy paths and the decisions): a UAT tag that moved after UAT ran, a registry that is
 * down or misbehaves, a disk snapshot asked for without a VM to snapshot, a PROD VM whose odoo-ops
 * cannot say what runs, approval links without a signing key or without a private way to reach an
 * approver, and GitHub or Slack failing where the deploy must carry on.
 *
 * Real parts: Azurite (backups, decision records), the product's Slack and GitHub Deployments adapters
 * against HTTP fakes of those SaaS, the in-memory PROD VM (odoo-ops answers) and registry of the
 * orchestration tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startAzurite, type AzuriteHandle } from '../../local/azurite';
import {
  approvalPolicy,
  createProdActivities,
  type ApprovalSummary,
  type LinkRequest,
  type ProdPorts,
} from '../../functions/activities/prod';
import { createSlack } from '../../shared/adapters/slack';
import { createGitHubDeployments } from '../../shared/adapters/github-deployments';
import { errorCode } from '../../shared/domain/errors';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';
import { startFakeGitHubDeployments, type FakeGitHubDeployments } from '../support/fake-github-deployments';
import { approverList, PEOPLE } from '../support/identities';
import { digestOf, prodImage, uatImage } from '../support/memory-registry';
import { PROD_SHA_NEW, prodRig } from '../support/prod-rig';

jest.setTimeout(60_000);

let dir: string;
let azurite: AzuriteHandle;
let slack: FakeSlack;
let n = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'prod-acts-'));
  azurite = await startAzurite({ dir: path.join(dir, 'azurite') });
  slack = await startFakeSlack();
});

afterAll(async () => {
  await slack?.stop();
  await azurite?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  slack.failWith = undefined;
  slack.posts.length = 0;
});

async function rig(
  over: Parameters<typeof prodRig>[0]['options'] = {},
  signingKey = randomBytes(32).toString('base64'),
) {
  const r = await prodRig({
    blobConnectionString: azurite.connectionString,
    publicBaseUrl: 'https://pipeline.example',
    container: `prodacts${++n}`,
    signingKey,
    slack: (log) =>
      createSlack({ botToken: slack.token, channel: '#deployments', apiUrl: slack.apiUrl, log }),
    options: over,
  });
  return { ...r, acts: createProdActivities(r.ports) };
}

/** what an activity returned as a failure (never thrown: the orchestrator reads it) */
function failure(out: unknown): { code: string; message: string } {
  expect(out).toHaveProperty('failed');
  return (out as { failed: { code: string; message: string } }).failed;
}

describe('promote: the image UAT ran becomes the PROD image, or nothing does', () => {
  it('the UAT tag was moved after UAT ran it: refused, no prod tag made', async () => {
    const { acts, registry } = await rig();
    // someone pushes another image under uat-v1.1.0 after UAT ran digest "eleven"
    registry.tags.set('uat-v1.1.0', digestOf('planted'));
    const f = failure(
      await acts.promote({
        uatImageRef: uatImage('1.1.0'),
        prodImageRef: prodImage('1.1.0'),
        expectDigest: digestOf('eleven'),
      }),
    );
    expect(f.code).toBe('PROMOTE.DIGEST_CHANGED');
    expect(f.message).toContain(digestOf('eleven'));
    expect(registry.tags.has('prod-v1.1.0')).toBe(false);
  });

  it('the same digest: a manifest copy, the prod tag points at what UAT ran', async () => {
    const { acts, registry } = await rig();
    const out = await acts.promote({
      uatImageRef: uatImage('1.1.0'),
      prodImageRef: prodImage('1.1.0'),
      expectDigest: digestOf('eleven'),
    });
    expect(out).toEqual({ digest: digestOf('eleven'), prodImageRef: prodImage('1.1.0') });
    expect(registry.tags.get('prod-v1.1.0')).toBe(digestOf('eleven'));
  });

  it('a UAT tag that is gone, a PROD reference into another repository, a tag-less reference: clear refusals', async () => {
    const { acts, registry } = await rig();
    registry.tags.delete('uat-v1.1.0');
    expect(
      failure(await acts.promote({ uatImageRef: uatImage('1.1.0'), prodImageRef: prodImage('1.1.0') })).code,
    ).toBe('REGISTRY.IMAGE_MISSING');
    expect(
      failure(
        await acts.promote({
          uatImageRef: uatImage('1.0.0'),
          prodImageRef: 'reg.local/other-app:prod-v1.0.0',
        }),
      ).code,
    ).toBe('PROMOTE.BAD_REFERENCE');
    // same repository path on another registry: the copy would be made here and PROD would pull from there
    expect(
      failure(
        await acts.promote({
          uatImageRef: uatImage('1.0.0'),
          prodImageRef: 'evil.example/odoo-mta:prod-v1.0.0',
        }),
      ).code,
    ).toBe('PROMOTE.BAD_REFERENCE');
    expect(
      failure(await acts.promote({ uatImageRef: 'reg.local/odoo-mta', prodImageRef: prodImage('1.0.0') }))
        .code,
    ).toBe('PROMOTE.BAD_REFERENCE');
    expect([...registry.tags.keys()].filter((t) => t.startsWith('prod-'))).toEqual(['prod-v1.0.0']);
  });

  it('a registry whose copy comes out with another digest: refused, named', async () => {
    const { acts, ports } = await rig();
    const reg = ports.deploy.registry!;
    ports.deploy.registry = { ...reg, retag: async () => ({ digest: digestOf('other') }) };
    const f = failure(
      await acts.promote({ uatImageRef: uatImage('1.1.0'), prodImageRef: prodImage('1.1.0') }),
    );
    expect(f.code).toBe('PROMOTE.DIGEST_CHANGED');
    expect(f.message).toMatch(/retag produced/);
  });

  it('no registry configured: CONFIG.REGISTRY_MISSING naming REGISTRY_URL', async () => {
    const { acts, ports } = await rig();
    ports.deploy.registry = undefined;
    const f = failure(
      await acts.promote({ uatImageRef: uatImage('1.1.0'), prodImageRef: prodImage('1.1.0') }),
    );
    expect(f).toEqual({ code: 'CONFIG.REGISTRY_MISSING', message: expect.stringContaining('REGISTRY_URL') });
  });

  it('a registry that is down is thrown (the orchestrator retries the activity), not a final failure', async () => {
    const { acts, ports } = await rig();
    ports.deploy.registry = {
      ...ports.deploy.registry!,
      resolve: async () => {
        throw new Error('[REGISTRY.UNAVAILABLE] connect ECONNREFUSED 127.0.0.1:5000');
      },
    };
    const err = await acts.promote({ uatImageRef: uatImage('1.1.0'), prodImageRef: prodImage('1.1.0') }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(errorCode(err)).toBe('REGISTRY.UNAVAILABLE');
  });
});

describe('backup before PROD changes', () => {
  const input = {
    environment: 'prod',
    version: '1.1.0',
    sha: PROD_SHA_NEW,
    instanceId: 'deploy-prod-1.1.0-test',
    prodImageRef: prodImage('1.1.0'),
    jobId: 'deploy-prod-1.1.0-test.backup',
    at: '2026-12-06T10:00:00.000Z',
  };

  it('PROD_DISK_SNAPSHOT on without PROD_VM_RESOURCE_ID: CONFIG.SNAPSHOT naming the missing setting', async () => {
    const { acts } = await rig({ diskSnapshot: true });
    const f = failure(await acts.backupStart({ ...input, snapshot: true }));
    expect(f.code).toBe('CONFIG.SNAPSHOT');
    expect(f.message).toMatch(/PROD_VM_RESOURCE_ID/);
  });

  it('a PROD VM without a data disk to snapshot: BACKUP.SNAPSHOT_EMPTY naming the VM', async () => {
    const vmId =
      '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/odoo-prod';
    const { acts, ports } = await rig({ diskSnapshot: true, vmResourceId: vmId });
    ports.snapshot = async () => [];
    const f = failure(await acts.backupStart({ ...input, snapshot: true }));
    expect(f.code).toBe('BACKUP.SNAPSHOT_EMPTY');
    expect(f.message).toContain(vmId);
  });

  it('odoo-ops cannot tell what runs: BACKUP.FAILED with the end of its stderr, no backup streamed', async () => {
    const { acts, ports, vm } = await rig();
    ports.deploy.ssh = {
      connect: async () => {
        const sh = await vm.connect();
        return {
          ...sh,
          run: async (cmd, o) =>
            / current$/.test(cmd)
              ? {
                  code: 3,
                  stdout: '',
                  stderrTail: 'docker: not running\nodoo-ops: cannot read the state file\n',
                }
              : sh.run(cmd, o),
        };
      },
    };
    const f = failure(await acts.backupStart({ ...input, snapshot: false }));
    expect(f.code).toBe('BACKUP.FAILED');
    expect(f.message).toMatch(/exit 3.*docker: not running \| odoo-ops: cannot read the state file/);
    expect(vm.calls.some((c) => c.startsWith('backup-db'))).toBe(false);
  });
});

describe('approval links', () => {
  const summary: ApprovalSummary = {
    environment: 'prod',
    version: '1.1.0',
    sha: PROD_SHA_NEW,
    requestedBy: PEOPLE.alice.name,
    reason: 'release 1.1.0',
    required: 1,
    fourEyes: true,
    expiresAt: new Date(Date.now() + 3600_000).toISOString(),
  };
  const link = (approver: string): LinkRequest => ({
    approver,
    nonce: randomBytes(8).toString('hex'),
    action: 'approval',
    exp: Date.now() + 3600_000,
  });

  it('no signing key: APPROVAL.NO_KEY and no one receives anything', async () => {
    const { acts } = await rig({}, '');
    const f = failure(
      await acts.requestLinks({ kind: 'approval', instanceId: 'i1', links: [link('bob')], summary }),
    );
    expect(f.code).toBe('APPROVAL.NO_KEY');
    expect(slack.posts).toEqual([]);
  });

  it('an approver without a Slack user id: refused before anyone gets a link (no link in the channel either)', async () => {
    const noSlack = approverList('bob', 'carol').map((a) =>
      a.id === 'carol' ? { ...a, slack: undefined } : a,
    );
    const { acts } = await rig({ approvers: noSlack });
    const f = failure(
      await acts.requestLinks({
        kind: 'approval',
        instanceId: 'i2',
        links: [link('bob'), link('carol')],
        summary,
      }),
    );
    expect(f.code).toBe('APPROVAL.NO_PRIVATE_CHANNEL');
    expect(f.message).toContain('carol');
    expect(slack.posts).toEqual([]);
  });

  it('the policy names what is missing: no approvers, none reachable on Slack, no key, no Slack Web API', () => {
    const o = {
      approvers: approverList('bob'),
      approvalsRequired: 1,
      approvalTimeoutHours: 24,
      approvalReminderMinutes: 0,
      fourEyes: true,
    };
    const can = { hasKey: true, slackEnabled: true };
    const codeOf = (f: () => unknown) => {
      try {
        f();
        return undefined;
      } catch (e) {
        return errorCode(e);
      }
    };
    expect(codeOf(() => approvalPolicy({ ...o, approvers: [] }, can))).toBe('APPROVAL.NO_APPROVERS');
    expect(
      codeOf(() =>
        approvalPolicy({ ...o, approvers: o.approvers.map((a) => ({ ...a, slack: undefined })) }, can),
      ),
    ).toBe('APPROVAL.NO_PRIVATE_CHANNEL');
    expect(codeOf(() => approvalPolicy(o, { ...can, hasKey: false }))).toBe('APPROVAL.NO_KEY');
    expect(codeOf(() => approvalPolicy(o, { ...can, slackEnabled: false }))).toBe('SLACK.NOT_CONFIGURED');
    expect(approvalPolicy(o, can).approvers).toEqual(['bob']);
  });

  it('Slack down while the channel message is updated: reported, the deploy carries on', async () => {
    const { acts } = await rig();
    slack.failWith = 503;
    const out = await acts.progress({
      kind: 'approval',
      channel: { channel: 'C0DEPLOYS', ts: '1700000000.000100' },
      summary,
      recipients: ['Bob Dupont'],
      approved: [],
      pending: ['Bob Dupont'],
    });
    expect(out).toEqual({ updated: false });
  });
});

describe('GitHub deployment status of a failed PROD deploy', () => {
  let gh: FakeGitHubDeployments;
  beforeAll(async () => {
    gh = await startFakeGitHubDeployments();
  });
  afterAll(() => gh?.stop());

  async function withGitHub(): Promise<ReturnType<typeof createProdActivities>> {
    const { ports } = await rig();
    const withGh: ProdPorts = {
      ...ports,
      github: createGitHubDeployments({ repository: gh.repository, baseUrl: gh.url, token: gh.token }),
    };
    return createProdActivities(withGh);
  }

  it('posts the failure with its log link on the deployment', async () => {
    gh.deployments.push({ id: 41, ref: PROD_SHA_NEW, environment: 'prod', statuses: [] });
    const acts = await withGitHub();
    const out = await acts.githubStatus({
      githubDeploymentId: 41,
      state: 'failure',
      description: 'migrate failed: PROD is stopped',
      logUrl: 'https://pipeline.example/api/deployments/deploy-prod-1.1.0',
    });
    expect(out).toEqual({ ok: true });
    expect(gh.deployments.find((d) => d.id === 41)?.statuses).toEqual([
      expect.objectContaining({
        state: 'failure',
        description: 'migrate failed: PROD is stopped',
        log_url: 'https://pipeline.example/api/deployments/deploy-prod-1.1.0',
      }),
    ]);
  });

  it('GitHub failing is not the deploy failing: ok false, nothing thrown', async () => {
    const acts = await withGitHub();
    gh.failWith = 502;
    try {
      expect(await acts.githubStatus({ githubDeploymentId: 41, state: 'failure', description: 'x' })).toEqual(
        {
          ok: false,
        },
      );
    } finally {
      gh.failWith = undefined;
    }
    // without GitHub configured, or without a deployment id: nothing to post
    const { acts: none } = await rig();
    expect(await none.githubStatus({ githubDeploymentId: 41, state: 'failure', description: 'x' })).toEqual({
      ok: false,
    });
    expect(await acts.githubStatus({ state: 'failure', description: 'x' })).toEqual({ ok: false });
  });
});
