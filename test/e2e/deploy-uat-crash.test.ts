/**
 * Crash test on the sandbox: the real `npm start` host (dist/local/main.js, a child process) runs the
 * real intake + lane + deployUat with the production wiring against the sandbox UAT VM (real sshd,
 * dockerd, registry, PostgreSQL, odoo-ops), Azurite and the local GitHub / Slack servers. A merge
 * webhook starts the deploy; the host is SIGKILLed at EACH step boundary (before preflight, backup,
 * pull, stop, migrate, start, health and the ledger record: the fixture pauses there) — and once inside
 * the migrate step, after the migration job was started on the VM but before the activity returned — and
 * restarted on the same data folder each time. The deploy must finish correctly and no side effect may be done twice
 * harmfully: one complete backup for the deploy, one pull/stop/migrate/start on the VM (the stand-in's
 * update log shows the modules migrated once), one GitHub deployment with in_progress → success, one
 * Slack message, one ledger record.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describeSandbox } from '../support/sandbox';
import {
  opsHistory,
  pushWebhook,
  sleep,
  startDeployRig,
  until,
  updatesOf,
  type DeployRig,
} from './deploy-uat-rig';

jest.setTimeout(25 * 60 * 1000);

const root = path.resolve(__dirname, '..', '..');
const mainJs = path.join(root, 'dist', 'local', 'main.js');
const fixtures = path.join(root, 'test', 'fixtures', 'deploy-crash');

interface Running {
  child: ChildProcess;
  baseUrl: string;
  key: string;
  out: () => string;
}

interface Status {
  runtimeStatus?: string;
  customStatus?: { step?: string } | null;
  output?: { outcome?: string; backupId?: string; reason?: string; code?: string } | null;
}

describeSandbox('deployUat on the sandbox survives SIGKILL of the host at every step boundary', () => {
  let rig: DeployRig;
  let host: Running | undefined;
  let crashDir: string;
  let dataDir: string;

  beforeAll(async () => {
    if (
      !existsSync(mainJs) ||
      !existsSync(path.join(root, 'dist', 'functions', 'orchestrators', 'deployUat.js'))
    )
      throw new Error('dist/ is missing: run npm run build first (npm test does)');
    rig = await startDeployRig();
    crashDir = path.join(rig.dir, 'crash');
    dataDir = path.join(rig.dir, 'host');
    mkdirSync(crashDir, { recursive: true });
  });
  afterAll(async () => {
    if (host) await kill9(host);
    await rig?.stop();
  });

  async function startHost(): Promise<Running> {
    const child = spawn(
      process.execPath,
      [mainJs, '--port', '0', '--data-dir', dataDir, '--functions', fixtures],
      {
        env: { ...process.env, ...rig.env(), LOG_LEVEL: 'error', DEPLOY_CRASH_DIR: crashDir, CI: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout?.on('data', (d) => (out += d.toString()));
    child.stderr?.on('data', (d) => (out += d.toString()));
    const deadline = Date.now() + 120000;
    while (!/ready\./.test(out)) {
      if (child.exitCode !== null) throw new Error(`host exited ${child.exitCode}: ${out.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`host did not start: ${out.slice(-3000)}`);
      await sleep(50);
    }
    return {
      child,
      baseUrl: /local host on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1],
      key: /Function key: (\S+)/.exec(out)![1],
      out: () => out,
    };
  }

  const kill9 = (h: Running) =>
    new Promise<void>((resolve) => {
      if (h.child.exitCode !== null || h.child.signalCode !== null) return resolve();
      h.child.once('exit', () => resolve());
      h.child.kill('SIGKILL');
    });

  async function status(id: string): Promise<Status> {
    const res = await fetch(`${host!.baseUrl}/api/crashdeploy/status/${id}`, {
      headers: { 'x-functions-key': host!.key },
    }).catch(() => undefined);
    return res && res.ok ? ((await res.json()) as Status) : {};
  }

  it('finishes correctly after a kill at every step boundary, with no harmful double side effect', async () => {
    const pause = path.join(crashDir, 'pause');
    const paused = path.join(crashDir, 'paused');
    writeFileSync(pause, '');
    host = await startHost();
    const c = rig.commit('next');
    expect((await pushWebhook(host.baseUrl, c.sha)).body).toMatchObject({
      decision: 'accepted',
      version: c.version,
    });

    const killedAt: string[] = [];
    let st: Status = {};
    for (;;) {
      await until(
        'the deploy to reach a step boundary or to end',
        async () =>
          existsSync(paused) || ((st = await status(c.id)).runtimeStatus === 'Completed' ? true : undefined),
        10 * 60 * 1000,
        100,
      );
      if (!existsSync(paused)) break;
      const boundary = `${(await status(c.id)).customStatus?.step ?? '?'}:${readFileSync(paused, 'utf8')}`;
      if (!killedAt.includes(boundary)) {
        // the step's activity is about to act: SIGKILL the host here, restart it on the same data folder
        await kill9(host);
        killedAt.push(boundary);
        rmSync(paused, { force: true });
        host = await startHost();
      } else {
        rmSync(paused, { force: true }); // the re-run of the step we killed before: let it act
      }
    }
    rmSync(pause, { force: true });
    process.stderr.write(
      `[crash] killed at ${killedAt.join(', ')} (load ${readFileSync('/proc/loadavg', 'utf8').trim()})\n`,
    );

    // killed once at every boundary of the runbook
    expect(killedAt).toEqual([
      'preflight:ssh',
      'backup:ssh',
      'pull:ssh',
      'stop:ssh',
      'migrate:ssh',
      'migrate:migrated',
      'start:ssh',
      'health:ssh',
      'record:record',
    ]);
    expect(st).toMatchObject({ runtimeStatus: 'Completed', output: { outcome: 'Succeeded' } });

    // UAT runs the new release, healthy, migrated exactly once
    expect((await rig.uat.opsJson('current')).json).toMatchObject({ image: c.image, version: c.version });
    expect((await rig.uat.opsJson('health')).json.ok).toBe(true);
    const installed = Number(
      (
        await rig.uat.ops(`psql -X -At -c "SELECT count(*) FROM ir_module_module WHERE state='installed'"`)
      ).stdout
        .toString()
        .trim(),
    );
    expect(await updatesOf(rig.uat, c.version)).toBe(installed);
    const h = (await opsHistory(rig.uat)).map((x) => `${x.verb} ${x.image ?? ''}`.trim());
    expect(h.filter((x) => x === `pull ${c.image}`)).toHaveLength(1);
    expect(h.filter((x) => x === `migrate ${c.image}`)).toHaveLength(1);
    expect(h.filter((x) => x === `start ${c.image}`)).toHaveLength(1);
    expect(h.filter((x) => x === 'stop')).toHaveLength(1);
    // the stop came after the pull; the start after the migrate
    expect(h.indexOf('stop')).toBeGreaterThan(h.indexOf(`pull ${c.image}`));
    expect(h.indexOf(`start ${c.image}`)).toBeGreaterThan(h.indexOf(`migrate ${c.image}`));

    // exactly one complete backup for this deploy, and it is the one in the ledger
    const mine: string[] = [];
    for (const b of await rig.backups.list('uat')) {
      if (!b.complete) continue;
      const m = await rig.backups.manifest(b.id);
      if (m.deployInstance === c.id) mine.push(b.id);
    }
    expect(mine).toEqual([st.output!.backupId]);
    const records = (await rig.ledger.history('uat', 100)).filter((r) => r.instanceId === c.id);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      version: c.version,
      sha: c.sha,
      imageRef: c.image,
      backupId: st.output!.backupId,
    });

    // one GitHub deployment for the commit, in_progress → success; one Slack message
    const ds = rig.ghd.deployments.filter((d) => d.ref === c.sha);
    expect(ds).toHaveLength(1);
    expect(ds[0].statuses.map((s) => s.state)).toEqual(['in_progress', 'success']);
    expect(
      rig.slack.posts.filter(
        (p) =>
          JSON.stringify(p.body).includes('Deployed') && JSON.stringify(p.body).includes(c.sha.slice(0, 7)),
      ),
    ).toHaveLength(1);
  });
});
