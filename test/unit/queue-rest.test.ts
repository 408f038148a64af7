/**
 * The Service Bus REST "Send Message" protocol of the local queue (`handleRestSend`): what an unmodified
 * HTTP sender posts (body, BrokerProperties JSON header, custom properties as headers) ends up as the
 * message a trigger receives; malformed headers are refused with 400 and a reason, nothing enqueued.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalQueue } from '../../local/queue';
import { parseRestSend } from '../../local/queue-rest';

const Q = 'deploy-requests';
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
let dir: string;
let q: LocalQueue;
const clock = {
  t: T0,
  now() {
    return this.t;
  },
};

beforeEach(() => {
  clock.t = T0;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'queue-rest-'));
  q = new LocalQueue({ dbPath: path.join(dir, 'q.db'), clock });
});
afterEach(() => {
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const empty = { active: 0, scheduled: 0, locked: 0, deadLetter: 0 };

test('a full send: BrokerProperties, custom properties and a JSON body reach the receiver', () => {
  const at = new Date(T0 + 2 * 60_000);
  const out = q.handleRestSend(Q, {
    headers: {
      'content-type': 'application/json; charset=utf-8',
      brokerproperties: JSON.stringify({
        MessageId: 'gh-delivery-1',
        SessionId: 'uat',
        PartitionKey: 'uat',
        ScheduledEnqueueTimeUtc: at.toUTCString(),
        Label: 'deploy',
        CorrelationId: 'corr-1',
        TimeToLive: 90,
        Unknown: 'ignored',
      }),
      priority: '"High"',
      customer: '12345,ABC',
      attempt: '3',
      urgent: 'true',
      authorization: 'SharedAccessSignature sr=x&sig=y',
      'x-functions-key': 'not-a-property',
      'x-ms-retrypolicy': 'NoRetry',
      'user-agent': 'curl/8',
      host: '127.0.0.1',
      'content-length': '40',
    },
    body: Buffer.from(JSON.stringify({ version: '1.4.0', sha: 'abc' })),
  });
  expect(out).toEqual({ status: 201 });
  expect(q.receive(Q)).toBeUndefined(); // scheduled
  clock.t = at.getTime();
  const m = q.receive(Q)!;
  expect(m).toMatchObject({
    body: { version: '1.4.0', sha: 'abc' },
    messageId: 'gh-delivery-1',
    sessionId: 'uat',
    subject: 'deploy',
    correlationId: 'corr-1',
    contentType: 'application/json; charset=utf-8',
    deliveryCount: 1,
    scheduledEnqueueTimeUtc: at,
  });
  expect(m.applicationProperties).toEqual({
    priority: 'High',
    customer: '12345,ABC',
    attempt: 3,
    urgent: true,
  });
});

test('a duplicate REST send answers 201 and enqueues nothing more', () => {
  const req = {
    headers: { brokerproperties: '{"MessageId":"same","SessionId":"uat"}' },
    body: Buffer.from('{"a":1}'),
  };
  expect(q.handleRestSend(Q, req).status).toBe(201);
  expect(q.handleRestSend(Q, req).status).toBe(201);
  expect(q.counts(Q)).toEqual({ ...empty, active: 1 });
});

test('without BrokerProperties: a generated message id; text stays text; octet-stream stays bytes', () => {
  expect(
    q.handleRestSend(Q, { headers: { 'content-type': 'text/plain' }, body: Buffer.from('hello world') })
      .status,
  ).toBe(201);
  expect(
    q.handleRestSend(Q, {
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from('{"x":1}'),
    }).status,
  ).toBe(201);
  expect(q.handleRestSend(Q, { headers: { brokerproperties: '  ' }, body: undefined }).status).toBe(201);
  const a = q.receive(Q)!;
  const b = q.receive(Q)!;
  const c = q.receive(Q)!;
  expect(a.body).toBe('hello world');
  expect(a.messageId).toMatch(/^[0-9a-f-]{36}$/);
  expect(b.body).toEqual(Buffer.from('{"x":1}'));
  expect(c.body).toBe('');
});

describe('malformed requests: 400 (or 403/410) with a reason, nothing enqueued', () => {
  const cases: Array<[string, string, Record<string, string>, number, RegExp]> = [
    [
      'BrokerProperties is not JSON',
      Q,
      { brokerproperties: '{MessageId: abc' },
      400,
      /BrokerProperties header is not valid JSON/,
    ],
    ['BrokerProperties is an array', Q, { brokerproperties: '["a"]' }, 400, /must be a JSON object/],
    [
      'MessageId is a number',
      Q,
      { brokerproperties: '{"MessageId":42}' },
      400,
      /MessageId must be a string \(got number\)/,
    ],
    ['MessageId is empty', Q, { brokerproperties: '{"MessageId":""}' }, 400, /MessageId must not be empty/],
    [
      'SessionId is too long',
      Q,
      { brokerproperties: JSON.stringify({ SessionId: 's'.repeat(129) }) },
      400,
      /SessionId is longer than 128/,
    ],
    [
      'SessionId and PartitionKey differ',
      Q,
      { brokerproperties: '{"SessionId":"uat","PartitionKey":"prod"}' },
      400,
      /must be the same value/,
    ],
    [
      'ScheduledEnqueueTimeUtc is ISO 8601',
      Q,
      { brokerproperties: '{"ScheduledEnqueueTimeUtc":"2026-01-05T09:00:00Z"}' },
      400,
      /RFC 1123 date/,
    ],
    [
      'ScheduledEnqueueTimeUtc is a number',
      Q,
      { brokerproperties: '{"ScheduledEnqueueTimeUtc":1700000000}' },
      400,
      /RFC 1123 date/,
    ],
    ['Label is not a string', Q, { brokerproperties: '{"Label":{"a":1}}' }, 400, /Label must be a string/],
    ['the queue name is invalid', 'bad queue!', {}, 400, /invalid queue name/],
  ];
  test.each(cases)('%s', (_what, queue, headers, status, reason) => {
    const out = q.handleRestSend(queue, {
      headers: { 'content-type': 'application/json', ...headers },
      body: Buffer.from('{"v":1}'),
    });
    expect(out.status).toBe(status);
    expect(out.body).toMatch(/^<Error><Code>\d+<\/Code><Detail>.*<\/Detail><\/Error>$/);
    expect(out.body).toMatch(reason);
    expect(q.counts(Q)).toEqual(empty);
  });

  test('a body over 256 KB is refused with 403 (Service Bus "message too large")', () => {
    const out = q.handleRestSend(Q, { headers: {}, body: Buffer.alloc(256 * 1024 + 1, 'a') });
    expect(out.status).toBe(403);
    expect(out.body).toMatch(/exceeds the maximum message size/);
    expect(q.counts(Q)).toEqual(empty);
  });

  test('an unknown queue (knownQueues) is 410', () => {
    const strict = new LocalQueue({ dbPath: path.join(dir, 'strict.db'), knownQueues: [Q] });
    try {
      const out = strict.handleRestSend('typo-queue', { headers: {}, body: Buffer.from('1') });
      expect(out.status).toBe(410);
      expect(out.body).toMatch(/does not exist/);
    } finally {
      strict.close();
    }
  });

  test('the reason is XML-escaped', () => {
    const out = q.handleRestSend(Q, {
      headers: { brokerproperties: '{"ScheduledEnqueueTimeUtc":"<script>"}' },
      body: Buffer.from('1'),
    });
    expect(out.body).toContain('&lt;script&gt;');
    expect(out.body).not.toContain('<script>');
  });
});

test('header parsing details: arrays joined, a quoted value that is not JSON keeps its text, undefined skipped', () => {
  const r = parseRestSend(Q, {
    headers: { 'x-tag': ['a', 'b'], note: '"unterminated \\"', skip: undefined, big: '1e400', neg: '-2.5' },
    body: Buffer.from('x'),
  });
  expect(r.ok).toBe(true);
  if (r.ok)
    expect(r.message.applicationProperties).toEqual({
      'x-tag': 'a, b',
      note: 'unterminated \\',
      big: '1e400',
      neg: -2.5,
    });
});
