/**
 * The embedded host's queue (local/queue.ts) on a real SQLite file with a controllable clock:
 * duplicate detection, sessions, scheduled messages, peek-lock, poison messages, dispatch.
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalQueue, LocalQueueOptions, ReceivedMessage } from '../../local/queue';
import { createLogger } from '../../shared/log';
import { errorCode } from '../../shared/domain/errors';

const Q = 'deploy-requests';
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);

class Clock {
  t = T0;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

let dir: string;
const open: LocalQueue[] = [];
function makeQueue(opts: Partial<LocalQueueOptions> = {}, file = 'q.db'): LocalQueue {
  const q = new LocalQueue({ dbPath: path.join(dir, file), pollIntervalMs: 10, ...opts });
  open.push(q);
  return q;
}

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return errorCode(err);
  }
  return undefined;
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'queue-unit-'));
});

afterEach(() => {
  for (const q of open.splice(0)) q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('duplicate detection', () => {
  test('a second message with the same id inside the window is dropped', () => {
    const clock = new Clock();
    const q = makeQueue({ clock });
    const first = q.send(Q, { body: { v: 1 }, messageId: 'deliv-1', sessionId: 'uat' });
    clock.advance(9 * 60_000);
    const again = q.send(Q, { body: { v: 2 }, messageId: 'deliv-1', sessionId: 'uat' });
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ duplicate: true, sequenceNumber: first.sequenceNumber });
    expect(q.counts(Q).active).toBe(1);
    expect(q.receive(Q)?.body).toEqual({ v: 1 });
  });

  test('the same id is a duplicate after the queue is restarted on the same file, and after completion', () => {
    const clock = new Clock();
    const q1 = makeQueue({ clock, fsync: true });
    q1.send(Q, { body: 'a', messageId: 'k1' });
    q1.close();
    const q2 = makeQueue({ clock });
    expect(q2.send(Q, { body: 'b', messageId: 'k1' }).duplicate).toBe(true);
    const m = q2.receive(Q)!;
    q2.complete(m.lockToken);
    expect(q2.send(Q, { body: 'c', messageId: 'k1' }).duplicate).toBe(true);
    expect(q2.counts(Q)).toEqual({ active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
  });

  test('after the window the id is accepted again; other queues have their own window', () => {
    const clock = new Clock();
    const q = makeQueue({ clock, duplicateDetectionWindowMs: 60_000 });
    q.send(Q, { body: 1, messageId: 'x' });
    expect(q.send('other', { body: 1, messageId: 'x' }).duplicate).toBe(false);
    clock.advance(60_000);
    expect(q.send(Q, { body: 2, messageId: 'x' }).duplicate).toBe(false);
    expect(q.counts(Q).active).toBe(2);
  });

  test('a window of 0 disables detection; a message without id gets a generated one', () => {
    const q = makeQueue({ duplicateDetectionWindowMs: 0 });
    q.send(Q, { body: 1, messageId: 'same' });
    expect(q.send(Q, { body: 2, messageId: 'same' }).duplicate).toBe(false);
    q.send(Q, { body: 3 });
    const ids = q.peek(Q).map((m) => m.messageId);
    expect(ids).toHaveLength(3);
    expect(ids[2]).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('sessions', () => {
  test('FIFO per session, one message in flight per session, different sessions interleave', () => {
    const q = makeQueue();
    for (const [id, s] of [
      ['u1', 'uat'],
      ['p1', 'prod'],
      ['u2', 'uat'],
      ['p2', 'prod'],
      ['u3', 'uat'],
      ['n1', undefined],
    ] as const) {
      q.send(Q, { body: id, messageId: id, sessionId: s });
    }
    const a = q.receive(Q)!;
    const b = q.receive(Q)!;
    const c = q.receive(Q)!;
    expect([a.messageId, b.messageId, c.messageId]).toEqual(['u1', 'p1', 'n1']);
    expect(q.receive(Q)).toBeUndefined(); // both sessions busy
    expect(q.receive(Q, { sessionId: 'uat' })).toBeUndefined();
    q.complete(b.lockToken);
    expect(q.receive(Q, { sessionId: 'uat' })).toBeUndefined();
    const p2 = q.receive(Q)!;
    expect(p2.messageId).toBe('p2');
    q.complete(a.lockToken);
    expect(q.receive(Q, { sessionId: 'uat' })!.messageId).toBe('u2');
  });

  test('an abandoned session message is redelivered before the later ones of its session', () => {
    const q = makeQueue();
    q.send(Q, { body: 1, messageId: 'u1', sessionId: 'uat' });
    q.send(Q, { body: 2, messageId: 'u2', sessionId: 'uat' });
    const m = q.receive(Q)!;
    q.abandon(m.lockToken, 'try later');
    const again = q.receive(Q)!;
    expect(again.messageId).toBe('u1');
    expect(again.deliveryCount).toBe(2);
  });

  test('subscribe: sessions run in parallel, each session strictly in order and never two at once', async () => {
    const q = makeQueue();
    const sessions = ['uat', 'prod', 'odoosh'];
    for (let i = 0; i < 12; i++) q.send(Q, { body: i, messageId: `m${i}`, sessionId: sessions[i % 3] });
    const order = new Map<string, number[]>();
    const inFlight = new Map<string, number>();
    let maxSameSession = 0;
    let maxSessionsAtOnce = 0;
    let handled = 0;
    let releaseFirst!: () => void;
    const firstBarrier = new Promise<void>((r) => (releaseFirst = r));
    const sub = q.subscribe(
      Q,
      async (msg) => {
        const s = msg.sessionId!;
        inFlight.set(s, (inFlight.get(s) ?? 0) + 1);
        maxSameSession = Math.max(maxSameSession, inFlight.get(s)!);
        maxSessionsAtOnce = Math.max(maxSessionsAtOnce, [...inFlight.values()].filter((n) => n > 0).length);
        order.set(s, [...(order.get(s) ?? []), msg.body as number]);
        // the first message of every session waits until all three sessions are in flight together
        if (maxSessionsAtOnce === 3) releaseFirst();
        if ((msg.body as number) < 3) await firstBarrier;
        await new Promise((r) => setTimeout(r, 1));
        inFlight.set(s, inFlight.get(s)! - 1);
        handled++;
      },
      { sessions: true, concurrency: 8 },
    );
    await until(() => handled === 12, 'all 12 messages');
    await sub.close();
    expect(maxSameSession).toBe(1);
    expect(maxSessionsAtOnce).toBe(3);
    expect(order.get('uat')).toEqual([0, 3, 6, 9]);
    expect(order.get('prod')).toEqual([1, 4, 7, 10]);
    expect(order.get('odoosh')).toEqual([2, 5, 8, 11]);
    expect(q.counts(Q)).toEqual({ active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
  });

  test('a message without session id on a session trigger is dead-lettered, not lost', async () => {
    const q = makeQueue();
    q.send(Q, { body: 'no session', messageId: 'ns' });
    const calls: string[] = [];
    const sub = q.subscribe(Q, async (m) => void calls.push(m.messageId), { sessions: true });
    await until(() => q.counts(Q).deadLetter === 1, 'dead-letter');
    await sub.close();
    expect(calls).toEqual([]);
    expect(q.deadLetters(Q)[0]).toMatchObject({
      messageId: 'ns',
      body: 'no session',
      deadLetterReason: 'SessionIdMissing',
    });
  });
});

describe('scheduled messages', () => {
  test('a message is invisible until its scheduled enqueue time', () => {
    const clock = new Clock();
    const q = makeQueue({ clock });
    const at = new Date(T0 + 5 * 60_000);
    q.send(Q, { body: 'later', messageId: 's1', scheduledEnqueueTimeUtc: at });
    expect(q.receive(Q)).toBeUndefined();
    expect(q.counts(Q)).toMatchObject({ active: 0, scheduled: 1 });
    expect(q.peek(Q)[0]).toMatchObject({ messageId: 's1', state: 'scheduled' });
    clock.advance(5 * 60_000 - 1);
    expect(q.receive(Q)).toBeUndefined();
    clock.advance(1);
    const m = q.receive(Q)!;
    expect(m).toMatchObject({ messageId: 's1', body: 'later', deliveryCount: 1 });
    expect(m.scheduledEnqueueTimeUtc).toEqual(at);
  });

  test('a scheduled message does not block later messages of its session; a past time is due now', () => {
    const clock = new Clock();
    const q = makeQueue({ clock });
    q.send(Q, {
      body: 1,
      messageId: 'late',
      sessionId: 'uat',
      scheduledEnqueueTimeUtc: new Date(T0 + 60_000),
    });
    q.send(Q, {
      body: 2,
      messageId: 'now',
      sessionId: 'uat',
      scheduledEnqueueTimeUtc: new Date(T0 - 60_000),
    });
    expect(q.receive(Q)!.messageId).toBe('now');
  });

  test('a scheduled message that becomes due while its session is busy waits for the session', () => {
    const clock = new Clock();
    const q = makeQueue({ clock });
    q.send(Q, {
      body: 1,
      messageId: 'late',
      sessionId: 'uat',
      scheduledEnqueueTimeUtc: new Date(T0 + 10_000),
    });
    q.send(Q, { body: 2, messageId: 'now', sessionId: 'uat' });
    const busy = q.receive(Q)!;
    expect(busy.messageId).toBe('now');
    clock.advance(10_000);
    expect(q.receive(Q)).toBeUndefined();
    q.complete(busy.lockToken);
    expect(q.receive(Q)!.messageId).toBe('late');
  });
});

describe('peek-lock', () => {
  test('an unacknowledged message is redelivered after its lock expires, with deliveryCount + 1', () => {
    const clock = new Clock();
    const q = makeQueue({ clock, lockDurationMs: 30_000 });
    q.send(Q, {
      body: { env: 'uat' },
      messageId: 'd1',
      sessionId: 'uat',
      contentType: 'application/json',
      applicationProperties: { kind: 'deploy', n: 3, ok: true },
    });
    const first = q.receive(Q)!;
    expect(first).toMatchObject({
      messageId: 'd1',
      sessionId: 'uat',
      deliveryCount: 1,
      contentType: 'application/json',
      applicationProperties: { kind: 'deploy', n: 3, ok: true },
    });
    expect(first.lockedUntilUtc.getTime()).toBe(T0 + 30_000);
    expect(first.enqueuedTimeUtc.getTime()).toBe(T0);
    expect(q.counts(Q)).toMatchObject({ active: 0, locked: 1 });
    clock.advance(29_999);
    expect(q.receive(Q)).toBeUndefined();
    clock.advance(1);
    const second = q.receive(Q)!;
    expect(second).toMatchObject({ messageId: 'd1', deliveryCount: 2 });
    expect(second.lockToken).not.toBe(first.lockToken);
    expect(thrownCode(() => q.complete(first.lockToken))).toBe('QUEUE.LOCK_LOST');
    q.complete(second.lockToken);
    expect(q.counts(Q)).toEqual({ active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
  });

  test('renewLock extends the lock; settling twice or after expiry is LOCK_LOST', () => {
    const clock = new Clock();
    const q = makeQueue({ clock, lockDurationMs: 10_000 });
    q.send(Q, { body: 1, messageId: 'r1' });
    const m = q.receive(Q)!;
    clock.advance(8_000);
    expect(q.renewLock(m.lockToken).getTime()).toBe(T0 + 18_000);
    clock.advance(8_000);
    expect(q.receive(Q)).toBeUndefined(); // still locked thanks to the renewal
    clock.advance(2_000);
    expect(thrownCode(() => q.renewLock(m.lockToken))).toBe('QUEUE.LOCK_LOST');
    const again = q.receive(Q)!;
    q.complete(again.lockToken);
    expect(thrownCode(() => q.complete(again.lockToken))).toBe('QUEUE.LOCK_LOST');
    expect(thrownCode(() => q.abandon('no-such-token'))).toBe('QUEUE.LOCK_LOST');
  });

  test('abandon makes the message available immediately; deadLetter keeps it with the reason', () => {
    const q = makeQueue();
    q.send(Q, { body: 'x', messageId: 'a1' });
    q.send(Q, { body: 'y', messageId: 'a2' });
    const m = q.receive(Q)!;
    q.abandon(m.lockToken);
    const again = q.receive(Q)!;
    expect(again).toMatchObject({ messageId: 'a1', deliveryCount: 2 });
    q.deadLetter(again.lockToken, 'BadRequest', 'version 1.2 does not exist');
    expect(q.deadLetters(Q)).toEqual([
      expect.objectContaining({
        messageId: 'a1',
        body: 'x',
        deliveryCount: 2,
        deadLetterReason: 'BadRequest',
        deadLetterErrorDescription: 'version 1.2 does not exist',
      }),
    ]);
    expect(q.counts(Q)).toEqual({ active: 1, scheduled: 0, locked: 0, deadLetter: 1 });
    expect(thrownCode(() => q.deadLetter(q.receive(Q)!.lockToken, ''))).toBe('QUEUE.INVALID_ARGUMENT');
  });
});

describe('locks of a process that is gone', () => {
  /** a pid that surely belongs to no running process: a child that has exited */
  function deadPid(): number {
    const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    return Number(r.stdout);
  }
  function setOwner(file: string, pid: number): void {
    const raw = new Database(path.join(dir, file));
    raw.prepare('UPDATE owner SET pid = ? WHERE id = 1').run(pid);
    raw.close();
  }

  test('reopening after the owner died releases its locks at once, keeping the delivery count', () => {
    const clock = new Clock();
    const q1 = makeQueue({ clock, lockDurationMs: 60_000 }, 'orphan.db');
    q1.send(Q, { body: 1, messageId: 'o1', sessionId: 'uat' });
    q1.send(Q, { body: 2, messageId: 'o2' });
    expect(q1.receive(Q)?.messageId).toBe('o1');
    expect(q1.receive(Q)?.messageId).toBe('o2');
    q1.close();
    setOwner('orphan.db', deadPid()); // as if the process holding the locks was killed
    const q2 = makeQueue({ clock, lockDurationMs: 60_000 }, 'orphan.db');
    expect(q2.counts(Q)).toMatchObject({ active: 2, locked: 0 });
    const again = q2.receive(Q)!;
    expect(again).toMatchObject({ messageId: 'o1', deliveryCount: 2 });
  });

  test('locks of a live process (or of this one) are kept until they expire', () => {
    const clock = new Clock();
    const q1 = makeQueue({ clock, lockDurationMs: 60_000 }, 'live.db');
    q1.send(Q, { body: 1, messageId: 'l1' });
    expect(q1.receive(Q)?.messageId).toBe('l1');
    q1.close();
    const q2 = makeQueue({ clock, lockDurationMs: 60_000 }, 'live.db'); // same process: its locks may still be settled
    expect(q2.counts(Q)).toMatchObject({ active: 0, locked: 1 });
    q2.close();
    setOwner('live.db', process.ppid); // another process that is alive
    const q3 = makeQueue({ clock, lockDurationMs: 60_000 }, 'live.db');
    expect(q3.counts(Q)).toMatchObject({ active: 0, locked: 1 });
    clock.advance(60_000);
    expect(q3.receive(Q)).toMatchObject({ messageId: 'l1', deliveryCount: 2 });
  });
});

