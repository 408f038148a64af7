/**
 * `POST /api/deployments` for PROD and the deployments API's view of `deployProd`, through the embedded
 * host's real HTTP routes: Azurite (ledger), a real docker-registry (the `uat-vX.Y.Z` image check), a
 * Slack server behind the real adapter (the approval request reaches it). No VM: the deploys stop at
 * the approval wait, which is all these answers depend on.
 */
import type { LocalHost } from '../../local/host';
import type { ProdCustomStatus, ProdDeployResult } from '../../functions/orchestrators/deployProd';
import type { Ledger } from '../../shared/adapters/ledger';
import type { RegistryHandle } from '../support/registry';
import type { FakeSlack } from '../support/fake-slack';
import { startProdApiHost, type ProdApiRig } from '../support/prod-api-rig';
import { approvalLinks, requestProdDeploy, waitForLinks } from '../support/prod-approval';
import { approversSetting } from '../support/identities';
import { until } from '../support/until';

jest.setTimeout(240_000);

const SHA = (c: string) => c.repeat(40);

describe('PROD deploy requests (POST /api/deployments environment=prod)', () => {
  let rig: ProdApiRig;
  let host: LocalHost;
  let reg: RegistryHandle;
  let slack: FakeSlack;
  let ledger: Ledger;
  let registryHost: string;

  beforeAll(async () => {
    rig = await startProdApiHost('deploy-prod-api-', approversSetting('bob', 'carol'));
    ({ host, reg, slack, ledger, registryHost } = rig);
    const one = await reg.pushImage('odoo-mta', 'uat-v1.1.0');
    const two = await reg.pushImage('odoo-mta', 'uat-v1.2.0', { seed: 'first' });
    const at = new Date().toISOString();
    await ledger.record('uat', {
      version: '1.1.0',
      sha: SHA('1'),
      imageRef: `${registryHost}/odoo-mta:uat-v1.1.0`,
      imageDigest: one.digest,
      deployedAt: at,
    });
    await ledger.record('uat', {
      version: '1.2.0',
      sha: SHA('2'),
      imageRef: `${registryHost}/odoo-mta:uat-v1.2.0`,
      imageDigest: two.digest,
      deployedAt: at,
    });
    await ledger.record('uat', {
      version: '1.3.0',
      sha: SHA('3'),
      imageRef: `${registryHost}/odoo-mta:uat-v1.3.0`,
      deployedAt: at,
    });
    await reg.pushImage('odoo-mta', 'uat-v1.2.0', { seed: 'second' }); // the tag moved after UAT ran it
  });
  afterAll(() => rig?.stop());

  const post = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    fetch(`${host.baseUrl}/api/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-functions-key': host.keys.functionKey, ...headers },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
  const get = (p: string) =>
    fetch(`${host.baseUrl}${p}`, { headers: { 'x-functions-key': host.keys.functionKey } }).then(
      async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }),
    );
  const prodDeploys = async () =>
    (await host.durable.listInstances({})).instances.filter((s) => s.name === 'deployProd');

  it('bad input: 400 naming each problem, 401 without a key; nothing starts', async () => {
    const r = await post({
      environment: 'prod',
      version: '1.1',
      requestedBy: 'alice; rm -rf /',
      reason: '',
      force: true,
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('DEPLOYMENTS.BAD_REQUEST');
    expect(r.body.problems).toEqual([
      expect.stringContaining('version'),
      expect.stringContaining('requestedBy'),
      expect.stringContaining('reason'),
      expect.stringContaining('unknown field "force"'),
    ]);
    expect(
      (await post({ environment: 'prod', version: '1.1.0', requestedBy: 'alice', reason: 'x'.repeat(501) }))
        .status,
    ).toBe(400);
    const noKey = await fetch(`${host.baseUrl}/api/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ environment: 'prod', version: '1.1.0', requestedBy: 'alice', reason: 'x' }),
    });
    expect(noKey.status).toBe(401);
    expect(await prodDeploys()).toHaveLength(0);
  });

  it('422 unless the version succeeded on UAT and its uat image is still the one UAT ran', async () => {
    const notOnUat = await post({
      environment: 'prod',
      version: '2.0.0',
      requestedBy: 'alice',
      reason: 'hotfix',
    });
    expect(notOnUat).toMatchObject({ status: 422, body: { error: 'DEPLOYMENTS.NOT_ON_UAT' } });
    expect(String(notOnUat.body.message)).toMatch(/2\.0\.0 has not succeeded on UAT.*1\.3\.0/);
    expect(
      await post({ environment: 'prod', version: '1.3.0', requestedBy: 'alice', reason: 'hotfix' }),
    ).toMatchObject({ status: 422, body: { error: 'DEPLOYMENTS.IMAGE_MISSING' } });
    expect(
      await post({ environment: 'prod', version: '1.2.0', requestedBy: 'alice', reason: 'hotfix' }),
    ).toMatchObject({ status: 422, body: { error: 'DEPLOYMENTS.IMAGE_CHANGED' } });
    expect(await prodDeploys()).toHaveLength(0);
  });

  it('202 through the PROD lane: the approval request reaches Slack, the API shows it waiting; 409 for a second request; after a reject a new request gets -r2', async () => {
    const r = await requestProdDeploy(host.baseUrl, host.keys.functionKey, {
      version: '1.1.0',
      requestedBy: 'alice',
      reason: 'release',
    });
    expect(r.status).toBe(202);
    const id = `deploy-prod-1.1.0-${SHA('1').slice(0, 12)}`;
    expect(r.body).toMatchObject({ id, statusUrl: `/api/deployments/${id}`, via: 'lane started' });
    const links = await waitForLinks(slack.posts, id);
    expect(links.map((l) => l.approver).sort()).toEqual(['bob', 'carol']);

    // the links leave from inside the activity that asks; the deploy shows "awaiting approval" once that
    // activity has returned and the orchestration moved on (on the real engine, a few queue hops later)
    const one = await until('the deploy to show it awaits approval', async () => {
      const res = await get(`/api/deployments/${id}`);
      return (res.body.status as ProdCustomStatus | undefined)?.step === 'awaiting-approval'
        ? res
        : undefined;
    });
    expect(one.status).toBe(200);
    const status = one.body.status as ProdCustomStatus;
    // the requester is the function key (its id), with the label its caller gave
    expect(status).toMatchObject({
      kind: 'deployProd',
      step: 'awaiting-approval',
      environment: 'prod',
      version: '1.1.0',
      requestedBy: expect.stringMatching(/^key:[0-9a-f]{12} for alice$/),
      reason: 'release',
      approvals: { required: 1, received: [] },
    });
    expect(status.pendingApprovals).toHaveLength(2);
    expect(JSON.stringify(one.body)).not.toContain('nonce'); // nonces never leave the server but in their own link
    const pendingNow = ((await host.durable.getStatus(id))?.customStatus as ProdCustomStatus)
      .pendingApprovals;
    const list = await get('/api/deployments?environment=prod');
    expect((list.body.items as Array<{ id: string }>).map((i) => i.id)).toEqual([id]);

    expect(
      await post({ environment: 'prod', version: '1.1.0', requestedBy: 'alice', reason: 'again' }),
    ).toMatchObject({ status: 409, body: { error: 'DEPLOYMENTS.BUSY' } });

    await host.durable.raiseEvent(id, 'approval-decision', {
      nonce: pendingNow[0].nonce,
      approver: pendingNow[0].approver,
      action: 'reject',
      comment: 'not today',
    });
    const done = await host.durable.waitForCompletion(id, 30_000);
    expect((done.output as ProdDeployResult).outcome).toBe('Rejected');

    const again = await post({
      environment: 'prod',
      version: '1.1.0',
      requestedBy: 'alice',
      reason: 'tomorrow',
    });
    expect(again).toMatchObject({ status: 202, body: { id: `${id}-r2` } });
    expect((await waitForLinks(slack.posts, `${id}-r2`)).length).toBe(2);
    expect(approvalLinks(slack.posts, id)).toHaveLength(2); // the first request's message is still there, its links spent
  });

  it('a re-deploy of the version PROD runs is refused (409 naming it) unless asked for with sameVersion, then accepted with a warning', async () => {
    await ledger.record('prod', {
      version: '1.1.0',
      sha: SHA('1'),
      imageRef: `${registryHost}/odoo-mta:prod-v1.1.0`,
      deployedAt: new Date().toISOString(),
    });
    const before = (await prodDeploys()).length;
    const refused = await post({
      environment: 'prod',
      version: '1.1.0',
      requestedBy: 'alice',
      reason: 'same again',
    });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({
      error: 'DEPLOYMENTS.SAME_VERSION',
      running: { version: '1.1.0', sha: SHA('1') },
    });
    expect(refused.body.message).toMatch(
      /^PROD already runs 1\.1\.0 .*"sameVersion": true \(CLI: --same-version\)$/,
    );
    expect((await prodDeploys()).length).toBe(before); // nothing started
    expect(
      await post({
        environment: 'prod',
        version: '1.1.0',
        requestedBy: 'alice',
        reason: 'x',
        sameVersion: 'yes',
      }),
    ).toMatchObject({ status: 400, body: { problems: ['sameVersion must be true or false'] } });

    // the -r2 deploy of the previous test still waits: reject it so this one is not BUSY
    const live = (await prodDeploys()).find(
      (s) => s.runtimeStatus === 'Running' || s.runtimeStatus === 'Pending',
    );
    if (live) {
      const cs = (await host.durable.getStatus(live.instanceId))!.customStatus as ProdCustomStatus;
      await host.durable.raiseEvent(live.instanceId, 'approval-decision', {
        nonce: cs.pendingApprovals[0].nonce,
        approver: cs.pendingApprovals[0].approver,
        action: 'reject',
        comment: 'superseded',
      });
      await host.durable.waitForCompletion(live.instanceId, 30_000);
    }
    const forced = await post({
      environment: 'prod',
      version: '1.1.0',
      requestedBy: 'alice',
      reason: 'recover PROD',
      sameVersion: true,
    });
    expect(forced.status).toBe(202);
    expect(forced.body.warnings).toEqual([
      'PROD already runs 1.1.0: this re-deploys the same version (PROD is stopped and migrated again)',
    ]);
    // the lane starts the deploy (a moment later on the real engine): its input carries the flag
    const started = await until(
      'the forced deploy to start',
      () => host.durable.getStatus(String(forced.body.id), { showInput: true }),
      60_000,
    );
    expect((started.input as Record<string, unknown>).sameVersion).toBe(true);
  });
});
