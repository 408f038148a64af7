/**
 * Used approval links (Blob, LEDGER_CONTAINER): `approvals/used/<nonce>.json`.
 *
 * A link's nonce is claimed ONCE: the marker is created with `If-None-Match: *`, so of any number of
 * concurrent or repeated POSTs of the same link exactly one wins; the others are told the link was
 * already used. The marker also records the decision (who, when, comment, IP, user agent, instance).
 * If delivering the decision to the orchestration fails for a reason that is not the user's (the
 * orchestration store is unavailable), the claim is released so the same link can be tried again.
 */
import type { ContainerClient, RestError } from '@azure/storage-blob';
import { PipelineError } from '../domain/errors';
import { blobError, ensureContainer, readJson, writeJson } from './ledger';

export interface UsedLinkRecord {
  nonce: string;
  instanceId: string;
  approver: string;
  action: 'approve' | 'reject' | 'rollback';
  comment: string;
  ip: string;
  userAgent: string;
  decidedAt: string;
  keyId: string;
}

/** A valid link used by someone who is not its approver (the audit trail keeps every such attempt). */
export interface RefusedAttempt {
  instanceId: string;
  nonce: string;
  approver: string;
  attemptedBy: string;
  attemptedByName?: string;
  ip?: string;
  userAgent?: string;
  at: string;
  why: string;
}

export interface ApprovalStore {
  /** record a refused attempt next to the orchestration's decision records: `approvals/decisions/<instance>/<at>-<nonce>-refused-identity.json` */
  recordRefusal(a: RefusedAttempt): Promise<void>;
  /** true when this caller claimed the nonce; false when it was claimed before (replay) */
  claim(record: UsedLinkRecord): Promise<boolean>;
  get(nonce: string): Promise<UsedLinkRecord | undefined>;
  /** undo a claim whose decision could not be delivered */
  release(nonce: string): Promise<void>;
  /**
   * The decisions the orchestration ACCEPTED for a deploy (`approvals/decisions/<instance>/…-accepted.json`,
   * written by `prodRecordDecision`), oldest first: who decided a link that is no longer pending.
   */
  acceptedDecisions(instanceId: string): Promise<AcceptedDecision[]>;
}

/** What a page may say about a decision someone made (no nonce, no IP, no user agent). */
export interface AcceptedDecision {
  approver: string;
  action: 'approve' | 'reject' | 'rollback';
  decidedAt?: string;
  receivedAt?: string;
}

/** Nonces come from `context.df.newGuid()`; anything else is refused before it names a blob. */
export const NONCE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{7,127}$/;

export function usedMarkerName(nonce: string): string {
  if (!NONCE_PATTERN.test(nonce))
    throw new PipelineError('APPROVAL.BAD_NONCE', 'the link nonce is not in the expected form');
  return `approvals/used/${nonce}.json`;
}

export function createApprovalStore(container: ContainerClient): ApprovalStore {
  const ensure = ensureContainer(container);
  return {
    async recordRefusal(a) {
      const name = `approvals/decisions/${a.instanceId.replace(/[^A-Za-z0-9._-]/g, '_')}/${a.at.replace(/[:.]/g, '-')}-${usedMarkerName(a.nonce).slice('approvals/used/'.length, -'.json'.length)}-refused-identity.json`;
      await ensure();
      await writeJson(container, name, a, 'create');
    },
    async claim(record) {
      const name = usedMarkerName(record.nonce);
      await ensure();
      return writeJson(container, name, record, 'create');
    },
    async get(nonce) {
      return readJson<UsedLinkRecord>(container, usedMarkerName(nonce));
    },
    async acceptedDecisions(instanceId) {
      const prefix = `approvals/decisions/${instanceId}/`;
      const out: AcceptedDecision[] = [];
      try {
        let n = 0;
        for await (const b of container.listBlobsFlat({ prefix })) {
          if (++n > 200) break; // a deploy has a handful of decisions; never read an unbounded list
          if (!b.name.endsWith('-accepted.json')) continue;
          const r = await readJson<Partial<AcceptedDecision>>(container, b.name);
          if (!r || typeof r.approver !== 'string') continue;
          if (r.action !== 'approve' && r.action !== 'reject' && r.action !== 'rollback') continue;
          out.push({
            approver: r.approver,
            action: r.action,
            decidedAt: typeof r.decidedAt === 'string' ? r.decidedAt : undefined,
            receivedAt: typeof r.receivedAt === 'string' ? r.receivedAt : undefined,
          });
        }
      } catch (err) {
        if ((err as RestError).statusCode === 404) return [];
        throw blobError(err, `listing the decisions of ${instanceId}`);
      }
      return out.sort((a, b) => (a.receivedAt ?? '').localeCompare(b.receivedAt ?? ''));
    },
    async release(nonce) {
      const name = usedMarkerName(nonce);
      try {
        await container.getBlockBlobClient(name).deleteIfExists();
      } catch (err) {
        if ((err as RestError).statusCode === 404) return;
        throw blobError(err, `releasing ${name}`);
      }
    },
  };
}
