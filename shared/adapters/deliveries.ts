/**
 * Intake decisions store (Blob, LEDGER_CONTAINER):
 *   intake/deliveries/<deliveryId>.json  the claim + final answer of one delivery. Created with
 *       `If-None-Match: *`: of N concurrent copies of a delivery exactly one creates it (the winner,
 *       who processes it); the others wait for its answer and repeat it. A redelivery finds the answer.
 *   intake/commits/<sha>.json            the gate state of a commit (waiting / passed / blocked) and the
 *       merge events seen for it (run id + attempt, or the pushed sha), updated with If-Match so a
 *       decision for a commit is taken once and a replayed event re-opens nothing.
 *   intake/log/<inverted time>-<id>.json decision records (a batch per blob), listed newest first.
 *
 * Decision records are group-committed: records that arrive while a write is in flight share the next
 * write. A caller either waits until its record is stored (`record(rec)`, the default: decisions that
 * changed something) or only hands it over (`record(rec, { wait: false })`: decisions whose answer
 * depends on nothing stored, i.e. ignored events — a redelivery is answered the same from its payload).
 * Handed-over records are written within one Blob round trip, retried if the write fails, visible to
 * `list()` of the same process at once, and bounded in memory; the log line is written either way.
 */
import { randomBytes } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { blobError, ensureContainer, readJson, readJsonWithEtag, writeJson } from './ledger';

export type Decision =
  | 'accepted'
  | 'blocked'
  | 'waiting'
  | 'ignored'
  | 'duplicate'
  | 'replay'
  | 'superseded'
  | 'failed'
  | 'deploy-started'
  | 'deploy-finished'
  | 'gate-overridden';

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

export type DecisionInput = Partial<Pick<DecisionRecord, 'at'>> & {
  decision: Decision;
  reason: string;
} & Record<string, unknown>;

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
  /**
   * the merge events evaluated for this commit (`push:<sha>`, `workflow_run:<run id>:<attempt>`): a
   * blocked commit is re-opened only by an event not in this list, never by a replayed body
   */
  events?: string[];
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
  /** store a decision; `wait: false` hands it to the next group write without waiting for it */
  record(rec: DecisionInput, opts?: { wait?: boolean }): Promise<DecisionRecord>;
  /** resolves once every record handed over so far is written (or given up) */
  flush(): Promise<void>;
  /**
   * stop writing in the background (a process or test that is ending): the scheduled write or retry is
   * cancelled and nothing is scheduled again; records still unwritten are reported as dropped
   */
  close(): void;
  list(limit: number): Promise<DecisionRecord[]>;
  commit(sha: string): Promise<{ value: CommitGateState; etag: string } | undefined>;
  /** create (etag undefined) or replace (If-Match etag); false when another writer won */
  putCommit(state: CommitGateState, etag?: string): Promise<boolean>;
}

const MAX_TS = 9_999_999_999_999;
/** records handed over without waiting that may be held while Blob storage is unreachable */
export const MAX_UNWRITTEN_RECORDS = 10_000;
/** records per blob, so that `list()` reads blobs of a bounded size */
const MAX_BATCH = 500;

export interface DeliveriesStoreOptions {
  /** told when handed-over records could not be written (they are retried; dropped beyond the bound) */
  onBackgroundError?: (err: unknown, records: number, dropped: number) => void;
  /** delay before retrying a failed background write */
  retryMs?: number;
  /**
   * how long handed-over records wait to share a write (default 20 ms): without it the store writes
   * back to back under load and keeps Azurite/Blob storage busy for records nobody waits for. A full
   * batch (500 records) is written at once.
   */
  lingerMs?: number;
  /** bound on handed-over records kept while storage is unreachable (default MAX_UNWRITTEN_RECORDS) */
  maxUnwritten?: number;
}

interface Pending {
  rec: DecisionRecord;
  /** undefined: nobody waits (handed over) */
  done?: (err?: unknown) => void;
}

