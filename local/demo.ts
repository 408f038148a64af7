/**
 * `npm run demo [-- --once]`: the story on one machine, with the same code that runs in Azure.
 *
 * Sandbox: the UAT VM of test/support/sandbox.ts (real dockerd, registry, sshd, PostgreSQL and the real
 * docker/ops/odoo-ops; only Odoo is a stand-in), a local server speaking GitHub's REST API for statuses,
 * deployments and compare (the "GitHub" of the sandbox) and the embedded host with Azurite.
 *
 *   1. a merge whose coverage is too low is blocked, with a commit status saying why;
 *   2. a merge with enough coverage passes the gate, goes through the queue and the UAT lane, and is
 *      deployed to the sandbox UAT VM (backup → pull → stop → migrate → start → health);
 *   3. a broken release (its migration fails) is rolled back: UAT runs the previous version again;
 *   4. every intake decision is listed;
 *   5. a PROD deploy of the good release is requested: Slack (a local server speaking Slack's webhook
 *      protocol) gets a signed approval link, the demo opens it and approves it over HTTP as the
 *      approver would on the page, and PROD runs the release with the same image digest as UAT;
 *   6. UAT is refreshed from PROD (PROD first gets an Odoo 17-shaped database with personal data, the
 *      test fixture): restore, neutralize, anonymize, verify — with the anonymization report.
 *
 * Then it prints the status page URL and keeps the host running until Ctrl-C (or exits with --once).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { stepText } from '../shared/domain/status-view';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../shared/log';
import {
  REPO_ROOT,
  sandboxMissing,
  startSandbox,
  sandboxSettings,
  type Sandbox,
  type SandboxVm,
} from '../test/support/sandbox';
import { startFakeGitHub, type FakeGitHub } from '../test/support/fake-github';
import { startFakeSlack, type FakeSlack } from '../test/support/fake-slack';
import { decideByLink, requestProdDeployAndLinks } from '../test/support/prod-approval';
import { approversSetting, cookieOf, outboxSignIn } from '../test/support/identities';
import { freePort } from './azurite';
import { EXAMPLE_REPO, pushTo, webhookHeaders } from '../test/support/github-events';
import { ENGINE_LINE, describeHost, startLocalHost, type LocalHost } from './host';
import { superviseDemo } from './demo-supervisor';
import { ensureSandboxPrerequisites } from './prerequisites';

const say = (msg = '') => process.stdout.write(msg + '\n');
const step = (n: number, msg: string) => say(`\n\u001b[1m[${n}] ${msg}\u001b[0m`);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { once: { type: 'boolean', default: false } } });
  const quiet = createLogger({ level: 'warn' });
  let sb: Sandbox | undefined;
  let gh: FakeGitHub | undefined;
  let slack: FakeSlack | undefined;
  let host: LocalHost | undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'odoo-mta-demo-'));
  // the pipeline's own structured log lines go to a file, not into the story on the terminal
  const logFile = path.join(dir, 'pipeline.log');
  const stderrWrite = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.startsWith('{"t":')) {
      try {
        appendFileSync(logFile, text.endsWith('\n') ? text : `${text}\n`);
      } catch {
        /* the folder is gone while stopping */
      }
      return true;
    }
    return (stderrWrite as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  // Ctrl-C, `kill` (SIGTERM: a service manager, a CI timeout) and a closed terminal end it the same
  // clean way at any point: every part stopped (one still starting too), the folder removed (./demo-supervisor)
  const sup = superviseDemo({ dirs: [dir], say });
  const stopAll = () => sup.stopAll();
  try {
    // what the sandbox needs from the machine: found, or installed with apt-get when root (says so)
    await ensureSandboxPrerequisites({ missing: sandboxMissing, root: REPO_ROOT, say });
    step(
      0,
      'Starting the sandbox: dockerd, registry, the UAT and PROD VMs (sshd + odoo-ops + compose), images 1.0.0-1.4.0 (first run builds them: a few minutes)',
    );
    sb = await sup.track(
      'the sandbox (dockerd, registry, VMs)',
      startSandbox({ vms: ['uat', 'prod'], log: (m: string) => say(`    ${m}`) }),
      (s) => s.stop(),
    );
    const uat = sb.vm('uat');
    const prod = sb.vm('prod');
    for (const vm of [uat, prod])
      say(
        `    ${vm.name.toUpperCase()} VM: ssh ${vm.sshUser}@${vm.sshHost} -p ${vm.sshPort}, Odoo at ${vm.baseUrl}, running ${(await vm.opsJson('current')).json.image}`,
      );

    gh = await sup.track('the fake GitHub', startFakeGitHub(EXAMPLE_REPO), (g) => g.stop());
    slack = await sup.track('the fake Slack', startFakeSlack(), (f) => f.stop());
    const port = await freePort();
    const readKey = randomBytes(24).toString('base64url');
    host = await sup.track(
      'the embedded host',
      startLocalHost({
        dataDir: path.join(dir, 'data'),
        port,
        log: quiet,
        env: {
          ...sandboxSettings(sb),
          PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
          SLACK_WEBHOOK_URL: slack.webhookUrl,
          // approvals need the Web API: each approver's link goes privately to their Slack user id
          SLACK_BOT_TOKEN: slack.token,
          SLACK_API_URL: slack.apiUrl,
          SLACK_CHANNEL: '#deployments',
          APPROVERS: approversSetting('alice', 'bob'),
          APPROVALS_REQUIRED: '1',
          PROD_HEALTH_STABLE_SECONDS: '5',
          REFRESH_KEEP_LOGINS: 'admin',
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
          STATUS_READ_KEY: readKey,
        },
      }),
      (h) => h.stop(),
    );
    const h = host;
    const secret = process.env.GITHUB_WEBHOOK_SECRET as string;
    say(
      `    local host on ${h.baseUrl} (function key in ${path.join(h.dataDir, 'keys.json')}; the pipeline's log lines go to ${logFile})`,
    );
    say(`    ${ENGINE_LINE}`);

    let delivery = 0;
    const merge = async (sha: string, version: string, coverage: string) => {
      gh!.setVersion(sha, version);
      gh!.setCoverage(sha, coverage);
      const body = JSON.stringify(pushTo(sha, 'main'));
      const res = await fetch(`${h.baseUrl}/api/github/webhook`, {
        method: 'POST',
        headers: webhookHeaders('push', `demo-${++delivery}`, body, secret),
        body,
      });
      const answer = await res.text();
      say(
        `    POST /api/github/webhook (push to main, ${version}, ${coverage}) → ${res.status} ${answer.slice(0, 160)}`,
      );
      return res.status;
    };
    const deployOf = async (sha: string) => {
      const key = { 'x-functions-key': h.keys.functionKey };
      for (let i = 0; i < 1200; i++) {
        const res = await fetch(`${h.baseUrl}/api/deployments?environment=uat`, { headers: key });
        const { items } = (await res.json()) as { items: Array<Record<string, any>> };
        const d = items.find((x) => x.sha === sha);
        if (d && ['Completed', 'Failed', 'Terminated'].includes(d.runtimeStatus)) return d;
        if (d && i % 10 === 0)
          say(
            `    … ${d.id}: ${typeof d.status?.step === 'string' ? stepText(d.status.step) : String(d.runtimeStatus ?? 'starting')}`,
          );
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
    say(
      `    UAT now runs ${(await uat.opsJson('current')).json.image}; health: ${JSON.stringify((await uat.opsJson('health')).json.ok)}`,
    );

    step(3, 'A broken release (its migration fails) is rolled back automatically');
    const bad = '2'.repeat(40);
    // what GitHub's compare API answers for 1.1.0...1.2.0: a big release (every module's translations
    // re-exported) beyond the 300 files the API lists, so the pipeline updates all modules
    gh.compares.set(
      `${good}...${bad}`,
      Array.from({ length: 300 }, (_, i) => `addons/mta_core/i18n/l${String(i).padStart(3, '0')}.po`),
    );
    await merge(bad, '1.2.0', '86.0%');
    const d2 = await deployOf(bad);
    say(
      `    ${d2.id}: ${d2.outcome ?? d2.runtimeStatus} (${d2.result?.code ?? ''} at ${d2.result?.failedStep ?? ''}); logs: ${(d2.result?.logs ?? []).join(', ')}`,
    );
    say(
      `    UAT runs ${(await uat.opsJson('current')).json.image} again; health: ${JSON.stringify((await uat.opsJson('health')).json.ok)}`,
    );
    for (const d of gh.deployments)
      say(
        `    GitHub deployment ${d.id} (${d.environment}, ${d.ref.slice(0, 7)}): ${d.statuses.map((x) => x.state).join(' → ')}`,
      );

    step(4, 'Every intake decision is listed for operators');
    const del = await fetch(`${h.baseUrl}/api/deliveries?limit=10`, {
      headers: { 'x-functions-key': h.keys.functionKey },
    });
    const { items } = (await del.json()) as { items: Array<Record<string, unknown>> };
    for (const d of items)
      say(
        `    ${String(d.deliveryId ?? '')}  ${String(d.decision)}  ${String(d.reason ?? d.description ?? '')}`,
      );

    step(
      5,
      'PROD: alice (signed in) requests 1.1.0; bob receives his own link privately in Slack, signs in and approves',
    );
    const key = h.keys.functionKey;
    const masterKey = h.keys.masterKey;
    const fake = slack;
    // the outbox page shows what each person received; each link first signs the browser in as them
    fake.decorate = outboxSignIn(h.baseUrl, masterKey);
    const { id: prodId, links } = await requestProdDeployAndLinks({
      baseUrl: h.baseUrl,
      functionKey: key,
      slackPosts: slack.posts,
      version: '1.1.0',
      requestedBy: 'alice',
      reason: 'demo: release 1.1.0 after UAT',
      cookie: cookieOf(masterKey, 'alice'),
    });
    for (const l of links)
      say(
        `    Slack → ${l.approver} (privately): ${l.url.slice(0, 60)}… (GET shows the checklist; only the page's POST by ${l.approver}, signed in, decides)`,
      );
    say(`    what each person received, with clickable links: ${slack.outboxUrl}`);
    const bobs = links.find((l) => l.approver === 'bob') ?? links[0];
    const slackbot = await fetch(bobs.url, {
      headers: { 'user-agent': 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)' },
    });
    say(`    Slack's link expander fetched it: ${slackbot.status}, nothing decided`);
    const stolen = await decideByLink(bobs.url, 'approve', {
      comment: 'self-approval',
      cookie: cookieOf(masterKey, 'alice'),
    });
    say(
      `    alice tries bob's link → ${stolen.status} ${String(stolen.body.error ?? '')} (a link is not an identity)`,
    );
    const decided = await decideByLink(bobs.url, 'approve', {
      comment: 'checked on UAT',
      cookie: cookieOf(masterKey, 'bob'),
    });
    say(
      `    bob ticks the checklist, types APPROVE → ${decided.status} ${String(decided.body.message ?? decided.body.outcome ?? '')}`,
    );
    const prodSt = await h.durable.waitForCompletion(prodId, 15 * 60 * 1000);
    const prodOut = (prodSt.output ?? {}) as Record<string, unknown>;
    const uatDigest = (
      await uat.ssh(`docker inspect --format '{{index .RepoDigests 0}}' ${sb.image('next', 'uat')}`)
    ).stdout
      .toString()
      .trim()
      .split('@')[1];
    const prodImage = String((await prod.opsJson('current')).json.image);
    const prodDigest = (
      await prod.ssh(`docker inspect --format '{{index .RepoDigests 0}}' ${prodImage}`)
    ).stdout
      .toString()
      .trim()
      .split('@')[1];
    say(
      `    ${prodId}: ${String(prodOut.outcome ?? prodSt.runtimeStatus)}; PROD runs ${prodImage}, health ${JSON.stringify((await prod.opsJson('health')).json.ok)}`,
    );
    say(
      `    image digest on UAT ${uatDigest?.slice(0, 19)}…, on PROD ${prodDigest?.slice(0, 19)}… (${uatDigest && uatDigest === prodDigest ? 'the same: promoted by retag, not rebuilt' : 'DIFFERENT'})`,
    );

    step(6, 'Refresh UAT from PROD: restore, neutralize, anonymize, verify that no personal data is left');
    await seedProdWithPersonalData(prod, prodImage);
    const prodEmails = (
      await runSql(
        prod,
        'odoo',
        "SELECT email FROM res_partner WHERE email LIKE '%@%' AND email NOT LIKE '%example.%' ORDER BY id LIMIT 3;",
      )
    )
      .split('\n')
      .filter(Boolean);
    say(
      `    PROD has ${(await runSql(prod, 'odoo', 'SELECT count(*) FROM res_partner;')).trim()} partners, e.g. ${prodEmails.map(maskEmail).join(', ')}`,
    );
    const refreshRes = await fetch(`${h.baseUrl}/api/refresh`, {
      method: 'POST',
      headers: { 'x-functions-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({
        source: 'prod',
        target: 'uat',
        filestore: 'copy',
        backup: 'fresh',
        reason: 'demo: fresh copy for testers',
      }),
    });
    const { id: refreshId } = (await refreshRes.json()) as { id: string };
    say(`    POST /api/refresh → ${refreshRes.status} ${refreshId}`);
    // the refresh reaches the lane first (it starts it when nothing else runs)
    for (let i = 0; i < 600 && !(await h.durable.getStatus(refreshId)); i++)
      await new Promise((r) => setTimeout(r, 100));
    const refreshSt = await h.durable.waitForCompletion(refreshId, 15 * 60 * 1000);
    const rr = (refreshSt.output ?? {}) as {
      outcome?: string;
      rows?: Record<string, number>;
      sampled?: Record<string, number>;
      durations?: Record<string, number>;
      totalMs?: number;
    };
    say(
      `    ${refreshId}: ${rr.outcome ?? refreshSt.runtimeStatus} in ${Math.round((rr.totalMs ?? 0) / 1000)} s`,
    );
    for (const [k, v] of Object.entries(rr.rows ?? {})
      .filter(([, v]) => v > 0)
      .slice(0, 12))
      say(`      ${k}: ${v}`);
    say(
      `      PII sampled from PROD (kept in memory only): ${Object.entries(rr.sampled ?? {})
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    const leaked = [];
    for (const e of prodEmails)
      if (
        (
          await runSql(
            uat,
            'odoo',
            `SELECT count(*) FROM res_partner WHERE email = '${e.replace(/'/g, "''")}';`,
          )
        ).trim() !== '0'
      )
        leaked.push(maskEmail(e));
    say(
      `    UAT health ${JSON.stringify((await uat.opsJson('health')).json.ok)}; PROD's e-mail addresses in UAT: ${leaked.length ? leaked.join(', ') : 'none'}`,
    );

    const ok =
      d1.outcome === 'Succeeded' &&
      d2.outcome === 'RolledBack' &&
      blocked?.state === 'failure' &&
      prodOut.outcome === 'Succeeded' &&
      uatDigest === prodDigest &&
      rr.outcome === 'Succeeded' &&
      leaked.length === 0;
    say(
      `\nDemo ${ok ? 'finished: blocked → deployed → rolled back → approved → PROD → UAT refreshed and anonymized, as expected' : 'FAILED: see above'}.`,
    );
    say(
      `Status page (read-only link): ${h.baseUrl}/api/dashboard?key=${readKey}   (JSON: ${h.baseUrl}/api/status; CLI: ODOO_PIPELINE_URL=${h.baseUrl} ODOO_PIPELINE_KEY=<key> node bin/odoo-pipeline.js status)`,
    );
    if (values.once || !ok) {
      await stopAll();
      process.exit(ok ? 0 : 1);
    }
    say('');
    for (const line of describeHost(h)) say(line);
    say(
      '\nThe host keeps running; Ctrl-C or `kill <pid>` to stop (the sandbox VMs, dockerd and the registry are stopped too).',
    );
  } catch (err) {
    say(`\ndemo failed: ${(err as Error).message}`);
    await stopAll();
    process.exit(1);
  }
}

