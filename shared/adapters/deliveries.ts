/**
 * Intake decisions store (Blob, LEDGER_CONTAINER):
 *   intake/deliveries/<deliveryId>.json  the claim + final answer of one delivery. Created with
 *       `If-None-Match: *`: of N concurrent copies of a delivery exactly one creates it (the winner,
 *       who processes it); the others wait for its answer and repeat it. A redelivery finds the answer.
 *   intake/commits/<sha>.json            the gate state of a commit (waiting / passed / blocked), updated
 *       with If-Match so a decision for a commit is taken once.
 *   intake/log/<inverted time>-<id>.json one line per decision, listed newest first.
 */
import { randomBytes } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { blobError, ensureContainer, readJson, readJsonWithEtag, writeJson } from './ledger';

export type Decision = 'accepted' | 'blocked' | 'waiting' | 'ignored' | 'duplicate' | 'superseded' | 'failed' | 'deploy-started' | 'deploy-finished';

export interface DecisionRecord {
  at: string;
  decision: Decision;
  reason: string;
  deliveryId?: string;
  event?: string;
  status?: number;
  sha?: string;
  version?: string;
  messageId?: string;
  instanceId?: string;
  [extra: string]: unknown;
}

export type DecisionInput = Partial<Pick<DecisionRecord, 'at'>> & { decision: Decision; reason: string } & Record<string, unknown>;

export interface DeliveryAnswer {
  status: number;
  body: Record<string, unknown>;
}

export interface DeliveryClaim {
  deliveryId: string;
  event: string;
  receivedAt: string;
  answer?: DeliveryAnswer;
}

export interface CommitGateState {
  sha: string;
  state: 'waiting' | 'passed' | 'blocked';
  firstSeenAt: string;
  deadline: string;
  trigger: 'push' | 'workflow_run';
  branch: string;
  mergedBy: string;
  deliveryId: string;
  reason?: string;
  messageId?: string;
}

export interface DeliveriesStore {
  /** true: this caller owns the delivery and must `complete` (or `release`) it */
  claim(deliveryId: string, event: string): Promise<boolean>;
  get(deliveryId: string): Promise<DeliveryClaim | undefined>;
  complete(deliveryId: string, event: string, answer: DeliveryAnswer): Promise<void>;
  /** give a claim up (processing failed inside the pipeline): a redelivery is processed again */
  release(deliveryId: string): Promise<void>;
  /** poll until the winner has answered */
  waitForAnswer(deliveryId: string, timeoutMs: number): Promise<DeliveryAnswer | undefined>;
  record(rec: DecisionInput): Promise<DecisionRecord>;
  list(limit: number): Promise<DecisionRecord[]>;
  commit(sha: string): Promise<{ value: CommitGateState; etag: string } | undefined>;
  /** create (etag undefined) or replace (If-Match etag); false when another writer won */
  putCommit(state: CommitGateState, etag?: string): Promise<boolean>;
}

const MAX_TS = 9_999_999_999_999;

export function createDeliveriesStore(container: ContainerClient): DeliveriesStore {
  const ensure = ensureContainer(container);
  const deliveryBlob = (id: string) => `intake/deliveries/${id}.json`;
  /**
   * Group commit of decision records: a record is durable before `record()` resolves, but records that
   * arrive while a write is in flight share the next write (one blob per batch, newest first). At low
   * load every record is written at once; under load the Blob writes stay few.
   */
  let pending: Array<{ rec: DecisionRecord; done: (err?: unknown) => void }> = [];
  let writing = false;
  const flush = async (): Promise<void> => {
    if (writing || !pending.length) return;
    writing = true;
    const batch = pending;
    pending = [];
    try {
      await ensure();
      const recs = batch.map((b) => b.rec).sort((a, b) => b.at.localeCompare(a.at));
      const newest = recs[0];
      const inv = String(MAX_TS - Date.parse(recs[recs.length - 1].at)).padStart(13, '0');
      const id = (newest.deliveryId ?? newest.instanceId ?? newest.sha ?? 'x').replace(/[^A-Za-z0-9-]/g, '_').slice(0, 80);
      await writeJson(container, `intake/log/${inv}-${id}-${randomBytes(4).toString('hex')}.json`, recs);
      for (const b of batch) b.done();
    } catch (err) {
      for (const b of batch) b.done(err);
    } finally {
      writing = false;
      void flush();
    }
  };
  const groupCommit = (rec: DecisionRecord) =>
    new Promise<void>((resolve, reject) => {
      pending.push({ rec, done: (err) => (err ? reject(err) : resolve()) });
      void flush();
    });

  const store: DeliveriesStore = {
    async claim(deliveryId, event) {
      await ensure();
      const claim: DeliveryClaim = { deliveryId, event, receivedAt: new Date().toISOString() };
      return writeJson(container, deliveryBlob(deliveryId), claim, 'create');
    },
    async get(deliveryId) {
      return readJson<DeliveryClaim>(container, deliveryBlob(deliveryId));
    },
    async complete(deliveryId, event, answer) {
      const claim: DeliveryClaim = { deliveryId, event, receivedAt: new Date().toISOString(), answer };
      await writeJson(container, deliveryBlob(deliveryId), claim);
    },
    async release(deliveryId) {
      try {
        await container.getBlockBlobClient(deliveryBlob(deliveryId)).deleteIfExists();
      } catch (err) {
        throw blobError(err, `releasing delivery ${deliveryId}`);
      }
    },
    async waitForAnswer(deliveryId, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let delay = 10;
      for (;;) {
        const c = await store.get(deliveryId);
        if (c?.answer) return c.answer;
        if (!c) return undefined; // released by a failed winner
        if (Date.now() + delay > deadline) return undefined;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 250);
      }
    },
    async record(rec) {
      const full = { ...rec, at: rec.at ?? new Date().toISOString() } as DecisionRecord;
      await groupCommit(full);
      return full;
    },
    async list(limit) {
      const n = Math.max(1, Math.min(limit, 500));
      const names: string[] = [];
      try {
        for await (const page of container.listBlobsFlat({ prefix: 'intake/log/' }).byPage({ maxPageSize: n })) {
          for (const b of page.segment.blobItems) if (names.length < n) names.push(b.name);
          if (names.length >= n) break;
        }
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return [];
        throw blobError(err, 'listing intake decisions');
      }
      const batches = await Promise.all(names.map((name) => readJson<DecisionRecord | DecisionRecord[]>(container, name)));
      const recs = batches.flatMap((b) => (Array.isArray(b) ? b : b ? [b] : []));
      return recs.sort((a, b) => b.at.localeCompare(a.at)).slice(0, n);
    },
    async commit(sha) {
      return readJsonWithEtag<CommitGateState>(container, `intake/commits/${sha}.json`);
    },
    async putCommit(state, etag) {
      await ensure();
      return writeJson(container, `intake/commits/${state.sha}.json`, state, etag ?? 'create');
    },
  };
  return store;
}
