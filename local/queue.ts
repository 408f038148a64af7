/**
 * The embedded host's persistent queue, with the Service Bus semantics the deploy queue relies on.
 *
 * ## Semantics
 * - **Persistence**: one SQLite file (better-sqlite3, WAL). Every send, receive, settle and lock
 *   change is one transaction, so a SIGKILLed host loses nothing it acknowledged (an OS crash or power
 *   loss can drop the last commits unless `fsync: true`).
 *   Several processes may open the same file (sends from a CLI while the host receives).
 * - **Duplicate detection**: a message id seen on the same queue within `duplicateDetectionWindowMs`
 *   (default 10 min, counted from the first send) is dropped and `send` reports `duplicate: true`
 *   with the original's sequence number (the REST answer is still 201: Service Bus drops duplicates
 *   silently). The window is stored in the file, so it holds across restarts, and it also covers
 *   messages already completed.
 * - **Peek-lock**: `receive` locks a message for `lockDurationMs` (default 60 s) and increments its
 *   delivery count (the first delivery has deliveryCount 1, as the Functions trigger reports it).
 *   `complete` removes it, `abandon` unlocks it for immediate redelivery, `deadLetter` moves it to the
 *   dead-letter list, `renewLock` extends the lock. Settling with an expired or unknown lock token
 *   throws `QUEUE.LOCK_LOST`. A lock that expires makes the message available again; lock expiry is
 *   evaluated against the injected clock on every operation. Locks held by a process that no longer
 *   exists (the host was killed) are released as soon as the next process opens the file.
 * - **Poison messages**: a message whose `maxDeliveryCount`-th delivery (default 10) is abandoned or
 *   whose lock expires is dead-lettered with reason `MaxDeliveryCountExceeded` and the last error (the
 *   abandon reason) as description. A handler that throws an error carrying `deadLetterReason` (see
 *   `QueueDeadLetter`) has its message dead-lettered at once with that reason and the error text.
 * - **Scheduled messages**: invisible until `scheduledEnqueueTimeUtc` (by the injected clock).
 * - **Sessions**: messages with a session id are delivered in send order per session, one at a time:
 *   while one message of a session is locked no other message of that session is delivered, and an
 *   abandoned message is redelivered before the later ones. Different sessions interleave and are
 *   dispatched in parallel (bounded by `concurrency`).
 * - **Dispatch** (`subscribe`): the trigger loop. Calls the handler per message, completes on success,
 *   abandons with the error message on a throw, renews the lock while the handler runs (up to
 *   `maxAutoLockRenewalMs`, default 5 min like the Functions host). Wakes on local sends and polls
 *   (`pollIntervalMs`, default 250 ms) for sends from other processes, due scheduled messages and
 *   expired locks. With `sessions: true` a message without a session id is dead-lettered with reason
 *   `SessionIdMissing` (Service Bus refuses such a send to a session queue).
 *
 * ## Differences from real Service Bus
 * - Queues exist on first use (unless `knownQueues` is given, then others are refused with
 *   `QUEUE.NOT_FOUND` / REST 410). Every queue honours session ordering for messages that carry a
 *   session id; there is no separate "requires session" flag on the queue.
 * - The session lock is the lock of the session's in-flight message: between two messages another
 *   dispatcher may take the session (order is still kept). No session state, no session idle timeout.
 * - No TimeToLive expiry (messages never expire), no deferral, no topics/subscriptions, no
 *   auto-forwarding, no batch receive; the dead-letter list is read with `deadLetters()`, not received.
 * - Sequence numbers are unique across the whole file, not per queue.
 * - `counts().active` counts only messages available now (Service Bus's active count also includes
 *   locked ones; here those are `locked`).
 * - Custom REST properties arrive with lowercase names (Node lowercases HTTP header names). The REST
 *   endpoint itself checks no SAS/Entra token: the embedded host guards the route with its key.
 * - `subscribe` handles up to 8 messages (sessions) at once by default; the Functions host uses
 *   maxConcurrentSessions 8 and maxConcurrentCalls 16 x cores. Lock renewal runs on wall-clock
 *   timers, lock expiry is judged by the injected clock.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PipelineError, messageOf } from '../shared/domain/errors';
import type { Logger } from '../shared/log';
import { MAX_ID_LENGTH, isValidQueueName, parseRestSend, restErrorBody } from './queue-rest';

export interface QueueMessageInput {
  body: unknown;
  messageId?: string;
  sessionId?: string;
  scheduledEnqueueTimeUtc?: Date;
  contentType?: string;
  applicationProperties?: Record<string, string | number | boolean>;
  /** Service Bus `subject` (REST `Label`) */
  subject?: string;
  correlationId?: string;
}

