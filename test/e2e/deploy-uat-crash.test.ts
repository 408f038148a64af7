/**
 * The UAT deploy crash matrix, on the Durable Task engine (the extension's Azure Storage provider on the
 * host's supervised Azurite).
 *
 * The real `npm start` host (dist/local/main.js, a child process in its OWN process group) runs the real
 * intake + lane + deployUat with the production wiring against the sandbox UAT VM (real sshd, dockerd,
 * registry, PostgreSQL, odoo-ops), Azurite and the local GitHub / Slack servers. A merge webhook starts
 * the deploy; the host's whole process group is SIGKILLed (what a machine crash or the OOM killer does
 * to it: the Node side and the .NET host die together; the supervised Azurite, in its own group,
 * outlives it) at a step boundary — the fixture (test/fixtures/deploy-crash/functions.js) pauses
 * every activity before it acts on the VM or the ledger, and three times inside a step: after the backup
 * job and the migration job were started on the VM and after `odoo-ops pull` succeeded, before the
 * activity returns — and restarted on the same data folder each time.
 *
 *  1. a good release, killed once at EVERY boundary (preflight, backup, inside the backup job, pull,
 *     stop, migrate, inside migrate, start, health, ledger): the deploy finishes once and no side effect is done twice
 *     harmfully: one complete backup for the deploy, one pull/stop/migrate/start on the VM (the stand-in's
 *     update log shows the modules migrated once), one GitHub deployment in_progress → success, one Slack
 *     message, one ledger record, the intake records (accepted, deploy-started, deploy-finished) once,
 *     UAT healthy on the new image;
 *  2. a broken release (it pulls and migrates, then /web/health answers 503), killed inside its pull: the
 *     deploy ends RolledBack once (one GitHub failure, one Slack alert, one deploy-finished record), UAT
 *     healthy on the previous image, the deploy's backup present.
 *
 * The activity in flight at the kill runs again when its work-item message becomes visible again: 30 s
 * after it was taken (workItemQueueVisibilityTimeout, LOCAL_PROVIDER_OVERRIDES in local/durable-host.ts):
 * about 30 s per kill, ten kills. The broken-release case first holds the preflight 75 s, which must not
 * start a second copy of it (the provider renews a running activity's message). Each kill's recovery is
 * printed (`[crash]` lines on stderr).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stopLeftoverSupervisor } from '../../local/azurite';
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
  output?: {
    outcome?: string;
    backupId?: string;
    reason?: string;
    code?: string;
    failedStep?: string;
  } | null;
}

/** One kill: where, how long the host took to be ready again, and until the deploy moved again. */
interface KillTiming {
  boundary: string;
  /** SIGKILL → the restarted host printed "ready." */
  restartMs: number;
  /** SIGKILL → the deploy made progress again (the next pause point reached, or the end) */
  resumedMs?: number;
}

const TERMINAL = new Set(['Completed', 'Failed', 'Terminated']);

jest.setTimeout(45 * 60 * 1000);

