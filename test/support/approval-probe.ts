/**
 * A stand-in for deployProd's approval wait, for tests of the approval links: it keeps the approval
 * contract (pendingApprovals in the custom status, `approval-decision` events, only pending nonces
 * accepted, every decision recorded in the output) and nothing else. Importing this module registers
 * the orchestrator `approvalsProbe` through the real durable-functions API.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import { BlobServiceClient } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import {
  approvalLink,
  signApprovalToken,
  type ApprovalAction,
  type SigningKey,
} from '../../shared/domain/approval-token';
import type { ApprovalDecision, PendingApproval, WaitingStatus } from '../../functions/approvals';
import { cookieOf, type Who } from './identities';

export const APPROVAL_PROBE = 'approvalsProbe';

export interface ProbeInput {
  approvers: string[];
  required: number;
  action: ApprovalAction;
  requestedBy: string;
  version: string;
}
export interface ProbeOutput {
  outcome: string;
  decisions: Array<ApprovalDecision & { accepted: boolean; why?: string }>;
}

df.app.orchestration(APPROVAL_PROBE, function* (context: OrchestrationContext) {
  const input = context.df.getInput() as ProbeInput;
  const expiresAt = new Date(context.df.currentUtcDateTime.getTime() + 3600_000).toISOString();
  const pending: PendingApproval[] = input.approvers.map((approver, i) => ({
    approver,
    nonce: context.df.newGuid(`${context.df.instanceId}/${i}`),
    action: input.action,
    expiresAt,
  }));
  const received: Array<{ approver: string; at: string }> = [];
  const decisions: ProbeOutput['decisions'] = [];
  const publish = (step: string) => {
    const status: WaitingStatus = {
      kind: 'deployProd',
      step,
      environment: 'prod',
      version: input.version,
      requestedBy: input.requestedBy,
      reason: 'monthly release <b>bold</b>',
      commitRange: {
        from: '1.3.0',
        to: input.version,
        count: 2,
        compareUrl: 'https://github.com/example/odoo-mta/compare/v1.3.0...v1.4.0',
      },
      uatResult: { outcome: 'Succeeded', deployedAt: '2026-11-27T10:00:00Z' },
      approvals: { required: input.required, received },
      pendingApprovals: pending,
    };
    context.df.setCustomStatus(status);
  };
  while (received.length < input.required) {
    publish(input.action === 'rollback' ? 'awaiting-rollback-decision' : 'awaiting-approval');
    const ev = (yield context.df.waitForExternalEvent('approval-decision')) as ApprovalDecision;
    const i = pending.findIndex((p) => p.nonce === ev.nonce);
    if (i < 0) {
      decisions.push({ ...ev, accepted: false, why: 'not pending' });
      continue;
    }
    pending.splice(i, 1);
    decisions.push({ ...ev, accepted: true });
    if (ev.action === 'reject') {
      publish('rejected');
      return { outcome: 'Rejected', decisions };
    }
    if (ev.action === 'rollback') {
      publish('rolling-back');
      return { outcome: 'RollbackRequested', decisions };
    }
    received.push({ approver: ev.approver, at: ev.decidedAt });
  }
  publish('approved');
  return { outcome: 'Approved', decisions };
});

// ------------------------------------------------------------------ the approval test rig --

/**
 * An embedded host for the approval tests: only what the test file registered (an empty functions
 * folder: the approval functions it imports and this probe), the settings it gives.
 */
export async function startApprovalHost(
  prefix: string,
  env: Record<string, string>,
): Promise<{ host: LocalHost; dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const functionsDir = path.join(dir, 'no-functions');
  mkdirSync(functionsDir);
  const host = await startLocalHost({
    dataDir: dir,
    port: 0,
    functionsDir,
    env: { LOG_LEVEL: 'error', ...env },
  });
  return { host, dir };
}

/** the per-test timeout of the approval suites (the Durable Task engine starts, and polls its queues, slowly) */
export const PROBE_TEST_MS = 240_000;

/** Poll `fn` every 50 ms until it answers: 120 s at most. */
export async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 2400; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Probe deploys on a host: `request()` starts one (carol asks; alice and bob each get a link, unless the
 * test says otherwise), waits until it waits for decisions, and signs one token per pending approval
 * with the test's current key — the token of each approver's link, as prodRequestLinks signs it.
 * `idFill` keeps each file's instance ids apart (`deploy-prod-1.4.0-<n padded with idFill>`).
 */
export function probeRequests(o: { host: () => LocalHost; key: () => SigningKey; idFill: string }) {
  let n = 0;
  const statusOf = (id: string) => o.host().durable.getStatus(id, { showInput: true });
  const stillPending = async (id: string, nonce: string) =>
    (((await statusOf(id))?.customStatus as WaitingStatus).pendingApprovals ?? []).some(
      (p) => p.nonce === nonce,
    );
  /** the final status of `id` once it has completed */
  const completed = (id: string) =>
    waitFor('completion', async () => {
      const s = await statusOf(id);
      return s?.runtimeStatus === 'Completed' ? s : undefined;
    });
  async function request(p: Partial<ProbeInput> = {}) {
    const input: ProbeInput = {
      approvers: ['alice', 'bob'],
      required: 1,
      action: 'approval',
      requestedBy: 'carol',
      version: '1.4.0',
      ...p,
    };
    const id = `deploy-prod-1.4.0-${(++n).toString(16).padStart(12, o.idFill)}`;
    await o.host().durable.startNew(APPROVAL_PROBE, { instanceId: id, input });
    const pending = await waitFor(
      'pending approvals',
      async () => ((await statusOf(id))?.customStatus as WaitingStatus | undefined)?.pendingApprovals,
    );
    const exp = Date.now() + 3600_000;
    const tokens = pending.map((a) =>
      signApprovalToken(
        { instanceId: id, approver: a.approver, action: a.action, nonce: a.nonce, exp },
        o.key(),
      ),
    );
    return { id, pending, tokens, links: tokens.map((t) => approvalLink(o.host().baseUrl, t)) };
  }
  /** the decisions recorded for `id` (LEDGER_CONTAINER `approvals/decisions/<id>/…`) */
  async function auditRecords(id: string): Promise<Array<Record<string, unknown>>> {
    const c = BlobServiceClient.fromConnectionString(o.host().blobConnectionString!).getContainerClient(
      'ledger',
    );
    const out: Array<Record<string, unknown>> = [];
    for await (const b of c.listBlobsFlat({ prefix: `approvals/decisions/${id}/` }))
      out.push(
        JSON.parse((await c.getBlockBlobClient(b.name).downloadToBuffer()).toString('utf8')) as Record<
          string,
          unknown
        >,
      );
    return out;
  }
  return { statusOf, stillPending, completed, request, auditRecords };
}

/**
 * What a browser does with an approval link: GET the page (signed in as `as` when given), read its form's
 * hidden fields, POST them with `form` from the same origin.
 */
export async function decideAs(
  host: LocalHost,
  link: string,
  as: Who | undefined,
  form: Record<string, string>,
  extra: Record<string, string> = {},
): Promise<{ status: number; html: string }> {
  const cookie: Record<string, string> = as ? { cookie: cookieOf(host.keys.masterKey, as) } : {};
  const html = await (await fetch(link, { headers: { accept: 'text/html', ...cookie, ...extra } })).text();
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g))
    fields[m[1]] = m[2];
  const res = await fetch(link, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'sec-fetch-site': 'same-origin',
      origin: 'null',
      ...cookie,
      ...extra,
    },
    body: new URLSearchParams({ ...fields, ...form }).toString(),
  });
  return { status: res.status, html: await res.text() };
}
