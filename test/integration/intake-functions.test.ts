/**
 * The registered trigger functions (githubWebhook, deliveries, deployQueueTrigger) as the host calls
 * them, configured through settings only, against Azurite + fake GitHub + the local queue; and a fuzz
 * run of hostile requests.
 */
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { registeredFunctions } from '../../local/functions-core';
import { example, pushTo, sign } from '../support/github-events';
// registration happens at import; the intake reads its settings lazily, on the first request
import '../../functions/githubWebhook';
import '../../functions/deliveries';
import '../../functions/deployQueueTrigger';
import '../../functions/orchestrators/coverageWait';
import { resetDefaultIntake } from '../../functions/activities/intake';
import { deliveryId, QUEUE, SECRET, Services, signedRequest, startServices } from '../support/intake-rig';

let svc: Services;
type Handler = (req: unknown, ctx: InvocationContext) => Promise<HttpResponseInit | void>;
const fns: Record<string, Handler> = {};
const saved = { ...process.env };

beforeAll(async () => {
  svc = await startServices();
  Object.assign(process.env, {
    PIPELINE_RUNTIME: 'local',
    BACKUP_STORAGE_CONNECTION: svc.azurite.connectionString,
    LEDGER_CONTAINER: 'intake-fns',
    GITHUB_WEBHOOK_SECRET: SECRET,
    GITHUB_REPOSITORY: 'Codertocat/Hello-World',
    GITHUB_TOKEN: svc.token,
    GITHUB_API_URL: svc.github.url,
    GITHUB_DEFAULT_BRANCH: 'master',
    GITHUB_TRIGGER_EVENT: 'push',
    DEPLOY_QUEUE_NAME: QUEUE,
    LOCAL_SERVICEBUS_URL: svc.queueUrl,
    REGISTRY_URL: 'http://registry.local:5000',
    LOG_LEVEL: 'error',
  });
  for (const f of registeredFunctions()) fns[f.metadata.name] = f.handler as Handler;
}, 90000);
afterAll(async () => {
  await resetDefaultIntake();
  process.env = saved;
  await svc?.stop();
});

const ctx = (name = 'githubWebhook') =>
  new InvocationContext({ functionName: name, logHandler: () => undefined });

describe('registrations', () => {
  it('registers the triggers with the bindings the host needs', () => {
    const meta = Object.fromEntries(registeredFunctions().map((f) => [f.metadata.name, f.metadata]));
    const trig = (name: string) => Object.values(meta[name].bindings).find((b) => /Trigger$/.test(b.type))!;
    expect(trig('githubWebhook')).toMatchObject({
      type: 'httpTrigger',
      authLevel: 'anonymous',
      route: 'github/webhook',
      methods: ['POST'],
    });
    expect(trig('deliveries')).toMatchObject({
      type: 'httpTrigger',
      authLevel: 'function',
      route: 'deliveries',
      methods: ['GET'],
    });
    expect(trig('deployQueueTrigger')).toMatchObject({
      type: 'serviceBusTrigger',
      queueName: '%DEPLOY_QUEUE_NAME%',
      connection: 'ServiceBusConnection',
      isSessionsEnabled: true,
    });
    expect(Object.values(meta.deployQueueTrigger.bindings).some((b) => b.type === 'durableClient')).toBe(
      true,
    );
    expect(Object.keys(meta)).toEqual(
      expect.arrayContaining(['deployLane', 'coverageWait', 'intakeGateTimeout', 'intakeRecordLaneEvent']),
    );
  });
});

