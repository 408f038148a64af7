/**
 * refreshUat end to end on the sandbox (real sshd, dockerd, PostgreSQL in the VMs' compose `db`
 * services, the real odoo-ops; only Odoo is a stand-in) through the embedded host: POST /api/refresh →
 * UAT's lane → refreshUat → activities over SSH, Azurite for backups and the ledger, a local Slack.
 * PROD's database is replaced by the Odoo 17-shaped fixture seeded with realistic personal data
 * (test/fixtures/odoo). In CI (CI=true) these tests fail, not skip, when the sandbox cannot start.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { startLocalHost, type LocalHost } from '../../local/host';
import { setRefreshPorts } from '../../functions/activities/refresh';
import { BackupStore } from '../../shared/adapters/backup-store';
import { ledgerContainer, readJson } from '../../shared/adapters/ledger';
import { loadConfig } from '../../shared/config';
import type { RefreshResult } from '../../shared/domain/refresh';
import { FIXTURE_DIR } from '../fixtures/odoo/load';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';
import { until } from '../support/until';
import {
  describeSandbox,
  Sandbox,
  SandboxVm,
  sandboxSettings,
  startSandbox,
  tableChecksums,
} from '../support/sandbox';

jest.setTimeout(20 * 60 * 1000);

describeSandbox('refreshUat on the sandbox (PROD → UAT)', () => {
  let sb: Sandbox;
  let uat: SandboxVm;
  let prod: SandboxVm;
  let host: LocalHost;
  let dir: string;
  let slack: FakeSlack;
  /** identifying PROD values read back from PROD (not from the fixture file) */
  let prodValues: string[] = [];

  const sql = async (vm: SandboxVm, db: string, script: string): Promise<string> => {
    const r = await vm.opsJson(`run-sql --db ${db}`, { input: script });
    if (r.code !== 0) throw new Error(`run-sql on ${vm.name}/${db} failed: ${String(r.json.message)}`);
    return String(r.json.output ?? '');
  };
  const databases = async (vm: SandboxVm) =>
    (await sql(vm, 'postgres', 'SELECT datname FROM pg_database ORDER BY 1;')).split('\n').filter(Boolean);
  const webState = async (vm: SandboxVm) => String((await vm.opsJson('status')).json.web_state);
  /** the whole UAT database as plain SQL text */
  const plainDump = async (vm: SandboxVm): Promise<string> => {
    const r = await vm.ssh(
      `docker exec $(docker ps -q --filter label=com.docker.compose.project=${vm.project} --filter label=com.docker.compose.service=db) pg_dump -U odoo odoo`,
      { timeoutMs: 300000 },
    );
    if (r.code !== 0) throw new Error(`pg_dump failed: ${r.stderr}`);
    return r.stdout.toString();
  };
  const filestoreFiles = async (vm: SandboxVm): Promise<string[]> => {
    const img = String((await vm.opsJson('current')).json.image);
    const r = await vm.ssh(
      `docker run --rm --network none -v ${vm.project}_web-data:/var/lib/odoo --entrypoint sh ${img} -c 'cd /var/lib/odoo/filestore/odoo 2>/dev/null && find . -type f | sort'`,
    );
    return r.stdout.toString().split('\n').filter(Boolean);
  };

  async function refresh(
    body: Record<string, unknown>,
    during?: () => Promise<void>,
  ): Promise<RefreshResult> {
    let res: Response | undefined;
    for (let i = 0; i < 50; i++) {
      res = await fetch(`${host.baseUrl}/api/refresh`, {
        method: 'POST',
        headers: { 'x-functions-key': host.keys.functionKey, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (res.status !== 409) break; // the lane is still closing the previous piece of work
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(res!.status).toBe(202);
    const { id } = (await res!.json()) as { id: string };
    if (during) await during();
    // the lane starts the refresh as its sub-orchestration: wait for the instance to exist
    await until(`refresh ${id} to start`, () => host.durable.getStatus(id), 5 * 60 * 1000);
    const st = await host.durable.waitForCompletion(id, 15 * 60 * 1000);
    expect(st.runtimeStatus).toBe('Completed');
    return st.output as RefreshResult;
  }

  beforeAll(async () => {
    sb = await startSandbox({ vms: ['uat', 'prod'] });
    uat = sb.vm('uat');
    prod = sb.vm('prod');
    // PROD: the Odoo 17-shaped fixture with personal data instead of the stand-in's database
    expect((await prod.ops('stop')).code).toBe(0);
    await sql(
      prod,
      'postgres',
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'odoo' AND pid <> pg_backend_pid();\nDROP DATABASE odoo;\nCREATE DATABASE odoo;\n",
    );
    const seed = [
      '\\set odoo_version 17',
      '\\set partners 300',
      readFileSync(path.join(FIXTURE_DIR, 'schema.sql'), 'utf8'),
      readFileSync(path.join(FIXTURE_DIR, 'seed.sql'), 'utf8'),
    ].join('\n');
    await sql(prod, 'odoo', seed);
    expect((await prod.ops(`start ${sb.image('initial', 'prod')}`)).code).toBe(0);
    prodValues = (
      await sql(
        prod,
        'odoo',
        `SELECT v FROM (SELECT email AS v FROM res_partner WHERE email LIKE '%@%' AND email NOT LIKE '%example.%' ORDER BY id LIMIT 15) a
         UNION ALL SELECT * FROM (SELECT name FROM res_partner WHERE NOT is_company AND name LIKE '% %' ORDER BY id DESC LIMIT 10) b
         UNION ALL SELECT * FROM (SELECT acc_number FROM res_partner_bank ORDER BY id LIMIT 5) c
         UNION ALL SELECT * FROM (SELECT phone FROM res_partner WHERE phone IS NOT NULL ORDER BY id LIMIT 5) d;`,
      )
    )
      .split('\n')
      .filter((v) => v.length >= 8);
    expect(prodValues.length).toBeGreaterThan(25);

    slack = await startFakeSlack();
    dir = mkdtempSync(path.join(os.tmpdir(), 'refresh-e2e-'));
    setRefreshPorts(undefined); // production wiring from settings
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: {
        ...sandboxSettings(sb),
        LOG_LEVEL: 'warn',
        HEALTH_TIMEOUT_SECONDS: '60',
        DEPLOY_RETRY_FIRST_SECONDS: '0.5',
        DEPLOY_RETRY_ATTEMPTS: '2',
        SLACK_WEBHOOK_URL: slack.webhookUrl,
        // generated for this run: a password hash that is a secret, in Odoo's format
        UAT_PASSWORD_HASH: `$pbkdf2-sha512$600000$${randomBytes(12).toString('base64url').replace(/[-_]/g, 'a')}$${randomBytes(32).toString('base64url').replace(/[-_]/g, 'b')}`,
        REFRESH_KEEP_LOGINS: 'admin',
      },
    });
  });
  afterAll(async () => {
    await host?.stop();
    await slack?.stop();
    await sb?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refreshes UAT: UAT serves the anonymized copy, the verifier is clean, PROD values are absent, files copied', async () => {
    const prodFiles = await filestoreFiles(prod);
    expect(prodFiles.length).toBeGreaterThan(0);
    let busy = 0;
    const result = await refresh(
      {
        source: 'prod',
        target: 'uat',
        filestore: 'copy',
        backup: 'fresh',
        reason: 'e2e: fresh copy for testers',
      },
      async () => {
        // one piece of work per environment: a second request while this one runs is refused
        const r = await fetch(`${host.baseUrl}/api/refresh`, {
          method: 'POST',
          headers: { 'x-functions-key': host.keys.functionKey },
          body: JSON.stringify({ source: 'prod', target: 'uat', reason: 'second one' }),
        });
        busy = r.status;
      },
    );
    expect(busy).toBe(409);
    expect(result).toMatchObject({ outcome: 'Succeeded', uatStopped: false });
    expect(result.reason).toBeUndefined();
    expect(result.sourceBackupId).toMatch(/^prod\//);
    expect(result.uatBackupId).toMatch(/^uat\//);
    expect(result.sampled?.email).toBeGreaterThan(100);
    expect(result.rows['anonymize: res_partner anonymized']).toBeGreaterThan(250);
    for (const step of [
      'backup-uat',
      'source',
      'stop',
      'restore',
      'neutralize',
      'sample',
      'anonymize',
      'verify',
      'swap',
      'start',
      'health',
    ])
      expect(result.durations[step]).toBeGreaterThanOrEqual(0);
    // UAT serves, on the refreshed (neutralized + anonymized) database; the old one is gone
    expect((await uat.opsJson('health')).json.ok).toBe(true);
    expect(
      (
        await sql(
          uat,
          'odoo',
          "SELECT value FROM ir_config_parameter WHERE key IN ('odoo_mta.anonymized', 'database.is_neutralized') ORDER BY key;",
        )
      ).trim(),
    ).toBe('True\nTrue');
    expect((await databases(uat)).filter((d) => /_old_|_refresh_/.test(d))).toEqual([]);
    // not one sampled PROD value anywhere in UAT's database
    const dump = await plainDump(uat);
    expect(dump).toMatch(/Partner \d+/);
    const found = prodValues.filter((v) => dump.includes(v));
    expect(found).toEqual([]);
    // the filestore: PROD's files with the same sha-addressed layout
    expect(await filestoreFiles(uat)).toEqual(prodFiles);
    // reported: Slack and the ledger, with counts and no values
    const text = slack.posts.map((p) => JSON.stringify(p.body)).join('\n');
    expect(text).toMatch(/UAT refreshed from PROD/);
    expect(prodValues.filter((v) => text.includes(v))).toEqual([]);
    const recorded = await readJson<RefreshResult>(
      ledgerContainer(loadConfig(process.env)),
      `refreshes/uat/${result.instanceId}.json`,
    );
    expect(recorded).toMatchObject({ outcome: 'Succeeded', sourceBackupId: result.sourceBackupId });
  });

  it('a restore that fails leaves UAT on its untouched database, running', async () => {
    // the newest PROD backup is well-formed (sizes and sha256 match its manifest) but its dump is not a pg_dump archive
    const config = loadConfig(process.env);
    const backups = new BackupStore({
      connectionString: config.BACKUP_STORAGE_CONNECTION!,
      container: config.BACKUP_CONTAINER ?? 'backups',
    });
    await new Promise((r) => setTimeout(r, 1100)); // a newer id than the fresh backup of the previous test
    await backups.ensureContainer();
    const w = backups.begin('prod', { version: 'broken', reason: 'test' });
    await w.part('db.dump', Readable.from([Buffer.from('this is not a database dump\n')]));
    const bad = await w.finish();
    const before = await tableChecksums(uat);
    try {
      const result = await refresh({
        source: 'prod',
        target: 'uat',
        filestore: 'skip',
        backup: 'latest',
        reason: 'e2e: broken source',
      });
      expect(result).toMatchObject({
        outcome: 'Failed',
        failedStep: 'restore',
        code: 'RESTORE.FAILED',
        sourceBackupId: bad.id,
        uatStopped: false,
      });
      expect(await tableChecksums(uat)).toEqual(before);
      expect(await webState(uat)).toBe('running');
      expect((await uat.opsJson('health')).json.ok).toBe(true);
      expect((await databases(uat)).filter((d) => /_refresh_/.test(d))).toEqual([]);
      expect(slack.posts.map((p) => JSON.stringify(p.body)).join('\n')).toMatch(/failed before the swap/);
    } finally {
      await backups.delete(bad.id);
    }
  });

  it('a PROD value the scripts do not know about fails the refresh: UAT stays stopped, old database untouched, report names table.column only', async () => {
    // a custom column holding personal data (no anonymize.d script knows it)
    await sql(
      prod,
      'odoo',
      'ALTER TABLE res_partner ADD COLUMN x_legacy_contact varchar;\nUPDATE res_partner SET x_legacy_contact = email WHERE id % 4 = 0 AND email IS NOT NULL;\n',
    );
    const leaked = (
      await sql(
        prod,
        'odoo',
        'SELECT x_legacy_contact FROM res_partner WHERE x_legacy_contact IS NOT NULL ORDER BY id LIMIT 10;',
      )
    )
      .split('\n')
      .filter(Boolean);
    expect(leaked.length).toBeGreaterThan(5);
    const before = await tableChecksums(uat);
    try {
      const result = await refresh({
        source: 'prod',
        target: 'uat',
        filestore: 'drop',
        backup: 'fresh',
        reason: 'e2e: leak',
      });
      expect(result).toMatchObject({
        outcome: 'LeakFound',
        failedStep: 'anonymize+verify',
        code: 'REFRESH.PII_LEAK',
        uatStopped: true,
      });
      expect(result.leaks?.some((l) => /^res_partner\.x_legacy_contact: \d+ rows/.test(l))).toBe(true);
      expect(await webState(uat)).not.toBe('running');
      expect(await tableChecksums(uat)).toEqual(before);
      expect((await databases(uat)).filter((d) => /_refresh_/.test(d))).toEqual([]); // the leaking copy is dropped
      // never a value: not in the result, the orchestration history's custom status, Slack or the ledger
      const everywhere = [
        JSON.stringify(result),
        slack.posts.map((p) => JSON.stringify(p.body)).join('\n'),
        JSON.stringify(
          await readJson(ledgerContainer(loadConfig(process.env)), `refreshes/uat/${result.instanceId}.json`),
        ),
      ].join('\n');
      expect(everywhere).toMatch(/x_legacy_contact/);
      expect([...leaked, ...prodValues].filter((v) => everywhere.includes(v))).toEqual([]);
    } finally {
      await sql(prod, 'odoo', 'ALTER TABLE res_partner DROP COLUMN IF EXISTS x_legacy_contact;');
      await uat.ops(`start ${String((await uat.opsJson('current')).json.image)}`);
    }
  });
});