/** run SQL on a sandbox VM's database through odoo-ops, as an operator would */
async function runSql(vm: SandboxVm, db: string, script: string): Promise<string> {
  const r = await vm.opsJson(`run-sql --db ${db}`, { input: script });
  if (r.code !== 0) throw new Error(`run-sql on ${vm.name}/${db} failed: ${String(r.json.message)}`);
  return String(r.json.output ?? '');
}

/** PROD gets the Odoo 17-shaped test fixture with realistic personal data (the stand-in's own DB has little) */
async function seedProdWithPersonalData(prod: SandboxVm, image: string): Promise<void> {
  const fixtures = path.join(REPO_ROOT, 'test', 'fixtures', 'odoo');
  if ((await prod.ops('stop')).code !== 0) throw new Error('could not stop PROD to seed it');
  await runSql(
    prod,
    'postgres',
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'odoo' AND pid <> pg_backend_pid();\nDROP DATABASE odoo;\nCREATE DATABASE odoo;\n",
  );
  await runSql(
    prod,
    'odoo',
    [
      '\\set odoo_version 17',
      '\\set partners 300',
      readFileSync(path.join(fixtures, 'schema.sql'), 'utf8'),
      readFileSync(path.join(fixtures, 'seed.sql'), 'utf8'),
    ].join('\n'),
  );
  if ((await prod.ops(`start ${image}`)).code !== 0)
    throw new Error('PROD did not start on the seeded database');
}

/** show that an address exists without printing it whole */
function maskEmail(e: string): string {
  const [user, domain] = e.split('@');
  return `${user.slice(0, 2)}…@${domain ?? ''}`;
}

void main();
