/**
 * A PROD outage as operators meet it, through the embedded host: the REAL deployProd orchestration
 * (test/support/prod-rig.ts: in-memory VM whose migration fails, Azurite ledger and backups, the
 * product's Slack adapter against the HTTP Slack stand-in), then GET /api/status, GET /api/dashboard
 * and `odoo-pipeline status` / `deploy --wait` (the CLI's own run(), over HTTP) read what a person reads:
 *
 *  - while PROD waits for the rollback decision it is DOWN (not "running 1.0.0"), first on the page
 *    and in the CLI, with who may decide and until when;
 *  - after the rollback, the last deploy's cause is the migration failure — not the requester's reason;
 *  - a rejection names who rejected it and why;
 *  - a re-deploy of the version PROD runs is refused unless asked for explicitly (then warned about).
 */
import { randomBytes } from 'node:crypto';
import type { LocalHost } from '../../local/host';
import type { ProdCustomStatus } from '../../functions/orchestrators/deployProd';
import type { StatusDocument } from '../../shared/domain/status-view';
import { run } from '../../bin-src/odoo-pipeline';
import { startProdDeploy, startProdHost, type ProdRigInput } from '../support/prod-rig';
import type { FakeSlack } from '../support/fake-slack';

jest.setTimeout(300_000);

const signingKey = randomBytes(36).toString('base64url');
/** the status page's read-only key (GET /api/dashboard opens with it, not with the function key) */
const READ_KEY = randomBytes(24).toString('base64url');
/** the words of the requester, which must never be shown as the failure */
const REQUEST_REASON = 'UX review: re-deploy the checkout fixes';

