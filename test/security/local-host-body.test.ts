/**
 * Attack: a body too large for the embedded host, sent to an anonymous route (the GitHub webhook,
 * the approval page). The host used to read the whole upload before looking at its size: a sender
 * without Content-Length (chunked) kept the connection and the host busy for as long as it liked,
 * and got its 413 only once it stopped. The host now stops at the limit — by Content-Length before
 * reading anything, by bytes read otherwise — answers 413 at once and closes the connection.
 *
 * Real parts: the embedded host with the app's own functions; a raw node:http client plays the sender.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startLocalHost, type LocalHost } from '../../local/host';

const LIMIT = 64 * 1024;
const saved = { ...process.env };
let dir: string;
let host: LocalHost;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lhb-'));
  host = await startLocalHost({
    dataDir: dir,
    port: 0,
    functionsDir: path.resolve(__dirname, '..', '..', 'functions'),
    maxRequestBytes: LIMIT,
    log: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    },
    env: { LOG_LEVEL: 'error' },
  });
}, 60000);

afterAll(async () => {
  await host?.stop();
  process.env = saved;
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Stream `sent` bytes in chunks without ending the request, then wait up to `waitMs` for an answer.
 * Resolves with the status the host gave while the upload was still open (or 'no answer').
 */
function openUpload(
  route: string,
  sent: number,
  headers: Record<string, string> = {},
  waitMs = 4000,
): Promise<{ status: number | 'no answer'; closed: boolean }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: { status: number | 'no answer'; closed: boolean }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(v);
    };
    const u = new URL(host.baseUrl);
    const req = http.request(
      {
        host: u.hostname,
        port: Number(u.port),
        method: 'POST',
        path: route,
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          finish({ status: res.statusCode ?? 0, closed: res.headers.connection === 'close' }),
        );
      },
    );
    req.on('error', () => undefined); // the host may close while we still write: expected
    req.flushHeaders();
    const chunk = Buffer.alloc(8 * 1024, 0x61);
    for (let n = 0; n < sent; n += chunk.length) req.write(chunk);
    // never req.end(): the sender keeps the upload open
    const timer = setTimeout(() => finish({ status: 'no answer', closed: false }), waitMs);
  });
}

it('a chunked upload past the limit to the anonymous webhook gets 413 while it is still sending', async () => {
  const r = await openUpload('/api/github/webhook', 4 * LIMIT, {
    'x-github-event': 'push',
    'x-github-delivery': 'big-1',
  });
  expect(r.status).toBe(413);
  expect(r.closed).toBe(true);
});

it('the same on the anonymous approval route', async () => {
  const r = await openUpload('/api/approvals/v1.x.y', 4 * LIMIT, {
    'content-type': 'application/x-www-form-urlencoded',
  });
  expect(r.status).toBe(413);
});

it('a declared Content-Length past the limit is refused before any byte is read', async () => {
  const r = await openUpload('/api/github/webhook', 0, { 'content-length': String(LIMIT + 1) });
  expect(r.status).toBe(413);
});

it('an open upload below the limit is not answered early (the host waits for the body)', async () => {
  const r = await openUpload('/api/github/webhook', LIMIT / 2, {}, 800);
  expect(r.status).toBe('no answer');
});

it('the host still serves requests after refusing uploads', async () => {
  const res = await fetch(`${host.baseUrl}/api/health`);
  expect(res.status).toBe(200);
});
