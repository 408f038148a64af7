/**
 * The requester is the authenticated caller, never a body field (issue #15, attacks 2 and 6), tried
 * through the embedded host's real `POST /api/deployments` with Azurite, a real docker-registry and the
 * fake Slack behind the product's adapter. Failed before the fix: the deploy recorded whatever
 * `requestedBy` said (an approver with a function key requested "as bob" and approved it as alice), and
 * the deployments API returned every approver's nonce.
 */
import type { LocalHost } from '../../local/host';
import { keyId } from '../../shared/domain/identity';
import type { FakeSlack } from '../support/fake-slack';
import { startProdApiHost, type ProdApiRig } from '../support/prod-api-rig';
import { requestProdDeploy, waitForLinks } from '../support/prod-approval';
import { approversSetting, cookieOf, PEOPLE } from '../support/identities';

const WAIT = 180_000;
jest.setTimeout(600_000);

describe('the requester of a PROD deploy is who is authenticated (security)', () => {
  let rig: ProdApiRig;
  let host: LocalHost;
  let slack: FakeSlack;

  beforeAll(async () => {
    rig = await startProdApiHost('sec-requester-', approversSetting('alice', 'bob', 'carol'));
    ({ host, slack } = rig);
    for (const [v, c] of [
      ['1.1.0', '1'],
      ['1.2.0', '2'],
    ] as const) {
      const img = await rig.reg.pushImage('odoo-mta', `uat-v${v}`, { seed: v });
      await rig.ledger.record('uat', {
        version: v,
        sha: c.repeat(40),
        imageRef: `${rig.registryHost}/odoo-mta:uat-v${v}`,
        imageDigest: img.digest,
        deployedAt: new Date().toISOString(),
      });
    }
  });
  afterAll(() => rig?.stop());

  const inputOf = async (id: string) =>
    (await host.durable.getStatus(id, { showInput: true }))?.input as Record<string, unknown>;

  it('an approver signed in asks: the deploy records their Entra id, they get no link, and "requestedBy" in the body changes nothing', async () => {
    const r = await requestProdDeploy(
      host.baseUrl,
      host.keys.functionKey,
      { version: '1.1.0', requestedBy: 'bob', reason: 'release' },
      cookieOf(host.keys.masterKey, 'alice'),
    );
    expect(r.status).toBe(202);
    const id = String(r.body.id);
    const links = await waitForLinks(slack.posts, id);
    expect(await inputOf(id)).toMatchObject({
      requestedBy: `entra:${PEOPLE.alice.oid}`,
      requestedByName: PEOPLE.alice.email,
    });
    expect(links.map((l) => l.approver).sort()).toEqual(['bob', 'carol']); // four-eyes on the identity, not on "bob"
    // end it (one PROD deploy at a time): bob rejects
    const pending = (
      (await host.durable.getStatus(id))?.customStatus as {
        pendingApprovals: Array<{ nonce: string; approver: string }>;
      }
    ).pendingApprovals;
    const bobs = pending.find((p) => p.approver === 'bob')!;
    await host.durable.raiseEvent(id, 'approval-decision', {
      nonce: bobs.nonce,
      approver: 'bob',
      action: 'reject',
    });
    await host.durable.waitForCompletion(id, WAIT);
  });

  it('a function-key caller is recorded as key:<id> whatever name it gives; every approver may approve it', async () => {
    const r = await requestProdDeploy(host.baseUrl, host.keys.functionKey, {
      version: '1.2.0',
      requestedBy: 'ALICE',
      reason: 'release',
    });
    expect(r.status).toBe(202);
    const id = String(r.body.id);
    const links = await waitForLinks(slack.posts, id);
    expect(await inputOf(id)).toMatchObject({
      requestedBy: `key:${keyId(host.keys.functionKey)}`,
      requestedByName: `key:${keyId(host.keys.functionKey)} for ALICE`,
    });
    expect(JSON.stringify(await inputOf(id))).not.toContain(host.keys.functionKey);
    expect(links.map((l) => l.approver).sort()).toEqual(['alice', 'bob', 'carol']);

    // and the deployments API shows the request without any nonce
    for (const p of [`/api/deployments/${id}`, '/api/deployments?environment=prod']) {
      const res = await fetch(`${host.baseUrl}${p}`, {
        headers: { 'x-functions-key': host.keys.functionKey },
      });
      const text = await res.text();
      expect(res.status).toBe(200);
      expect(text).toContain('pendingApprovals');
      expect(text).not.toContain('nonce');
      for (const l of links)
        expect(text).not.toContain(
          JSON.parse(Buffer.from(l.token.split('.')[0], 'base64url').toString()).n as string,
        );
    }
  });
});
