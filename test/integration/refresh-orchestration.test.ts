/**
 * refreshUat's recovery logic through the REAL embedded host and Durable Task engine driving the real
 * refreshUat orchestrator: what UAT is left as when a step fails — a leak found by the verifier, a
 * refreshed copy that does not come up after the swap, a failure before the swap, a cleanup that
 * cannot drop a database — and what the operator is told (outcome, reason, the report Slack and the
 * ledger get).
 *
 * The refresh activities are replaced by an in-memory UAT VM (databases, the live one, web running or
 * not) answering the same activity names with the same shapes, so each failure can be placed exactly
 * (the real activities on a real VM, and the verifier on real PostgreSQL, are the sandbox e2e test and
 * refresh-activities.test.ts). Nothing here carries a PROD value: a leak report names table.column
 * and a count only, as the real verifier's does.
 */
import * as df from 'durable-functions';
import type { LocalHost } from '../../local/host';
import { startBareHost } from '../support/bare-host';
import '../../functions/orchestrators/refreshUat';
import type { RefreshResult, ScrubOut } from '../../shared/domain/refresh';
import type { PiiReport } from '../../shared/domain/pii';

jest.setTimeout(180000);

const LIVE = 'odoo_uat';
const IMAGE = 'reg.local/odoo-mta:uat-v1.1.0';

type Failure = { code: string; message: string };
interface Vm {
  dbs: Set<string>;
  live: string;
  running: boolean;
  calls: string[];
  reports: Array<RefreshResult & { requestedBy?: string }>;
  /** per activity, how its next calls go, in order (then it works): a failure it answers with, `null`
   * (this call works), or `'throw'` (the activity itself throws) */
  fail: Record<string, Array<Failure | null | 'throw'>>;
  /** the verifier's report on the restored copy */
  verify: PiiReport;
  /** health of UAT per live database */
  healthy: (db: string) => boolean;
}
const clean: PiiReport = {
  ok: true,
  hits: [],
  foreignEmails: [],
  scanned: { tables: 120, columns: 900, sampled: { email: 40, phone: 40, name: 40 } as never },
};
let vm: Vm;
const fresh = (): Vm => ({
  dbs: new Set([LIVE]),
  live: LIVE,
  running: true,
  calls: [],
  reports: [],
  fail: {},
  verify: clean,
  healthy: () => true,
});

/** one activity of the in-memory VM: a scripted failure first, else `work` */
function activity<I>(name: string, work: (i: I) => unknown): void {
  df.app.activity(name, {
    handler: (i: I) => {
      vm.calls.push(name);
      const f = vm.fail[name]?.shift();
      if (f === 'throw') throw new Error(`[NET.UNREACHABLE] ${name}: connect ECONNREFUSED`);
      if (f) return { failed: f };
      return work(i);
    },
  });
}
activity('refreshPrepare', () => ({
  settings: {
    source: 'fresh',
    filestore: 'copy',
    keepLogins: ['admin'],
    healthTimeoutSeconds: 1,
    retryFirstMs: 1,
    retryAttempts: 1,
  },
  database: vm.live,
  image: IMAGE,
}));
activity('refreshBackupUat', () => ({ backupId: 'uat/20261206-080000', bytes: 1000 }));
activity('refreshSource', () => ({
  backupId: 'prod/20261206-080100',
  bytes: 5000,
  fresh: true,
  createdAt: '2026-12-06T08:01:00Z',
  hasFilestore: true,
}));
activity('refreshStop', () => {
  const changed = vm.running;
  vm.running = false;
  return { changed };
});
// the restore job on UAT (odoo-ops job start restore --blob --into): it ends before the start answers
activity('refreshRestoreStart', (i: { database: string; jobId: string; filestore: boolean }) => {
  vm.dbs.add(i.database);
  return {
    id: i.jobId,
    kind: 'restore',
    state: 'succeeded',
    started: true,
    exitCode: 0,
    message: `job ${i.jobId} succeeded`,
    steps: [
      { verb: 'restore-db', ok: true, tables: 120, pg_user: 'odoo', database: i.database },
      ...(i.filestore ? [{ verb: 'restore-filestore', ok: true, files: 12 }] : []),
      { verb: 'restore', ok: true, database: i.database },
    ],
  };
});
activity('refreshJobStatus', () => {
  throw new Error('[OPS.ERROR] unexpected: the restore job had ended');
});
activity('refreshNeutralize', () => ({ rows: { 'ir_mail_server disabled': 2, 'ir_cron disabled': 31 } }));
activity(
  'refreshAnonymizeVerify',
  (): ScrubOut => ({
    sampled: { email: 40, phone: 40, name: 40 } as never,
    anonymizeRows: { res_partner: 250 },
    report: vm.verify,
    ms: { sample: 5, anonymize: 50, verify: 20 },
  }),
);
activity('refreshFilestore', (i: { files?: number }) => ({ files: i.files }));
activity('refreshSwap', (i: { database: string }) => {
  const keptOld = vm.live;
  vm.live = i.database;
  return { keptOld };
});
activity('refreshStart', () => {
  const changed = !vm.running;
  vm.running = true;
  return { changed };
});
activity('refreshHealth', () =>
  vm.healthy(vm.live)
    ? { healthy: true, failures: [] }
    : { healthy: false, failures: ['/web/health answered 500'] },
);
activity('refreshDropDb', (i: { database: string }) => ({ existed: vm.dbs.delete(i.database) }));
activity('refreshReport', (r: RefreshResult) => {
  vm.reports.push(r);
  return { slack: true, ledger: true };
});