describe('poison messages', () => {
  test('a handler that always fails: dead-lettered after maxDeliveryCount with the last error', async () => {
    const q = makeQueue({ maxDeliveryCount: 4 });
    q.send(Q, { body: { version: '9.9.9' }, messageId: 'poison', sessionId: 'uat' });
    q.send(Q, { body: { version: '1.0.0' }, messageId: 'fine', sessionId: 'uat' });
    const calls: Array<[string, number]> = [];
    const sub = q.subscribe(
      Q,
      async (m) => {
        calls.push([m.messageId, m.deliveryCount]);
        if (m.messageId === 'poison')
          throw new Error(`[DEPLOY.BAD_VERSION] attempt ${m.deliveryCount} failed`);
      },
      { sessions: true },
    );
    await until(() => calls.some(([id]) => id === 'fine'), 'the next message of the session');
    await sub.close();
    expect(calls).toEqual([
      ['poison', 1],
      ['poison', 2],
      ['poison', 3],
      ['poison', 4],
      ['fine', 1],
    ]);
    const [dl] = q.deadLetters(Q);
    expect(dl).toMatchObject({
      messageId: 'poison',
      deliveryCount: 4,
      deadLetterReason: 'MaxDeliveryCountExceeded',
      deadLetterErrorDescription: '[DEPLOY.BAD_VERSION] attempt 4 failed',
    });
    expect(q.counts(Q)).toEqual({ active: 0, scheduled: 0, locked: 0, deadLetter: 1 });
  });

  test('a message whose lock keeps expiring (crashing host) is dead-lettered too', () => {
    const clock = new Clock();
    const q = makeQueue({ clock, maxDeliveryCount: 2, lockDurationMs: 1000 });
    q.send(Q, { body: 1, messageId: 'crashy' });
    const m1 = q.receive(Q)!;
    q.abandon(m1.lockToken, 'first failure');
    q.receive(Q);
    clock.advance(1000);
    expect(q.receive(Q)).toBeUndefined();
    expect(q.deadLetters(Q)[0]).toMatchObject({
      messageId: 'crashy',
      deliveryCount: 2,
      deadLetterReason: 'MaxDeliveryCountExceeded',
      deadLetterErrorDescription: 'first failure',
    });
  });

  test('default is 10 deliveries', () => {
    const q = makeQueue();
    q.send(Q, { body: 1, messageId: 'p' });
    let n = 0;
    for (let m = q.receive(Q); m && n < 50; m = q.receive(Q)) {
      n++;
      q.abandon(m.lockToken);
    }
    expect(n).toBe(10);
    expect(q.deadLetters(Q)[0].deadLetterErrorDescription).toBe('delivered 10 times without being completed');
  });
});

