/**
 * The operator CLI (`bin/odoo-pipeline.js` → dist/bin-src, compiled fresh by this test) run as a child
 * process against the embedded host (startLocalHost: the app's real registrations, the durable engine,
 * Azurite). Deploys are the real deployUat orchestration through UAT's lane, on the in-memory VM
 * (test/support/fake-vm-shell.ts). A stand-in orchestration carries a PROD custom status of the
 * deployProd contract (pending approvals / rollback decision) for `approvals` and `rollback prod`.
 *
 * Every command shown in docs/CLI.md runs here, and every error path: usage (2), wrong/missing key and
 * unreachable URL (3), timeouts (4), unknown deployment / failed deploy / corrupt backup (1).
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as df from 'durable-functions';
import { BlobServiceClient } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import { freePort } from '../../local/azurite';
import { setDeployPorts, type DeployPorts } from '../../functions/activities/deploy';
import { createDeliveriesStore } from '../../shared/adapters/deliveries';
import { createLedger } from '../../shared/adapters/ledger';
import { BackupStore } from '../../shared/adapters/backup-store';
import type { RegistryClient } from '../../shared/adapters/registry';
import type { DeploySettings } from '../../shared/domain/deploy-plan';
import type { StatusDocument } from '../../shared/domain/status-view';
import { createLogger } from '../../shared/log';
import { createFakeVm, type FakeVm } from '../support/fake-vm-shell';
import { until as waitUntil } from '../support/until';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'odoo-pipeline.js');
const SHA = (c: string) => c.repeat(40);
const PROD_STANDIN = 'cliTestProdDecision';

// A stand-in for a PROD deploy waiting for decisions: its custom status follows the deployProd contract
// (kind, step, approvals, pendingApprovals with nonces) until a `finish` event.
df.app.orchestration(PROD_STANDIN, function* (context) {
  context.df.setCustomStatus(context.df.getInput());
  yield context.df.waitForExternalEvent('finish');
  return { outcome: 'Rejected', environment: 'prod' };
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function memoryRegistry(): RegistryClient {
  return {
    kind: 'memory',
    async listTags() {
      return ['uat-v1.0.0', 'uat-v1.1.0', 'uat-v1.2.0', 'uat-v1.3.0'];
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
      /* retention: nothing to delete here */
    },
  };
}