export function createDeliveriesStore(
  container: ContainerClient,
  opts: DeliveriesStoreOptions = {},
): DeliveriesStore {
  const ensure = ensureContainer(container);
  const lingerMs = opts.lingerMs ?? 20;
  const maxUnwritten = opts.maxUnwritten ?? MAX_UNWRITTEN_RECORDS;
  const deliveryBlob = (id: string) => `intake/deliveries/${id}.json`;
  /**
   * Group commit of decision records: records that arrive while a write is in flight share the next
   * write (one blob per batch, newest first). At low load every record is written at once; under load
   * the Blob writes stay few.
   */
  let pending: Pending[] = [];
  let writing = false;
  let closed = false;
  /** handed-over records dropped by the bound since the last report (reported once per write, not per record) */
  let droppedUnreported = 0;
  const reportDrops = () => {
    if (!droppedUnreported) return;
    const n = droppedUnreported;
    droppedUnreported = 0;
    opts.onBackgroundError?.(new Error(`too many unwritten decision records: dropped the ${n} oldest`), n, n);
  };
  /** a scheduled write: the linger of handed-over records, or the pause before a retry */
  let timer: NodeJS.Timeout | undefined;
  let idleWaiters: Array<() => void> = [];
  const settle = () => {
    const w = idleWaiters;
    idleWaiters = [];
    for (const r of w) r();
  };
  const schedule = (ms: number) => {
    if (timer || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, ms);
    timer.unref?.();
  };
  const cancelTimer = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  const flush = async (): Promise<void> => {
    if (writing) return; // the write in flight decides what comes next when it ends
    cancelTimer();
    if (!pending.length) return settle();
    writing = true;
    const batch = pending.splice(0, MAX_BATCH);
    let failed = false;
    try {
      await ensure();
      // ISO-8601 UTC times sort as strings (code units; localeCompare's collation showed in the profile)
      const recs = batch.map((b) => b.rec).sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
      const newest = recs[0];
      const inv = String(MAX_TS - Date.parse(recs[recs.length - 1].at)).padStart(13, '0');
      const id = (newest.deliveryId ?? newest.instanceId ?? newest.sha ?? 'x')
        .replace(/[^A-Za-z0-9-]/g, '_')
        .slice(0, 80);
      await writeJson(container, `intake/log/${inv}-${id}-${randomBytes(4).toString('hex')}.json`, recs);
      for (const b of batch) b.done?.();
    } catch (err) {
      failed = true;
      for (const b of batch) b.done?.(err);
      // handed-over records: keep them (bounded, oldest dropped first) and retry after a pause
      const kept = batch.filter((b) => !b.done);
      if (kept.length) {
        const room = Math.max(0, maxUnwritten - pending.length);
        const dropped = Math.max(0, kept.length - room);
        pending = [...kept.slice(dropped), ...pending];
        opts.onBackgroundError?.(err, kept.length, dropped);
      }
    } finally {
      writing = false;
      reportDrops();
      if (!pending.length) settle();
      else if (pending.some((x) => x.done))
        void flush(); // somebody waits for a record: write now
      else if (pending.length >= MAX_BATCH && !failed)
        void flush(); // a full batch is waiting: no linger
      else if (failed) {
        settle(); // an explicit flush gets as far as it can; the rest is retried after the pause
        schedule(opts.retryMs ?? 1000);
      } else if (idleWaiters.length) void flush();
      else schedule(lingerMs);
    }
  };
  const enqueue = (item: Pending) => {
    if (!item.done && pending.length >= maxUnwritten) {
      const i = pending.findIndex((x) => !x.done); // make room: drop the oldest handed-over record
      if (i >= 0) {
        pending.splice(i, 1);
        droppedUnreported++;
      }
    }
    pending.push(item);
    if (item.done || pending.length >= MAX_BATCH)
      void flush(); // somebody waits, or a full batch: no linger
    else if (!writing) schedule(lingerMs);
  };

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
    async record(rec, o) {
      const full = { ...rec, at: rec.at ?? new Date().toISOString() } as DecisionRecord;
      if (o?.wait === false) enqueue({ rec: full });
      else
        await new Promise<void>((resolve, reject) =>
          enqueue({ rec: full, done: (err) => (err ? reject(err) : resolve()) }),
        );
      return full;
    },
    close() {
      closed = true;
      cancelTimer();
      const left = pending.filter((x) => !x.done).length;
      if (left)
        opts.onBackgroundError?.(new Error(`closed with ${left} unwritten decision records`), left, left);
    },
    flush() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        void flush(); // asked for explicitly: now, not after the linger or the retry pause
      });
    },
    async list(limit) {
      // this process's handed-over records first, so a list right after a decision shows it
      await store.flush();
      const n = Math.max(1, Math.min(limit, 500));
      const names: string[] = [];
      try {
        for await (const page of container
          .listBlobsFlat({ prefix: 'intake/log/' })
          .byPage({ maxPageSize: n })) {
          for (const b of page.segment.blobItems) if (names.length < n) names.push(b.name);
          if (names.length >= n) break;
        }
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return [];
        throw blobError(err, 'listing intake decisions');
      }
      const batches = await Promise.all(
        names.map((name) => readJson<DecisionRecord | DecisionRecord[]>(container, name)),
      );
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