describe('dispatch', () => {
  test('completes on success, a synchronous throw counts as failure, close waits for handlers', async () => {
    const lines: string[] = [];
    const q = makeQueue({ log: createLogger({ level: 'debug', sink: (l) => lines.push(l) }) });
    const seen: ReceivedMessage[] = [];
    let fail = true;
    const sub = q.subscribe(
      Q,
      ((m: ReceivedMessage) => {
        seen.push(m);
        if (fail) {
          fail = false;
          throw new Error('sync failure');
        }
        return new Promise<void>((r) => setTimeout(r, 5));
      }) as (m: ReceivedMessage) => Promise<void>,
      { concurrency: 2 },
    );
    q.send(Q, { body: { a: 1 }, messageId: 'one' });
    await until(() => seen.length === 2, 'redelivery');
    await sub.close();
    expect(seen.map((m) => [m.messageId, m.deliveryCount])).toEqual([
      ['one', 1],
      ['one', 2],
    ]);
    expect(q.counts(Q)).toEqual({ active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
    expect(lines.some((l) => l.includes('handler failed') && l.includes('sync failure'))).toBe(true);
    // bodies never reach the log
    expect(lines.join('\n')).not.toContain('"a":1');
  });

  test('a message sent by another process (another connection to the file) is picked up by polling', async () => {
    const q = makeQueue();
    const other = makeQueue();
    const got: string[] = [];
    const sub = q.subscribe(Q, async (m) => void got.push(m.messageId));
    other.send(Q, { body: 1, messageId: 'from-cli' });
    await until(() => got.length === 1, 'polled message');
    await sub.close();
    expect(got).toEqual(['from-cli']);
  });

  test('two connections never hold the same message', () => {
    const a = makeQueue();
    const b = makeQueue();
    a.send(Q, { body: 1, messageId: 'one' });
    const m = a.receive(Q)!;
    expect(b.receive(Q)).toBeUndefined();
    b.abandon(m.lockToken); // a lock token is valid on any connection
    expect(b.receive(Q)!.messageId).toBe('one');
  });

  test('the lock is renewed while a long handler runs', async () => {
    const clock = new Clock();
    const q = makeQueue({ clock, lockDurationMs: 200 });
    q.send(Q, { body: 1, messageId: 'slow' });
    const renew = jest.spyOn(q, 'renewLock');
    const deliveries: number[] = [];
    let stateAfterOriginalExpiry = '';
    const sub = q.subscribe(Q, async (m) => {
      deliveries.push(m.deliveryCount);
      expect(m.lockedUntilUtc.getTime()).toBe(T0 + 200);
      clock.advance(150);
      const before = renew.mock.results.length;
      // wait (no deadline but the test's) until the dispatcher has renewed the lock
      await until(() => renew.mock.results.slice(before).some((r) => r.type === 'return'), 'a lock renewal');
      clock.advance(150); // T0 + 300: past the original lock, inside the renewed one (T0 + 350)
      stateAfterOriginalExpiry = q.peek(Q)[0].state;
    });
    await until(() => deliveries.length > 0 && q.counts(Q).locked === 0, 'handled');
    await sub.close();
    expect(stateAfterOriginalExpiry).toBe('locked');
    expect(deliveries).toEqual([1]);
    expect(q.counts(Q)).toEqual({ active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
  });

  test('closing the queue stops subscriptions; the in-flight message comes back after its lock expires', async () => {
    const clock = new Clock();
    const q = makeQueue({ clock });
    q.send(Q, { body: 1, messageId: 'inflight' });
    let release!: () => void;
    const started = new Promise<void>((r) => (release = r));
    let finish!: () => void;
    const sub = q.subscribe(Q, async () => {
      release();
      await new Promise<void>((r) => (finish = r));
    });
    await started;
    q.close();
    finish();
    await sub.close();
    expect(thrownCode(() => q.send(Q, { body: 1 }))).toBe('QUEUE.CLOSED');
    clock.advance(60_000);
    const q2 = makeQueue({ clock });
    expect(q2.receive(Q)).toMatchObject({ messageId: 'inflight', deliveryCount: 2 });
  });
});

describe('bad input is refused with a clear error and nothing is enqueued', () => {
  test.each([
    ['an invalid queue name', 'bad name!', { body: 1 }, 'QUEUE.INVALID_ARGUMENT'],
    ['a message id over 128 characters', Q, { body: 1, messageId: 'x'.repeat(129) }, 'QUEUE.INVALID_MESSAGE'],
    ['an empty session id', Q, { body: 1, sessionId: '' }, 'QUEUE.INVALID_MESSAGE'],
    ['an undefined body', Q, { body: undefined }, 'QUEUE.INVALID_MESSAGE'],
    ['a body that is not JSON-serializable', Q, { body: { n: BigInt(1) } }, 'QUEUE.INVALID_MESSAGE'],
    [
      'an invalid scheduled date',
      Q,
      { body: 1, scheduledEnqueueTimeUtc: new Date('nope') },
      'QUEUE.INVALID_MESSAGE',
    ],
    [
      'an object application property',
      Q,
      { body: 1, applicationProperties: { x: { y: 1 } as unknown as string } },
      'QUEUE.INVALID_MESSAGE',
    ],
  ])('%s', (_what, queue, msg, code) => {
    const q = makeQueue();
    expect(thrownCode(() => q.send(queue, msg))).toBe(code);
    expect(q.counts(Q)).toEqual({ active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
  });

  test('with knownQueues, a send to another queue is QUEUE.NOT_FOUND', () => {
    const q = makeQueue({ knownQueues: [Q] });
    expect(thrownCode(() => q.send('deploy-request', { body: 1 }))).toBe('QUEUE.NOT_FOUND');
    expect(q.send(Q, { body: 1 }).duplicate).toBe(false);
  });

  test('invalid options and a file from a newer version are refused', () => {
    expect(thrownCode(() => makeQueue({ lockDurationMs: 0 }))).toBe('QUEUE.INVALID_OPTIONS');
    expect(thrownCode(() => makeQueue({ maxDeliveryCount: 0 }))).toBe('QUEUE.INVALID_OPTIONS');
    expect(thrownCode(() => makeQueue({ duplicateDetectionWindowMs: -1 }))).toBe('QUEUE.INVALID_OPTIONS');
    const q = makeQueue({}, 'future.db');
    q.close();
    const raw = new Database(path.join(dir, 'future.db'));
    raw.pragma('user_version = 99');
    raw.close();
    expect(thrownCode(() => makeQueue({}, 'future.db'))).toBe('QUEUE.SCHEMA');
  });

  test('the file is a SQLite database in WAL mode (readers never block the dispatcher)', () => {
    makeQueue({}, 'wal.db').send(Q, { body: 1 });
    const raw = new Database(path.join(dir, 'wal.db'), { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.prepare('SELECT count(*) AS n FROM messages').get()).toEqual({ n: 1 });
    } finally {
      raw.close();
    }
  });

  test('bytes bodies round-trip as Buffers', () => {
    const q = makeQueue();
    q.send(Q, { body: Buffer.from([0, 1, 2, 255]) });
    expect(q.receive(Q)!.body).toEqual(Buffer.from([0, 1, 2, 255]));
  });
});
