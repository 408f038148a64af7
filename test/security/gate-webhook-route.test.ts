/**
 * The anonymous webhook route as an attacker sees it (issue #15 item 8): it must not read a body in full
 * before refusing it for size, and must not tell an anonymous caller how the pipeline is configured.
 * The real intake on Azurite + the fake GitHub (test/support/intake-rig.ts); the trigger function
 * `githubWebhook` for the configuration error.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { githubWebhook } from '../../functions/githubWebhook';
import { resetDefaultIntake } from '../../functions/activities/intake';
import { MAX_WEBHOOK_BYTES } from '../../shared/domain/webhook';
import { pushTo } from '../support/github-events';
import { ctx, intakeServicesForFile, makeRig, signedRequest } from '../support/intake-rig';

const svc = intakeServicesForFile();

/**
 * A request whose body never ends (a sender that keeps streaming) and which claims a small
 * Content-Length. `arrayBuffer()` reads the whole stream, as the runtime's does.
 */
function endlessRequest(declared: string): { req: HttpRequest; sent: () => number } {
  let sent = 0;
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 }, // nothing is produced until somebody reads
  );
  const headers = new Headers({
    'content-type': 'application/json',
    'content-length': declared,
    'x-github-event': 'push',
    'x-github-delivery': 'endless-1',
    'x-hub-signature-256': 'sha256=' + '0'.repeat(64),
  });
  const req = {
    method: 'POST',
    url: 'http://127.0.0.1/api/github/webhook',
    headers,
    body,
    bodyUsed: false,
    arrayBuffer: async () => new Uint8Array(await new Response(body).arrayBuffer()).buffer,
    text: async () => new Response(body).text(),
  } as unknown as HttpRequest;
  return { req, sent: () => sent };
}

describe('the body is never read in full before the size check', () => {
  it('a sender that declares 100 bytes and keeps streaming is cut off at the cap (413), having sent little more than the cap', async () => {
    const r = makeRig(svc);
    const { req, sent } = endlessRequest('100');
    const res = await Promise.race([
      r.intake.handle(req, ctx()),
      new Promise<'still reading'>((resolve) => setTimeout(() => resolve('still reading'), 15000)),
    ]);
    expect(res).not.toBe('still reading');
    expect(res).toMatchObject({ status: 413, jsonBody: { error: 'WEBHOOK.TOO_LARGE' } });
    expect(sent()).toBeLessThanOrEqual(MAX_WEBHOOK_BYTES + 2 * 64 * 1024);
  }, 30000);

  it('a declared length over the cap is refused before a byte of the body is read', async () => {
    const r = makeRig(svc);
    const { req, sent } = endlessRequest(String(MAX_WEBHOOK_BYTES + 1));
    const res = await r.intake.handle(req, ctx());
    expect(res).toMatchObject({ status: 413 });
    expect(sent()).toBe(0);
  });
});

describe('no configuration detail on the anonymous route', () => {
  it('a signed merge while GitHub credentials are missing: 503 with a code, the detail only in the log and the decision record', async () => {
    const r = makeRig(svc, { github: undefined });
    const res = await r.intake.handle(signedRequest('push', pushTo('c0ffee00'.repeat(5))), ctx());
    expect(res.status).toBe(503);
    expect(res.jsonBody).toMatchObject({ error: 'GITHUB.NOT_CONFIGURED' });
    expect(JSON.stringify(res.jsonBody)).not.toMatch(/GITHUB_TOKEN|GitHub App|required/);
    expect(r.logs.some((l) => l.includes('GITHUB_TOKEN'))).toBe(true);
    expect((await r.intake.list(1))[0]).toMatchObject({
      decision: 'failed',
      reason: expect.stringContaining('GITHUB_TOKEN'),
    });
  });

  it('an invalid setting: an unsigned caller gets a generic 503 with a code, never the setting name or its value', async () => {
    const saved = { ...process.env };
    process.env.COVERAGE_MIN = 'eighty-s3cr3t-value';
    await resetDefaultIntake();
    const logged: string[] = [];
    try {
      const context = new InvocationContext({
        functionName: 'githubWebhook',
        logHandler: (_level, ...args) => logged.push(args.map(String).join(' ')),
      });
      const res = await githubWebhook(
        new HttpRequest({
          method: 'POST',
          url: 'http://127.0.0.1/api/github/webhook',
          headers: { 'content-type': 'application/json' },
          body: { string: '{}' },
        }),
        context,
      );
      expect(res.status).toBe(503);
      expect(res.jsonBody).toMatchObject({ error: 'INTAKE.NOT_CONFIGURED' });
      expect(JSON.stringify(res.jsonBody)).not.toMatch(/COVERAGE_MIN|eighty|s3cr3t/);
      expect(logged.join('\n')).toContain('COVERAGE_MIN');
    } finally {
      process.env = saved;
      await resetDefaultIntake();
    }
  });
});
