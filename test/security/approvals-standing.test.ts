/**
 * A signed approval link is not a standing right to decide: what the server knows NOW wins over what
 * the link says. Tried as an attacker (or a former approver) would, against the embedded host (real
 * HTTP, the real approval functions, Azurite for the used-link markers):
 * - an approver taken off APPROVERS after the link was sent cannot decide with it;
 * - an approver with no web identity (Slack only) cannot decide on the page, whoever is signed in;
 * - a correctly signed link whose action is not the one pending for its nonce decides nothing;
 * - without a signing key the server decides nothing and says it is not configured.
 * In each case the deploy still waits for the decision, and the link's nonce is not used up.
 */
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import type { LocalHost } from '../../local/host';
import { approvalLink, signApprovalToken, signingKeys } from '../../shared/domain/approval-token';
import { issueCsrf } from '../../functions/approvals';
import {
  decideAs,
  probeRequests,
  startApprovalHost,
  type ProbeOutput,
  PROBE_TEST_MS,
} from '../support/approval-probe';
import { approversSetting, cookieOf, PEOPLE, type Who } from '../support/identities';

jest.setTimeout(PROBE_TEST_MS);

const key = randomBytes(36).toString('base64url');
const fullApproval = {
  check_uat: 'yes',
  check_backup: 'yes',
  check_rollback: 'yes',
  confirm: 'APPROVE',
  decision: 'approve',
};
const EVERYONE = approversSetting('alice', 'bob', 'carol');

describe('a link decides only while the server still says it may (security)', () => {
  let dir: string;
  let host: LocalHost;

  beforeAll(
    async () => {
      ({ host, dir } = await startApprovalHost('sec-standing-', {
        APPROVAL_SIGNING_KEY: key,
        APPROVERS: EVERYONE,
      }));
    },
    Math.max(90_000, PROBE_TEST_MS),
  );
  afterEach(() => {
    process.env.APPROVERS = EVERYONE;
    process.env.APPROVAL_SIGNING_KEY = key;
  });
  afterAll(async () => {
    await host?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const { statusOf, stillPending, request, completed } = probeRequests({
    host: () => host,
    key: () => signingKeys({ APPROVAL_SIGNING_KEY: key })[0],
    idFill: 's',
  });

  const decide = (link: string, as: Who, form: Record<string, string> = fullApproval) =>
    decideAs(host, link, as, form);
  const used = (nonce: string) =>
    BlobServiceClient.fromConnectionString(host.blobConnectionString!)
      .getContainerClient('ledger')
      .getBlockBlobClient(`approvals/used/${nonce}.json`)
      .exists();

  it('an approver taken off APPROVERS after the link was sent cannot decide with it (403, still pending)', async () => {
    const r = await request();
    process.env.APPROVERS = approversSetting('bob', 'carol'); // alice left the team
    const res = await decide(r.links[0], 'alice');
    expect(res.status).toBe(403);
    expect(res.html).toContain('APPROVAL.NOT_AN_APPROVER');
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
    expect(await used(r.pending[0].nonce)).toBe(false);
    // the approvers still on the list decide as before
    expect((await decide(r.links[1], 'bob')).status).toBe(200);
    const s = await completed(r.id);
    expect((s.output as ProbeOutput).decisions.map((d) => d.approver)).toEqual(['bob']);
  });

  it('an approver with no web identity decides in Slack only: the page refuses whoever is signed in', async () => {
    // alice keeps her Slack id but has no entra= binding: the page cannot tell that it is her
    process.env.APPROVERS = `alice:slack=${PEOPLE.alice.slack}:name=${PEOPLE.alice.name}, ${approversSetting('bob', 'carol')}`;
    const r = await request();
    for (const who of ['alice', 'bob'] as const) {
      const res = await decide(r.links[0], who);
      expect(res.status).toBe(403);
      expect(res.html).toContain('APPROVAL.NO_WEB_IDENTITY');
    }
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
    expect(await used(r.pending[0].nonce)).toBe(false);
  });

  it('a signed link whose action is not the pending one (rollback on an approval) decides nothing (409)', async () => {
    const r = await request();
    const forged = signApprovalToken(
      {
        instanceId: r.id,
        approver: 'alice',
        action: 'rollback',
        nonce: r.pending[0].nonce,
        exp: Date.now() + 600_000,
      },
      signingKeys({ APPROVAL_SIGNING_KEY: key })[0],
    );
    const link = approvalLink(host.baseUrl, forged);
    const cookie = cookieOf(host.keys.masterKey, 'alice');
    // the page says so and offers no form
    const page = await fetch(link, { headers: { accept: 'text/html', cookie } });
    expect(page.status).toBe(409);
    const pageHtml = await page.text();
    expect(pageHtml).toContain('APPROVAL.NOT_PENDING');
    expect(pageHtml).not.toContain('<form');
    // and a POST carrying a valid security token (computed with the key) is refused the same way
    const res = await fetch(link, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'sec-fetch-site': 'same-origin',
        origin: 'null',
        cookie,
      },
      body: new URLSearchParams({
        ...issueCsrf(signingKeys({ APPROVAL_SIGNING_KEY: key })[0], forged),
        confirm: 'ROLLBACK',
        decision: 'rollback',
        check_uat: 'yes',
        check_backup: 'yes',
        check_rollback: 'yes',
      }).toString(),
    });
    expect(res.status).toBe(409);
    expect(await res.text()).toContain('APPROVAL.NOT_PENDING');
    expect((await statusOf(r.id))?.runtimeStatus).toBe('Running');
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
    expect(await used(r.pending[0].nonce)).toBe(false);
  });

  it('without a signing key nothing is decided: 503 "not configured", the link works again once the key is back', async () => {
    const r = await request();
    delete process.env.APPROVAL_SIGNING_KEY;
    const res = await fetch(r.links[0], {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'sec-fetch-site': 'same-origin',
        origin: 'null',
        cookie: cookieOf(host.keys.masterKey, 'alice'),
      },
      body: new URLSearchParams(fullApproval).toString(),
    });
    expect(res.status).toBe(503);
    const html = await res.text();
    expect(html).toContain('APPROVAL.NOT_CONFIGURED');
    expect(html).not.toContain(key);
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
    process.env.APPROVAL_SIGNING_KEY = key;
    expect((await decide(r.links[0], 'alice')).status).toBe(200);
  });
});
