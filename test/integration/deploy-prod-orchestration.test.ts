/**
 * deployProd's logic through the REAL embedded host on the REAL Durable Task engine (the extension's
 * WebJobs host, Azure Storage provider on Azurite) driving the real durable-functions orchestrator, real
 * Azurite (backups, ledger, decision records), a real HTTP Slack stand-in behind the product's Slack
 * adapter, signing keys generated here, an in-memory VM (odoo-ops answers) and an in-memory registry.
 * Decisions are raised as `approval-decision` events directly (the HTTP door is tested by the approvals
 * tests and the sandbox e2e).
 *
 * Time is real: the waits are made short with the product's own settings (APPROVAL_TIMEOUT_HOURS 0.01 =
 * 36 s, APPROVAL_REMINDER_MINUTES 0.25 = 15 s, read by loadConfig and prodOptionsFromConfig and handed
 * to the orchestration in PROD's options). What a real clock cannot wait for (a 10-day window's later
 * legs) is read from the instance's history (`TimerCreated` … `FireAt`: the first leg) and, for the
 * loop, from the gate's pure `nextWake` (test/unit/approval-wake.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import type { DeployPorts, NotifyEvent } from '../../functions/activities/deploy';
import { prodOptionsFromConfig, setProdPorts, type ProdOptions } from '../../functions/activities/prod';
import { loadConfig } from '../../shared/config';
import {
  judgeDecision,
  type ApprovalDecision,
  type ProdCustomStatus,
  type ProdDeployResult,
} from '../../functions/orchestrators/deployProd';
import { MAX_TIMER_MS, MIN_TIMER_LEAD_MS } from '../../functions/orchestrators/approval-gate';
import { BackupStore } from '../../shared/adapters/backup-store';
import { createVerificationStore } from '../../shared/adapters/backup-verifications';
import { createLedger, type Ledger } from '../../shared/adapters/ledger';
import { createSlack } from '../../shared/adapters/slack';
import { signingKeys, verifyApprovalToken, type SigningKey } from '../../shared/domain/approval-token';
import type { DeploySettings } from '../../shared/domain/deploy-plan';
import { createLogger } from '../../shared/log';
import { createFakeVm, type FakeVm } from '../support/fake-vm-shell';
import { startFakeArm } from '../support/fake-arm';
import { createVmControl } from '../../shared/adapters/vm';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';
import { digestOf, memoryRegistry, prodImage, uatImage } from '../support/memory-registry';
import { approverList, PEOPLE, type Who } from '../support/identities';
import { approvalLinks, type LinkKind } from '../support/prod-approval';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const SHA_OLD = 'a'.repeat(40);
const SHA_NEW = 'b'.repeat(40);
const UAT = uatImage;
const PROD = prodImage;
/**
 * The approval window made short by the settings themselves: APPROVAL_TIMEOUT_HOURS' smallest value
 * (0.01 h = 36 s) and a reminder 15 s before it (APPROVAL_REMINDER_MINUTES=0.25), read as the product
 * reads them (loadConfig → prodOptionsFromConfig).
 */
const SHORT_WINDOW = (({ approvalTimeoutHours, approvalReminderMinutes }: ProdOptions) => ({
  approvalTimeoutHours,
  approvalReminderMinutes,
}))(prodOptionsFromConfig(loadConfig({ APPROVAL_TIMEOUT_HOURS: '0.01', APPROVAL_REMINDER_MINUTES: '0.25' })));
/** how long a test waits for the real engine to reach a state (its queues are polled about every second) */
const WAIT = 90_000;
const T = 180_000;

