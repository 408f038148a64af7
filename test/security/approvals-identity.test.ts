/**
 * Issue #15, "only the named approvers approve", tried as an attacker would against the embedded host
 * (real HTTP, the real approval functions, Azurite for the used-link markers and the audit trail):
 * a valid approval link is not an identity. Each test first failed on the code before the fix (the
 * requester approved their own deploy with another approver's link, forged identity headers were
 * believed, the JSON GET handed out every approver's nonce).
 */
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { LocalHost } from '../../local/host';
import { signingKeys } from '../../shared/domain/approval-token';
import '../../functions/approvals';
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

describe('approval links are bound to the approver (security)', () => {
  let dir: string;
  let host: LocalHost;

  beforeAll(
    async () => {
      ({ host, dir } = await startApprovalHost('sec-approvals-', {
        APPROVAL_SIGNING_KEY: key,
        APPROVERS: approversSetting('alice', 'bob', 'carol'),
      }));
    },
    Math.max(90_000, PROBE_TEST_MS),
  );
  afterAll(async () => {
    await host?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** carol asks; alice and bob each get a link (the probe keeps deployProd's approval contract). */
  const { statusOf, stillPending, request, auditRecords, completed } = probeRequests({
    host: () => host,
    key: () => signingKeys({ APPROVAL_SIGNING_KEY: key })[0],
    idFill: 'e',
  });

  /** What a browser does: GET the page (as whoever holds the cookie), then POST its form. */
  const decide = (
    link: string,
    as: Who | undefined,
    form: Record<string, string> = fullApproval,
    extra: Record<string, string> = {},
  ) => decideAs(host, link, as, form, extra);

  it("the requester opening another approver's link cannot approve their own deploy (403, recorded, still pending)", async () => {
    const r = await request();
    const res = await decide(r.links[0], 'carol'); // alice's link, carol signed in
    expect(res.status).toBe(403);
    expect(res.html).toContain('This link is not yours');
    expect(res.html).toContain('Alice Martin');
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
    expect((await statusOf(r.id))?.runtimeStatus).toBe('Running');
    const audit = await auditRecords(r.id);
    expect(audit).toEqual([
      expect.objectContaining({
        approver: 'alice',
        attemptedBy: `entra:${PEOPLE.carol.oid}`,
        nonce: r.pending[0].nonce,
        why: 'identity-mismatch',
      }),
    ]);
  });

  it('another approver holding a valid link cannot decide with it (bob with alice’s link: 403)', async () => {
    const r = await request();
    expect((await decide(r.links[0], 'bob')).status).toBe(403);
    expect((await decide(r.links[0], 'bob', { decision: 'reject' })).status).toBe(403); // not even a reject
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
  });

  it('a link without a sign-in decides nothing (401)', async () => {
    const r = await request();
    const res = await decide(r.links[0], undefined);
    expect(res.status).toBe(401);
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
  });

  it('identity headers sent by the client are stripped, never believed (forged X-MS-CLIENT-PRINCIPAL of alice: 401)', async () => {
    const r = await request();
    const p = PEOPLE.alice;
    const principal = Buffer.from(
      JSON.stringify({
        auth_typ: 'aad',
        claims: [{ typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: p.oid }],
      }),
    ).toString('base64');
    const forged = {
      'x-ms-client-principal': principal,
      'x-ms-client-principal-id': p.oid,
      'x-ms-client-principal-name': p.email,
      'x-ms-client-principal-idp': 'aad',
    };
    expect((await decide(r.links[0], undefined, fullApproval, forged)).status).toBe(401);
    // nor over a real sign-in of someone else
    expect((await decide(r.links[0], 'mallory', fullApproval, forged)).status).toBe(403);
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
  });

  it('a forged local session cookie is not a sign-in', async () => {
    const r = await request();
    const real = cookieOf(host.keys.masterKey, 'mallory');
    const [payload, sig] = real.split('=')[1].split('.');
    const alicePayload = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), oid: PEOPLE.alice.oid }),
    ).toString('base64url');
    expect(
      (
        await decide(r.links[0], undefined, fullApproval, {
          cookie: `odoo_mta_local_session=${alicePayload}.${sig}`,
        })
      ).status,
    ).toBe(401);
  });

  it('the approver, signed in as themselves, decides (and the record says who proved it)', async () => {
    const r = await request();
    const res = await decide(r.links[1], 'bob', { ...fullApproval, comment: 'ok' });
    expect(res.status).toBe(200);
    const s = await completed(r.id);
    const out = s.output as ProbeOutput;
    expect(out.outcome).toBe('Approved');
    expect(out.decisions[0]).toMatchObject({
      approver: 'bob',
      decidedBy: `entra:${PEOPLE.bob.oid}`,
      accepted: true,
    });
  });

  it("the JSON GET of a link returns that link's data only: no other approver's nonce", async () => {
    const r = await request();
    const res = await fetch(r.links[0], { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const p of r.pending) expect(text).not.toContain(p.nonce);
    expect(JSON.parse(text)).toMatchObject({
      approver: 'alice',
      status: { pendingApprovals: [{ approver: 'alice' }, { approver: 'bob' }] },
    });
  });
});
