/**
 * ACR client (`@azure/container-registry`) against a fake ACR: an HTTPS front (self-signed certificate
 * generated at test time) that forwards the OCI /v2 API to a real distribution registry and answers
 * ACR's own /acr/v1 calls (manifest list with tags, tag delete) from that registry's content.
 * ACR itself cannot be reached from tests; the Azure SDK only speaks HTTPS.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, createServer, Server } from 'node:https';
import { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { createRegistryClient, keepLastN, RegistryClient } from '../../shared/adapters/registry';
import { OciRegistryClient } from '../../shared/adapters/registry-oci';
import { errorCode } from '../../shared/domain/errors';
import { MT, RegistryHandle, startRegistry } from '../support/registry';

let reg: RegistryHandle;
let oci: OciRegistryClient;
let front: Server;
let endpoint: string;
let acr: RegistryClient;
const calls: string[] = [];
const credential: TokenCredential = {
  getToken: async (): Promise<AccessToken> => ({
    token: 'aad-token',
    expiresOnTimestamp: Date.now() + 3600_000,
  }),
};

beforeAll(async () => {
  reg = await startRegistry();
  oci = createRegistryClient({ kind: 'oci', url: reg.url }) as OciRegistryClient;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'acr-cert-'));
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
      path.join(dir, 'k.pem'),
      '-out',
      path.join(dir, 'c.pem'),
    ],
    { stdio: 'ignore' },
  );
  const tls = { key: readFileSync(path.join(dir, 'k.pem')), cert: readFileSync(path.join(dir, 'c.pem')) };
  rmSync(dir, { recursive: true, force: true });
  front = createServer(tls, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', async () => {
      const u = new URL(req.url ?? '/', 'https://x');
      calls.push(`${req.method} ${u.pathname}`);
      const json = (status: number, j: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(j));
      };
      let m = /^\/acr\/v1\/(.+)\/_manifests$/.exec(u.pathname);
      if (m && req.method === 'GET') {
        const repo = m[1];
        const tags = await oci.listTags(repo);
        if (!tags.length)
          return json(404, {
            errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }],
          });
        const byDigest = new Map<string, string[]>();
        for (const t of tags) {
          const d = (await oci.resolve(repo, t))!.digest;
          byDigest.set(d, [...(byDigest.get(d) ?? []), t]);
        }
        const now = new Date().toISOString();
        return json(200, {
          registry: u.host,
          imageName: repo,
          manifests: [...byDigest].map(([digest, t]) => ({
            digest,
            imageSize: 1,
            createdTime: now,
            lastUpdateTime: now,
            tags: t,
            changeableAttributes: {
              deleteEnabled: true,
              writeEnabled: true,
              readEnabled: true,
              listEnabled: true,
            },
          })),
        });
      }
      m = /^\/acr\/v1\/(.+)\/_tags\/([^/]+)$/.exec(u.pathname);
      if (m && req.method === 'DELETE') {
        if (!(await oci.resolve(m[1], m[2])))
          return json(404, { errors: [{ code: 'TAG_UNKNOWN', message: 'tag not found' }] });
        await oci.deleteTag(m[1], m[2]); // ACR untags only this tag
        res.writeHead(202);
        return res.end();
      }
      if (u.pathname.startsWith('/v2/')) {
        const headers: Record<string, string> = {};
        for (const h of ['accept', 'content-type']) if (req.headers[h]) headers[h] = String(req.headers[h]);
        const r = await fetch(reg.url + u.pathname + u.search, {
          method: req.method,
          headers,
          body: chunks.length ? Buffer.concat(chunks) : undefined,
        });
        const out: Record<string, string> = {};
        r.headers.forEach((v, k) => {
          if (!['transfer-encoding', 'connection', 'content-length'].includes(k)) out[k] = v;
        });
        const body = Buffer.from(await r.arrayBuffer());
        res.writeHead(r.status, out);
        return res.end(body);
      }
      json(404, { errors: [{ code: 'NOT_FOUND', message: 'no such route' }] });
    });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
  endpoint = `https://127.0.0.1:${(front.address() as { port: number }).port}`;
  // trust exactly the fake's self-signed certificate (no global TLS switch): an agent per request
  const agent = new Agent({ ca: tls.cert });
  acr = createRegistryClient({
    kind: 'acr',
    url: endpoint,
    credential,
    acrClientOptions: {
      additionalPolicies: [
        {
          position: 'perCall',
          policy: {
            name: 'testCa',
            sendRequest: (request, next) => {
              request.agent = agent;
              return next(request);
            },
          },
        },
      ],
    },
  });
});
afterAll(async () => {
  front?.close();
  await reg?.stop();
});

describe('ACR client', () => {
  test('list tags, resolve, retag a multi-arch index with its digest unchanged', async () => {
    const idx = await reg.pushIndex('odoo-mta', 'uat-v1.0.0');
    await reg.pushImage('odoo-mta', 'uat-v1.1.0');
    expect((await acr.listTags('odoo-mta')).sort()).toEqual(['uat-v1.0.0', 'uat-v1.1.0']);
    expect(await acr.resolve('odoo-mta', 'uat-v1.0.0')).toEqual({
      digest: idx.digest,
      mediaType: MT.ociIndex,
    });
    expect(await acr.resolve('odoo-mta', 'uat-v7.0.0')).toBeUndefined();
    expect((await acr.retag('odoo-mta', 'uat-v1.0.0', 'prod-v1.0.0')).digest).toBe(idx.digest);
    expect(await oci.resolve('odoo-mta', 'prod-v1.0.0')).toEqual({
      digest: idx.digest,
      mediaType: MT.ociIndex,
    });
    expect((await acr.retag('odoo-mta', 'uat-v1.0.0', 'prod-v1.0.0')).digest).toBe(idx.digest); // idempotent
    expect(await codeOf(acr.retag('odoo-mta', 'uat-v1.1.0', 'prod-v1.0.0'))).toBe('REGISTRY.TAG_EXISTS');
    expect(await codeOf(acr.retag('odoo-mta', 'uat-v9.0.0', 'prod-v9.0.0'))).toBe('REGISTRY.NOT_FOUND');
  });

  test('keep-last-N through ACR tag deletes; protected and shared tags stay', async () => {
    for (const v of ['1.2.0', '1.3.0']) await reg.pushImage('odoo-mta', `uat-v${v}`);
    const r = await keepLastN(acr, 'odoo-mta', 'uat-v', 2, ['uat-v1.1.0']);
    expect(r.deleted).toEqual(['uat-v1.0.0']);
    expect(calls).toContain('DELETE /acr/v1/odoo-mta/_tags/uat-v1.0.0');
    expect((await acr.listTags('odoo-mta')).sort()).toEqual([
      'prod-v1.0.0',
      'uat-v1.1.0',
      'uat-v1.2.0',
      'uat-v1.3.0',
    ]);
    await acr.deleteTag('odoo-mta', 'uat-v1.0.0'); // absent: no-op
    expect(await acr.listTags('unknown-repo')).toEqual([]);
    expect(await codeOf(acr.listTags('Bad Repo'))).toBe('REGISTRY.INVALID');
  });
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return errorCode(e);
  }
  return 'RESOLVED';
}