describe('githubWebhook + deliveries from settings', () => {
  it('accepts a merge and lists the decision; the image reference uses REGISTRY_URL', async () => {
    const sha = '3'.repeat(40);
    svc.github.setCoverage(sha, '90.0%');
    svc.github.setVersion(sha, '3.1.0');
    const res = (await fns.githubWebhook(signedRequest('push', pushTo(sha)), ctx())) as HttpResponseInit;
    expect(res.status).toBe(202);
    const msg = svc.queue.peek(QUEUE).find((m) => (m.body as { sha: string }).sha === sha);
    expect(msg?.body).toMatchObject({
      imageRef: 'registry.local:5000/odoo-mta:uat-v3.1.0',
      version: '3.1.0',
    });
    const list = (await fns.deliveries(
      new HttpRequest({ method: 'GET', url: 'http://127.0.0.1/api/deliveries?limit=1' }),
      ctx('deliveries'),
    )) as HttpResponseInit;
    expect(list.status).toBe(200);
    expect(list.jsonBody).toMatchObject({
      count: 1,
      items: [{ decision: 'accepted', sha, version: '3.1.0' }],
    });
  });

  it.each(['0', '-1', 'abc', '501', '1.5'])('deliveries?limit=%s → 400', async (limit) => {
    const res = (await fns.deliveries(
      new HttpRequest({ method: 'GET', url: `http://127.0.0.1/api/deliveries?limit=${limit}` }),
      ctx('deliveries'),
    )) as HttpResponseInit;
    expect(res.status).toBe(400);
  });

  it('deployQueueTrigger refuses a malformed message with a clear code (Service Bus dead-letters it)', async () => {
    for (const m of [
      'not json',
      42,
      { environment: 'uat' },
      { environment: 'UAT!', sha: 'a'.repeat(40), version: '1' },
      { environment: 'uat', sha: 'short', version: '1' },
      { environment: 'uat', sha: 'a'.repeat(40) },
      Buffer.from('{'),
    ]) {
      await expect(fns.deployQueueTrigger(m, ctx('deployQueueTrigger'))).rejects.toThrow(/QUEUE.BAD_MESSAGE/);
    }
  });

  it('a bad setting gives 503 naming nothing secret, not a crash', async () => {
    await resetDefaultIntake();
    const old = process.env.GITHUB_API_URL;
    process.env.GITHUB_API_URL = 'not a url';
    try {
      const res = (await fns.githubWebhook(
        signedRequest('ping', example('ping')),
        ctx(),
      )) as HttpResponseInit;
      expect(res.status).toBe(503);
      expect(JSON.stringify(res.jsonBody)).not.toContain(SECRET);
    } finally {
      process.env.GITHUB_API_URL = old;
      await resetDefaultIntake();
    }
  });
});

// --- fuzz --------------------------------------------------------------------------------------

/** mulberry32: a seeded PRNG so a failing case can be replayed (the seed is in the test name). */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = 20261127;
const TOTAL = 5000;