interface HistoryEvent {
  EventType?: string;
  Name?: string;
  FunctionName?: string;
  FireAt?: string;
  Timestamp?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('deployProd orchestration (embedded host on the real Durable Task engine, Azurite, fake Slack, in-memory VM)', () => {
  let dir: string;
  let host: LocalHost;
  let conn: string;
  let slack: FakeSlack;
  let n = 0;
  /** this test's instances: any still running when it ends is terminated (the next test swaps PROD's ports) */
  let started: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-prod-orch-'));
    host = await startLocalHost({ dataDir: dir, port: 0, env: { LOG_LEVEL: 'error' } });
    conn = host.blobConnectionString!;
    slack = await startFakeSlack();
  }, 300_000);
  afterEach(async () => {
    for (const id of started) {
      const st = await host.durable.getStatus(id);
      if (st && ['Running', 'Pending'].includes(st.runtimeStatus))
        await host.durable.terminate(id, 'test ended');
    }
    started = [];
  });
  afterAll(async () => {
    setProdPorts(undefined);
    await host?.stop();
    await slack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** poll until `ok` holds; fails with what was last seen */
  async function until<V>(what: string, read: () => Promise<V> | V, ok: (v: V) => boolean): Promise<V> {
    const deadline = Date.now() + WAIT;
    for (;;) {
      const v = await read();
      if (ok(v)) return v;
      if (Date.now() > deadline)
        throw new Error(`${what}: not reached within ${WAIT} ms; last seen ${JSON.stringify(v)}`);
      await sleep(250);
    }
  }

  /**
   * The links expire `windowMs` after they were requested: the deadline is set when the request is
   * made, after the deploy's preparation, so it lies between start + window and the moment the
   * status said `awaiting-approval` (its elapsedMs) + window.
   */
  function expectWindow(st: ProdCustomStatus, windowMs: number) {
    const late = Date.parse(st.expiresAt!) - Date.parse(st.startedAt) - windowMs;
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThanOrEqual(st.elapsedMs);
  }

  interface Rig {
    id: string;
    vm: FakeVm;
    registry: ReturnType<typeof memoryRegistry>;
    ledger: Ledger;
    backups: BackupStore;
    verifications: ReturnType<typeof createVerificationStore>;
    notices: NotifyEvent[];
    keys: SigningKey[];
    /** what the Slack channel received since this rig started (the request, outcomes; never a link) */
    posts(): Array<Record<string, unknown>>;
    /** the links of one kind the approvers received privately (each to their own Slack user id) */
    links(kind?: LinkKind): ReturnType<typeof approvalLinks>;
    status(): Promise<ProdCustomStatus>;
    /** the custom status once `ok` holds for it */
    waitFor(what: string, ok: (s: ProdCustomStatus) => boolean): Promise<ProdCustomStatus>;
    /** the instance's history (the extension's, with inputs and outputs) */
    history(): Promise<HistoryEvent[]>;
    /** the durable timers the orchestration created, in order: [created, fireAt] in ms */
    timers(): Promise<Array<{ created: number; fireAt: number }>>;
    /**
     * The distinct times the orchestration's timers were set to fire, in order. (The Azure Storage
     * provider can deliver a timer up to about a second before its FireAt — queue visibility is counted
     * in whole seconds — and the gate then re-arms once, MIN_TIMER_LEAD_MS ahead: one wake may be two
     * TimerCreated events.)
     */
    wakes(): Promise<number[]>;
    /**
     * Raise a decision and wait until the orchestration took it: it is recorded in the ledger and the
     * orchestration went on (waiting again on a new timer, or past the gate, or finished).
     */
    decide(d: Partial<ApprovalDecision>): Promise<void>;
    /** the nonce of an approver's pending link */
    nonce(approver: string, action?: 'approval' | 'rollback'): Promise<string>;
    finish(): Promise<{ result: ProdDeployResult; runtime: string }>;
    decisionBlobs(): Promise<string[]>;
  }

  async function rig(
    o: {
      options?: Partial<ProdOptions>;
      vm?: Parameters<typeof createFakeVm>;
      requestedBy?: string;
      uatOnLedger?: boolean;
      tags?: Record<string, string>;
      snapshot?: (id: string, name: string) => Promise<string[]>;
      /** the step the rig waits for before it returns (default: awaiting-approval) */
      until?: (s: ProdCustomStatus | undefined, runtime: string) => boolean;
    } = {},
  ): Promise<Rig> {
    const k = ++n;
    const vm = createFakeVm(...(o.vm ?? [{ image: PROD('1.0.0') }]));
    const registry = memoryRegistry({
      'uat-v1.0.0': digestOf('one'),
      'prod-v1.0.0': digestOf('one'),
      'uat-v1.1.0': digestOf('eleven'),
      ...o.tags,
    });
    const svc = BlobServiceClient.fromConnectionString(conn);
    const ledgerContainer = svc.getContainerClient(`prodledger${k}`);
    await ledgerContainer.createIfNotExists();
    const ledger = createLedger(ledgerContainer);
    await ledger.record('prod', {
      version: '1.0.0',
      sha: SHA_OLD,
      imageRef: PROD('1.0.0'),
      imageDigest: digestOf('one'),
      deployedAt: new Date().toISOString(),
    });
    if (o.uatOnLedger !== false)
      await ledger.record('uat', {
        version: '1.1.0',
        sha: SHA_NEW,
        imageRef: UAT('1.1.0'),
        imageDigest: digestOf('eleven'),
        coverage: 91,
        deployedAt: new Date().toISOString(),
        instanceId: 'deploy-uat-1.1.0-bbbbbbbbbbbb',
      });
    const backups = new BackupStore({ connectionString: conn, container: `prodbackups${k}` });
    const notices: NotifyEvent[] = [];
    const keys = signingKeys({ APPROVAL_SIGNING_KEY: randomBytes(32).toString('base64url') });
    const settings: DeploySettings = {
      environment: 'prod',
      url: 'http://prod.invalid',
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
    const log = createLogger({ level: 'error', sink: () => undefined });
    const deploy: DeployPorts = {
      settings: () => settings,
      ssh: { connect: () => vm.connect() },
      backups,
      verifications: createVerificationStore(ledgerContainer),
      registry,
      ledger,
      notify: {
        async notify(e) {
          notices.push(e as NotifyEvent);
          return { githubDeploymentId: 7 };
        },
      },
      changedFiles: async () => ['addons/sale_custom/models/sale.py'],
      log,
    };
    const options: ProdOptions = {
      approvers: approverList('alice', 'bob', 'carol'),
      approvalsRequired: 1,
      approvalTimeoutHours: 24,
      approvalReminderMinutes: 60,
      fourEyes: true,
      autoRollback: false,
      healthStableSeconds: 0,
      diskSnapshot: false,
      publicBaseUrl: 'https://pipeline.example.test',
      repositoryUrl: 'https://github.com/acme/odoo-mta',
      ...o.options,
    };
    const firstPost = slack.posts.length;
    setProdPorts({
      deploy,
      options,
      keys: () => keys,
      slack: createSlack({ botToken: slack.token, apiUrl: slack.apiUrl, channel: '#deployments', log }),
      decisions: ledgerContainer,
      snapshot: o.snapshot,
      log,
    });
    const id = `deploy-prod-1.1.0-bbbbbbbbbbbb-t${k}`;
    started.push(id);
    await host.durable.startNew('deployProd', {
      instanceId: id,
      input: {
        environment: 'prod',
        version: '1.1.0',
        sha: SHA_NEW,
        imageRef: UAT('1.1.0'),
        requestedBy: o.requestedBy ?? 'alice',
        reason: 'monthly release',
      },
    });
    let raised = 0;
    const r: Rig = {
      id,
      vm,
      registry,
      ledger,
      backups,
      verifications: deploy.verifications!,
      notices,
      keys,
      posts: () =>
        slack.posts
          .slice(firstPost)
          .filter((p) => slack.channelPosts().includes(p))
          .map((p) => p.body),
      links: (kind = 'approval') => approvalLinks(slack.posts.slice(firstPost), id, kind),
      status: async () => (await host.durable.getStatus(id))!.customStatus as ProdCustomStatus,
      waitFor: (what, ok) => until(what, r.status, (s) => !!s && ok(s)),
      async history() {
        return ((await host.durable.getStatus(id, { showHistory: true }))?.history ?? []) as HistoryEvent[];
      },
      async timers() {
        return (await r.history())
          .filter((e) => e.EventType === 'TimerCreated')
          .map((e) => ({ created: Date.parse(e.Timestamp ?? ''), fireAt: Date.parse(e.FireAt ?? '') }));
      },
      async wakes() {
        return [...new Set((await r.timers()).map((t) => t.fireAt))];
      },
      async decide(d) {
        raised++;
        expect(
          await host.durable.raiseEvent(id, 'approval-decision', {
            comment: 'ok',
            ip: '127.0.0.1',
            userAgent: 'jest',
            decidedAt: new Date().toISOString(),
            ...d,
          }),
        ).toBe('accepted');
        // taken: the ledger holds its record, and the orchestration went on after recording it
        await until(`decision ${raised} recorded`, r.decisionBlobs, (names) => names.length >= raised);
        await until(
          `decision ${raised} taken`,
          async () => ({ st: await host.durable.getStatus(id, { showHistory: true }) }),
          ({ st }) => {
            if (!st) return false;
            if (!['Running', 'Pending'].includes(st.runtimeStatus)) return true;
            const h = (st.history ?? []) as HistoryEvent[];
            const events = h.flatMap((e, i) =>
              e.EventType === 'EventRaised' && e.Name === 'approval-decision' ? [i] : [],
            );
            if (events.length < raised) return false;
            const after = h.slice(events[raised - 1] + 1);
            const recorded = after.findIndex(
              (e) => e.EventType === 'TaskCompleted' && e.FunctionName === 'prodRecordDecision',
            );
            return recorded >= 0 && after.slice(recorded).some((e) => e.EventType === 'TimerCreated');
          },
        );
      },
      async nonce(approver, action = 'approval') {
        const st = await r.status();
        const p = st.pendingApprovals.find((x) => x.approver === approver && x.action === action);
        if (!p)
          throw new Error(
            `no pending ${action} link for ${approver}: ${JSON.stringify(st.pendingApprovals)}`,
          );
        return p.nonce;
      },
      async finish() {
        const st = await host.durable.waitForCompletion(id, WAIT);
        return { result: st.output as ProdDeployResult, runtime: st.runtimeStatus };
      },
      async decisionBlobs() {
        const names: string[] = [];
        for await (const b of ledgerContainer.listBlobsFlat({ prefix: `approvals/decisions/${id}/` }))
          names.push(b.name);
        return names;
      },
    };
    const ready =
      o.until ??
      ((s: ProdCustomStatus | undefined) => s?.step === 'awaiting-approval' && s.pendingApprovals.length > 0);
    await until(
      `${id} ready`,
      async () => {
        const st = await host.durable.getStatus(id);
        return { custom: st?.customStatus as ProdCustomStatus | undefined, runtime: st?.runtimeStatus ?? '' };
      },
      (v) => ready(v.custom, v.runtime),
    );
    return r;
  }

  it(
    'approve: signed links per approver (not the requester), promotion keeps the digest, backup, PROD runs prod-v1.1.0',
    async () => {
      const r = await rig();
      const st = await r.status();
      expect(st).toMatchObject({
        kind: 'deployProd',
        step: 'awaiting-approval',
        environment: 'prod',
        version: '1.1.0',
        requestedBy: 'alice',
        reason: 'monthly release',
        approvals: { required: 1, received: [] },
      });
      expect(st.commitRange).toMatchObject({
        from: SHA_OLD,
        to: SHA_NEW,
        compareUrl: `https://github.com/acme/odoo-mta/compare/${SHA_OLD}...${SHA_NEW}`,
      });
      expect(st.pendingApprovals.map((p) => p.approver).sort()).toEqual(['bob', 'carol']); // four-eyes: no link for alice
      expectWindow(st, 24 * HOUR);
      // the Slack message: Block Kit, unfurling off, one link per approver whose token verifies and binds the pending nonce
      const [msg] = r.posts();
      expect(JSON.stringify(msg)).toContain('1.1.0');
      expect(JSON.stringify(msg)).toContain('monthly release');
      expect(JSON.stringify(msg)).not.toContain('/api/approvals/'); // the channel never sees a link
      const links = r.links();
      expect(links.map((l) => l.approver).sort()).toEqual(['bob', 'carol']);
      for (const l of links) {
        expect(l.user).toBe(PEOPLE[l.approver as Who].slack); // privately, to that approver's own Slack id
        expect(l.url.startsWith('https://pipeline.example.test/api/approvals/')).toBe(true);
        const v = verifyApprovalToken(l.token, r.keys, Date.now());
        expect(v.ok && v.claims).toEqual({
          instanceId: r.id,
          approver: l.approver,
          action: 'approval',
          nonce: await r.nonce(l.approver),
          exp: new Date(st.expiresAt!).getTime(),
        });
      }
      for (const p of slack.posts.slice(-3))
        expect(p.body).toMatchObject({ unfurl_links: false, unfurl_media: false });
      // the signing key is nowhere in the orchestration's history (inputs and outputs included)
      const history = JSON.stringify(await host.durable.getStatus(r.id, { showHistory: true }));
      expect(history).toContain('prodRequestLinks'); // the history was read, with the activity that signs
      expect(history).not.toContain(r.keys[0].secret);
      expect(history).not.toContain(links[0].token);
      expect(r.vm.calls).toEqual([]); // nothing touched before the approval
      await r.decide({ nonce: await r.nonce('bob'), approver: 'bob', action: 'approve' });
      const { result, runtime } = await r.finish();
      expect(runtime).toBe('Completed');
      expect(result).toMatchObject({
        outcome: 'Succeeded',
        prodState: 'running-new',
        imageRef: PROD('1.1.0'),
        imageDigest: digestOf('eleven'),
        approvals: [{ approver: 'bob' }],
      });
      expect(r.registry.tags.get('prod-v1.1.0')).toBe(r.registry.tags.get('uat-v1.1.0'));
      expect(r.vm.state.image).toBe(PROD('1.1.0'));
      const verbs = r.vm.calls.map((c) => c.split(' ')[0]);
      expect(verbs.indexOf('backup-db')).toBeLessThan(verbs.indexOf('stop'));
      expect(verbs.indexOf('pull')).toBeLessThan(verbs.indexOf('stop'));
      expect(r.vm.calls).toContain(`migrate ${PROD('1.1.0')} sale_custom`);
      const v = await r.backups.verify(result.backupId!);
      expect(v.ok).toBe(true);
      expect(Object.keys(v.manifest!.parts).sort()).toEqual(['db.dump', 'filestore.tar', 'image.json']);
      expect(v.manifest).toMatchObject({
        runningImage: PROD('1.0.0'),
        version: '1.0.0',
        reason: 'pre-deploy-prod',
      });
      // the deploy's own verification is recorded where the status page and GET /api/backups read it
      expect(await r.verifications.get(result.backupId!)).toMatchObject({
        id: result.backupId,
        ok: true,
        problems: [],
      });
      expect(await r.ledger.current('prod')).toMatchObject({
        version: '1.1.0',
        sha: SHA_NEW,
        imageRef: PROD('1.1.0'),
        imageDigest: digestOf('eleven'),
        previousVersion: '1.0.0',
      });
      expect(r.notices.map((x) => x.kind)).toEqual(['started', 'succeeded']);
      expect(result.decisions).toEqual([
        expect.objectContaining({
          approver: 'bob',
          action: 'approve',
          verdict: 'accepted',
          comment: 'ok',
          ip: '127.0.0.1',
          userAgent: 'jest',
        }),
      ]);
      expect(await r.decisionBlobs()).toHaveLength(1);
      expect(await r.status()).toMatchObject({ step: 'done', outcome: 'Succeeded', pendingApprovals: [] });
    },
    T,
  );

  it(
    'reject: ends Rejected, nothing deployed, the Slack channel is told',
    async () => {
      const r = await rig();
      await r.decide({
        nonce: await r.nonce('carol'),
        approver: 'carol',
        action: 'reject',
        comment: 'not during the sale',
      });
      const { result } = await r.finish();
      expect(result).toMatchObject({
        outcome: 'Rejected',
        prodState: 'unchanged',
        failure: 'rejected by carol',
      });
      expect(r.vm.calls).toEqual([]);
      expect(r.registry.tags.has('prod-v1.1.0')).toBe(false);
      expect(JSON.stringify(r.posts())).toContain('not during the sale');
    },
    T,
  );

  it(
    'timeout (36 s window, reminder 15 s before): the reminder is due at deadline − 15 s, then Expired at the deadline with nothing deployed',
    async () => {
      const r = await rig({ options: SHORT_WINDOW });
      const st = await r.status();
      const deadline = Date.parse(st.expiresAt!);
      expectWindow(st, 36_000); // APPROVAL_TIMEOUT_HOURS=0.01
      // the gate's first wait ends at the reminder, not at the deadline; nothing but the request posted yet
      expect(await r.wakes()).toEqual([deadline - 15_000]);
      expect(r.posts()).toHaveLength(1);
      // the reminder: to the channel, and privately to each approver with their link again
      await until('the reminder', r.posts, (p) => p.length >= 2);
      expect(r.posts()).toHaveLength(2);
      expect(JSON.stringify(r.posts()[1].blocks)).toContain('Reminder: PROD deploy of 1.1.0');
      for (const who of ['bob', 'carol'] as const)
        expect(String(slack.inbox(PEOPLE[who].slack).at(-1)?.body.text)).toMatch(/^Reminder/);
      expect(
        r
          .links('reminder')
          .map((l) => l.approver)
          .sort(),
      ).toEqual(['bob', 'carol']);
      const { result, runtime } = await r.finish();
      expect(runtime).toBe('Completed'); // the losing timers were cancelled / fired: nothing keeps it running
      expect(result).toMatchObject({ outcome: 'Expired', prodState: 'unchanged' });
      // after the reminder the gate waited on to the deadline, and ended there, not before. The provider
      // delivers a timer up to a second early (whole-second queue delays); the gate then re-arms once,
      // MIN_TIMER_LEAD_MS ahead — not every few ms until the wake (20–40 timers per wake before)
      const timers = await r.timers();
      expect(timers[0].fireAt).toBe(deadline - 15_000);
      expect(timers.map((t) => t.fireAt)).toContain(deadline);
      expect(timers.length).toBeLessThanOrEqual(4);
      for (const t of timers) expect(t.fireAt).toBeLessThanOrEqual(deadline + MIN_TIMER_LEAD_MS);
      expect(result.totalMs).toBeGreaterThanOrEqual(36_000);
      expect(r.vm.calls).toEqual([]);
      // a decision after the end is not accepted by anyone
      expect(
        await host.durable.raiseEvent(r.id, 'approval-decision', {
          nonce: 'x',
          approver: 'bob',
          action: 'approve',
        }),
      ).not.toBe('accepted');
    },
    T,
  );

  it(
    'two approvals needed: the same approver twice counts once; a second distinct approver releases it',
    async () => {
      const r = await rig({ options: { approvalsRequired: 2 } });
      const bob = await r.nonce('bob');
      await r.decide({ nonce: bob, approver: 'bob', action: 'approve' });
      expect(await r.status()).toMatchObject({
        step: 'awaiting-approval',
        approvals: { required: 2, received: [{ approver: 'bob' }] },
      });
      expect((await r.status()).pendingApprovals.map((p) => p.approver)).toEqual(['carol']);
      await r.decide({ nonce: bob, approver: 'bob', action: 'approve' }); // replay of a used link
      expect((await r.status()).approvals.received).toHaveLength(1);
      expect(r.vm.calls).toEqual([]);
      await r.decide({ nonce: await r.nonce('carol'), approver: 'carol', action: 'approve' });
      const { result } = await r.finish();
      expect(result.outcome).toBe('Succeeded');
      expect(result.approvals.map((a) => a.approver)).toEqual(['bob', 'carol']);
      expect(result.decisions.map((d) => [d.approver, d.verdict, d.why])).toEqual([
        ['bob', 'accepted', undefined],
        ['bob', 'refused', 'not-pending'],
        ['carol', 'accepted', undefined],
      ]);
      expect(await r.decisionBlobs()).toHaveLength(3);
    },
    T,
  );

  it(
    'four-eyes: the requester cannot approve their own request (with any link); with FOUR_EYES off they can',
    async () => {
      const r = await rig();
      await r.decide({ nonce: await r.nonce('bob'), approver: 'alice', action: 'approve' });
      expect((await r.status()).step).toBe('awaiting-approval');
      expect(r.vm.calls).toEqual([]);
      await r.decide({ nonce: await r.nonce('bob'), approver: 'bob', action: 'reject' });
      const { result } = await r.finish();
      expect(result.decisions[0]).toMatchObject({ approver: 'alice', verdict: 'refused', why: 'four-eyes' });
      expect(result.outcome).toBe('Rejected');

      const solo = await rig({ options: { fourEyes: false, approvers: approverList('alice') } });
      expect((await solo.status()).pendingApprovals.map((p) => p.approver)).toEqual(['alice']);
      await solo.decide({ nonce: await solo.nonce('alice'), approver: 'alice', action: 'approve' });
      expect((await solo.finish()).result.outcome).toBe('Succeeded');
    },
    T,
  );

  it(
    'refused without effect: a non-allowlisted approver, a nonce that is not pending, a link used by someone else, a rollback on an approval link',
    async () => {
      const r = await rig();
      const bob = await r.nonce('bob');
      await r.decide({ nonce: bob, approver: 'mallory', action: 'approve' });
      await r.decide({ nonce: 'f3c1d6a0-0000-4000-8000-000000000000', approver: 'bob', action: 'approve' });
      await r.decide({ nonce: bob, approver: 'carol', action: 'approve' });
      await r.decide({ nonce: bob, approver: 'bob', action: 'rollback' });
      await r.decide({ approver: 'bob' } as Partial<ApprovalDecision>);
      expect(await r.status()).toMatchObject({ step: 'awaiting-approval', approvals: { received: [] } });
      expect((await r.status()).pendingApprovals).toHaveLength(2);
      expect(r.vm.calls).toEqual([]);
      await r.decide({ nonce: await r.nonce('bob'), approver: 'bob', action: 'reject' });
      const { result } = await r.finish();
      expect(result.decisions.map((d) => d.why)).toEqual([
        'not-allowlisted',
        'not-pending',
        'approver-mismatch',
        'wrong-action',
        'malformed',
        undefined,
      ]);
    },
    T,
  );

  it(
    'a 10-day approval window waits in timer legs of at most 6 days and still takes a decision',
    async () => {
      // the legs after the first cannot be waited for on a real clock: nextWake's unit test walks the loop
      // over the whole window (test/unit/approval-wake.test.ts); here the real engine shows the first leg
      const r = await rig({ options: { approvalTimeoutHours: 240, approvalReminderMinutes: 0 } });
      const st = await r.status();
      const deadline = Date.parse(st.expiresAt!);
      expectWindow(st, 10 * DAY);
      const [leg, ...more] = await r.timers();
      expect(more).toEqual([]); // one timer pending: the first leg
      expect(leg.fireAt - leg.created).toBeLessThanOrEqual(MAX_TIMER_MS); // ≤ 6 days ahead
      expect(leg.fireAt - leg.created).toBeGreaterThan(MAX_TIMER_MS - HOUR); // a full leg, not a short wake
      expect(deadline - leg.fireAt).toBeGreaterThan(3 * DAY); // it ends well before the deadline: another leg follows
      await r.decide({ nonce: await r.nonce('carol'), approver: 'carol', action: 'approve' });
      const { result, runtime } = await r.finish();
      expect(runtime).toBe('Completed'); // the pending leg was cancelled: nothing keeps the instance running
      expect(result.outcome).toBe('Succeeded');
      expect(result.approvals.map((a) => a.approver)).toEqual(['carol']);
    },
    T,
  );

  it(
    'a failing migration leaves PROD stopped and posts rollback links; deciding one restores the backup and the previous image',
    async () => {
      const r = await rig({ vm: [{ image: PROD('1.0.0') }, { failMigration: true }] });
      const dbBefore = r.vm.state.db;
      await r.decide({ nonce: await r.nonce('bob'), approver: 'bob', action: 'approve' });
      await r.waitFor(
        'the rollback decision',
        (s) => s.step === 'awaiting-rollback-decision' && s.pendingApprovals.length > 0,
      );
      expect(await r.status()).toMatchObject({ step: 'awaiting-rollback-decision', prodState: 'stopped' });
      expect(r.vm.state.webRunning).toBe(false);
      const rb = r.posts().find((p) => String(p.text).includes('failed'))!;
      expect(JSON.stringify(rb)).toContain('MIGRATION_FAILED');
      const links = r.links('rollback');
      expect(links.map((l) => l.approver).sort()).toEqual(['alice', 'bob', 'carol']); // any approver may roll back
      const claims = verifyApprovalToken(links[0].token, r.keys, Date.now());
      expect(claims.ok && claims.claims.action).toBe('rollback');
      // an approval decision is not a rollback
      await r.decide({ nonce: await r.nonce('carol', 'rollback'), approver: 'carol', action: 'approve' });
      expect((await r.status()).step).toBe('awaiting-rollback-decision');
      await r.decide({ nonce: await r.nonce('carol', 'rollback'), approver: 'carol', action: 'rollback' });
      const { result } = await r.finish();
      expect(result).toMatchObject({
        outcome: 'RolledBack',
        failedStep: 'migrate',
        code: 'DEPLOY.MIGRATION_FAILED',
        prodState: 'rolled-back',
        rollback: { by: 'carol', auto: false, ok: true },
      });
      expect(result.decisions.map((d) => [d.approver, d.action, d.verdict, d.why])).toEqual([
        ['bob', 'approve', 'accepted', undefined],
        ['carol', 'approve', 'refused', 'wrong-action'],
        ['carol', 'rollback', 'accepted', undefined],
      ]);
      expect(r.vm.state.db).toBe(dbBefore);
      expect(r.vm.state.image).toBe(PROD('1.0.0'));
      expect(r.vm.state.webRunning).toBe(true);
      expect(result.logs).toEqual(expect.arrayContaining([`${result.backupId}/logs/migration.log`]));
      expect((await r.ledger.current('prod'))?.version).toBe('1.0.0');
      expect(r.notices.map((x) => x.kind)).toEqual(['started', 'rolled-back']);
    },
    T,
  );

  it(
    'PROD_AUTO_ROLLBACK: an unhealthy release is rolled back at once, no rollback link',
    async () => {
      const r = await rig({
        options: { autoRollback: true },
        vm: [{ image: PROD('1.0.0') }, { unhealthyImage: PROD('1.1.0') }],
      });
      await r.decide({ nonce: await r.nonce('bob'), approver: 'bob', action: 'approve' });
      const { result } = await r.finish();
      expect(result).toMatchObject({
        outcome: 'RolledBack',
        failedStep: 'health',
        prodState: 'rolled-back',
        rollback: { by: 'PROD_AUTO_ROLLBACK', auto: true, ok: true },
      });
      expect(r.vm.state.image).toBe(PROD('1.0.0'));
      expect(r.links('rollback')).toEqual([]);
    },
    T,
  );

  it(
    'no rollback decision before the links expire (36 s): NeedsAttention, PROD left as it is, loud alert',
    async () => {
      const r = await rig({
        vm: [{ image: PROD('1.0.0') }, { failMigration: true }],
        options: SHORT_WINDOW,
      });
      await r.decide({ nonce: await r.nonce('bob'), approver: 'bob', action: 'approve' });
      const st = await r.waitFor(
        'the rollback decision',
        (s) => s.step === 'awaiting-rollback-decision' && !!s.expiresAt,
      );
      expect(r.links('rollback').length).toBeGreaterThan(0);
      const rbDeadline = Date.parse(st.expiresAt!);
      const { result } = await r.finish();
      expect(result).toMatchObject({
        outcome: 'NeedsAttention',
        prodState: 'stopped',
        failedStep: 'migrate',
      });
      expect(r.vm.state.webRunning).toBe(false);
      expect(JSON.stringify(r.posts()[r.posts().length - 1])).toContain('rollback decision expired');
      // it waited for the rollback links' whole window (APPROVAL_TIMEOUT_HOURS), on a timer to its end
      expect(await r.wakes()).toContain(rbDeadline);
    },
    T,
  );

  it(
    'refuses to start when the version never succeeded on UAT (clear reason, nothing posted for approval)',
    async () => {
      const r = await rig({ uatOnLedger: false, until: (_s, runtime) => runtime === 'Completed' });
      const { result } = await r.finish();
      expect(result).toMatchObject({ outcome: 'Failed', code: 'PROD.NOT_ON_UAT', failedStep: 'prepare' });
      expect(r.links()).toEqual([]);
      expect(JSON.stringify(r.posts())).toContain('has not succeeded on UAT');
    },
    T,
  );

  it(
    'PROD_DISK_SNAPSHOT: data-disk snapshots through ARM are part of the verified backup; the last 5 prod tags are kept',
    async () => {
      const arm = await startFakeArm();
      try {
        const vmId = arm.addVm({
          name: 'odoo-prod',
          dataDisks: [
            { lun: 0, name: 'odoo-prod-data' },
            { lun: 1, name: 'odoo-prod-pg' },
          ],
        });
        const control = createVmControl({
          endpoint: arm.endpoint,
          credential: { getToken: async () => ({ token: arm.token, expiresOnTimestamp: Date.now() + HOUR }) },
          pollIntervalMs: 20,
        });
        const old = Object.fromEntries(
          ['0.1.0', '0.2.0', '0.3.0', '0.4.0', '0.5.0'].map((v) => [`prod-v${v}`, digestOf(v)]),
        );
        const r = await rig({
          options: { diskSnapshot: true, vmResourceId: vmId },
          snapshot: (id, name) => control.snapshotDataDisks(id, name),
          tags: old,
        });
        await r.decide({ nonce: await r.nonce('bob'), approver: 'bob', action: 'approve' });
        const { result } = await r.finish();
        expect(result.outcome).toBe('Succeeded');
        expect(result.snapshots).toHaveLength(2);
        expect(arm.snapshots.size).toBe(2);
        const m = (await r.backups.verify(result.backupId!)).manifest!;
        expect(m.snapshots).toEqual(result.snapshots);
        // 7 prod tags before: the 5 newest stay (running 1.1.0 and previous 1.0.0 among them)
        expect([...r.registry.tags.keys()].filter((t) => t.startsWith('prod-v')).sort()).toEqual([
          'prod-v0.3.0',
          'prod-v0.4.0',
          'prod-v0.5.0',
          'prod-v1.0.0',
          'prod-v1.1.0',
        ]);
      } finally {
        await arm.stop();
      }
    },
    T,
  );

  it('judgeDecision: the order of checks', () => {
    const pending = [{ approver: 'bob', nonce: 'n1', action: 'approval' as const, expiresAt: '' }];
    const policy = { approvers: ['alice', 'bob'], fourEyes: true, requestedBy: 'alice' };
    expect(judgeDecision(null, pending, policy)).toMatchObject({ ok: false, why: 'malformed' });
    expect(judgeDecision({ nonce: 'n1', approver: 'bob', action: 'approve' }, pending, policy)).toMatchObject(
      { ok: true },
    );
    expect(
      judgeDecision({ nonce: 'n1', approver: 'alice', action: 'approve' }, pending, policy),
    ).toMatchObject({ ok: false, why: 'four-eyes' });
    expect(
      judgeDecision({ nonce: 'n1', approver: 'alice', action: 'reject' }, pending, policy),
    ).toMatchObject({ ok: false, why: 'approver-mismatch' });
    expect(judgeDecision({ nonce: 'n1', approver: 'bob', action: 'launch' }, pending, policy)).toMatchObject({
      ok: false,
      why: 'malformed',
    });
  });
});
