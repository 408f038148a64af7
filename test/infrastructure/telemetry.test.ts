/**
 * shared/telemetry.ts against a fake Application Insights ingestion endpoint on loopback that speaks
 * the real protocol (HTTPS POST /v2.1/track, gzip JSON envelopes), behind the real
 * @azure/monitor-opentelemetry. The exporter only speaks HTTPS: the server gets a throwaway
 * self-signed certificate made at test time (openssl), given to the exporter as its CA.
 */
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { createLogger, registerSecret, type LogLevel } from '../../shared/log';
import {
  cleanProps,
  createTelemetry,
  entraClientId,
  TELEMETRY_EVENTS,
  TELEMETRY_METRICS,
} from '../../shared/telemetry';

interface Envelope {
  name: string;
  iKey?: string;
  data?: {
    baseType?: string;
    baseData?: {
      name?: string;
      properties?: Record<string, string>;
      metrics?: Array<{ name: string; value: number; count?: number }>;
    };
  };
}

function captureLogger() {
  const lines: Array<{ level: LogLevel; rec: Record<string, unknown> }> = [];
  const log = createLogger({
    level: 'debug',
    sink: (line, level) => lines.push({ level, rec: JSON.parse(line) as Record<string, unknown> }),
  });
  return { log, lines };
}

describe('telemetry without a connection string', () => {
  it('is a no-op that logs at debug and never throws', async () => {
    const { log, lines } = captureLogger();
    const t = createTelemetry({}, log);
    expect(t.enabled).toBe(false);
    t.trackEvent(TELEMETRY_EVENTS.deploy, { environment: 'uat', outcome: 'Succeeded', durationSeconds: 42 });
    t.trackMetric(TELEMETRY_METRICS.backupSize, 1024, { environment: 'uat' });
    await t.flush();
    await t.shutdown();
    expect(lines.every((l) => l.level === 'debug')).toBe(true);
    expect(lines.map((l) => l.rec.msg)).toEqual([
      'telemetry disabled',
      'telemetry event (not sent)',
      'telemetry metric (not sent)',
    ]);
    expect(lines[1].rec).toMatchObject({ event: 'odoo_mta.deploy', environment: 'uat', durationSeconds: 42 });
  });

  it('a malformed connection string disables telemetry with a warning instead of failing', () => {
    const { log, lines } = captureLogger();
    const t = createTelemetry({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'not-a-connection-string' }, log);
    expect(t.enabled).toBe(false);
    expect(lines.find((l) => l.level === 'warn')?.rec.msg).toMatch(/malformed/);
  });
});

describe('telemetry helpers', () => {
  it('reads the Entra ID client id from APPLICATIONINSIGHTS_AUTHENTICATION_STRING', () => {
    expect(entraClientId('ClientId=1234-abcd;Authorization=AAD')).toBe('1234-abcd');
    expect(entraClientId('Authorization=AAD')).toBe('');
    expect(entraClientId('ClientId=1234')).toBeUndefined();
    expect(entraClientId(undefined)).toBeUndefined();
  });

  it('drops undefined properties and masks secrets', () => {
    const secret = `s3cr3t-${process.pid}-${Date.now()}`;
    registerSecret(secret);
    expect(cleanProps({ a: 'x', b: undefined, c: 3, d: `token ${secret}` })).toEqual({
      a: 'x',
      c: 3,
      d: 'token ***',
    });
  });
});