function hostileRequests(rnd: () => number): Array<() => HttpRequest> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const int = (n: number) => Math.floor(rnd() * n);
  const ascii = (n: number) => Array.from({ length: n }, () => String.fromCharCode(0x20 + int(95))).join('');
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const events = [
    'push',
    'ping',
    'status',
    'check_run',
    'workflow_run',
    'issues',
    '',
    'PUSH',
    'push\t',
    '../push',
    'a'.repeat(100),
  ];
  const bodies: Array<() => Buffer> = [
    () => bytes(int(2048)),
    () => Buffer.from(JSON.stringify(pushTo('4'.repeat(40), 'feature')).slice(0, int(4000))), // truncated
    () => Buffer.from('['.repeat(50000 + int(50000)) + ']'.repeat(int(10))), // deep, unbalanced
    () => Buffer.from('{"a":'.repeat(20000) + '1' + '}'.repeat(20000)), // deep, valid
    () =>
      Buffer.from(
        JSON.stringify({
          ...pushTo('5'.repeat(40), 'master'),
          after: pick([null, 5, {}, [], 'zz', '0'.repeat(40)]),
        }),
      ),
    () =>
      Buffer.from(
        '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}},"repository":{"full_name":"Codertocat/Hello-World"}}',
      ),
    () => Buffer.from(JSON.stringify(pushTo('6'.repeat(40), 'master')), 'utf16le'), // wrong encoding
    () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"zen":"bom"}')]),
    () => Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]), // invalid UTF-8
    () => Buffer.from('1e999999'),
    () =>
      Buffer.from(
        JSON.stringify({
          repository: { full_name: 'Codertocat/Hello-World' },
          ref: 'refs/heads/master',
          after: 'g'.repeat(40),
          workflow_run: 'x',
          check_run: [1],
          sha: {},
        }),
      ),
    () => Buffer.alloc(0),
  ];
  const out: Array<() => HttpRequest> = [];
  for (let i = 0; i < TOTAL; i++) {
    const kind = int(10);
    out.push(() => {
      const body = pick(bodies)();
      const h: Record<string, string> = {};
      // random extra headers (valid HTTP tokens, random values)
      for (let k = int(6); k > 0; k--)
        h[`x-${ascii(1 + int(10)).replace(/[^a-z0-9-]/gi, 'q')}`] = ascii(int(200));
      h['content-type'] = pick([
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
        'application/x-www-form-urlencoded',
        '',
        'application/json\t;;;',
        ascii(20),
      ]);
      if (rnd() < 0.8) h['x-github-event'] = pick(events);
      if (rnd() < 0.8)
        h['x-github-delivery'] = pick([
          `fz-${i}-${int(1e9)}`,
          '',
          ascii(50),
          'x'.repeat(200),
          '../../x',
          `fz-${i}`,
        ]);
      switch (kind) {
        case 0:
        case 1:
        case 2: // correctly signed hostile content
          h['x-hub-signature-256'] = sign(SECRET, body);
          break;
        case 3:
          h['x-hub-signature-256'] = sign('not-the-secret-000000', body);
          break;
        case 4:
          h['x-hub-signature-256'] = pick([
            '',
            'sha256=',
            'sha256=' + 'f'.repeat(63),
            'sha1=abc',
            ascii(80),
            'sha256=' + 'Z'.repeat(64),
            sign(SECRET, body).toUpperCase(),
          ]);
          break;
        case 5:
          h['content-length'] = pick([String(26 * 1024 * 1024), '-1', 'abc', '99999999999999999999']);
          h['x-hub-signature-256'] = sign(SECRET, body);
          break;
        case 6: // signature of a truncated body
          h['x-hub-signature-256'] = sign(SECRET, body.subarray(0, Math.max(0, body.length - 1 - int(10))));
          break;
        default:
          break;
      }
      return new HttpRequest({
        method: 'POST',
        url: 'http://127.0.0.1/api/github/webhook',
        headers: h,
        body: body.length ? { bytes: body } : undefined,
      });
    });
  }
  return out;
}

describe('fuzz', () => {
  it(`${TOTAL} hostile requests (seed ${SEED}): no 5xx, nothing queued, still healthy`, async () => {
    const sendsBefore = svc.sends.length;
    const statuses = new Map<number, number>();
    const makers = hostileRequests(prng(SEED));
    const failures: string[] = [];
    // 8 at a time, like a burst of deliveries
    for (let i = 0; i < makers.length; i += 8) {
      const batch = makers.slice(i, i + 8).map(async (make, j) => {
        let res: HttpResponseInit;
        try {
          res = (await fns.githubWebhook(make(), ctx())) as HttpResponseInit;
        } catch (err) {
          failures.push(`#${i + j} threw ${(err as Error).message}`);
          return;
        }
        const s = res.status ?? 200;
        statuses.set(s, (statuses.get(s) ?? 0) + 1);
        if (s >= 500) failures.push(`#${i + j} answered ${s}: ${JSON.stringify(res.jsonBody)}`);
      });
      await Promise.all(batch);
    }
    expect(failures).toEqual([]);
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(TOTAL);
    // every rejection path was exercised
    expect([...statuses.keys()].sort()).toEqual(expect.arrayContaining([200, 400, 401, 413, 415]));
    expect(svc.sends.length).toBe(sendsBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // still healthy: a genuine delivery is handled normally
    const ok = (await fns.githubWebhook(
      signedRequest('ping', example('ping'), { id: deliveryId() }),
      ctx(),
    )) as HttpResponseInit;
    expect(ok.status).toBe(200);
  });
});
