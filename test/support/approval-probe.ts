/**
 * A stand-in for deployProd's approval wait, for tests of the approval links: it keeps the approval
 * contract (pendingApprovals in the custom status, `approval-decision` events, only pending nonces
 * accepted, every decision recorded in the output) and nothing else. Importing this module registers
 * the orchestrator `approvalsProbe` through the real durable-functions API.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import type { ApprovalAction } from '../../shared/domain/approval-token';
import type { ApprovalDecision, PendingApproval, WaitingStatus } from '../../functions/approvals';

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
