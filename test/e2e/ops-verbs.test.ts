/**
 * odoo-ops verbs through real SSH into the sandbox VMs (real sshd, dockerd, registry, PostgreSQL;
 * only Odoo is a stand-in). Each test does what an operator would type: `ssh vm 'odoo-ops ...'`.
 * In CI (CI=true) these tests fail, not skip, when the sandbox cannot start.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeSandbox, Sandbox, SandboxVm, startSandbox, tableChecksums } from '../support/sandbox';

jest.setTimeout(10 * 60 * 1000);

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

async function sql(vm: SandboxVm, q: string): Promise<string> {
  const r = await vm.ops(`psql -X -At -v ON_ERROR_STOP=1 -c "${q}"`);
  if (r.code !== 0) throw new Error(`psql on ${vm.name} failed: ${r.stderr}`);
  return r.stdout.toString().trim();
}

/** "name sha256" lines of every file in a tar stream (uses the machine's tar + sha256sum). */
function tarManifest(tar: Buffer): string[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tarm-'));
  try {
    const x = spawnSync('tar', ['-xf', '-', '-C', dir], { input: tar });
    expect(x.status).toBe(0);
    const r = spawnSync('sh', ['-c', 'find . -type f | sort | xargs -r sha256sum'], {
      cwd: dir,
      encoding: 'utf8',
    });
    return r.stdout.split('\n').filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describeSandbox('odoo-ops over SSH on the sandbox VMs', () => {
  let sb: Sandbox;
  let uat: SandboxVm;
  let prod: SandboxVm;

  beforeAll(
    async () => {
      sb = await startSandbox({ vms: ['uat', 'prod'] });
      uat = sb.vm('uat');
      prod = sb.vm('prod');
    },
    30 * 60 * 1000,
  );

  afterAll(
    async () => {
      await sb?.stop();
    },
    5 * 60 * 1000,
  );

  test('two VMs side by side: each runs its own image, project and database, healthy', async () => {
    const [u, p] = [await uat.opsJson('status'), await prod.opsJson('status')];
    expect(u.code).toBe(0);
    expect(u.json).toMatchObject({
      ok: true,
      verb: 'status',
      image: sb.image('initial', 'uat'),
      web_state: 'running',
      db_reachable: true,
      lock: '',
    });
    expect(p.json).toMatchObject({
      ok: true,
      image: sb.image('initial', 'prod'),
      web_state: 'running',
      db_reachable: true,
    });
    expect(u.json.project).not.toBe(p.json.project);
    const cur = await uat.opsJson('current');
    expect(cur.json).toMatchObject({ image: sb.image('initial', 'uat'), version: '1.0.0' });
    const h = await prod.opsJson('health');
    expect(h.code).toBe(0);
    // the health endpoint is the stand-in's /web/health, reached from the VM
    const body = await uat.ssh(`curl -fsS ${uat.healthUrl}`);
    expect(JSON.parse(body.stdout.toString())).toEqual({ status: 'pass' });
    // human output by default
    const human = await uat.ops('current');
    expect(human.stdout.toString()).toContain('(version 1.0.0)');
  });

  test('usage errors exit 2 with a clear message and change nothing', async () => {
    const bad = await uat.opsJson('frobnicate');
    expect(bad.code).toBe(2);
    expect(bad.json).toMatchObject({ ok: false, exit: 2 });
    expect(String(bad.json.message)).toContain("unknown verb 'frobnicate'");
    const mods = await uat.opsJson(`migrate ${sb.image('next')} "base;drop"`);
    expect(mods.code).toBe(2);
    const missing = await uat.opsJson('migrate 127.0.0.1:1/none:missing');
    expect(missing.code).toBe(8);
    expect(String(missing.json.message)).toContain('odoo-ops pull');
    expect((await uat.opsJson('status')).json.web_state).toBe('running');
  });

  test('backup → restore round trip gives identical table checksums and filestore', async () => {
    const before = await tableChecksums(uat);
    const db = await uat.ops('--json backup-db');
    expect(db.code).toBe(0);
    // stdout is only the data stream: a zstd frame holding a pg_dump custom-format archive
    expect(db.stdout.subarray(0, 4).equals(ZSTD_MAGIC)).toBe(true);
    const raw = spawnSync('zstd', ['-dc'], { input: db.stdout });
    expect(raw.status).toBe(0);
    expect(raw.stdout.subarray(0, 5).toString()).toBe('PGDMP');
    const result = JSON.parse(
      db.stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .pop()!,
    );
    expect(result).toMatchObject({
      ok: true,
      verb: 'backup-db',
      format: 'custom',
      compression: 'zstd',
      bytes: db.stdout.length,
    });
    const fs = await uat.ops('backup-filestore');
    expect(fs.code).toBe(0);
    const fsBefore = tarManifest(fs.stdout);
    expect(fsBefore.length).toBe(5);
    expect(fsBefore.every((l) => l.includes('./odoo/'))).toBe(true);

    // damage: data changed, a row added, a filestore file removed
    await sql(
      uat,
      "UPDATE res_partner SET email='leak@evil.example' WHERE id <= 3; INSERT INTO res_partner (name) VALUES ('intruder')",
    );
    const one = fsBefore[0].split(/\s+/)[1].replace(/^\.\//, '');
    expect(
      (
        await uat.ssh(
          `docker exec $(docker ps -q --filter label=com.docker.compose.project=${uat.project} --filter label=com.docker.compose.service=web) rm /var/lib/odoo/filestore/${one}`,
        )
      ).code,
    ).toBe(0);
    expect(await tableChecksums(uat)).not.toEqual(before);

    // restore refuses while web runs, then works once stopped
    const refused = await uat.opsJson('restore-db', { input: db.stdout });
    expect(refused.code).toBe(9);
    expect((await uat.opsJson('stop')).json).toMatchObject({ ok: true, changed: true });
    expect((await uat.opsJson('stop')).json).toMatchObject({ ok: true, changed: false });
    const rdb = await uat.opsJson('restore-db', { input: db.stdout });
    expect(rdb.code).toBe(0);
    expect(rdb.json).toMatchObject({ ok: true, format: 'zstd', installed_modules: 4 });
    const rfs = await uat.opsJson('restore-filestore', { input: fs.stdout });
    expect(rfs.json).toMatchObject({ ok: true, files: 5 });
    // no temporary or old database is left behind
    expect(
      await sql(
        uat,
        "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'odoo%'",
      ),
    ).toBe('odoo');
    expect((await uat.opsJson(`start ${sb.image('initial')}`)).json).toMatchObject({
      ok: true,
      changed: true,
    });
    expect((await uat.opsJson('health --wait 60')).code).toBe(0);

    expect(await tableChecksums(uat)).toEqual(before);
    const fsAfter = await uat.ops('backup-filestore');
    expect(tarManifest(fsAfter.stdout)).toEqual(fsBefore);
  });

  test('a bad dump is refused before anything is touched', async () => {
    const before = await tableChecksums(uat);
    await uat.ops('stop');
    for (const input of [Buffer.from('this is not a dump\n'), Buffer.alloc(0)]) {
      const r = await uat.opsJson('restore-db', { input });
      expect(r.code).toBe(7);
      expect(String(r.json.message)).toContain("database 'odoo' untouched");
    }
    // a truncated dump: the right magic, cut short -> pg_restore fails, nothing swapped
    const good = await uat.ops('backup-db --compress none');
    expect(good.stdout.subarray(0, 5).toString()).toBe('PGDMP');
    const cut = await uat.opsJson('restore-db', {
      input: good.stdout.subarray(0, Math.floor(good.stdout.length / 2)),
    });
    expect(cut.code).toBe(7);
    expect(String(cut.json.message)).toContain('nothing swapped');
    const badTar = await uat.opsJson('restore-filestore', { input: Buffer.from('garbage'.repeat(200)) });
    expect(badTar.code).toBe(7);
    expect(
      await sql(uat, "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'odoo%'"),
    ).toBe('odoo');
    expect(await tableChecksums(uat)).toEqual(before);
    expect((await uat.ops(`start ${sb.image('initial')}`)).code).toBe(0);
    expect((await uat.opsJson('health --wait 60')).code).toBe(0);
  });

  test('pull, stop, migrate, start: the release runs; a second start is a no-op', async () => {
    const img = sb.image('next');
    const pull = await uat.opsJson(`pull ${img}`);
    expect(pull.json).toMatchObject({ ok: true, image: img, version: '1.1.0' });
    expect(String(pull.json.digest)).toMatch(/@sha256:[0-9a-f]{64}$/);
    await uat.ops('stop');
    const mig = await uat.opsJson(`migrate ${img} all`);
    expect(mig.code).toBe(0);
    expect(mig.json).toMatchObject({ ok: true, modules: 'all', odoo_exit: 0 });
    const log = await uat.ssh(`cat ${mig.json.log}`);
    expect(log.stdout.toString()).toContain('modules updated to 17.0.1.1.0');
    const start = await uat.opsJson(`start ${img}`);
    expect(start.json).toMatchObject({ ok: true, changed: true, previous: sb.image('initial') });
    expect((await uat.opsJson(`start ${img}`)).json).toMatchObject({ ok: true, changed: false });
    expect((await uat.opsJson('health --wait 60')).code).toBe(0);
    expect((await uat.opsJson('current')).json).toMatchObject({
      image: img,
      version: '1.1.0',
      previous: sb.image('initial'),
    });
    expect(
      await sql(uat, "SELECT DISTINCT latest_version FROM ir_module_module WHERE state='installed'"),
    ).toBe('17.0.1.1.0');
    // a plain `docker compose up -d` by an operator would run the same image
    expect((await uat.ssh(`grep '^ODOO_IMAGE=' ${uat.dir}/.env`)).stdout.toString().trim()).toBe(
      `ODOO_IMAGE=${img}`,
    );
  });

  test('a failed migration is detected with its log; start refuses the half-migrated DB; rollback restores', async () => {
    const good = sb.image('next');
    const broken = sb.image('brokenMigration');
    const before = await tableChecksums(uat);
    const save = await uat.opsJson('backup-db --save before-1.2.0');
    expect(save.json).toMatchObject({ ok: true });
    expect(String(save.json.file)).toMatch(/before-1\.2\.0\.db\.dump\.zst$/);
    expect((await uat.opsJson('backup-filestore --save before-1.2.0')).code).toBe(0);
    expect((await uat.opsJson(`pull ${broken}`)).code).toBe(0);
    await uat.ops('stop');
    const mig = await uat.opsJson(`migrate ${broken}`);
    expect(mig.code).toBe(5);
    expect(mig.json).toMatchObject({ ok: false, exit: 5, odoo_exit: 1 });
    expect(String(mig.json.critical)).toMatch(/CRITICAL .*Failed to initialize database `odoo`/);
    expect(String(mig.json.pending_modules)).toContain('to upgrade');
    const log = await uat.ssh(`cat ${mig.json.log}`);
    expect(log.stdout.toString()).toContain('STANDIN_FAIL_MIGRATION');
    expect((await uat.ops('logs --migration')).stdout.toString()).toContain('CRITICAL');

    // neither odoo-ops nor the image's entrypoint serves a half-migrated database
    const start = await uat.opsJson(`start ${broken}`);
    expect(start.code).toBe(9);
    expect(String(start.json.message)).toContain('half-migrated');
    // an operator bypassing odoo-ops: the container refuses (exit 78) and, with restart: unless-stopped, keeps refusing
    const up = await uat.ssh(
      [
        `cd ${uat.dir} && ODOO_IMAGE=${good} docker-compose up -d --no-deps web >/dev/null 2>&1`,
        `id=$(docker ps -aq --filter label=com.docker.compose.project=${uat.project} --filter label=com.docker.compose.service=web)`,
        `for i in $(seq 1 60); do s=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}' $id); case "$s" in "exited 78"*|"restarting 78"*|*" "[1-9]) break ;; esac; sleep 1; done`,
        'echo "state: $s"; docker logs $id 2>&1 | tail -n 3',
      ].join('; '),
    );
    expect(up.stdout.toString()).toMatch(/state: ((exited|restarting) 78 \d+|\w+ \d+ [1-9]\d*)$/m);
    expect(up.stdout.toString()).toContain('refusing to start');
    expect((await uat.ssh(`curl -fsS --max-time 3 ${uat.healthUrl}`)).code).not.toBe(0);
    const health = await uat.opsJson('health');
    expect(health.code).toBe(4);
    expect(String(health.json.failures)).toContain('modules left mid-migration');

    // what an operator types: roll back to the image that ran, with the backup taken before
    const rb = await uat.opsJson(`rollback --image ${good} --backup before-1.2.0`);
    expect(rb.code).toBe(0);
    expect(rb.json).toMatchObject({ ok: true, image: good, files: 5 });
    expect(await tableChecksums(uat)).toEqual(before);
    expect((await uat.opsJson('current')).json).toMatchObject({ image: good });
  });

  test('health --wait times out on an unhealthy release (exit 4); rollback --no-restore brings the previous image back', async () => {
    const bad = sb.image('unhealthy');
    const good = sb.image('next');
    expect((await uat.opsJson(`pull ${bad}`)).code).toBe(0);
    await uat.ops('stop');
    expect((await uat.opsJson(`migrate ${bad} mta_core`)).code).toBe(0);
    expect((await uat.opsJson(`start ${bad}`)).json).toMatchObject({ ok: true, changed: true });
    const h = await uat.opsJson('health --wait 4 --interval 1');
    expect(h.code).toBe(4);
    expect(h.json).toMatchObject({ ok: false, exit: 4, waited_max: 4 });
    expect(Number(h.json.checks)).toBeGreaterThanOrEqual(1);
    expect(String(h.json.failures)).toContain('/web/health');
    const rb = await uat.opsJson('rollback --no-restore');
    expect(rb.code).toBe(0);
    expect(rb.json).toMatchObject({ ok: true, image: good });
    expect((await uat.opsJson('health')).code).toBe(0);
  });

  test('two runs never overlap: the second gets exit 3 naming the holder, or waits with --lock-wait', async () => {
    const slow = sb.image('slowMigration');
    expect((await uat.opsJson(`pull ${slow}`)).code).toBe(0);
    await uat.ops('stop');
    const first = uat.opsJson(`migrate ${slow} all`);
    // wait until the first run holds the lock (status is read-only and never blocks)
    let lock = '';
    for (let i = 0; i < 100 && !lock; i++) {
      lock = String((await uat.opsJson('status')).json.lock);
      if (!lock) await new Promise((r) => setTimeout(r, 200));
    }
    expect(lock).toContain('verb=migrate');
    const second = await uat.opsJson(`start ${sb.image('next')}`);
    expect(second.code).toBe(3);
    expect(second.json).toMatchObject({ ok: false, exit: 3 });
    expect(String(second.json.lock_holder)).toContain('verb=migrate');
    const waiting = uat.opsJson(`--lock-wait 120 start ${slow}`);
    const done = await first;
    expect(done.code).toBe(0);
    const w = await waiting;
    expect(w.code).toBe(0);
    expect(w.json).toMatchObject({ ok: true, image: slow, changed: true });
    expect((await uat.opsJson('health --wait 60')).code).toBe(0);
    // the history shows the runs in order
    const hist = (await uat.ops('history --tail 4')).stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { verb: string; image?: string; ok?: boolean });
    expect(hist.map((h) => h.verb)).toEqual(['pull', 'stop', 'migrate', 'start']);
    expect(hist[2]).toMatchObject({ image: slow, ok: true });
  });

  test('PROD dump streamed into UAT (ssh prod backup-db | ssh uat restore-db) carries PROD data across', async () => {
    const prodUuid = await sql(prod, "SELECT value FROM ir_config_parameter WHERE key='database.uuid'");
    expect(await sql(uat, "SELECT value FROM ir_config_parameter WHERE key='database.uuid'")).not.toBe(
      prodUuid,
    );
    const dump = await prod.ops('backup-db');
    expect(dump.code).toBe(0);
    await uat.ops('stop');
    const r = await uat.opsJson('restore-db', { input: dump.stdout });
    expect(r.code).toBe(0);
    expect(await sql(uat, "SELECT value FROM ir_config_parameter WHERE key='database.uuid'")).toBe(prodUuid);
    expect((await prod.opsJson('status')).json).toMatchObject({ web_state: 'running' }); // PROD never stopped
    const cur = String((await uat.opsJson('current')).json.image);
    expect((await uat.opsJson(`start ${cur}`)).code).toBe(0);
  });

  test('the docs name the same verbs the scripts implement', () => {
    const help = spawnSync(path.join(__dirname, '..', '..', 'docker', 'ops', 'odoo-ops'), ['help'], {
      encoding: 'utf8',
    });
    expect(help.status).toBe(0);
    for (const verb of [
      'status',
      'backup-db',
      'backup-filestore',
      'restore-db',
      'restore-filestore',
      'pull',
      'stop',
      'migrate',
      'start',
      'health',
      'rollback',
      'logs',
      'current',
    ]) {
      expect(help.stdout).toContain(verb);
    }
  });
});
