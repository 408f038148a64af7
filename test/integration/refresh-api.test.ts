/**
 * POST /api/refresh and GET /api/refresh/{id} through the embedded host (real registrations, real
 * durable engine, Azurite): every 400 path with its message, the key check, 413, and an accepted
 * request that runs through UAT's lane — here with no VM configured, so it fails at `prepare`
 * before anything is touched, and says why.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalHost, type LocalHost } from '../../local/host';
import { setRefreshPorts } from '../../functions/activities/refresh';
import type { RefreshResult } from '../../shared/domain/refresh';

jest.setTimeout(120_000);

describe('refresh API', () => {
  let dir: string;
  let host: LocalHost;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    for (const k of [
      'UAT_SSH_HOST',
      'UAT_SSH_HOST_KEY',
      'SSH_PRIVATE_KEY',
      'SLACK_WEBHOOK_URL',
      'SLACK_BOT_TOKEN',
    ]) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
    setRefreshPorts(undefined);
    dir = mkdtempSync(path.join(os.tmpdir(), 'refresh-api-'));
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: { LOG_LEVEL: 'error', DEPLOY_RETRY_FIRST_SECONDS: '0.1', DEPLOY_RETRY_ATTEMPTS: '1' },
    });
  });
  afterAll(async () => {
    await host?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
  });

  const post = (
    body: string,
    headers: Record<string, string> = { 'x-functions-key': host.keys.functionKey },
  ) =>
    fetch(`${host.baseUrl}/api/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
  const good = {
    source: 'prod',
    target: 'uat',
    filestore: 'copy',
    backup: 'latest',
    reason: 'sprint demo data',
  };

  it('needs the function key', async () => {
    const res = await post(JSON.stringify(good), {});
    expect(res.status).toBe(401);
  });

  it('refuses a body that is not JSON', async () => {
    const res = await post('{"source": prod');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'REFRESH.BAD_JSON' });
  });

  it('refuses a body that is too large (413)', async () => {
    const res = await post(JSON.stringify({ ...good, reason: 'x'.repeat(20_000) }));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'REFRESH.TOO_LARGE' });
  });

  it('refuses target prod with its own error', async () => {
    const res = await post(JSON.stringify({ ...good, source: 'uat', target: 'prod' }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; problems: string[] };
    expect(body.error).toBe('REFRESH.TARGET_PROD');
    expect(body.problems.join(' ')).toMatch(/PROD is never overwritten/);
  });

  it.each([
    ['an array', '[1]', /JSON object/],
    ['a bad source', JSON.stringify({ ...good, source: 'dev' }), /source must be "prod"/],
    ['a missing source', JSON.stringify({ target: 'uat', reason: 'because' }), /source must be "prod"/],
    ['a bad target', JSON.stringify({ ...good, target: 'staging' }), /target must be "uat"/],
    ['a bad filestore', JSON.stringify({ ...good, filestore: 'all' }), /filestore must be "copy", "drop"/],
    ['a bad backup', JSON.stringify({ ...good, backup: 'yesterday' }), /backup must be "fresh"/],
    ['no reason', JSON.stringify({ source: 'prod', target: 'uat' }), /reason must say why/],
    ['a blank reason', JSON.stringify({ ...good, reason: '  ' }), /reason must say why/],
    ['a too long reason', JSON.stringify({ ...good, reason: 'y'.repeat(501) }), /at most 500/],
    ['an unknown field', JSON.stringify({ ...good, database: 'odoo' }), /unknown field "database"/],
  ])('400 for %s, naming the problem', async (_what, body, message) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    const out = (await res.json()) as { error: string; message: string };
    expect(out.error).toBe('REFRESH.BAD_REQUEST');
    expect(out.message).toMatch(message);
  });

  it('GET refuses a malformed id (400) and answers 404 for an unknown one', async () => {
    const h = { 'x-functions-key': host.keys.functionKey };
    const r1 = await fetch(`${host.baseUrl}/api/refresh/deploy-uat-1.0.0-abc`, { headers: h });
    expect(r1.status).toBe(400);
    expect(await r1.json()).toMatchObject({ error: 'REFRESH.BAD_ID' });
    const r2 = await fetch(`${host.baseUrl}/api/refresh/refresh-uat-20260101t000000z-abcd1234`, {
      headers: h,
    });
    expect(r2.status).toBe(404);
  });

  it('accepts a good request (202 + status URL); without a configured VM it fails at prepare, touching nothing', async () => {
    const res = await post(JSON.stringify({ source: 'prod', target: 'uat', reason: 'try it' }));
    expect(res.status).toBe(202);
    const { id, statusUrl } = (await res.json()) as { id: string; statusUrl: string };
    expect(id).toMatch(/^refresh-uat-\d{8}t\d{6}z-[a-z0-9]+$/);
    expect(statusUrl).toBe(`/api/refresh/${id}`);
    // the lane starts the refresh as its sub-orchestration
    let st: { runtimeStatus?: string } = {};
    for (let i = 0; i < 600 && st.runtimeStatus !== 'Completed'; i++) {
      const r = await fetch(`${host.baseUrl}${statusUrl}`, {
        headers: { 'x-functions-key': host.keys.functionKey },
      });
      if (r.status === 200) st = (await r.json()) as typeof st;
      if (st.runtimeStatus !== 'Completed') await new Promise((r) => setTimeout(r, 100));
    }
    const body = st as {
      runtimeStatus: string;
      outcome: string;
      result: RefreshResult;
      status: { step: string };
      reason: string;
    };
    expect(body.runtimeStatus).toBe('Completed');
    expect(body.outcome).toBe('Failed');
    expect(body.result).toMatchObject({
      failedStep: 'prepare',
      code: 'CONFIG.SSH_MISSING',
      uatStopped: false,
    });
    expect(body.result.reason).toMatch(/UAT_SSH_HOST/);
    expect(body.status.step).toBe('done');
    expect(body.reason).toBe('try it');
  });
});
