/**
 * deployUat end to end, driven like production: a signed GitHub push (GitHub's own example payload) to
 * the embedded host's webhook → coverage gate (statuses read from a local server speaking GitHub's REST
 * API) → deploy queue (the host's local Service Bus) → queue trigger → the UAT lane → deployUat → the
 * sandbox UAT VM (real sshd, dockerd, registry, PostgreSQL and the real odoo-ops; only Odoo is a
 * stand-in), with Azurite for backups, ledger and logs, and the production wiring of every activity.
 * What is asserted is what an operator would check: what the VM runs and serves, its data (table
 * checksums), the ledger, the backups and logs in Blob, the GitHub deployment statuses, Slack, the
 * deployments API and the intake decisions.
 *
 * The tests share one VM and run in order (each starts from what the previous one left running).
 * In CI (CI=true) they fail, not skip, when the sandbox cannot start.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { startLocalHost, type LocalHost } from '../../local/host';
import { setDeployPorts } from '../../functions/activities/deploy';
import { resetDefaultIntake } from '../../functions/activities/intake';
import type { DeployResult } from '../../shared/domain/deploy-plan';
import { createLogger } from '../../shared/log';
import { describeSandbox, tableChecksums } from '../support/sandbox';
import { opsHistory, pushWebhook, startDeployRig, until, updatesOf, type DeployRig } from './deploy-uat-rig';

jest.setTimeout(20 * 60 * 1000);

interface DeploymentView {
  id: string;
  runtimeStatus: string;
  outcome: string | null;
  status: { step?: string; backupBytes?: number; elapsedMs?: number } | null;
  result: DeployResult | null;
}

describeSandbox('deployUat end to end: merge webhook → sandbox UAT VM', () => {
  let rig: DeployRig;
  let host: LocalHost;

  beforeAll(async () => {
    rig = await startDeployRig();
    setDeployPorts(undefined); // the production wiring, from settings
    await resetDefaultIntake();
    host = await startLocalHost({
      dataDir: path.join(rig.dir, 'host'),
      port: 0,
      env: rig.env(),
      log: createLogger({ level: 'error' }),
    });
  });
  afterAll(async () => {
    await host?.stop();
    setDeployPorts(undefined);
    await resetDefaultIntake();
    await rig?.stop();
  });

  const key = () => ({ 'x-functions-key': host.keys.functionKey });
  const merge = (sha: string) => pushWebhook(host.baseUrl, sha);
  /** the deploy the lane starts for a merge, once it has ended */
  async function finished(id: string): Promise<DeployResult> {
    await until(`deploy ${id} to start`, () => host.durable.getStatus(id), 10 * 60 * 1000, 200);
    const st = await host.durable.waitForCompletion(id, 15 * 60 * 1000);
    expect(st.runtimeStatus).toBe('Completed');
    const r = st.output as DeployResult;
    process.stderr.write(
      `[e2e] ${id}: ${r.outcome} ${r.code ?? ''} durations ${JSON.stringify(r.durations)} (load ${readFileSync('/proc/loadavg', 'utf8').trim()})\n`,
    );
    return r;
  }
  async function view(id: string): Promise<DeploymentView> {
    const res = await fetch(`${host.baseUrl}/api/deployments/${id}`, { headers: key() });
    expect(res.status).toBe(200);
    return (await res.json()) as DeploymentView;
  }
  async function decisions(): Promise<Array<Record<string, string>>> {
    const res = await fetch(`${host.baseUrl}/api/deliveries?limit=200`, { headers: key() });
    return ((await res.json()) as { items: Array<Record<string, string>> }).items;
  }
  const slackTexts = () => rig.slack.posts.map((p) => JSON.stringify(p.body));
  const statesOf = (sha: string) =>
    rig.ghd.deployments.find((d) => d.ref === sha)?.statuses.map((s) => s.state);
  const running = async () =>
    (await rig.uat.opsJson('status')).json as {
      image: string;
      web_state: string;
      web_image: string;
      db_reachable: boolean;
      pending_modules: string;
    };
  const installedModules = async () =>
    Number(
      (
        await rig.uat.ops(`psql -X -At -c "SELECT count(*) FROM ir_module_module WHERE state='installed'"`)
      ).stdout
        .toString()
        .trim(),
    );

  it('a merge to master reaches UAT: gate, queue, lane, deploy; the ledger, GitHub deployment statuses and Slack are right', async () => {
    const c = rig.commit('next');
    const answer = await merge(c.sha);
    expect(answer).toMatchObject({
      status: 202,
      body: { decision: 'accepted', version: '1.1.0', sha: c.sha },
    });
    const result = await finished(c.id);
    expect(result).toMatchObject({ outcome: 'Succeeded', version: '1.1.0', sha: c.sha, modules: 'all' });

    // the VM runs and serves the new release, migrated once (one row per module in the stand-in's update log)
    expect((await rig.uat.opsJson('current')).json).toMatchObject({ image: c.image, version: '1.1.0' });
    expect(await running()).toMatchObject({
      web_state: 'running',
      web_image: c.image,
      db_reachable: true,
      pending_modules: '',
    });
    expect((await fetch(`${rig.uat.baseUrl}/web/health`)).status).toBe(200);
    expect(await updatesOf(rig.uat, '1.1.0')).toBe(await installedModules());

    // the ledger says what runs where; the backup taken before the stop is complete and verifies
    expect(await rig.ledger.current('uat')).toMatchObject({
      version: '1.1.0',
      sha: c.sha,
      imageRef: c.image,
      coverage: 88,
      backupId: result.backupId,
      instanceId: c.id,
    });
    const v = await rig.backups.verify(result.backupId!);
    expect(v.ok).toBe(true);
    expect(Object.keys(v.manifest!.parts).sort()).toEqual(['db.dump', 'filestore.tar']);
    expect(v.manifest).toMatchObject({ deployInstance: c.id, gitSha: c.sha });

    // GitHub: the gate's commit status, then a deployment for the commit: in_progress → success with the URL
    expect(rig.gate.posted.filter((p) => p.sha === c.sha).map((p) => [p.context, p.state])).toEqual([
      ['deploy/uat', 'pending'],
    ]);
    const d = rig.ghd.deployments.find((x) => x.ref === c.sha)!;
    expect(d).toMatchObject({ environment: 'uat' });
    expect(d.statuses.map((s) => s.state)).toEqual(['in_progress', 'success']);
    expect(d.statuses[1].environment_url).toBe(rig.uat.baseUrl);
    // Slack: the success message names the version, the commit and who merged
    const merger = String((answer.body.mergedBy as string | undefined) ?? '');
    expect(
      slackTexts().some(
        (t) =>
          t.includes('Deployed') &&
          t.includes('1.1.0') &&
          t.includes(c.sha.slice(0, 7)) &&
          (!merger || t.includes(merger)),
      ),
    ).toBe(true);

    // the deployments API and the intake decisions tell the same story
    expect(await view(c.id)).toMatchObject({
      id: c.id,
      runtimeStatus: 'Completed',
      outcome: 'Succeeded',
      status: { step: 'done' },
    });
    expect((await view(c.id)).status!.backupBytes).toBeGreaterThan(0);
    const mine = (await decisions()).filter((x) => x.sha === c.sha).map((x) => x.decision);
    expect(mine).toEqual(expect.arrayContaining(['accepted', 'deploy-started', 'deploy-finished']));
  });

  it('two merges during one deploy: the newer one deploys next, the older one is superseded', async () => {
    const slow = rig.commit('slowMigration'); // 1.4.0: a few seconds per module
    expect((await merge(slow.sha)).body.decision).toBe('accepted');
    await until(
      'the 1.4.0 deploy to be migrating',
      async () =>
        ((await host.durable.getStatus(slow.id))?.customStatus as { step?: string } | undefined)?.step ===
        'migrate',
      10 * 60 * 1000,
    );
    const older = rig.commit('unhealthy'); // merged second: superseded before it runs
    const newer = rig.commit('next'); // merged last (a revert to 1.1.0's code): deployed next
    expect((await merge(older.sha)).body.decision).toBe('accepted');
    await until(
      'the older merge waiting in the lane',
      async () =>
        !!(
          (await host.durable.getStatus('lane-uat'))?.customStatus as { waiting?: string[] } | undefined
        )?.waiting?.includes(older.id),
    );
    expect((await merge(newer.sha)).body.decision).toBe('accepted');
    await until(
      'the newer merge waiting in the lane',
      async () =>
        !!(
          (await host.durable.getStatus('lane-uat'))?.customStatus as { waiting?: string[] } | undefined
        )?.waiting?.includes(newer.id),
    );

    expect((await finished(slow.id)).outcome).toBe('Succeeded');
    expect(await finished(newer.id)).toMatchObject({
      outcome: 'Succeeded',
      previous: { version: '1.4.0', sha: slow.sha },
    });
    expect(await host.durable.getStatus(older.id)).toBeUndefined();
    expect(await running()).toMatchObject({ web_state: 'running', web_image: newer.image });
    expect((await rig.ledger.current('uat'))?.sha).toBe(newer.sha);
    const superseded = (await decisions()).find((x) => x.decision === 'superseded' && x.sha === older.sha);
    expect(superseded).toMatchObject({ version: '1.3.0', supersededBy: newer.id });
    // one deploy at a time on the VM: 1.4.0 migrated and started before the next stop; 1.3.0 never touched it
    const h = (await opsHistory(rig.uat))
      .filter((x) => ['stop', 'migrate', 'start'].includes(x.verb))
      .map((x) => `${x.verb} ${x.image ?? ''}`.trim());
    const i = h.lastIndexOf(`migrate ${slow.image}`);
    expect(h.slice(i, i + 5)).toEqual([
      `migrate ${slow.image}`,
      `start ${slow.image}`,
      'stop',
      `migrate ${newer.image}`,
      `start ${newer.image}`,
    ]);
    expect(h.some((x) => x.includes(older.image))).toBe(false);
    expect(statesOf(older.sha)).toBeUndefined();
  });

  it('a failing migration is rolled back: identical tables, previous version healthy, logs in Blob, failure on GitHub and Slack', async () => {
    const prev = (await rig.ledger.current('uat'))!;
    const before = await tableChecksums(rig.uat);
    const c = rig.commit('brokenMigration');
    expect((await merge(c.sha)).body.decision).toBe('accepted');
    const result = await finished(c.id);
    expect(result).toMatchObject({
      outcome: 'RolledBack',
      failedStep: 'migrate',
      code: 'DEPLOY.MIGRATION_FAILED',
    });
    expect(await tableChecksums(rig.uat)).toEqual(before);
    expect(await running()).toMatchObject({
      web_state: 'running',
      web_image: prev.imageRef,
      pending_modules: '',
    });
    expect((await rig.uat.opsJson('health')).json.ok).toBe(true);
    // the logs sit next to the backup in Blob
    expect(result.logs).toEqual(
      expect.arrayContaining([
        `${result.backupId}/logs/migration.log`,
        `${result.backupId}/logs/container.log`,
      ]),
    );
    expect(await rig.backups.readLog(result.backupId!, 'migration.log')).toMatch(/CRITICAL/);
    expect((await rig.ledger.current('uat'))?.sha).toBe(prev.sha);
    expect(statesOf(c.sha)).toEqual(['in_progress', 'failure']);
    expect(
      slackTexts().some(
        (t) => t.includes('rolled back') && t.includes('MIGRATION_FAILED') && t.includes('1.2.0'),
      ),
    ).toBe(true);
    expect(await view(c.id)).toMatchObject({ runtimeStatus: 'Completed', outcome: 'RolledBack' });
  });

  it('a release unhealthy after start is rolled back the same way', async () => {
    const prev = (await rig.ledger.current('uat'))!;
    const before = await tableChecksums(rig.uat);
    const c = rig.commit('unhealthy');
    expect((await merge(c.sha)).body.decision).toBe('accepted');
    const result = await finished(c.id);
    expect(result).toMatchObject({ outcome: 'RolledBack', failedStep: 'health', code: 'DEPLOY.UNHEALTHY' });
    expect(await tableChecksums(rig.uat)).toEqual(before);
    expect(await running()).toMatchObject({ web_state: 'running', web_image: prev.imageRef });
    expect((await rig.uat.opsJson('health')).json.ok).toBe(true);
    expect(result.logs).toEqual(expect.arrayContaining([`${result.backupId}/logs/container.log`]));
    expect((await rig.backups.readLog(result.backupId!, 'container.log')).length).toBeGreaterThan(0);
    expect(statesOf(c.sha)).toEqual(['in_progress', 'failure']);
  });

  it('SSH sessions killed mid-migration (on the VM side): the migration job goes on, runs once, the deploy succeeds', async () => {
    const logs = path.join(rig.uat.dir, 'state', 'logs');
    const seen = new Set(existsSync(logs) ? readdirSync(logs) : []);
    const historyBefore = (await opsHistory(rig.uat)).length;
    const c = rig.commit('slowMigration');
    expect((await merge(c.sha)).body.decision).toBe('accepted');
    // wait until odoo -u is updating modules on the VM (a new migration log says so), then kill every sshd
    // session carrying an odoo-ops job call (the start or a status poll): the connections drop from the VM side
    const updating = () =>
      readdirSync(logs).some(
        (f) =>
          f.startsWith('migrate-') &&
          !seen.has(f) &&
          readFileSync(path.join(logs, f), 'utf8').includes('Loading module'),
      );
    await until('the migration to be updating modules', () => updating(), 10 * 60 * 1000, 200);
    // the job's status is polled every second (VM_JOB_POLL_SECONDS=1): kill the first two sessions seen,
    // fewer than DEPLOY_RETRY_ATTEMPTS, so a poll's retry is what carries the deploy on
    let done = false;
    const ended = finished(c.id).finally(() => {
      done = true;
    });
    let killed = 0;
    while (!done && killed < 2) {
      const session = sessionOf('job', rig.uat.dir);
      if (session) {
        try {
          process.kill(session, 'SIGKILL');
          killed++;
        } catch {
          // it ended on its own meanwhile
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const result = await ended;
    expect(killed).toBeGreaterThanOrEqual(1);
    expect(result).toMatchObject({ outcome: 'Succeeded' });
    expect(await running()).toMatchObject({ web_state: 'running', pending_modules: '' });
    // the migration ran exactly once on the VM, whatever happened to the sessions that watched it
    const since = (await opsHistory(rig.uat)).slice(historyBefore);
    expect(since.filter((x) => x.verb === 'migrate')).toHaveLength(1);
    expect(since.filter((x) => x.verb === 'restore-db')).toHaveLength(0);
  });

  it('a backup that cannot be uploaded (backups container read-only) ends Failed with nothing stopped', async () => {
    const prev = (await rig.ledger.current('uat'))!;
    const stopsBefore = (await opsHistory(rig.uat)).filter((x) => x.verb === 'stop').length;
    const c = rig.commit('next');
    rig.blob.readOnly.add('backups');
    try {
      expect((await merge(c.sha)).body.decision).toBe('accepted');
      const result = await finished(c.id);
      expect(result).toMatchObject({ outcome: 'Failed', failedStep: 'backup' });
      expect(result.code).toMatch(/^BLOB\./);
    } finally {
      rig.blob.readOnly.delete('backups');
    }
    expect(rig.blob.refused).toBeGreaterThan(0);
    // nothing was stopped: the old container still serves the old version
    expect((await opsHistory(rig.uat)).filter((x) => x.verb === 'stop')).toHaveLength(stopsBefore);
    expect(await running()).toMatchObject({ web_state: 'running', web_image: prev.imageRef });
    expect((await fetch(`${rig.uat.baseUrl}/web/health`)).status).toBe(200);
    expect((await rig.ledger.current('uat'))?.sha).toBe(prev.sha);
    expect(statesOf(c.sha)).toEqual(['in_progress', 'failure']);
    expect(slackTexts().some((t) => t.includes(c.sha.slice(0, 7)) && /fail/i.test(t))).toBe(true);
  });
});

/** pid of the sshd session process (on the VM side) whose command is `odoo-ops --json <verb> …`. */
/**
 * The sshd session process serving an `odoo-ops --json <verb>` call on THIS sandbox VM: the walk up from
 * the call must pass that VM's sshd listener (its pid file under `<vm dir>/.sshd`), so a suite running
 * beside this one in another jest worker never has its own SSH sessions killed.
 */
function sessionOf(verb: string, vmDir: string): number | undefined {
  const listener = Number(readFileSync(path.join(vmDir, '.sshd', 'sshd.pid'), 'utf8').trim());
  const statOf = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return {
        comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
        ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]),
      };
    } catch {
      return undefined;
    }
  };
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (!cmd.includes('odoo-ops --json ' + verb + ' ')) continue;
    // walk up: the first sshd above the call is its session; keep it only if this VM's listener is above
    let session: number | undefined;
    let pid = Number(p);
    for (let i = 0; i < 10 && pid > 1; i++) {
      if (pid === listener) return session;
      const st = statOf(pid);
      if (!st) break;
      if (st.comm === 'sshd' && pid !== Number(p) && session === undefined) session = pid;
      pid = st.ppid;
    }
  }
  return undefined;
}