export interface ReceivedMessage {
  body: unknown;
  messageId: string;
  sessionId?: string;
  deliveryCount: number;
  enqueuedTimeUtc: Date;
  sequenceNumber: number;
  lockToken: string;
  lockedUntilUtc: Date;
  applicationProperties: Record<string, unknown>;
  contentType?: string;
  subject?: string;
  correlationId?: string;
  /** when the message becomes (or became) visible: the scheduled enqueue time, else the enqueue time */
  scheduledEnqueueTimeUtc?: Date;
}

export type DeadLetteredMessage = ReceivedMessage & {
  deadLetterReason: string;
  deadLetterErrorDescription?: string;
};

export interface LocalQueueOptions {
  dbPath: string;
  clock?: { now(): number };
  log?: Logger;
  /** default 10 min like Service Bus; 0 disables duplicate detection */
  duplicateDetectionWindowMs?: number;
  /** default 60 s */
  lockDurationMs?: number;
  /** default 10 */
  maxDeliveryCount?: number;
  /** how often subscriptions look for work they were not told about (default 250 ms) */
  pollIntervalMs?: number;
  /** when set, only these queues exist; sends to others are refused */
  knownQueues?: string[];
  /** fsync every commit (survives an OS crash, not only a killed process); default false */
  fsync?: boolean;
}

export interface SubscribeOptions {
  sessions?: boolean;
  /** messages (sessions, with `sessions`) handled in parallel; default 8 */
  concurrency?: number;
  /** renew the lock while the handler runs, for at most this long (default 5 min; 0: never) */
  maxAutoLockRenewalMs?: number;
}

export interface QueueCounts {
  active: number;
  scheduled: number;
  deadLetter: number;
  locked: number;
}

interface Row {
  seq: number;
  queue: string;
  message_id: string;
  session_id: string | null;
  body_json: string | null;
  body_bytes: Buffer | null;
  content_type: string | null;
  subject: string | null;
  correlation_id: string | null;
  app_props: string;
  enqueued_at: number;
  visible_at: number;
  delivery_count: number;
  state: 'active' | 'deadletter';
  lock_token: string | null;
  locked_until: number | null;
  last_error: string | null;
  dl_reason: string | null;
  dl_description: string | null;
}