describe('a PROD outage on the status page, the JSON status and the CLI', () => {
  let rig: Awaited<ReturnType<typeof startProdHost>>;
  let host: LocalHost;
  let slack: FakeSlack;
  let n = 0;

  beforeAll(async () => {
    rig = await startProdHost('status-outage-', {
      APPROVAL_SIGNING_KEY: signingKey,
      STATUS_READ_KEY: READ_KEY,
      DISPLAY_TIME_ZONE: 'Europe/Brussels',
    });
    ({ host, slack } = rig);
  }, 90_000);
  afterAll(() => rig?.stop());

  /** A real deployProd of 1.1.0 (PROD runs 1.0.0), its records in the ledger the status reads. */
  async function start(vmBehaviour: ProdRigInput['vmBehaviour'] = {}) {
    const id = `deploy-prod-1.1.0-bbbbbbbbbbbb-o${++n}`;
    const { vm } = await startProdDeploy({
      host,
      slack,
      signingKey,
      container: 'ledger',
      instanceId: id,
      requestedBy: 'erin',
      reason: REQUEST_REASON,
      vmBehaviour,
    });
    const status = async () =>
      (await host.durable.getStatus(id))?.customStatus as ProdCustomStatus | undefined;
    const until = async (what: string, ok: (s: ProdCustomStatus | undefined) => boolean) => {
      const end = Date.now() + 120_000;
      for (;;) {
        const s = await status();
        if (ok(s)) return s;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const decide = async (approver: string, action: 'approve' | 'reject' | 'rollback', comment?: string) => {
      const linkAction = action === 'rollback' ? 'rollback' : 'approval';
      await until(
        `${approver}'s ${linkAction} link`,
        (s) => !!s?.pendingApprovals?.some((p) => p.approver === approver && p.action === linkAction),
      );
      const nonce = (await status())!.pendingApprovals.find(
        (p) => p.approver === approver && p.action === linkAction,
      )!.nonce;
      await host.durable.raiseEvent(id, 'approval-decision', {
        nonce,
        approver,
        action,
        comment,
        decidedAt: new Date().toISOString(),
      });
    };
    return { id, vm, status, until, decide };
  }

  const getStatus = async () => {
    const r = await fetch(`${host.baseUrl}/api/status`, {
      headers: { 'x-functions-key': host.keys.functionKey },
    });
    expect(r.status).toBe(200);
    return (await r.json()) as StatusDocument;
  };
  const getPage = async () => {
    const r = await fetch(`${host.baseUrl}/api/dashboard`, {
      headers: { 'x-status-key': READ_KEY },
    });
    expect(r.status).toBe(200);
    return r.text();
  };
  /** `odoo-pipeline <args>` in-process against the host; stdout as a pipe (no TTY) of `columns` width. */
  async function cli(args: string[], o: { columns?: number; env?: Record<string, string> } = {}) {
    let stdout = '';
    let stderr = '';
    const code = await run(args, {
      stdout: { write: (s: string) => (stdout += s), isTTY: false },
      stderr: { write: (s: string) => (stderr += s) },
      env: {
        ODOO_PIPELINE_URL: host.baseUrl,
        ODOO_PIPELINE_KEY: host.keys.functionKey,
        USER: 'erin',
        ...(o.columns ? { COLUMNS: String(o.columns) } : {}),
        ...o.env,
      },
      sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 100))),
    });
    return { code, stdout, stderr };
  }
  const plain = (html: string) =>
    html
      .replace(/<style[\s\S]*?<\/style>/, '')
      .replace(/<[^>]+>/g, ' ')
      .replace(/&amp;/g, '&')
      .replace(/&#39;/g, "'")
      .replace(/&quot;/g, '"')
      .replace(/\s+/g, ' ');

  it('a failed migration: PROD is DOWN first everywhere until the rollback; then the cause is the failure, not the request', async () => {
    const d = await start({ failMigration: true });
    await d.decide('bob', 'approve');
    await d.until(
      'the rollback decision',
      (s) => s?.step === 'awaiting-rollback-decision' && (s?.pendingApprovals.length ?? 0) > 0,
    );
    expect(d.vm.state.webRunning).toBe(false);

    // JSON: one answer for "what runs and is it healthy"
    const doc = await getStatus();
    const prod = doc.environments.find((e) => e.name === 'prod')!;
    expect(prod.health).toMatchObject({
      ok: true,
      value: { state: 'down', deployment: d.id, awaitingRollback: true, version: '1.0.0' },
    });
    expect(prod.health.ok && prod.health.value.headline).toMatch(
      /^PROD is DOWN: the PROD deploy of 1\.1\.0 failed/,
    );
    expect(prod.health.ok && prod.health.value.headline).toContain('migration failed');
    expect(doc.displayTimeZone).toBe('Europe/Brussels');
    const first = doc.attention[0];
    expect(first).toMatchObject({
      severity: 'down',
      environment: 'prod',
      title: 'PROD is DOWN',
      deployment: d.id,
      waitingFor: { people: ['alice', 'bob', 'carol'], needed: 1 },
    });
    expect(first.until).toEqual(expect.any(String));
    expect(first.next.command).toBe(`odoo-pipeline logs ${d.id}`);
    expect(JSON.stringify(doc.attention)).not.toContain(REQUEST_REASON);
    // the step is said in words; no progress figure while a person is awaited
    expect(prod.inProgress.ok && prod.inProgress.value?.progress).toMatchObject({
      step: 'awaiting-rollback-decision',
      text: 'waiting for the rollback decision',
      waitingForPerson: true,
    });
    expect(prod.inProgress.ok && prod.inProgress.value?.progress.percent).toBeUndefined();

    // the page: DOWN before anything else, PROD's card first, no "running 1.0.0", no progress bar
    const html = await getPage();
    const text = plain(html);
    expect(text.indexOf('PROD is DOWN')).toBeGreaterThan(-1);
    expect(text.indexOf('PROD is DOWN')).toBeLessThan(
      text.indexOf('PROD runs') === -1 ? Infinity : text.indexOf('PROD runs'),
    );
    expect(html.indexOf('data-attention')).toBeLessThan(html.indexOf('<main>'));
    expect(html.indexOf('id="env-prod"')).toBeLessThan(html.indexOf('id="env-uat"'));
    expect(html).not.toMatch(/id="env-prod"[\s\S]*data-running-version[\s\S]*id="env-uat"/);
    expect(html).toContain('data-stopped-version>1.0.0');
    expect(text).toMatch(/needs 1 of alice, bob, carol/);
    expect(html).not.toMatch(/<progress/);
    expect(text).toMatch(/CET|CEST/);
    expect(text).not.toMatch(/deployProd|awaiting-rollback-decision|awaiting-approval/);

    // the CLI: the attention strip first, PROD before UAT, DOWN
    const st = await cli(['status'], { columns: 80 });
    expect(st.code).toBe(0);
    const lines = st.stdout.split('\n');
    const firstReal = lines.findIndex((l) => l.startsWith('NEEDS ATTENTION'));
    expect(firstReal).toBeGreaterThan(0);
    expect(lines[firstReal + 1]).toMatch(/^ {2}DOWN +PROD is DOWN$/);
    expect(st.stdout).toMatch(/needs 1 of alice, bob, carol|until /);
    expect(st.stdout.indexOf('\nPROD — DOWN: the PROD deploy of 1.1.0 failed')).toBeGreaterThan(-1);
    expect(st.stdout.indexOf('\nPROD — DOWN')).toBeLessThan(st.stdout.indexOf('\nUAT — UP: runs 1.1.0'));
    expect(st.stdout).not.toMatch(/running +1\.0\.0/);
    if (process.env.DEBUG_STATUS) console.log(st.stdout);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    expect(st.stdout).not.toContain('\x1b['); // not a terminal: no colour

    // carol rolls back: PROD is up again on 1.0.0; the last deploy says why it failed
    await d.decide('carol', 'rollback');
    await host.durable.waitForCompletion(d.id, 60_000);
    const after = await getStatus();
    const p2 = after.environments.find((e) => e.name === 'prod')!;
    expect(p2.health).toMatchObject({ ok: true, value: { state: 'up', version: '1.0.0' } });
    const last = p2.lastDeploy.ok ? p2.lastDeploy.value! : undefined;
    expect(last).toMatchObject({
      id: d.id,
      outcome: 'RolledBack',
      outcomeText: 'failed, rolled back',
      failedStep: 'migrate',
      failedStepText: 'updating the database (module upgrade)',
      code: 'DEPLOY.MIGRATION_FAILED',
      requestReason: REQUEST_REASON,
      prodState: 'rolled-back',
    });
    expect(last!.failure).toMatch(/migration failed \(odoo exit 1, CRITICAL: boom\)/);
    expect(last!.failure).not.toContain(REQUEST_REASON);
    expect(last!.failure).not.toMatch(/\/opt\/odoo\/state/);
    expect(after.attention.some((i) => i.severity === 'down')).toBe(false);
    const failedItem = after.attention.find((i) => i.deployment === d.id)!;
    expect(failedItem).toMatchObject({
      severity: 'failed',
      title: 'PROD deploy of 1.1.0 failed, rolled back',
    });
    expect(failedItem.detail).toMatch(/^while updating the database \(module upgrade\): .*migration failed/);
    expect(failedItem.next.command).toBe(`odoo-pipeline logs ${d.id}`);
    const page2 = plain(await getPage());
    expect(page2).toMatch(/while updating the database \(module upgrade\): .*migration failed/);
    expect(page2).toContain(`odoo-pipeline logs ${d.id}`);
    expect(page2).toContain(`asked for: ${REQUEST_REASON}`);
    expect(page2).not.toContain(`: ${REQUEST_REASON} ·`);
  });

  it('a rejection names who rejected and why; while it waits, the strip says for whom', async () => {
    const d = await start();
    await d.until('the approval links', (s) => (s?.pendingApprovals.length ?? 0) > 0);
    const waiting = await getStatus();
    const item = waiting.attention.find((i) => i.deployment === d.id)!;
    expect(item).toMatchObject({
      severity: 'waiting',
      title: 'PROD deploy of 1.1.0 waits for approval',
      waitingFor: { people: ['alice', 'bob', 'carol'], needed: 1 },
    });
    expect(item.detail).toMatch(/^needs 1 of alice, bob, carol · requested by erin/);
    expect(plain(await getPage())).toMatch(/needs 1 of alice, bob, carol/);

    await d.decide('carol', 'reject', 'the release notes are missing');
    await host.durable.waitForCompletion(d.id, 60_000);
    const doc = await getStatus();
    const last = doc.environments.find((e) => e.name === 'prod')!.lastDeploy;
    expect(last.ok && last.value).toMatchObject({
      outcome: 'Rejected',
      rejectedBy: 'carol',
      comment: 'the release notes are missing',
      failure: 'rejected by carol: the release notes are missing',
      requestReason: REQUEST_REASON,
    });
    if (process.env.DEBUG_STATUS)
      console.log(
        JSON.stringify(doc.environments.find((e) => e.name === 'prod')!.health),
        JSON.stringify(doc.attention),
      );
    expect(doc.environments.find((e) => e.name === 'prod')!.health).toMatchObject({
      ok: true,
      value: { state: 'up', version: '1.0.0' },
    });
  });
});
