/**
 * GET /api/status, /api/dashboard, /api/backups/{env}, /api/deployments/{id}/logs through the embedded
 * host (real durable engine, Azurite): auth, every 400 path, and graceful degradation — a host whose
 * Blob storage is unreachable still answers 200 with the storage-backed parts marked unavailable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import { freePort } from '../../local/azurite';
import { createLedger } from '../../shared/adapters/ledger';
import { BackupStore } from '../../shared/adapters/backup-store';
import type { StatusDocument } from '../../shared/domain/status-view';
import { Readable } from 'node:stream';

/** the read-only key of the status page (STATUS_READ_KEY), not a function key */
const READ_KEY = `read-${'k'.repeat(40)}`;

describe('status API through the embedded host', () => {
  let dir: string;
  let host: LocalHost;

  const get = async (p: string, key: string | null = host.keys.functionKey, method = 'GET') => {
    const res = await fetch(`${host.baseUrl}/api/${p}`, {
      method,
      headers: key ? { 'x-functions-key': key } : {},
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* html */
    }
    return { status: res.status, headers: res.headers, body, text };
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'status-api-'));
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: { LOG_LEVEL: 'error', STATUS_READ_KEY: READ_KEY },
    });
    const service = BlobServiceClient.fromConnectionString(host.blobConnectionString!);
    const ledgerC = service.getContainerClient('ledger');
    await ledgerC.createIfNotExists();
    const ledger = createLedger(ledgerC);
    await ledger.record('prod', {
      version: '2.0.0',
      sha: 'f'.repeat(40),
      deployedAt: '2026-11-01T10:00:00.000Z',
    });
    await ledger.record('prod', {
      version: '2.1.0',
      sha: 'e'.repeat(40),
      deployedAt: '2026-11-20T10:00:00.000Z',
    });
    const store = new BackupStore({
      connectionString: host.blobConnectionString!,
      container: 'backups',
      now: () => new Date('2026-11-20T09:59:00Z'),
    });
    await store.ensureContainer();
    const w = store.begin('prod', { version: '2.0.0' });
    await w.part('db.dump', Readable.from([Buffer.alloc(3000, 1)]));
    await w.finish();
    // an incomplete one (no manifest): shown, never offered for a restore
    const w2 = new BackupStore({
      connectionString: host.blobConnectionString!,
      container: 'backups',
      now: () => new Date('2026-11-21T09:00:00Z'),
    }).begin('prod', { version: '2.1.0' });
    await w2.part('db.dump', Readable.from([Buffer.from('partial')]));
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('needs the function key', async () => {
    for (const p of ['status', 'dashboard', 'backups/uat', 'deployments/deploy-uat-1.0.0-aaaaaaaaaaaa/logs'])
      expect((await get(p, null)).status).toBe(401);
    expect((await get('status', 'wrong')).status).toBe(401);
  });

  it('the status page opens with its read-only key only; that key opens nothing else; without it a page says what to do', async () => {
    const page = await fetch(`${host.baseUrl}/api/dashboard?key=${encodeURIComponent(READ_KEY)}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('data-attention');
    const json = await fetch(`${host.baseUrl}/api/dashboard?format=json`, {
      headers: { 'x-status-key': READ_KEY },
    });
    expect(json.status).toBe(200);
    expect(((await json.json()) as StatusDocument).environments.map((e) => e.name)).toEqual(['uat', 'prod']);
    // an attacker holding the read key tries the routes that change things, and the operator's JSON
    for (const [method, p, body] of [
      ['POST', 'deployments', { environment: 'uat', version: '2.1.0' }],
      ['POST', 'refresh', { source: 'prod', target: 'uat' }],
      ['POST', 'backups/prod/20261120T095900Z-2.0.0/verify', undefined],
      ['GET', 'status', undefined],
      ['GET', 'deployments', undefined],
    ] as const) {
      for (const how of ['header', 'query', 'code'] as const) {
        const url = `${host.baseUrl}/api/${p}${how === 'query' ? `?key=${READ_KEY}` : how === 'code' ? `?code=${READ_KEY}` : ''}`;
        const r = await fetch(url, {
          method,
          headers: {
            'content-type': 'application/json',
            ...(how === 'header' ? { 'x-functions-key': READ_KEY, 'x-status-key': READ_KEY } : {}),
          },
          body: body ? JSON.stringify(body) : undefined,
        });
        expect([method, p, how, r.status]).toEqual([method, p, how, 401]);
      }
    }
    // the function key is not the page's key (the page's link must not be a key that can deploy, nor the other way round)
    for (const key of [host.keys.functionKey, READ_KEY.slice(0, -1), `${READ_KEY}x`, '']) {
      const r = await fetch(`${host.baseUrl}/api/dashboard?key=${encodeURIComponent(key)}`);
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await r.text();
      expect(html).toContain('This status page needs its link');
      expect(html).toContain('odoo-pipeline status');
      expect(html).not.toContain(READ_KEY);
      if (key) expect(html).not.toContain(key);
    }
    const none = await fetch(`${host.baseUrl}/api/dashboard`);
    expect(none.status).toBe(401);
    expect(await none.text()).toContain('This address needs the read-only key of the status page.');
  });

  it('GET /api/status: versions, since when, backups with size and state', async () => {
    const r = await get('status?backups=10');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const doc = r.body as StatusDocument;
    expect(doc.problems).toEqual([]);
    const prod = doc.environments.find((e) => e.name === 'prod')!;
    expect(prod.running).toEqual({
      ok: true,
      value: {
        version: '2.1.0',
        sha: 'e'.repeat(40),
        since: '2026-11-20T10:00:00.000Z',
        previousVersion: '2.0.0',
      },
    });
    expect(prod.backups).toEqual({
      ok: true,
      value: [
        {
          id: 'prod/20261121T090000Z-2.1.0',
          version: '2.1.0',
          createdAt: '2026-11-21T09:00:00.000Z',
          parts: [],
          state: 'incomplete',
        },
        {
          id: 'prod/20261120T095900Z-2.0.0',
          version: '2.0.0',
          createdAt: '2026-11-20T09:59:00.000Z',
          sizeBytes: 3000,
          parts: ['db.dump'],
          state: 'complete',
        },
      ],
    });
    const uat = doc.environments.find((e) => e.name === 'uat')!;
    expect(uat).toMatchObject({
      running: { ok: true, value: null },
      inProgress: { ok: true, value: null },
      backups: { ok: true, value: [] },
      lastRefresh: { ok: true, value: null },
    });
  });

  it('rejects bad query values with 400 and a message', async () => {
    expect(await get('status?backups=0')).toMatchObject({
      status: 400,
      body: { error: 'STATUS.BAD_REQUEST', message: 'backups must be an integer from 1 to 50' },
    });
    const d = await get(`dashboard?refresh=1&key=${READ_KEY}`);
    expect(d.status).toBe(400);
    expect(d.text).toContain('refresh must be an integer number of seconds from 5 to 3600');
    expect((await get(`dashboard?backups=x&key=${READ_KEY}`)).status).toBe(400);
    expect((await get(`dashboard?format=xml&key=${READ_KEY}`)).text).toContain('format must be html or json');
    expect(await get('backups/staging')).toMatchObject({
      status: 400,
      body: { error: 'BACKUPS.BAD_ENVIRONMENT' },
    });
    expect(await get('backups/uat?limit=1000')).toMatchObject({
      status: 400,
      body: { error: 'BACKUPS.BAD_LIMIT' },
    });
    expect(await get('backups/uat/not-a-backup/verify', undefined, 'POST')).toMatchObject({
      status: 400,
      body: { error: 'BACKUPS.BAD_ID' },
    });
    expect(await get('backups/prod/20990101T000000Z-9.9.9/verify', undefined, 'POST')).toMatchObject({
      status: 404,
      body: { error: 'BACKUPS.NOT_FOUND' },
    });
    expect(await get('deployments/nope/logs')).toMatchObject({ status: 400, body: { error: 'LOGS.BAD_ID' } });
    expect(await get('deployments/deploy-uat-1.0.0-aaaaaaaaaaaa/logs?tail=0')).toMatchObject({
      status: 400,
      body: { error: 'LOGS.BAD_TAIL' },
    });
    expect(await get('deployments/deploy-uat-1.0.0-aaaaaaaaaaaa/logs?name=../x')).toMatchObject({
      status: 400,
      body: { error: 'LOGS.BAD_NAME' },
    });
    expect(await get('deployments/deploy-uat-1.0.0-aaaaaaaaaaaa/logs')).toMatchObject({
      status: 404,
      body: { error: 'LOGS.NOT_FOUND' },
    });
  });

  it('verifies a backup in the background: 202 + status URL at once, the result (recorded) readable there', async () => {
    // a PROD backup takes longer to re-read than an HTTP request may last (230 s in Azure)
    const verify = async (name: string) => {
      const r = await get(`backups/prod/${name}/verify`, undefined, 'POST');
      expect(r.status).toBe(202);
      const body = r.body as { id: string; backup: string; statusUrl: string };
      expect(body.backup).toBe(`prod/${name}`);
      expect(body.statusUrl).toBe(`/api/backups/prod/${name}/verify/${body.id}`);
      expect(r.headers.get('location')).toBe(`${host.baseUrl}${body.statusUrl}`);
      for (let i = 0; i < 200; i++) {
        const st = await get(body.statusUrl.replace(/^\/api\//, ''));
        expect(st.status).toBe(200);
        const b = st.body as { runtimeStatus: string; result: unknown };
        if (!['Pending', 'Running'].includes(b.runtimeStatus)) return b;
        await new Promise((res) => setTimeout(res, 100));
      }
      throw new Error('verification did not finish');
    };
    expect(await verify('20261121T090000Z-2.1.0')).toMatchObject({
      runtimeStatus: 'Completed',
      result: { id: 'prod/20261121T090000Z-2.1.0', ok: false, state: 'incomplete' },
    });
    expect(await verify('20261120T095900Z-2.0.0')).toMatchObject({
      runtimeStatus: 'Completed',
      result: { ok: true, state: 'verified', problems: [] },
    });
    const list = (await get('backups/prod')).body as {
      items: Array<{ id: string; state: string; verifiedAt?: string }>;
    };
    expect(list.items.map((b) => [b.id, b.state])).toEqual([
      ['prod/20261121T090000Z-2.1.0', 'incomplete'],
      ['prod/20261120T095900Z-2.0.0', 'verified'],
    ]);
    // status URLs are checked: another backup's id, or an unknown one
    expect(await get('backups/prod/20261120T095900Z-2.0.0/verify/not-an-id')).toMatchObject({
      status: 400,
      body: { error: 'BACKUPS.BAD_VERIFICATION_ID' },
    });
    expect(
      await get('backups/prod/20261120T095900Z-2.0.0/verify/verify-prod-20261120t095900z-2.0.0-ffffffff'),
    ).toMatchObject({ status: 404, body: { error: 'BACKUPS.VERIFICATION_NOT_FOUND' } });
    expect(
      (
        await get(
          'backups/prod/20261120T095900Z-2.0.0/verify/verify-prod-20261120t095900z-2.0.0-ffffffff',
          null,
        )
      ).status,
    ).toBe(401);
  });
});

describe('status API when Blob storage is unreachable', () => {
  let dir: string;
  let host: LocalHost;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'status-degraded-'));
    const port = await freePort();
    const conn = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('not-a-real-key-for-a-closed-port').toString('base64')};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`;
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: { LOG_LEVEL: 'error', BACKUP_STORAGE_CONNECTION: conn, STATUS_READ_KEY: READ_KEY },
    });
  }, 60_000);

  afterAll(async () => {
    await host?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('still answers 200: ledger and backups say unavailable, the orchestration parts are shown', async () => {
    const res = await fetch(`${host.baseUrl}/api/status`, {
      headers: { 'x-functions-key': host.keys.functionKey },
    });
    expect(res.status).toBe(200);
    const doc = (await res.json()) as StatusDocument;
    for (const e of doc.environments) {
      expect(e.running.ok).toBe(false);
      expect(e.backups.ok).toBe(false);
      expect(e.inProgress).toEqual({ ok: true, value: null });
      expect(e.pendingApprovals).toEqual({ ok: true, value: [] });
    }
    const err = doc.environments[0].running;
    expect(!err.ok && err.error.code).toMatch(/^(BLOB\.UNAVAILABLE|STATUS\.TIMEOUT)$/);
    expect(JSON.stringify(doc)).not.toContain('AccountKey');
    expect(doc.problems.map((p) => `${p.environment}.${p.part}`).sort()).toEqual([
      'prod.backups',
      'prod.running',
      'uat.backups',
      'uat.running',
    ]);

    const page = await fetch(`${host.baseUrl}/api/dashboard`, { headers: { 'x-status-key': READ_KEY } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Some parts could not be read');
    expect(html).toMatch(/unavailable: \[(BLOB\.UNAVAILABLE|STATUS\.TIMEOUT)\]/);

    const backups = await fetch(`${host.baseUrl}/api/backups/uat`, {
      headers: { 'x-functions-key': host.keys.functionKey },
    });
    expect(backups.status).toBe(503);
  }, 90_000);
});