const SCHEMA_VERSION = 1;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  message_id TEXT NOT NULL,
  session_id TEXT,
  body_json TEXT,
  body_bytes BLOB,
  content_type TEXT,
  subject TEXT,
  correlation_id TEXT,
  app_props TEXT NOT NULL DEFAULT '{}',
  enqueued_at INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  delivery_count INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'active',
  lock_token TEXT UNIQUE,
  locked_until INTEGER,
  last_error TEXT,
  dl_reason TEXT,
  dl_description TEXT,
  dl_at INTEGER
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, state, visible_at, seq);
CREATE INDEX IF NOT EXISTS messages_session ON messages (queue, session_id, state, seq);
CREATE INDEX IF NOT EXISTS messages_locked ON messages (locked_until) WHERE lock_token IS NOT NULL;
CREATE TABLE IF NOT EXISTS dedup (
  queue TEXT NOT NULL,
  message_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (queue, message_id)
);
CREATE TABLE IF NOT EXISTS owner (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER NOT NULL,
  since INTEGER NOT NULL
);
`;

/** Is a process with this pid alive on this machine? (EPERM: alive, owned by another user.) */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const systemClock = { now: () => Date.now() };
const DEFAULT_WINDOW_MS = 10 * 60_000;
const DEFAULT_LOCK_MS = 60_000;
const DEFAULT_MAX_DELIVERY = 10;

export class LocalQueue {
  private readonly db: Database.Database;
  private readonly clock: { now(): number };
  private readonly log?: Logger;
  private readonly windowMs: number;
  private readonly lockMs: number;
  private readonly maxDelivery: number;
  private readonly pollMs: number;
  private readonly known?: Set<string>;
  private readonly events = new EventEmitter();
  private readonly subscriptions = new Set<{ stop(): void }>();
  private closed = false;

  constructor(opts: LocalQueueOptions) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log;
    this.windowMs = opts.duplicateDetectionWindowMs ?? DEFAULT_WINDOW_MS;
    this.lockMs = opts.lockDurationMs ?? DEFAULT_LOCK_MS;
    this.maxDelivery = opts.maxDeliveryCount ?? DEFAULT_MAX_DELIVERY;
    this.pollMs = opts.pollIntervalMs ?? 250;
    if (!(this.lockMs > 0))
      throw new PipelineError(
        'QUEUE.INVALID_OPTIONS',
        `lockDurationMs must be > 0 (got ${opts.lockDurationMs})`,
      );
    if (!(this.windowMs >= 0))
      throw new PipelineError(
        'QUEUE.INVALID_OPTIONS',
        `duplicateDetectionWindowMs must be >= 0 (got ${opts.duplicateDetectionWindowMs})`,
      );
    if (!Number.isInteger(this.maxDelivery) || this.maxDelivery < 1)
      throw new PipelineError(
        'QUEUE.INVALID_OPTIONS',
        `maxDeliveryCount must be an integer >= 1 (got ${opts.maxDeliveryCount})`,
      );
    if (opts.knownQueues) this.known = new Set(opts.knownQueues);
    this.events.setMaxListeners(0);
    this.db = new Database(opts.dbPath);
    this.db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a committed transaction is in the WAL file before the call returns, so a killed
    // process loses nothing; only an OS crash or power loss can drop the last commits (`fsync: true`
    // syncs every commit, ~10x slower).
    this.db.pragma(`synchronous = ${opts.fsync ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('busy_timeout = 10000');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      this.db.close();
      throw new PipelineError(
        'QUEUE.SCHEMA',
        `queue file ${opts.dbPath} has schema version ${version}, newer than this code (${SCHEMA_VERSION})`,
      );
    }
    this.db.exec(SCHEMA);
    this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    this.recoverOrphanLocks();
  }

  /**
   * The queue file records which process uses it. Locks held by a previous process that no longer
   * exists (the host was killed) can never be settled: they are released at once instead of after
   * their lock duration, so a restarted host goes on with those messages immediately. The delivery
   * count they already used stays (poison messages are still dead-lettered).
   */
  private recoverOrphanLocks(): void {
    this.db
      .transaction(() => {
        const prev = this.db.prepare('SELECT pid FROM owner WHERE id = 1').get() as
          | { pid: number }
          | undefined;
        if (prev && prev.pid !== process.pid && !processAlive(prev.pid)) {
          const released = this.db
            .prepare(
              `UPDATE messages SET lock_token = NULL, locked_until = NULL WHERE lock_token IS NOT NULL AND state = 'active'`,
            )
            .run().changes;
          if (released > 0)
            this.log?.info(
              'queue: released the locks of a process that is gone; those messages are available again',
              {
                previousPid: prev.pid,
                released,
              },
            );
        }
        this.db
          .prepare(
            'INSERT INTO owner (id, pid, since) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, since = excluded.since',
          )
          .run(process.pid, Date.now());
      })
      .immediate();
  }

  // --- sending -------------------------------------------------------------------------------------

  send(queue: string, msg: QueueMessageInput): { sequenceNumber: number; duplicate: boolean } {
    this.assertOpen();
    this.assertQueue(queue);
    const now = this.clock.now();
    const messageId = msg.messageId ?? randomUUID();
    checkId('messageId', messageId);
    if (msg.sessionId !== undefined) checkId('sessionId', msg.sessionId);
    let bodyJson: string | null = null;
    let bodyBytes: Buffer | null = null;
    if (Buffer.isBuffer(msg.body) || msg.body instanceof Uint8Array) {
      bodyBytes = Buffer.from(msg.body);
    } else {
      try {
        bodyJson = JSON.stringify(msg.body) ?? null;
      } catch (err) {
        throw new PipelineError(
          'QUEUE.INVALID_MESSAGE',
          `message body cannot be serialized as JSON: ${messageOf(err)}`,
        );
      }
      if (bodyJson === null)
        throw new PipelineError(
          'QUEUE.INVALID_MESSAGE',
          `message body must be JSON-serializable or bytes (got ${typeof msg.body})`,
        );
    }
    let visibleAt = now;
    if (msg.scheduledEnqueueTimeUtc !== undefined) {
      const t = msg.scheduledEnqueueTimeUtc instanceof Date ? msg.scheduledEnqueueTimeUtc.getTime() : NaN;
      if (Number.isNaN(t))
        throw new PipelineError('QUEUE.INVALID_MESSAGE', 'scheduledEnqueueTimeUtc must be a valid Date');
      visibleAt = Math.max(now, t);
    }
    const props = msg.applicationProperties ?? {};
    for (const [k, v] of Object.entries(props)) {
      if (!['string', 'number', 'boolean'].includes(typeof v))
        throw new PipelineError(
          'QUEUE.INVALID_MESSAGE',
          `application property ${k} must be a string, number or boolean`,
        );
    }

    const result = this.db
      .transaction(() => {
        if (this.windowMs > 0) {
          this.db.prepare('DELETE FROM dedup WHERE queue = ? AND expires_at <= ?').run(queue, now);
          const seen = this.db
            .prepare('SELECT seq FROM dedup WHERE queue = ? AND message_id = ?')
            .get(queue, messageId) as { seq: number } | undefined;
          if (seen) return { sequenceNumber: seen.seq, duplicate: true };
        }
        const info = this.db
          .prepare(
            `INSERT INTO messages (queue, message_id, session_id, body_json, body_bytes, content_type, subject, correlation_id, app_props, enqueued_at, visible_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            queue,
            messageId,
            msg.sessionId ?? null,
            bodyJson,
            bodyBytes,
            msg.contentType ?? null,
            msg.subject ?? null,
            msg.correlationId ?? null,
            JSON.stringify(props),
            now,
            visibleAt,
          );
        const seq = Number(info.lastInsertRowid);
        if (this.windowMs > 0)
          this.db
            .prepare('INSERT INTO dedup (queue, message_id, expires_at, seq) VALUES (?, ?, ?, ?)')
            .run(queue, messageId, now + this.windowMs, seq);
        return { sequenceNumber: seq, duplicate: false };
      })
      .immediate();
    if (result.duplicate) {
      this.log?.info('queue: duplicate message dropped', { queue, messageId, sessionId: msg.sessionId });
    } else {
      this.log?.debug('queue: message enqueued', {
        queue,
        messageId,
        sessionId: msg.sessionId,
        sequenceNumber: result.sequenceNumber,
        scheduledFor: visibleAt > now ? new Date(visibleAt).toISOString() : undefined,
      });
      this.events.emit('sent', queue);
    }
    return result;
  }

  /** Service Bus REST "Send Message" (see queue-rest.ts for the mapping). */
  handleRestSend(
    queue: string,
    req: { headers: Record<string, string | string[] | undefined>; body: Buffer | undefined },
  ): { status: number; body?: string } {
    if (this.known && !this.known.has(queue))
      return {
        status: 410,
        body: restErrorBody(410, `queue ${JSON.stringify(queue.slice(0, 80))} does not exist`),
      };
    const parsed = parseRestSend(queue, req);
    if (!parsed.ok) {
      this.log?.warn('queue: REST send refused', { queue, status: parsed.status, reason: parsed.reason });
      return { status: parsed.status, body: restErrorBody(parsed.status, parsed.reason) };
    }
    try {
      this.send(queue, parsed.message);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'QUEUE.INVALID_MESSAGE') return { status: 400, body: restErrorBody(400, messageOf(err)) };
      this.log?.error('queue: REST send failed', { queue, error: messageOf(err) });
      return { status: 500, body: restErrorBody(500, 'the message could not be stored') };
    }
    return { status: 201 };
  }

  // --- receiving -----------------------------------------------------------------------------------

  /** Peek-lock the next available message (respecting schedule, session order and session locks). */
  receive(queue: string, opts: { sessionId?: string } = {}): ReceivedMessage | undefined {
    this.assertOpen();
    const now = this.clock.now();
    return this.db
      .transaction(() => {
        this.sweep(now);
        const sessionFilter = opts.sessionId !== undefined ? 'AND m.session_id = @session' : '';
        const row = this.db
          .prepare(
            `SELECT m.* FROM messages m
             WHERE m.queue = @queue AND m.state = 'active' AND m.visible_at <= @now AND m.lock_token IS NULL ${sessionFilter}
               AND (m.session_id IS NULL OR (
                 NOT EXISTS (SELECT 1 FROM messages l WHERE l.queue = m.queue AND l.session_id = m.session_id AND l.state = 'active' AND l.lock_token IS NOT NULL)
                 AND m.seq = (SELECT MIN(h.seq) FROM messages h WHERE h.queue = m.queue AND h.session_id = m.session_id AND h.state = 'active' AND h.visible_at <= @now)))
             ORDER BY m.seq LIMIT 1`,
          )
          .get({ queue, now, session: opts.sessionId ?? null }) as Row | undefined;
        if (!row) return undefined;
        const token = randomUUID();
        const until = now + this.lockMs;
        this.db
          .prepare(
            'UPDATE messages SET lock_token = ?, locked_until = ?, delivery_count = delivery_count + 1 WHERE seq = ?',
          )
          .run(token, until, row.seq);
        return toMessage({
          ...row,
          lock_token: token,
          locked_until: until,
          delivery_count: row.delivery_count + 1,
        });
      })
      .immediate();
  }

  complete(lockToken: string): void {
    this.settle(lockToken, 'complete', (row) => {
      this.db.prepare('DELETE FROM messages WHERE seq = ?').run(row.seq);
    });
  }

  abandon(lockToken: string, reason?: string): void {
    this.settle(lockToken, 'abandon', (row, now) => {
      if (row.delivery_count >= this.maxDelivery) {
        this.moveToDeadLetter(
          row.seq,
          'MaxDeliveryCountExceeded',
          maxDeliveryDescription(row.delivery_count, reason ?? row.last_error ?? undefined),
          now,
        );
        this.log?.warn('queue: message dead-lettered', {
          queue: row.queue,
          messageId: row.message_id,
          sessionId: row.session_id,
          reason: 'MaxDeliveryCountExceeded',
          deliveryCount: row.delivery_count,
        });
      } else {
        this.db
          .prepare(
            'UPDATE messages SET lock_token = NULL, locked_until = NULL, last_error = COALESCE(?, last_error) WHERE seq = ?',
          )
          .run(reason ?? null, row.seq);
      }
    });
    this.events.emit('sent', '*');
  }

  deadLetter(lockToken: string, reason: string, description?: string): void {
    if (!reason) throw new PipelineError('QUEUE.INVALID_ARGUMENT', 'deadLetter needs a reason');
    this.settle(lockToken, 'deadLetter', (row, now) => {
      this.moveToDeadLetter(row.seq, reason, description ?? null, now);
      this.log?.warn('queue: message dead-lettered', {
        queue: row.queue,
        messageId: row.message_id,
        sessionId: row.session_id,
        reason,
        deliveryCount: row.delivery_count,
      });
    });
    this.events.emit('sent', '*');
  }

  renewLock(lockToken: string): Date {
    let until = 0;
    this.settle(lockToken, 'renewLock', (row, now) => {
      until = now + this.lockMs;
      this.db.prepare('UPDATE messages SET locked_until = ? WHERE seq = ?').run(until, row.seq);
    });
    return new Date(until);
  }

  // --- dispatch ------------------------------------------------------------------------------------

  subscribe(
    queue: string,
    handler: (msg: ReceivedMessage) => Promise<void>,
    opts: SubscribeOptions = {},
  ): { close(): Promise<void> } {
    this.assertOpen();
    this.assertQueue(queue);
    const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 8));
    const renewFor = opts.maxAutoLockRenewalMs ?? 5 * 60_000;
    const inflight = new Set<Promise<void>>();
    let stopped = false;
    let scheduled = false;

    const pump = (): void => {
      scheduled = false;
      if (stopped || this.closed) return;
      while (inflight.size < concurrency) {
        let msg: ReceivedMessage | undefined;
        try {
          msg = this.receive(queue);
        } catch (err) {
          this.log?.error('queue: receive failed', { queue, error: messageOf(err) });
          return;
        }
        if (!msg) return;
        const p: Promise<void> = this.dispatch(queue, msg, handler, opts.sessions === true, renewFor).finally(
          () => {
            inflight.delete(p);
            wake();
          },
        );
        inflight.add(p);
      }
    };
    const wake = (): void => {
      if (scheduled || stopped) return;
      scheduled = true;
      setImmediate(pump);
    };
    const onSent = (q: string): void => {
      if (q === queue || q === '*') wake();
    };
    this.events.on('sent', onSent);
    const timer = setInterval(wake, this.pollMs);
    const sub = {
      stop: () => {
        stopped = true;
        clearInterval(timer);
        this.events.off('sent', onSent);
      },
    };
    this.subscriptions.add(sub);
    wake();
    return {
      close: async () => {
        sub.stop();
        this.subscriptions.delete(sub);
        await Promise.allSettled([...inflight]);
      },
    };
  }

  private async dispatch(
    queue: string,
    msg: ReceivedMessage,
    handler: (msg: ReceivedMessage) => Promise<void>,
    sessions: boolean,
    renewFor: number,
  ): Promise<void> {
    const fields = {
      queue,
      messageId: msg.messageId,
      sessionId: msg.sessionId,
      deliveryCount: msg.deliveryCount,
    };
    if (sessions && msg.sessionId === undefined) {
      this.trySettle(fields, () =>
        this.deadLetter(
          msg.lockToken,
          'SessionIdMissing',
          'a message without a session id reached a session-enabled trigger; Service Bus refuses such a send',
        ),
      );
      return;
    }
    const started = Date.now();
    const renewTimer =
      renewFor > 0
        ? setInterval(
            () => {
              if (Date.now() - started > renewFor || this.closed) return;
              try {
                this.renewLock(msg.lockToken);
              } catch (err) {
                this.log?.warn('queue: lock renewal failed', { ...fields, error: messageOf(err) });
              }
            },
            Math.max(10, Math.floor(this.lockMs / 2)),
          )
        : undefined;
    renewTimer?.unref();
    let error: unknown;
    let failed = false;
    try {
      await Promise.resolve().then(() => handler(msg));
    } catch (err) {
      failed = true;
      error = err;
    } finally {
      if (renewTimer) clearInterval(renewTimer);
    }
    const deadLetterReason = (error as { deadLetterReason?: unknown } | undefined)?.deadLetterReason;
    if (!failed) {
      this.trySettle(fields, () => this.complete(msg.lockToken));
    } else if (typeof deadLetterReason === 'string' && deadLetterReason) {
      // the handler refused the message for good (e.g. QueueDeadLetter): no redelivery
      const description = messageOf(error).slice(0, 4000);
      this.trySettle(fields, () =>
        this.deadLetter(msg.lockToken, deadLetterReason.slice(0, 200), description),
      );
    } else {
      const reason = messageOf(error).slice(0, 4000);
      this.log?.warn('queue: handler failed, message abandoned', { ...fields, error: reason });
      this.trySettle(fields, () => this.abandon(msg.lockToken, reason));
    }
  }

  private trySettle(fields: Record<string, unknown>, fn: () => void): void {
    if (this.closed) {
      this.log?.warn(
        'queue: closed before the message was settled; it is redelivered after its lock expires',
        fields,
      );
      return;
    }
    try {
      fn();
    } catch (err) {
      this.log?.warn('queue: could not settle message; it is redelivered after its lock expires', {
        ...fields,
        error: messageOf(err),
      });
    }
  }

  // --- inspection ----------------------------------------------------------------------------------

  deadLetters(queue: string): DeadLetteredMessage[] {
    this.assertOpen();
    const rows = this.db
      .prepare(`SELECT * FROM messages WHERE queue = ? AND state = 'deadletter' ORDER BY seq`)
      .all(queue) as Array<Row & { dl_at: number }>;
    return rows.map((r) => {
      const m: DeadLetteredMessage = {
        ...toMessage({ ...r, lock_token: '', locked_until: r.dl_at }),
        deadLetterReason: r.dl_reason ?? '',
      };
      if (r.dl_description !== null) m.deadLetterErrorDescription = r.dl_description;
      return m;
    });
  }

  /** Messages still in the queue (not dead-lettered), in sequence order, without locking them. */
  peek(
    queue: string,
  ): Array<
    Omit<ReceivedMessage, 'lockToken' | 'lockedUntilUtc'> & { state: 'active' | 'scheduled' | 'locked' }
  > {
    this.assertOpen();
    const now = this.clock.now();
    this.db.transaction(() => this.sweep(now)).immediate();
    const rows = this.db
      .prepare(`SELECT * FROM messages WHERE queue = ? AND state = 'active' ORDER BY seq`)
      .all(queue) as Row[];
    return rows.map((r) => {
      const {
        lockToken: _t,
        lockedUntilUtc: _u,
        ...rest
      } = toMessage({ ...r, lock_token: '', locked_until: 0 });
      const state = r.lock_token !== null ? 'locked' : r.visible_at > now ? 'scheduled' : 'active';
      return { ...rest, state };
    });
  }

  counts(queue: string): QueueCounts {
    this.assertOpen();
    const now = this.clock.now();
    this.db.transaction(() => this.sweep(now)).immediate();
    const r = this.db
      .prepare(
        `SELECT
           COALESCE(SUM(state = 'active' AND lock_token IS NULL AND visible_at <= @now), 0) AS active,
           COALESCE(SUM(state = 'active' AND lock_token IS NULL AND visible_at > @now), 0) AS scheduled,
           COALESCE(SUM(state = 'active' AND lock_token IS NOT NULL), 0) AS locked,
           COALESCE(SUM(state = 'deadletter'), 0) AS deadLetter
         FROM messages WHERE queue = @queue`,
      )
      .get({ queue, now }) as QueueCounts;
    return { active: r.active, scheduled: r.scheduled, locked: r.locked, deadLetter: r.deadLetter };
  }

  /** Stops every subscription (their in-flight messages are redelivered after lock expiry) and closes the file. */
  close(): void {
    if (this.closed) return;
    for (const s of this.subscriptions) s.stop();
    this.subscriptions.clear();
    this.closed = true;
    this.events.removeAllListeners();
    this.db.close();
  }

  // --- internals -----------------------------------------------------------------------------------

  /** Expired locks: back to available, or dead-lettered once the delivery budget is used up. */
  private sweep(now: number): void {
    const expired = this.db
      .prepare(
        `SELECT seq, queue, message_id, session_id, delivery_count, last_error FROM messages WHERE lock_token IS NOT NULL AND locked_until <= ?`,
      )
      .all(now) as Row[];
    for (const row of expired) {
      if (row.delivery_count >= this.maxDelivery) {
        this.moveToDeadLetter(
          row.seq,
          'MaxDeliveryCountExceeded',
          maxDeliveryDescription(
            row.delivery_count,
            row.last_error ?? 'the lock expired before the message was settled',
          ),
          now,
        );
        this.log?.warn('queue: message dead-lettered', {
          queue: row.queue,
          messageId: row.message_id,
          sessionId: row.session_id,
          reason: 'MaxDeliveryCountExceeded',
          deliveryCount: row.delivery_count,
        });
      } else {
        this.db
          .prepare('UPDATE messages SET lock_token = NULL, locked_until = NULL WHERE seq = ?')
          .run(row.seq);
        this.log?.info('queue: lock expired, message available again', {
          queue: row.queue,
          messageId: row.message_id,
          sessionId: row.session_id,
          deliveryCount: row.delivery_count,
        });
      }
    }
  }

  private moveToDeadLetter(seq: number, reason: string, description: string | null, now: number): void {
    this.db
      .prepare(
        `UPDATE messages SET state = 'deadletter', lock_token = NULL, locked_until = NULL, dl_reason = ?, dl_description = ?, dl_at = ? WHERE seq = ?`,
      )
      .run(reason, description, now, seq);
  }

  private settle(lockToken: string, op: string, fn: (row: Row, now: number) => void): void {
    this.assertOpen();
    const now = this.clock.now();
    const settled = this.db
      .transaction(() => {
        const row = this.db
          .prepare(`SELECT * FROM messages WHERE lock_token = ? AND state = 'active'`)
          .get(lockToken) as Row | undefined;
        if (!row || (row.locked_until ?? 0) <= now) {
          this.sweep(now);
          return false;
        }
        fn(row, now);
        return true;
      })
      .immediate();
    if (!settled)
      throw new PipelineError(
        'QUEUE.LOCK_LOST',
        `${op}: the lock has expired or the message was already settled (lock token ${String(lockToken).slice(0, 8)}...)`,
      );
  }

  private assertOpen(): void {
    if (this.closed) throw new PipelineError('QUEUE.CLOSED', 'the local queue is closed');
  }

  private assertQueue(queue: string): void {
    if (!isValidQueueName(queue))
      throw new PipelineError(
        'QUEUE.INVALID_ARGUMENT',
        `invalid queue name ${JSON.stringify(queue.slice(0, 80))}`,
      );
    if (this.known && !this.known.has(queue))
      throw new PipelineError(
        'QUEUE.NOT_FOUND',
        `queue ${queue} does not exist (known: ${[...this.known].join(', ')})`,
      );
  }
}

function checkId(name: string, v: unknown): void {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID_LENGTH) {
    throw new PipelineError(
      'QUEUE.INVALID_MESSAGE',
      `${name} must be a non-empty string of at most ${MAX_ID_LENGTH} characters`,
    );
  }
}

function maxDeliveryDescription(count: number, lastError: string | undefined): string {
  return lastError ? lastError : `delivered ${count} times without being completed`;
}

function toMessage(row: Row): ReceivedMessage {
  const m: ReceivedMessage = {
    body:
      row.body_bytes !== null
        ? Buffer.from(row.body_bytes)
        : row.body_json === null
          ? null
          : JSON.parse(row.body_json),
    messageId: row.message_id,
    deliveryCount: row.delivery_count,
    enqueuedTimeUtc: new Date(row.enqueued_at),
    sequenceNumber: row.seq,
    lockToken: row.lock_token ?? '',
    lockedUntilUtc: new Date(row.locked_until ?? 0),
    applicationProperties: JSON.parse(row.app_props) as Record<string, unknown>,
  };
  if (row.session_id !== null) m.sessionId = row.session_id;
  if (row.content_type !== null) m.contentType = row.content_type;
  if (row.subject !== null) m.subject = row.subject;
  if (row.correlation_id !== null) m.correlationId = row.correlation_id;
  if (row.visible_at !== row.enqueued_at) m.scheduledEnqueueTimeUtc = new Date(row.visible_at);
  return m;
}