describe('odoo-pipeline CLI (child process) against the embedded host', () => {
  let dir: string;
  let host: LocalHost;
  let vm: FakeVm;
  let backups: BackupStore;
  const outputs: string[] = [];

  function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const childEnv: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ODOO_PIPELINE_URL: host.baseUrl,
        ODOO_PIPELINE_KEY: host.keys.functionKey,
        USER: 'erin',
      };
      for (const [k, v] of Object.entries(env)) {
        if (v === undefined) delete childEnv[k];
        else childEnv[k] = v;
      }
      const child = spawn(process.execPath, [BIN, ...args], {
        cwd: ROOT,
        env: childEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        outputs.push(stdout, stderr);
        resolve({ code, stdout, stderr });
      });
    });
  }

  async function api<T>(p: string): Promise<T> {
    const res = await fetch(`${host.baseUrl}/api/${p}`, {
      headers: { 'x-functions-key': host.keys.functionKey },
    });
    return (await res.json()) as T;
  }
  const until = <T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000) => waitUntil(what, fn, ms);
  const uat = (doc: StatusDocument) => doc.environments.find((e) => e.name === 'uat')!;

  beforeAll(async () => {
    // a fresh build of the CLI only (seconds), in the same dist/ layout as `npm run build`
    execFileSync(
      process.execPath,
      [
        path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        path.join(ROOT, 'bin-src', 'tsconfig.json'),
      ],
      { cwd: ROOT, stdio: 'pipe' },
    );
    dir = mkdtempSync(path.join(os.tmpdir(), 'cli-test-'));
    host = await startLocalHost({ dataDir: dir, port: 0, env: { LOG_LEVEL: 'error' } });
    const conn = host.blobConnectionString!;
    const container = BlobServiceClient.fromConnectionString(conn).getContainerClient('ledger');
    await container.createIfNotExists();
    const ledger = createLedger(container);
    await ledger.record('uat', {
      version: '1.0.0',
      sha: SHA('a'),
      imageRef: 'odoo-mta:uat-v1.0.0',
      deployedAt: new Date().toISOString(),
      coverage: 85,
    });
    // the releases the CLI deploys to UAT passed the coverage gate (as the intake records it: the
    // commit's gate record and the accepted delivery naming its version); the API refuses any other
    const gates = createDeliveriesStore(container);
    for (const [c, version] of [
      ['a', '1.0.0'],
      ['b', '1.1.0'],
      ['c', '1.2.0'],
      ['d', '1.3.0'],
    ] as const) {
      const at = new Date().toISOString();
      const deliveryId = `gate-${c.repeat(8)}`;
      const reason = 'coverage 88.0 % ≥ 80 %';
      await gates.putCommit({
        sha: SHA(c),
        state: 'passed',
        firstSeenAt: at,
        deadline: at,
        trigger: 'workflow_run',
        branch: 'main',
        mergedBy: 'alice',
        deliveryId,
        reason,
      });
      await gates.record({ decision: 'accepted', reason, sha: SHA(c), version, deliveryId, status: 202 });
    }
    backups = new BackupStore({ connectionString: conn, container: 'backups' });
    vm = createFakeVm();
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
      retryAttempts: 2,
    };
    const ports: DeployPorts = {
      settings: () => settings,
      ssh: { connect: () => vm.connect() },
      backups,
      registry: memoryRegistry(),
      ledger,
      notify: { notify: async () => ({}) },
      changedFiles: async () => ['addons/sale_custom/models/sale.py'],
      log: createLogger({ level: 'error', sink: () => undefined }),
    };
    setDeployPorts(ports);
  }, 180_000);

  afterAll(async () => {
    setDeployPorts(undefined);
    await host?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    // the key never appears in anything the CLI printed
    for (const o of outputs) {
      expect(o).not.toContain(host.keys.functionKey);
      expect(o).not.toContain(host.keys.masterKey);
    }
  });

  it('bad usage: exit 2 with a message naming the problem', async () => {
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: odoo-pipeline');
    for (const [args, msg] of [
      [['frobnicate'], 'unknown command "frobnicate"'],
      [['deploy', 'uat'], 'deploy needs a version'],
      [['deploy', 'staging', '1.0.0'], 'unknown environment "staging"'],
      [['deploy', 'uat', '1.x'], 'semantic version'],
      [['deploy', 'uat', '1.1.0', '--sha', 'xyz'], '--sha must be'],
      [['deploy', 'uat', '1.1.0', '--wait', '--wait-timeout', 'soon'], '--wait-timeout must be a duration'],
      [['refresh', '--filestore', 'nope'], '--filestore must be copy, drop or skip'],
      [['deploy', 'prod', '1.1.0'], 'a PROD deploy needs --reason'],
      [['deploy', 'prod', '1.1.0', '--reason', 'x', '--force'], '--force is for UAT only'],
      [['logs'], 'logs needs a deployment id'],
      [['logs', 'not-a-deploy'], 'is not a deployment id'],
      [['backups'], 'backups needs an environment'],
      [['backups', 'uat', '--force'], '--force is not an option of backups'],
      [['backups', 'uat', '--limit', '0'], '--limit must be an integer'],
      [['status', '--bogus'], "Unknown option '--bogus'"],
      [['status', 'extra'], 'unexpected argument "extra"'],
      [['--url', 'not a url', 'status'], '--url must be an absolute http(s) URL'],
      [['help', 'nothing'], 'unknown command "nothing"'],
    ] as const) {
      const r = await cli([...args]);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain(msg);
    }
  }, 120_000);

  it('help explains each command, rollback per environment, and the exit codes', async () => {
    const r = await cli(['help', 'rollback']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("UAT: redeploy the previous version recorded in UAT's ledger");
    expect(r.stdout).toContain('PROD: if a failed PROD deploy is waiting for a rollback decision');
    expect(r.stdout).toContain('4  timeout');
    const d = await cli(['deploy', '--help']);
    expect(d.code).toBe(0);
    expect(d.stdout).toContain('Usage: odoo-pipeline deploy <uat|prod> <version>');
  });

  it('unreachable URL, missing or wrong key: exit 3, the key never printed', async () => {
    const port = await freePort();
    const down = await cli(['status', '--url', `http://127.0.0.1:${port}`]);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain(`cannot reach the pipeline at http://127.0.0.1:${port}`);
    const wrong = await cli(['status', '--key', 'wrong-key-0123456789']);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('the key was not accepted');
    expect(wrong.stderr + wrong.stdout).not.toContain('wrong-key-0123456789');
    const missing = await cli(['status', '--json'], { ODOO_PIPELINE_KEY: undefined });
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.stderr)).toEqual({
      error: { exitCode: 3, message: expect.stringContaining('a function key is needed') },
    });
    // a key in the URL (?code=, as the Functions host accepts it) works and is not echoed
    const inUrl = await cli(['status', '--url', `${host.baseUrl}/?code=${host.keys.functionKey}`], {
      ODOO_PIPELINE_KEY: undefined,
    });
    expect(inUrl.code).toBe(0);
    expect(inUrl.stdout).toContain('code=***');
  }, 60_000);

  it('a hanging endpoint is a timeout (4), a 503 gateway is unreachable (3)', async () => {
    const sockets = new Set<import('node:net').Socket>();
    let mode: 'hang' | '503' = 'hang';
    const hang = http.createServer((_req, res) => {
      if (mode === '503') {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'GATEWAY.DOWN', message: 'backend unavailable' }));
      }
      /* 'hang': never answer */
    });
    hang.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`;
    try {
      const t = await cli(['status', '--url', url, '--request-timeout', '1']);
      expect(t.code).toBe(4);
      expect(t.stderr).toContain('did not answer within 1 s');
      mode = '503';
      const u = await cli(['status', '--url', url]);
      expect(u.code).toBe(3);
      expect(u.stderr).toContain('the pipeline is unavailable (503): [GATEWAY.DOWN] backend unavailable');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => hang.close(() => r(undefined)));
    }
  }, 60_000);

  it('behind Entra ID (App Service authentication): --token is sent as a Bearer token, a sign-in redirect is exit 3', async () => {
    // a stand-in for App Service authentication in front of the app: it wants a bearer token
    const token = 'eyJ0eXAi.entra-token-for-test.sig';
    const seen: Array<string | undefined> = [];
    const easyAuth = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      if (req.headers.authorization !== `Bearer ${token}`) {
        res.writeHead(302, { location: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize' });
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          generatedAt: new Date().toISOString(),
          runtime: 'azure',
          appVersion: '0.1.0',
          environments: [],
          problems: [],
        }),
      );
    });
    await new Promise<void>((r) => easyAuth.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(easyAuth.address() as AddressInfo).port}`;
    try {
      const ok = await cli(['status', '--url', url], { ODOO_PIPELINE_TOKEN: token });
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain(`odoo-mta pipeline at ${url} (azure, pipeline 0.1.0)`);
      expect(ok.stdout + ok.stderr).not.toContain(token);
      const redirected = await cli(['status', '--url', url]);
      expect(redirected.code).toBe(3);
      expect(redirected.stderr).toContain('pass --token or set ODOO_PIPELINE_TOKEN');
      expect(seen).toEqual([`Bearer ${token}`, undefined]);
    } finally {
      await new Promise((r) => easyAuth.close(() => r(undefined)));
    }
  }, 60_000);

  it('status shows what runs on each environment (table and --json)', async () => {
    const r = await cli(['status']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('All clear: nothing is down or waiting for anyone.');
    expect(r.stdout).toMatch(
      /^UAT — UP: runs 1\.0\.0\n {2}running {6}1\.0\.0 \(aaaaaaaaaaaa\) since \d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC \([0-9dhms ]+ ago\)/m,
    );
    expect(r.stdout).toMatch(
      /^PROD — UNKNOWN: nothing deployed through the pipeline yet\n {2}running {6}nothing recorded yet/m,
    );
    expect(r.stdout).toContain('in progress  idle');
    const j = await cli(['status', '--json']);
    const doc = JSON.parse(j.stdout) as StatusDocument;
    expect(uat(doc).running).toEqual({ ok: true, value: expect.objectContaining({ version: '1.0.0' }) });
    expect(doc.problems).toEqual([]);
  }, 60_000);

  // The deploys the later tests build on, each run once per suite: by the test that is about it when
  // the suite runs whole, by the first test that needs it when a test runs alone (`-t`).
  const failedId = `deploy-uat-1.2.0-${'c'.repeat(12)}`;
  let okRun: Promise<Run> | undefined;
  let failedRun: Promise<Run> | undefined;
  /** UAT 1.0.0 → 1.1.0, followed with --wait (UAT then runs 1.1.0, backup of 1.0.0 taken) */
  const deployOk = () =>
    (okRun ??= cli([
      'deploy',
      'uat',
      '1.1.0',
      '--sha',
      SHA('b'),
      '--reason',
      'cli test',
      '--wait',
      '--interval',
      '0.2',
      '--wait-timeout',
      '2m',
    ]));
  const okIdOf = (r: Run) =>
    /UAT deploy of 1\.1\.0 requested: (deploy-uat-1\.1\.0-b{12})/.exec(r.stdout)?.[1] ?? '';
  /** after deployOk: 1.2.0 fails its migration and is rolled back (backup of 1.1.0 taken, logs saved) */
  const deployFailing = () =>
    (failedRun ??= (async () => {
      await deployOk();
      vm.behaviour.failMigration = true;
      try {
        return await cli(['deploy', 'uat', '1.2.0', '--sha', SHA('c'), '--wait', '--interval', '0.2']);
      } finally {
        vm.behaviour.failMigration = false;
      }
    })());

  it('deploy uat --wait follows a deploy to Succeeded (exit 0), plain lines when not a TTY', async () => {
    const r = await deployOk();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const okId = okIdOf(r);
    expect(okId).not.toBe('');
    // like `gh run watch`: each finished step once, with its duration; the outcome once, at the end
    expect(r.stdout).toMatch(/^ {2}✓ preparing +\d+s$/m);
    expect(r.stdout).toMatch(/^ {2}✓ updating the database \(module upgrade\) +\d+s$/m);
    expect(r.stdout.match(/^ {2}✓ stopping Odoo /gm)).toHaveLength(1);
    expect(r.stdout.trimEnd().split('\n').pop()).toBe(`${okId}: succeeded`);
    expect(r.stdout.split(`${okId}: `).length - 1).toBe(1);
    expect(r.stdout).not.toContain('\r');
    expect(r.stdout).not.toContain('\x1b[');
    expect(vm.state.image).toBe('odoo-mta:uat-v1.1.0');
    const doc = await api<StatusDocument>('status');
    expect(uat(doc).running).toEqual({
      ok: true,
      value: expect.objectContaining({ version: '1.1.0', previousVersion: '1.0.0' }),
    });
  }, 120_000);

  it('a failing deploy exits 1 (RolledBack) and points to its logs; logs prints them', async () => {
    const okId = okIdOf(await deployOk());
    const r = await deployFailing();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ {2}✗ updating the database \(module upgrade\)$/m);
    expect(r.stdout).toContain(
      `${failedId}: failed, rolled back — while updating the database (module upgrade): odoo-ops migrate failed (exit 5): migration failed`,
    );
    expect(r.stdout.split(`${failedId}: `).length - 1).toBe(1);
    expect(r.stderr).toContain(`logs saved: odoo-pipeline logs ${failedId}`);

    const logs = await cli(['logs', failedId]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(
      /===== migration\.log \(\d+ B\) — uat\/\d{8}T\d{6}Z-1\.1\.0\/logs\/migration\.log/,
    );
    expect(logs.stdout).toContain('CRITICAL boom in sale');
    expect(logs.stdout).toContain('===== container.log');
    const one = await cli(['logs', failedId, '--name', 'migration.log', '--tail', '1', '--json']);
    expect(one.code).toBe(0);
    const body = JSON.parse(one.stdout) as { outcome: string; logs: Array<{ name: string; text: string }> };
    expect(body.outcome).toBe('RolledBack');
    expect(body.logs.map((l) => l.name)).toEqual(['migration.log']);
    expect(body.logs[0].text).toBe('CRITICAL boom in sale\n');

    const none = await cli(['logs', okId]);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('logs are saved only when a deploy fails after the stop');
    const unknown = await cli(['logs', 'deploy-uat-9.9.9-ffffffffffff']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no deployment deploy-uat-9.9.9-ffffffffffff');

    const st = await cli(['status']);
    expect(st.stdout).toContain(`last deploy  failed, rolled back 1.2.0`);
    expect(st.stdout).toContain(
      'while updating the database (module upgrade): odoo-ops migrate failed (exit 5)',
    );
    expect(st.stdout).toMatch(/^ {2}FAILED {3}UAT deploy of 1\.2\.0 failed, rolled back$/m);
  }, 120_000);

  it('backups lists sizes and states; --verify records verified or corrupt', async () => {
    await deployFailing(); // two backups: of 1.0.0 (before 1.1.0) and of 1.1.0 (before the failed 1.2.0)
    const list = await cli(['backups', 'uat']);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^BACKUP\s+VERSION\s+TAKEN\s+SIZE\s+PARTS\s+STATE$/);
    expect(lines.slice(1)).toHaveLength(2);
    for (const l of lines.slice(1))
      expect(l).toMatch(/^uat\/\d{8}T\d{6}Z-1\.[01]\.0 +1\.[01]\.0 .* B +db\.dump,filestore\.tar +complete$/);
    const j = JSON.parse((await cli(['backups', 'uat', '--json', '--limit', '1'])).stdout) as {
      items: Array<{ id: string; sizeBytes: number; state: string }>;
    };
    expect(j.items).toHaveLength(1);
    const newest = j.items[0].id;
    expect(j.items[0].sizeBytes).toBeGreaterThan(0);

    const v = await cli(['backups', 'uat', '--verify', newest]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain(`${newest}: verified\n  every part matches its manifest`);
    // damage a part behind the pipeline's back: verification says so and the status shows it
    const blob = BlobServiceClient.fromConnectionString(host.blobConnectionString!)
      .getContainerClient('backups')
      .getBlockBlobClient(`${newest}/db.dump`);
    await blob.upload('tampered', 8);
    const bad = await cli(['backups', 'uat', '--verify', newest.replace(/^uat\//, '')]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${newest}: corrupt`);
    expect(bad.stdout).toContain('db.dump: size 8 differs from the manifest');
    const after = await cli(['backups', 'uat']);
    expect(after.stdout).toMatch(
      new RegExp(`${newest.replace(/[.]/g, '\\.')} .* corrupt \\d{1,2} [A-Z][a-z]{2} \\d{4}`),
    );
    const missing = await cli(['backups', 'uat', '--verify', '20990101T000000Z-1.0.0']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no backup uat/20990101T000000Z-1.0.0');
    const prod = await cli(['backups', 'prod']);
    expect(prod).toMatchObject({ code: 0, stdout: 'No backups of prod.\n' });
  }, 120_000);

  it('status shows a running deploy at its step; rollback uat queues behind it and --wait times out (4), then it runs', async () => {
    await deployOk(); // UAT runs 1.1.0, its previous version is 1.0.0
    let release!: () => void;
    vm.behaviour.holdMigrate = new Promise<void>((r) => (release = r));
    try {
      const d = await cli(['deploy', 'uat', '1.3.0', '--sha', SHA('d')]);
      expect(d.code).toBe(0);
      expect(d.stdout).toContain(`UAT deploy of 1.3.0 requested: deploy-uat-1.3.0-${'d'.repeat(12)}`);
      await until('the deploy to reach migrate', async () => {
        const p = uat(await api<StatusDocument>('status')).inProgress;
        return p.ok && p.value?.progress.step === 'migrate' ? true : undefined;
      });
      const st = await cli(['status']);
      expect(st.stdout).toMatch(
        /in progress {2}UAT deploy 1\.3\.0: \[#+-+\] +50% updating the database \(module upgrade\) \(6\/11\)/,
      );
      // stopped for the deploy: UAT is down (planned), first in the attention strip
      expect(st.stdout).toMatch(
        /^NEEDS ATTENTION\n {2}DOWN {5}UAT is DOWN\n {11}for the UAT deploy of 1\.3\.0: updating the database \(module upgrade\)$/m,
      );
      expect(st.stdout).toMatch(/^UAT — DOWN: for the UAT deploy of 1\.3\.0/m);

      const rb = await cli(['rollback', 'uat', '--wait', '--wait-timeout', '2s', '--interval', '0.2']);
      expect(rb.code).toBe(4);
      expect(rb.stderr).toContain('is in progress on uat: the rollback waits in the lane behind it');
      expect(rb.stdout).toContain('UAT rollback: redeploying 1.0.0 (running 1.1.0)');
      expect(rb.stdout).toContain('waiting for its turn');
      expect(rb.stderr).toContain('still not finished after 2s');
      const q = await cli(['status', '--json']);
      expect(uat(JSON.parse(q.stdout) as StatusDocument).queued).toEqual({
        ok: true,
        value: [expect.stringMatching(/^deploy-uat-1\.0\.0-a{12}/)],
      });
    } finally {
      vm.behaviour.holdMigrate = undefined;
      release();
    }
    // the held deploy ends, then the lane runs the rollback: UAT runs the previous version again
    await until(
      'UAT to run 1.0.0 again',
      async () => {
        const doc = await api<StatusDocument>('status');
        const r = uat(doc).running;
        const p = uat(doc).inProgress;
        return r.ok && r.value?.version === '1.0.0' && p.ok && !p.value ? true : undefined;
      },
      90_000,
    );
    expect(vm.state.image).toBe('odoo-mta:uat-v1.0.0');
  }, 180_000);

  it('approvals lists pending PROD approvals with expiry and no nonce; rollback prod shows a pending rollback decision', async () => {
    const exp = new Date(Date.now() + 3 * 3600_000).toISOString();
    await host.durable.startNew(PROD_STANDIN, {
      instanceId: `deploy-prod-1.1.0-${'b'.repeat(12)}`,
      input: {
        kind: 'deployProd',
        step: 'awaiting-approval',
        environment: 'prod',
        version: '1.1.0',
        requestedBy: 'erin',
        reason: 'monthly release',
        approvals: { required: 2, received: [{ approver: 'bob', at: new Date().toISOString() }] },
        pendingApprovals: [
          { approver: 'carol', nonce: 'nonce-SECRET-approval', action: 'approval', expiresAt: exp },
        ],
      },
    });
    const a = await until('the approval to show', async () => {
      const r = await cli(['approvals']);
      return r.stdout.includes('carol') ? r : undefined;
    });
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^DEPLOYMENT\s+VERSION\s+REQUESTED BY\s+APPROVER\s+FOR\s+NEEDS\s+EXPIRES$/m);
    expect(a.stdout).toMatch(
      /deploy-prod-1\.1\.0-b{12}\s+1\.1\.0\s+erin\s+carol\s+approval\s+1 more\s+\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC \(in 2h 5\dm\)/,
    );
    expect(a.stdout).toContain('never shown here');
    expect(a.stdout).not.toContain('nonce');
    const aj = JSON.parse((await cli(['approvals', '--json'])).stdout) as {
      count: number;
      items: Array<Record<string, unknown>>;
    };
    expect(aj.count).toBe(1);
    expect(JSON.stringify(aj)).not.toContain('SECRET');

    // a PROD deploy of a version UAT never ran is refused by the API: exit 1 with its reason
    const notOnUat = await cli(['deploy', 'prod', '9.9.9', '--reason', 'monthly release']);
    expect(notOnUat.code).toBe(1);
    expect(notOnUat.stderr).toMatch(/9\.9\.9.*UAT/);

    // no rollback decision pending and no previous PROD version: nothing to roll back to
    const nothing = await cli(['rollback', 'prod']);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('PROD has no previous version in its ledger to roll back to');

    const rbId = `deploy-prod-1.0.1-${'e'.repeat(12)}`;
    await host.durable.startNew(PROD_STANDIN, {
      instanceId: rbId,
      input: {
        kind: 'deployProd',
        step: 'awaiting-rollback-decision',
        environment: 'prod',
        version: '1.0.1',
        requestedBy: 'erin',
        pendingApprovals: [
          { approver: 'dave', nonce: 'nonce-SECRET-rollback', action: 'rollback', expiresAt: exp },
        ],
      },
    });
    const rb = await until('the rollback decision to show', async () => {
      const r = await cli(['rollback', 'prod']);
      return r.code === 0 ? r : undefined;
    });
    expect(rb.stdout).toContain(`A PROD rollback is waiting for a decision (${rbId})`);
    expect(rb.stdout).toContain('posted to Slack to: dave');
    expect(rb.stdout).not.toContain('SECRET');
    for (const id of [rbId, `deploy-prod-1.1.0-${'b'.repeat(12)}`])
      await host.durable.raiseEvent(id, 'finish', {});
  }, 120_000);

  it('refresh: bad input is a usage error; a refresh that fails exits 1 with its reason', async () => {
    const bad = await cli(['refresh', '--backup', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--backup must be fresh or latest');
    // the real refreshUat runs through UAT's lane; this host has no UAT VM configured, so it fails
    const r = await cli([
      'refresh',
      '--filestore',
      'skip',
      '--reason',
      'cli test',
      '--wait',
      '--interval',
      '0.3',
      '--wait-timeout',
      '3m',
    ]);
    expect(r.stdout).toMatch(/Refresh of UAT from PROD requested: refresh-uat-/);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^refresh-uat-\S+: (failed|failed, rolled back|failed, needs attention) — /m);
    expect(r.stdout).not.toContain('cli test'); // the request's words are not the failure
  }, 240_000);
  it('deploy --wait on a terminal draws one progress line, rewritten in place', async () => {
    await deployOk(); // 1.1.0 ran on UAT before: this is a redeploy (its id ends in -r…)
    // the deploy holds at migrate until the CLI has drawn its live line (with the fake VM every step
    // takes no time: the deploy could end before the CLI's first look, leaving nothing live to draw)
    let release!: () => void;
    vm.behaviour.holdMigrate = new Promise<void>((r) => (release = r));
    // (and at the latest after 30 s, so that a wrong live line fails the assertions below, not the timeout)
    const fallback = setTimeout(() => release(), 30_000);
    // a real pseudo-terminal through util-linux `script`
    const cmd = [process.execPath, BIN, 'deploy', 'uat', '1.1.0', '--wait', '--interval', '0.1']
      .map((a) => `'${a}'`)
      .join(' ');
    const r = await new Promise<Run>((resolve, reject) => {
      const child = spawn('script', ['-qefc', cmd, '/dev/null'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          ODOO_PIPELINE_URL: host.baseUrl,
          ODOO_PIPELINE_KEY: host.keys.functionKey,
          TERM: 'dumb',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        // the live line of the held step drawn, and rewritten at least once: let the deploy go on
        if (/updating the database[^\n]*so far\)/.test(stdout) && stdout.includes('\r\x1b[2K')) release();
      });
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        outputs.push(stdout, stderr);
        resolve({ code, stdout, stderr });
      });
    }).finally(() => {
      clearTimeout(fallback);
      vm.behaviour.holdMigrate = undefined;
      release();
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/UAT deploy of 1\.1\.0 requested: deploy-uat-1\.1\.0-b{12}-r[0-9a-z]+/);
    expect(r.stdout).toContain('\r\x1b[2K');
    // the held step was shown live, with its time so far
    // eslint-disable-next-line no-control-regex
    expect(r.stdout).toMatch(/\r\x1b\[2K[^\n]*updating the database[^\n]*\d+s so far\)/);
    // the outcome starts a line of its own: after a newline, or in place of the live line it clears
    // (a step that is not timed, like "removing old images", may be the last live line the poll saw)
    // eslint-disable-next-line no-control-regex
    expect(r.stdout).toMatch(/(?:\n|\r\x1b\[2K)deploy-uat-1\.1\.0-b{12}-r[0-9a-z]+: succeeded\r?\n/);
    expect(r.stdout).not.toMatch(/so far\)deploy-uat/);
    expect(r.stdout).toMatch(/ {2}✓ updating the database \(module upgrade\) +\d+s\r?\n/);
    // the live line is rewritten, not repeated: it never ends a line of its own
    expect(r.stdout).not.toMatch(/so far\)\r?\n/);
  }, 120_000);

  /** The CLI on a real pseudo-terminal (util-linux `script`) of `cols` columns. */
  function onTerminal(args: string[], cols: number, env: Record<string, string> = {}): Promise<Run> {
    const cmd = `stty cols ${cols} rows 50; ${[process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' ')}`;
    return new Promise<Run>((resolve, reject) => {
      const child = spawn('script', ['-qefc', cmd, '/dev/null'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          ODOO_PIPELINE_URL: host.baseUrl,
          ODOO_PIPELINE_KEY: host.keys.functionKey,
          TERM: 'xterm-256color',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        outputs.push(stdout, stderr);
        resolve({ code, stdout: stdout.replace(/\r\n/g, '\n'), stderr });
      });
    });
  }
  // eslint-disable-next-line no-control-regex
  const visible = (t: string) => t.replace(/\x1b\[[0-9;]*m/g, '');
  const ids = (t: string) => [
    ...new Set(t.match(/deploy-(?:uat|prod)-[0-9.]+-[a-z0-9]{12}(?:-r\d+)?/g) ?? []),
  ];

  it('status and approvals fit 80 and 120 columns, on a terminal and not; colours only on a terminal (NO_COLOR, FORCE_COLOR)', async () => {
    const exp = new Date(Date.now() + 3 * 3600_000).toISOString();
    const waitId = `deploy-prod-1.1.0-${'b'.repeat(12)}-w1`;
    await host.durable.startNew(PROD_STANDIN, {
      instanceId: waitId,
      input: {
        kind: 'deployProd',
        step: 'awaiting-approval',
        environment: 'prod',
        version: '1.1.0',
        requestedBy: 'erin',
        reason: 'monthly release with a long explanation of why it matters so much to everyone involved',
        approvals: { required: 2, received: [{ approver: 'bob', at: new Date().toISOString() }] },
        pendingApprovals: ['carol', 'dave', 'frank'].map((a) => ({
          approver: a,
          nonce: `nonce-SECRET-${a}`,
          action: 'approval',
          expiresAt: exp,
        })),
      },
    });
    try {
      await until('the pending approval', async () =>
        (await api<StatusDocument>('status')).attention.some((i) => i.deployment === waitId)
          ? true
          : undefined,
      );
      const plainWide = await cli(['status']);
      const known = ids(plainWide.stdout);
      expect(known.length).toBeGreaterThan(0);
      for (const cols of [80, 120]) {
        for (const how of ['pipe', 'tty'] as const) {
          for (const cmd of [['status'], ['approvals']]) {
            const r = how === 'tty' ? await onTerminal(cmd, cols) : await cli(cmd, { COLUMNS: String(cols) });
            expect(r.code).toBe(0);
            const text = visible(r.stdout);
            for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(cols);
            // never cut inside a word: every deployment id shown is whole, and the waiting approval reads whole
            for (const id of ids(text)) expect([...known, waitId]).toContain(id);
            if (cmd[0] === 'status') {
              expect(text).toMatch(/WAITING +PROD deploy of 1\.1\.0 waits for approval/);
              expect(text.replace(/\n +/g, ' ')).toContain('needs 1 of carol, dave, frank');
            } else {
              expect(text).toMatch(/^DEPLOYMENT/m);
              if (cols === 80) expect(text).not.toContain('REQUESTED BY'); // dropped first, kubectl-style
            }
            // colours: on a terminal only
            if (how === 'tty' && cmd[0] === 'status') expect(r.stdout).toContain('\x1b[33mWAITING');
            if (how === 'pipe') expect(r.stdout).not.toContain('\x1b[');
          }
        }
      }
      const noColor = await onTerminal(['status'], 100, { NO_COLOR: '1' });
      expect(noColor.stdout).not.toContain('\x1b[3');
      const forced = await cli(['status'], { FORCE_COLOR: '1' });
      expect(forced.stdout).toContain('\x1b[33mWAITING');
    } finally {
      await host.durable.raiseEvent(waitId, 'finish', {});
    }
  }, 180_000);
});