let bare: Awaited<ReturnType<typeof startBareHost>>;
let host: LocalHost;
let n = 0;

beforeAll(async () => {
  bare = await startBareHost('refresh-orch-');
  host = bare.host;
}, 300000);
afterAll(() => bare?.stop());

beforeEach(() => {
  vm = fresh();
});

async function refresh(body: Record<string, unknown> = {}): Promise<RefreshResult> {
  const instanceId = `refresh-uat-20261206t080000z-test${++n}`;
  await host.durable.startNew('refreshUat', {
    instanceId,
    input: {
      type: 'refresh',
      environment: 'uat',
      source: 'prod',
      target: 'uat',
      reason: 'train the support team on current data',
      requestedBy: 'alice@example.com',
      requestedAt: '2026-12-06T08:00:00Z',
      version: 'refresh',
      sha: '',
      ...body,
    },
  });
  const done = await host.durable.waitForCompletion(instanceId, 120_000);
  return done.output as RefreshResult;
}
const copies = () => [...vm.dbs].filter((d) => d !== LIVE);

describe('refreshUat: what UAT is left as, and what the operator is told', () => {
  it('a clean run: UAT runs the refreshed copy, the old database is dropped, the report has the counts', async () => {
    const r = await refresh();
    expect(r.outcome).toBe('Succeeded');
    expect(vm.live).toBe(r.database);
    expect([...vm.dbs]).toEqual([r.database]);
    expect(vm.running).toBe(true);
    expect(r.uatStopped).toBe(false);
    expect(r.rows).toMatchObject({ 'tables restored': 120, 'anonymize: res_partner': 250 });
    expect(vm.reports).toHaveLength(1);
    expect(vm.reports[0]).toMatchObject({ outcome: 'Succeeded', requestedBy: 'alice@example.com' });
  });

  it('a leak: LeakFound, the copy is dropped, UAT stays STOPPED on its untouched database, the places are named without values', async () => {
    vm.verify = {
      ...clean,
      ok: false,
      hits: [{ table: 'res_partner', column: 'street', count: 3 }],
      foreignEmails: [{ table: 'mail_message', column: 'email_from', count: 7 }],
      patterns: [
        { table: 'res_partner', column: 'comment', count: 2, kind: 'phone' },
        { table: 'res_partner_bank', column: 'acc_number', count: 1, kind: 'iban' },
        { table: 'mail_mail', column: 'body_html', count: 4, kind: 'email' },
      ],
      secrets: [
        {
          place: 'ir_config_parameter[google_recaptcha_private_key]',
          table: 'ir_config_parameter',
          column: 'value',
          count: 1,
          rule: 'recaptcha',
        },
      ],
    };
    const r = await refresh();
    expect(r.outcome).toBe('LeakFound');
    expect(r.code).toBe('REFRESH.PII_LEAK');
    expect(r.failedStep).toBe('anonymize+verify');
    expect(r.leaks).toEqual([
      'res_partner.street: 3 rows with PROD values',
      'mail_message.email_from: 7 rows with e-mail addresses outside the allowed domains',
      'res_partner.comment: 2 rows with phone numbers',
      'res_partner_bank.acc_number: 1 rows with valid IBANs',
      'mail_mail.body_html: 4 rows with encoded e-mail addresses',
      'ir_config_parameter[google_recaptcha_private_key]: 1 live credential(s) left (catalogue rule: recaptcha)',
    ]);
    expect(copies()).toEqual([]);
    expect(vm.live).toBe(LIVE);
    expect(vm.running).toBe(false);
    expect(r.uatStopped).toBe(true);
    expect(vm.calls).not.toContain('refreshSwap');
    expect(vm.reports[0]).toMatchObject({ outcome: 'LeakFound', leaks: r.leaks });
  });

  it('a leak whose copy cannot be dropped: the operator is told to drop it by hand, by name', async () => {
    vm.verify = { ...clean, ok: false, hits: [{ table: 'res_partner', column: 'email', count: 9 }] };
    vm.fail.refreshDropDb = [
      { code: 'REFRESH.OPS_FAILED', message: '[REFRESH.OPS_FAILED] drop-db: database is in use' },
    ];
    const r = await refresh();
    expect(r.outcome).toBe('LeakFound');
    expect(copies()).toEqual([r.database]);
    expect(r.reason).toContain(
      `the leaking copy ${r.database} could not be dropped — DROP IT BY HAND (odoo-ops drop-db ${r.database})`,
    );
    expect(r.reason).toContain('database is in use');
  });

  it('the refreshed copy does not come up after the swap: the old database is put back and UAT runs it (RolledBack)', async () => {
    vm.healthy = (db) => db === LIVE;
    const r = await refresh();
    expect(r.outcome).toBe('RolledBack');
    expect(r.code).toBe('REFRESH.UNHEALTHY');
    expect(r.reason).toMatch(/not healthy on the refreshed database: \/web\/health answered 500/);
    expect(vm.live).toBe(LIVE);
    expect(copies()).toEqual([]);
    expect(vm.running).toBe(true);
    expect(r.uatStopped).toBe(false);
  });

  it('…and when putting the old database back fails too: NeedsAttention, ROLLBACK FAILED, UAT reported stopped', async () => {
    vm.healthy = (db) => db === LIVE;
    // the first swap (refreshed copy in) works, the swap back does not
    vm.fail.refreshSwap = [
      null,
      { code: 'REFRESH.OPS_FAILED', message: '[REFRESH.OPS_FAILED] swap: rename refused' },
    ];
    const r = await refresh();
    expect(r.outcome).toBe('NeedsAttention');
    expect(r.reason).toMatch(/ROLLBACK FAILED: \[REFRESH.OPS_FAILED\] swap: rename refused/);
    expect(r.uatStopped).toBe(true);
    expect(r.keptOld).toBe(LIVE);
  });

  it('a failure before the swap: the partial copy is dropped, UAT starts again on its untouched database', async () => {
    vm.fail.refreshNeutralize = [
      {
        code: 'REFRESH.SQL_FAILED',
        message: '[REFRESH.SQL_FAILED] neutralize.sql: relation "ir_cron" is locked',
      },
    ];
    const r = await refresh();
    expect(r.outcome).toBe('Failed');
    expect(r.failedStep).toBe('neutralize');
    expect(copies()).toEqual([]);
    expect(vm.live).toBe(LIVE);
    expect(vm.running).toBe(true);
    expect(r.uatStopped).toBe(false);
  });

  it('a failure before the swap where UAT will not start again: NeedsAttention, RESTARTING UAT FAILED, the copy named if it stays', async () => {
    vm.fail.refreshNeutralize = [
      { code: 'REFRESH.SQL_FAILED', message: '[REFRESH.SQL_FAILED] neutralize.sql failed' },
    ];
    vm.fail.refreshDropDb = [{ code: 'REFRESH.OPS_FAILED', message: '[REFRESH.OPS_FAILED] drop-db failed' }];
    vm.fail.refreshStart = [
      { code: 'REFRESH.OPS_FAILED', message: '[REFRESH.OPS_FAILED] start: container exited 1' },
    ];
    const r = await refresh();
    expect(r.outcome).toBe('NeedsAttention');
    expect(r.reason).toContain(
      `the partial copy ${r.database} could not be dropped (odoo-ops drop-db ${r.database})`,
    );
    expect(r.reason).toContain('RESTARTING UAT FAILED: [REFRESH.OPS_FAILED] start: container exited 1');
    expect(r.uatStopped).toBe(true);
  });

  it('UAT restarted but unhealthy on its own database: NeedsAttention saying so', async () => {
    vm.fail.refreshRestoreStart = [
      { code: 'REFRESH.RESTORE_FAILED', message: '[REFRESH.RESTORE_FAILED] pg_restore: out of disk' },
    ];
    vm.healthy = () => false;
    const r = await refresh();
    expect(r.outcome).toBe('NeedsAttention');
    expect(r.reason).toContain('UAT is not healthy after the restart: /web/health answered 500');
  });

  it('a refresh that worked but whose old database cannot be dropped: Succeeded, with the database to drop by hand', async () => {
    vm.fail.refreshDropDb = [
      { code: 'REFRESH.OPS_FAILED', message: '[REFRESH.OPS_FAILED] drop-db: database is in use' },
    ];
    const r = await refresh();
    expect(r.outcome).toBe('Succeeded');
    expect(r.keptOld).toBe(LIVE);
    expect(r.reason).toMatch(
      new RegExp(
        `the previous database ${LIVE} could not be dropped \\(drop it by hand: odoo-ops drop-db ${LIVE}\\)`,
      ),
    );
    expect(vm.running).toBe(true);
  });

  it('bad input reaches no activity: REFRESH.BAD_INPUT naming every problem', async () => {
    const r = await refresh({ source: 'uat', target: 'prod', reason: '' });
    expect(r.outcome).toBe('Failed');
    expect(r.code).toBe('REFRESH.BAD_INPUT');
    expect(r.reason).toMatch(/source must be "prod".*target may not be "prod".*reason must say why/);
    expect(vm.calls).toEqual([]);
  });

  it('a report that cannot be sent does not fail the refresh', async () => {
    vm.fail.refreshReport = ['throw'];
    const r = await refresh();
    expect(r.outcome).toBe('Succeeded');
    expect(vm.calls.filter((c) => c === 'refreshReport')).toHaveLength(1);
    expect(vm.running).toBe(true);
  });
});
