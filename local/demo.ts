/**
 * `npm run demo [-- --once]`: the story on one machine, with the same code that runs in Azure.
 *
 * Sandbox: the UAT VM of test/support/sandbox.ts (real dockerd, registry, sshd, PostgreSQL and the real
 * docker/ops/odoo-ops; only Odoo is a stand-in), a local server speaking GitHub's REST API for statuses
 * (the "GitHub" of the sandbox) and the embedded host with Azurite.
 *
 *   1. a merge whose coverage is too low is blocked, with a commit status saying why;
 *   2. a merge with enough coverage passes the gate, goes through the queue and the UAT lane, and is
 *      deployed to the sandbox UAT VM (backup → pull → stop → migrate → start → health);
 *   3. a broken release (its migration fails) is rolled back: UAT runs the previous version again.
 *
 * Then it prints the URLs and keeps the host running until Ctrl-C (or exits with --once).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../shared/log';
import { startSandbox, sandboxSettings, type Sandbox } from '../test/support/sandbox';
import { startFakeGitHub, type FakeGitHub } from '../test/support/fake-github';
import { EXAMPLE_REPO, pushTo, webhookHeaders } from '../test/support/github-events';
import { describeHost, startLocalHost, type LocalHost } from './host';

const say = (msg = '') => process.stdout.write(msg + '\n');
const step = (n: number, msg: string) => say(`\n\u001b[1m[${n}] ${msg}\u001b[0m`);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { once: { type: 'boolean', default: false } } });
  const quiet = createLogger({ level: 'warn' });
  let sb: Sandbox | undefined;
  let gh: FakeGitHub | undefined;
  let host: LocalHost | undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'odoo-mta-demo-'));
  const stopAll = async () => {
    await host?.stop().catch(() => undefined);
    await gh?.stop().catch(() => undefined);
    await sb?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    step(0, 'Starting the sandbox: dockerd, registry, the UAT VM (sshd + odoo-ops + compose), images 1.0.0-1.3.0 (first run builds them: a few minutes)');
    sb = await startSandbox({ vms: ['uat'], log: (m: string) => say(`    ${m}`) });
    const uat = sb.vm('uat');
    say(`    UAT VM: ssh ${uat.sshUser}@${uat.sshHost} -p ${uat.sshPort}, Odoo at ${uat.baseUrl}, running ${(await uat.opsJson('current')).json.image}`);

    gh = await startFakeGitHub(EXAMPLE_REPO);
    host = await startLocalHost({
      dataDir: path.join(dir, 'data'),
      port: 0,
      log: quiet,
      env: {
        ...sandboxSettings(sb),
        LOG_LEVEL: 'warn',
        GITHUB_REPOSITORY: gh.repository,
        GITHUB_API_URL: gh.url,
        GITHUB_TOKEN: 'demo-token-not-a-secret',
        GITHUB_TRIGGER_EVENT: 'push',
        GITHUB_DEFAULT_BRANCH: 'main',
        HEALTH_TIMEOUT_SECONDS: '30',
        HEALTH_KEY_URLS: '/web/health',
        IMAGE_WAIT_MINUTES: '0',
        MIN_FREE_DISK_GB: '0.1',
      },
    });
    const h = host;
    const secret = process.env.GITHUB_WEBHOOK_SECRET as string;
    say(`    local host on ${h.baseUrl} (function key in ${path.join(h.dataDir, 'keys.json')})`);

    let delivery = 0;
    const merge = async (sha: string, version: string, coverage: string) => {
      gh!.setVersion(sha, version);
      gh!.setCoverage(sha, coverage);
      const body = JSON.stringify(pushTo(sha, 'main'));
      const res = await fetch(`${h.baseUrl}/api/github/webhook`, { method: 'POST', headers: webhookHeaders('push', `demo-${++delivery}`, body, secret), body });
      const answer = await res.text();
      say(`    POST /api/github/webhook (push to main, ${version}, ${coverage}) → ${res.status} ${answer.slice(0, 160)}`);
      return res.status;
    };
    const deployOf = async (sha: string) => {
      const key = { 'x-functions-key': h.keys.functionKey };
      for (let i = 0; i < 1200; i++) {
        const res = await fetch(`${h.baseUrl}/api/deployments?environment=uat`, { headers: key });
        const { items } = (await res.json()) as { items: Array<Record<string, any>> };
        const d = items.find((x) => x.sha === sha);
        if (d && ['Completed', 'Failed', 'Terminated'].includes(d.runtimeStatus)) return d;
        if (d && i % 10 === 0) say(`    … ${d.id}: ${JSON.stringify(d.status?.step ?? d.status ?? d.runtimeStatus)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`the deploy of ${sha.slice(0, 7)} did not finish in 10 minutes`);
    };

    step(1, 'A merge with 76.4 % coverage is blocked by the gate');
    const low = 'a'.repeat(40);
    await merge(low, '1.1.0', '76.4%');
    const blocked = gh.posted.filter((p) => p.sha === low).pop();
    say(`    commit status posted: ${blocked?.context} = ${blocked?.state}: "${blocked?.description}"`);

    step(2, 'A merge with 85.0 % coverage passes the gate and is deployed to UAT');
    const good = '1'.repeat(40);
    await merge(good, '1.1.0', '85.0%');
    const d1 = await deployOf(good);
    say(`    ${d1.id}: ${d1.outcome ?? d1.runtimeStatus}`);
    say(`    UAT now runs ${(await uat.opsJson('current')).json.image}; health: ${JSON.stringify((await uat.opsJson('health')).json.ok)}`);

    step(3, 'A broken release (its migration fails) is rolled back automatically');
    const bad = '2'.repeat(40);
    await merge(bad, '1.2.0', '86.0%');
    const d2 = await deployOf(bad);
    say(`    ${d2.id}: ${d2.outcome ?? d2.runtimeStatus} (${d2.result?.code ?? ''} at ${d2.result?.failedStep ?? ''}); logs: ${(d2.result?.logs ?? []).join(', ')}`);
    say(`    UAT runs ${(await uat.opsJson('current')).json.image} again; health: ${JSON.stringify((await uat.opsJson('health')).json.ok)}`);

    step(4, 'Every intake decision is listed for operators');
    const del = await fetch(`${h.baseUrl}/api/deliveries?limit=10`, { headers: { 'x-functions-key': h.keys.functionKey } });
    const { items } = (await del.json()) as { items: Array<Record<string, unknown>> };
    for (const d of items) say(`    ${String(d.deliveryId ?? '')}  ${String(d.decision)}  ${String(d.reason ?? d.description ?? '')}`);

    const ok = d1.outcome === 'Succeeded' && d2.outcome === 'RolledBack' && blocked?.state === 'failure';
    say(`\nDemo ${ok ? 'finished: blocked → deployed → rolled back, as expected' : 'FAILED: see above'}.`);
    if (values.once || !ok) {
      await stopAll();
      process.exit(ok ? 0 : 1);
    }
    say('');
    for (const line of describeHost(h)) say(line);
    say('\nThe host keeps running; Ctrl-C to stop (the sandbox VM is stopped too).');
    process.on('SIGINT', () => void stopAll().then(() => process.exit(0)));
  } catch (err) {
    say(`\ndemo failed: ${(err as Error).message}`);
    await stopAll();
    process.exit(1);
  }
}

void main();