describe('telemetry with a connection string (fake ingestion endpoint)', () => {
  let server: https.Server;
  const envelopes: Envelope[] = [];
  let requests = 0; // every request the ingestion endpoint received
  let endpoint = '';
  let certDir = '';

  beforeAll(async () => {
    // no statsbeat: it would reach Azure's own endpoint (only loopback in tests) and keep timers alive
    process.env.APPLICATION_INSIGHTS_NO_STATSBEAT = 'true';
    process.env.APPLICATIONINSIGHTS_STATSBEAT_DISABLED = 'true';
    certDir = mkdtempSync(path.join(os.tmpdir(), 'telemetry-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        path.join(certDir, 'key.pem'),
        '-out',
        path.join(certDir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const tls = {
      key: readFileSync(path.join(certDir, 'key.pem')),
      cert: readFileSync(path.join(certDir, 'cert.pem')),
    };
    server = https.createServer(tls, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests++;
        if (req.method === 'POST' && req.url?.startsWith('/v2.1/track')) {
          const raw = Buffer.concat(chunks);
          const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          const parsed = JSON.parse(body.toString('utf8')) as Envelope | Envelope[];
          const list = Array.isArray(parsed) ? parsed : [parsed];
          envelopes.push(...list);
          res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
          res.end(JSON.stringify({ itemsReceived: list.length, itemsAccepted: list.length, errors: [] }));
          return;
        }
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    delete process.env.APPLICATIONINSIGHTS_STATSBEAT_DISABLED;
    delete process.env.APPLICATION_INSIGHTS_NO_STATSBEAT;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(certDir, { recursive: true, force: true });
  });

  it('sends custom events and metrics the workbook reads', async () => {
    const { log } = captureLogger();
    const ikey = '00000000-0000-4000-8000-000000000001';
    const t = createTelemetry(
      { APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=${ikey};IngestionEndpoint=${endpoint}` },
      log,
      {
        caCertificate: readFileSync(path.join(certDir, 'cert.pem')),
      },
    );
    try {
      expect(t.enabled).toBe(true);
      t.trackEvent(TELEMETRY_EVENTS.deploy, {
        environment: 'uat',
        version: '1.4.0',
        outcome: 'RolledBack',
        durationSeconds: 312,
        note: undefined,
      });
      t.trackEvent(TELEMETRY_EVENTS.rollback, {
        environment: 'uat',
        version: '1.4.0',
        reason: 'health check failed',
      });
      t.trackMetric(TELEMETRY_METRICS.backupSize, 2048, { environment: 'prod' });
      t.trackMetric(TELEMETRY_METRICS.backupSize, 4096, { environment: 'prod' });
      t.trackMetric(TELEMETRY_METRICS.deployDuration, Number.NaN, { environment: 'uat' });
      await t.flush();
    } finally {
      await t.shutdown();
    }

    const events = envelopes.filter((e) => e.data?.baseType === 'EventData');
    const deploy = events.find((e) => e.data?.baseData?.name === 'odoo_mta.deploy');
    expect(deploy?.iKey).toBe(ikey);
    expect(deploy?.data?.baseData?.properties).toMatchObject({
      environment: 'uat',
      version: '1.4.0',
      outcome: 'RolledBack',
      durationSeconds: '312',
    });
    expect(deploy?.data?.baseData?.properties).not.toHaveProperty('note');
    expect(
      events.find((e) => e.data?.baseData?.name === 'odoo_mta.rollback')?.data?.baseData?.properties,
    ).toMatchObject({ reason: 'health check failed' });

    const metrics = envelopes
      .filter((e) => e.data?.baseType === 'MetricData')
      .flatMap((e) =>
        (e.data?.baseData?.metrics ?? []).map((m) => ({
          ...m,
          properties: e.data?.baseData?.properties ?? {},
        })),
      );
    const backup = metrics.filter((m) => m.name === 'odoo_mta.backup.size_bytes');
    expect(backup).toHaveLength(1);
    expect(backup[0]).toMatchObject({ value: 6144, count: 2, properties: { environment: 'prod' } });
    // the NaN duration was dropped, not sent
    expect(metrics.some((m) => m.name === 'odoo_mta.deploy.duration_seconds')).toBe(false);

    // shut down means stopped: nothing reaches the endpoint after shutdown(), not even once the
    // exporters' 60 s interval has passed (the distro's performance counters, on a meter provider of
    // their own, kept sending after shutdown: they are off)
    const posts = requests;
    await new Promise((r) => setTimeout(r, 65_000));
    expect(requests).toBe(posts);
  }, 120_000);
});