describeSandbox("deployUat on the sandbox survives SIGKILL of the host's process group at every step", () => {
  let rig: DeployRig;
  let host: Running | undefined;
  let crashDir: string;
  let dataDir: string;
  const startedAt = Date.now();

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
    if (host) await killGroup(host);
    // the supervised Azurite outlives a killed host by design: stop it
    if (dataDir) await stopLeftoverSupervisor(path.join(dataDir, 'azurite')).catch(() => undefined);
    await rig?.stop();
    process.stderr.write(`[crash] whole suite ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`);
  });

  async function startHost(): Promise<Running> {
    const child = spawn(
      process.execPath,
      [mainJs, '--port', '0', '--data-dir', dataDir, '--functions', fixtures],
      {
        env: {
          ...process.env,
          ...rig.env(),
          // warnings too: kept only in memory and shown when the host does not start (a restart after a
          // SIGKILL once hung silently for 240 s on the real engine, with nothing to tell why)
          LOG_LEVEL: 'warn',
          DEPLOY_CRASH_DIR: crashDir,
          CI: '',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group: the test kills the whole group, as a crash would
      },
    );
    let out = '';
    child.stdout?.on('data', (d) => (out += d.toString()));
    child.stderr?.on('data', (d) => (out += d.toString()));
    // longer than the host's own wait for the Durable Task host (240 s): if that one gives up, its
    // error (with the .NET host's stderr) is what this test shows
    const deadline = Date.now() + 300000;
    while (!/^ready\. /m.test(out)) {
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

  /** SIGKILL to the host's whole process group (the Node side and the .NET host) */
  const killGroup = (h: Running) =>
    new Promise<void>((resolve) => {
      if (h.child.exitCode !== null || h.child.signalCode !== null) return resolve();
      h.child.once('exit', () => resolve());
      try {
        process.kill(-h.child.pid!, 'SIGKILL');
      } catch {
        resolve(); // the group is already gone
      }
    });

  async function status(id: string): Promise<Status> {
    const res = await fetch(`${host!.baseUrl}/api/crashdeploy/status/${id}`, {
      headers: { 'x-functions-key': host!.key },
    }).catch(() => undefined);
    return res && res.ok ? ((await res.json()) as Status) : {};
  }

  /**
   * Let the deploy `id` run to its end, pausing at every boundary; kill the host once at each boundary
   * `killAt` accepts (`<custom status step>:<pause point>`) and restart it on the same data folder.
   */
  async function drive(
    id: string,
    killAt: (boundary: string) => boolean,
    hold?: { at: string; ms: number },
  ): Promise<{ killedAt: string[]; st: Status; kills: KillTiming[]; arrivalsWhileHeld?: number }> {
    const paused = path.join(crashDir, 'paused');
    const hits = path.join(crashDir, 'hits');
    const arrivals = () => (existsSync(hits) ? readFileSync(hits, 'utf8').split('\n').length - 1 : 0);
    let arrivalsWhileHeld: number | undefined;
    const killedAt: string[] = [];
    const kills: KillTiming[] = [];
    let pending: { t0: number; timing: KillTiming } | undefined;
    let st: Status = {};
    for (;;) {
      await until(
        'the deploy to reach a step boundary or to end',
        async () =>
          existsSync(paused) ||
          (TERMINAL.has((st = await status(id)).runtimeStatus ?? '') ? true : undefined),
        10 * 60 * 1000,
        100,
      );
      if (pending) {
        pending.timing.resumedMs = Date.now() - pending.t0;
        pending = undefined;
      }
      if (!existsSync(paused)) break;
      // the engine commits an episode in several storage writes (the activity's queue message, the
      // history, the instance row with the custom status), not one transaction: give the instance row a
      // moment, so that the step read below is the one whose activity paused (a precaution)
      await sleep(1000);
      const boundary = `${(await status(id)).customStatus?.step ?? '?'}:${readFileSync(paused, 'utf8')}`;
      if (!killedAt.includes(boundary) && killAt(boundary)) {
        // the step's activity is about to act (or has just acted): SIGKILL the host's group here
        const t0 = Date.now();
        await killGroup(host!);
        host = undefined; // if the restart fails, the next test starts a host of its own
        killedAt.push(boundary);
        rmSync(paused, { force: true });
        host = await startHost();
        const timing: KillTiming = { boundary, restartMs: Date.now() - t0 };
        kills.push(timing);
        pending = { t0, timing };
      } else {
        if (hold && boundary === hold.at && arrivalsWhileHeld === undefined) {
          // keep the activity busy longer than the work-item visibility timeout: the provider must renew
          // its message, or a second copy of the activity starts (and reaches a pause point) meanwhile
          const before = arrivals();
          await sleep(hold.ms);
          arrivalsWhileHeld = arrivals() - before;
        }
        rmSync(paused, { force: true }); // not killed here, or the re-run of a step we killed: let it act
      }
    }
    for (const k of kills)
      process.stderr.write(
        `[crash] ${id} kill at ${k.boundary}: host ready ${(k.restartMs / 1000).toFixed(1)} s, deploy moving again ${((k.resumedMs ?? NaN) / 1000).toFixed(1)} s after the kill\n`,
      );
    process.stderr.write(`[crash] load ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`);
    return { killedAt, st, kills, arrivalsWhileHeld };
  }

  /** complete backups whose manifest names the deploy `id` */
  async function backupsOf(id: string): Promise<string[]> {
    const mine: string[] = [];
    for (const b of await rig.backups.list('uat')) {
      if (!b.complete) continue;
      const m = await rig.backups.manifest(b.id);
      if (m.deployInstance === id) mine.push(b.id);
    }
    return mine;
  }

  /**
   * The intake's decision records of the commit `sha` (GET /api/deliveries), once the lane recorded the
   * end of its deploy: the lane writes `deploy-finished` in its next generation, after the deploy ended.
   */
  async function intakeRecordsOf(sha: string): Promise<Array<Record<string, unknown>>> {
    const read = async () => {
      const res = await fetch(`${host!.baseUrl}/api/deliveries?limit=200`, {
        headers: { 'x-functions-key': host!.key },
      });
      if (!res.ok) return undefined;
      const items = ((await res.json()) as { items: Array<Record<string, unknown>> }).items;
      return items.filter((x) => x.sha === sha);
    };
    await until(
      `the lane to record the end of the deploy of ${sha.slice(0, 7)}`,
      async () => (await read())?.some((x) => x.decision === 'deploy-finished'),
      3 * 60 * 1000,
      250,
    );
    return (await read())!;
  }
  /** the deploy was accepted, started and finished exactly once, with `outcome` */
  async function expectIntakeOnce(sha: string, outcome: string): Promise<void> {
    const mine = await intakeRecordsOf(sha);
    const count = (d: string) => mine.filter((x) => x.decision === d).length;
    expect({
      accepted: count('accepted'),
      started: count('deploy-started'),
      finished: count('deploy-finished'),
    }).toEqual({ accepted: 1, started: 1, finished: 1 });
    expect(mine.find((x) => x.decision === 'deploy-finished')).toMatchObject({ outcome });
  }

  const slackPostsWith = (...parts: string[]) =>
    rig.slack.posts.filter((p) => parts.every((x) => JSON.stringify(p.body).includes(x)));

  it('a good release finishes correctly after a kill at every step boundary, with no harmful double side effect', async () => {
    const t0 = Date.now();
    writeFileSync(path.join(crashDir, 'pause'), '');
    host ??= await startHost();
    const c = rig.commit('next');
    expect((await pushWebhook(host.baseUrl, c.sha)).body).toMatchObject({
      decision: 'accepted',
      version: c.version,
    });

    // inside the pull (done on the VM, result unrecorded) is the broken-release case below
    const { killedAt, st } = await drive(c.id, (b) => b !== 'pull:pulled');
    rmSync(path.join(crashDir, 'pause'), { force: true });
    process.stderr.write(
      `[crash] good release, ${killedAt.length} kills, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );

    // killed once at every boundary of the runbook
    expect(killedAt).toEqual([
      'preflight:ssh',
      'backup:ssh',
      'backup:backup-started',
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
    expect(await backupsOf(c.id)).toEqual([st.output!.backupId]);
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
    expect(slackPostsWith('Deployed', c.sha.slice(0, 7))).toHaveLength(1);

    // the intake records: accepted, started and finished once
    await expectIntakeOnce(c.sha, 'Succeeded');
  });

  it('a broken release killed inside its pull is rolled back once: UAT healthy on the previous image, the backup present', async () => {
    const t0 = Date.now();
    host ??= await startHost();
    const before = (await rig.uat.opsJson('status')).json as { web_image: string };
    const current = await rig.ledger.current('uat');
    const c = rig.commit('unhealthy'); // pulls and migrates fine, then /web/health answers 503
    writeFileSync(path.join(crashDir, 'pause'), '');
    expect((await pushWebhook(host.baseUrl, c.sha)).body).toMatchObject({
      decision: 'accepted',
      version: c.version,
    });

    // killed once, inside the pull: `odoo-ops pull` done on the VM, the activity's result unrecorded.
    // The preflight is first held 2.5 × the work-item visibility timeout (30 s): an activity that runs
    // longer than that must not be delivered a second time
    const { killedAt, st, arrivalsWhileHeld } = await drive(c.id, (b) => b === 'pull:pulled', {
      at: 'preflight:ssh',
      ms: 75_000,
    });
    expect(arrivalsWhileHeld).toBe(0);
    rmSync(path.join(crashDir, 'pause'), { force: true });
    process.stderr.write(
      `[crash] broken release, ${killedAt.length} kill, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    expect(killedAt).toEqual(['pull:pulled']);
    expect(st).toMatchObject({
      runtimeStatus: 'Completed',
      output: { outcome: 'RolledBack', failedStep: 'health', code: 'DEPLOY.UNHEALTHY' },
    });

    // UAT runs the previous image again, healthy; the ledger still names the previous release
    expect((await rig.uat.opsJson('status')).json).toMatchObject({
      web_state: 'running',
      web_image: before.web_image,
    });
    expect((await rig.uat.opsJson('health')).json.ok).toBe(true);
    expect((await rig.ledger.current('uat'))?.sha).toBe(current?.sha);
    expect((await rig.ledger.history('uat', 100)).filter((r) => r.instanceId === c.id)).toHaveLength(0);
    // the new image was pulled (again after the kill: a pull is idempotent), started once, stopped
    const h = (await opsHistory(rig.uat)).map((x) => `${x.verb} ${x.image ?? ''}`.trim());
    expect(h.filter((x) => x === `pull ${c.image}`).length).toBeGreaterThanOrEqual(1);
    expect(h.filter((x) => x === `migrate ${c.image}`)).toHaveLength(1);
    expect(h.filter((x) => x === `start ${c.image}`)).toHaveLength(1);

    // the deploy's one complete backup is there, the one the result names
    expect(st.output!.backupId).toBeTruthy();
    expect(await backupsOf(c.id)).toEqual([st.output!.backupId]);

    // rolled back once: one GitHub deployment in_progress → failure, one Slack alert
    const ds = rig.ghd.deployments.filter((d) => d.ref === c.sha);
    expect(ds).toHaveLength(1);
    expect(ds[0].statuses.map((s) => s.state)).toEqual(['in_progress', 'failure']);
    expect(slackPostsWith('rolled back', c.version)).toHaveLength(1);
    await expectIntakeOnce(c.sha, 'RolledBack');
  });
});
