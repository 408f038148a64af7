/**
 * What a refused delivery says (issue #20). GitHub shows the response body of every delivery under the
 * webhook's "Recent Deliveries"; the maintainer who set the webhook up reads it there, so each refusal
 * names the header or the body problem it found — not only a status and a code.
 */
import { signPayload, verifyRequest } from '../../shared/domain/webhook';

const secret = 'test-secret-0123456789';
const body = Buffer.from('{"zen":"Design for failure."}');
const headers = (h: Record<string, string | undefined>) => ({
  get: (n: string) => h[n.toLowerCase()] ?? null,
});
const good = (b: Buffer = body): Record<string, string | undefined> => ({
  'content-type': 'application/json',
  'x-github-event': 'ping',
  'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958',
  'x-hub-signature-256': signPayload(secret, b),
});

async function refusal(h: Record<string, string | undefined>, b: Buffer = body) {
  const r = await verifyRequest([secret], headers(h), b);
  if (!('status' in r)) throw new Error('expected a refusal, got an accepted delivery');
  return r;
}

describe('a refused delivery says what was wrong', () => {
  it('no signature header: names X-Hub-Signature-256 as missing', async () => {
    const r = await refusal({ ...good(), 'x-hub-signature-256': undefined });
    expect(r.status).toBe(401);
    expect(r.message).toMatch(/X-Hub-Signature-256/);
    expect(r.message).toMatch(/missing/);
  });

  it('a signature made with another secret: says the signature does not match', async () => {
    const r = await refusal({
      ...good(),
      'x-hub-signature-256': signPayload('another-secret-0123456789', body),
    });
    expect(r.status).toBe(401);
    expect(r.message).toMatch(/signature/);
    expect(r.message).toMatch(/not match/);
  });

  it('no event header: names X-GitHub-Event', async () => {
    const r = await refusal({ ...good(), 'x-github-event': undefined });
    expect(r.status).toBe(400);
    expect(r.message).toMatch(/X-GitHub-Event/);
  });

  it('a delivery id that is not one: names X-GitHub-Delivery', async () => {
    const r = await refusal({ ...good(), 'x-github-delivery': '../../etc/passwd' });
    expect(r.status).toBe(400);
    expect(r.message).toMatch(/X-GitHub-Delivery/);
  });

  it("a form-encoded delivery (GitHub's default content type): tells how to fix the webhook setting", async () => {
    const r = await refusal({ ...good(), 'content-type': 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(415);
    expect(r.message).toMatch(/application\/json/);
    expect(r.message).toMatch(/Content type/);
  });

  it('a signed body that is not JSON: says it is not valid JSON', async () => {
    const notJson = Buffer.from('payload=%7B%7D');
    const r = await refusal(good(notJson), notJson);
    expect(r.status).toBe(400);
    expect(r.message).toMatch(/not valid UTF-8 JSON/);
  });

  it('a signed JSON array or string: says the body is not a JSON object', async () => {
    for (const text of ['[1,2]', '"push"', 'null']) {
      const b = Buffer.from(text);
      const r = await refusal(good(b), b);
      expect(r.status).toBe(400);
      expect(r.message).toMatch(/not a JSON object/);
    }
  });

  it('every refusal message is a sentence someone can act on, never empty', async () => {
    const cases: Array<Record<string, string | undefined>> = [
      { ...good(), 'x-hub-signature-256': undefined },
      { ...good(), 'x-hub-signature-256': 'sha256=' + '0'.repeat(64) },
      { ...good(), 'x-github-event': 'Push Event' },
      { ...good(), 'x-github-delivery': undefined },
      { ...good(), 'content-type': undefined },
    ];
    for (const h of cases) expect((await refusal(h)).message.length).toBeGreaterThan(15);
  });
});
