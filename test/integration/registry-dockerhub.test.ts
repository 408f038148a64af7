/**
 * Docker Hub client: manifests through a real distribution registry (standing in for registry-1), tags
 * listed and deleted through a fake Hub API speaking Hub's protocol (auth/token, paginated tags with
 * `next`, per-tag DELETE, 429 with X-Retry-After). Docker Hub itself cannot be reached from tests.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRegistryClient, keepLastN, RegistryClient } from '../../shared/adapters/registry';
import { errorCode, isRetryable } from '../../shared/domain/errors';
import { RegistryHandle, startRegistry } from '../support/registry';

let reg: RegistryHandle;
let hub: Server;
let hubUrl: string;
const requests: string[] = [];
let throttle = 0;
const PAT = 'dckr_pat_test-only';

beforeAll(async () => {
  reg = await startRegistry();
  hub = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', async () => {
      const u = new URL(req.url ?? '/', 'http://x');
      requests.push(`${req.method} ${u.pathname}${u.search}`);
      const json = (status: number, j: unknown, h: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...h });
        res.end(JSON.stringify(j));
      };
      if (throttle > 0) {
        throttle--;
        return json(429, { message: 'rate limited' }, { 'x-retry-after': '17' });
      }
      if (u.pathname === '/v2/auth/token' && req.method === 'POST') {
        const { identifier, secret } = JSON.parse(body || '{}') as { identifier?: string; secret?: string };
        return identifier === 'odoo-bot' && secret === PAT
          ? json(200, { access_token: 'hub-jwt' })
          : json(401, { message: 'bad credentials' });
      }
      if (req.headers.authorization !== 'Bearer hub-jwt') return json(401, { message: 'auth required' });
      let m = /^\/v2\/namespaces\/([^/]+)\/repositories\/([^/]+)\/tags$/.exec(u.pathname);
      if (m && req.method === 'GET') {
        // the tag list comes from the real registry; Hub pages it (page_size, page, next)
        const r = await fetch(`${reg.url}/v2/${m[1]}/${m[2]}/tags/list`);
        if (r.status === 404) return json(404, { message: 'object not found' });
        const tags = ((await r.json()) as { tags: string[] | null }).tags ?? [];
        const size = Math.min(Number(u.searchParams.get('page_size') ?? 10), 3); // small pages to exercise `next`
        const page = Number(u.searchParams.get('page') ?? 1);
        const slice = tags.slice((page - 1) * size, page * size);
        const next =
          page * size < tags.length ? `${hubUrl}${u.pathname}?page_size=${size}&page=${page + 1}` : null;
        return json(200, { count: tags.length, next, results: slice.map((name) => ({ name })) });
      }
      m = /^\/v2\/repositories\/([^/]+)\/([^/]+)\/tags\/([^/]+)\/$/.exec(u.pathname);
      if (m && req.method === 'DELETE') {
        const repo = `${m[1]}/${m[2]}`;
        // Hub deletes just this tag; emulate with the OCI client's single-tag delete on the registry
        const oci = createRegistryClient({ kind: 'oci', url: reg.url });
        if (!(await oci.resolve(repo, m[3]))) return json(404, { message: 'tag not found' });
        await oci.deleteTag(repo, m[3]);
        res.writeHead(204);
        return res.end();
      }
      json(404, { message: 'no such route' });
    });
  });
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', () => r()));
  hubUrl = `http://127.0.0.1:${(hub.address() as { port: number }).port}`;
});
afterAll(async () => {
  hub?.close();
  await reg?.stop();
});

function client(password = PAT): RegistryClient {
  return createRegistryClient({ kind: 'dockerhub', url: reg.url, hubUrl, username: 'odoo-bot', password });
}

describe('Docker Hub client', () => {
  test('lists every tag across pages, resolves and retags through the registry API', async () => {
    for (const v of ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0'])
      await reg.pushImage('acme/odoo', `uat-v${v}`);
    const idx = await reg.pushIndex('acme/odoo', 'uat-v2.0.0');
    const c = client();
    expect((await c.listTags('acme/odoo')).sort()).toEqual([
      'uat-v1.0.0',
      'uat-v1.1.0',
      'uat-v1.2.0',
      'uat-v1.3.0',
      'uat-v1.4.0',
      'uat-v2.0.0',
    ]);
    expect(requests.filter((r) => r.includes('/tags?')).length).toBe(2);
    expect((await c.retag('acme/odoo', 'uat-v2.0.0', 'prod-v2.0.0')).digest).toBe(idx.digest);
    expect((await c.resolve('acme/odoo', 'prod-v2.0.0'))?.digest).toBe(idx.digest);
  });

  test('keep-last-N deletes single tags through the Hub API, protected ones stay', async () => {
    const c = client();
    const r = await keepLastN(c, 'acme/odoo', 'uat-v', 2, ['uat-v1.0.0']);
    expect(r.deleted).toEqual(['uat-v1.1.0', 'uat-v1.2.0', 'uat-v1.3.0']);
    expect(requests.filter((x) => x.startsWith('DELETE')).length).toBe(3);
    expect((await c.listTags('acme/odoo')).sort()).toEqual([
      'prod-v2.0.0',
      'uat-v1.0.0',
      'uat-v1.4.0',
      'uat-v2.0.0',
    ]);
    await c.deleteTag('acme/odoo', 'uat-v9.9.9'); // absent: no-op
  });

  test('bad credentials, rate limits, unknown repositories and bad names', async () => {
    expect(await codeOf(client('wrong').listTags('acme/odoo'))).toBe('REGISTRY.AUTH_FAILED');
    throttle = 1;
    const err = await client()
      .listTags('acme/odoo')
      .catch((e) => e);
    expect(errorCode(err)).toBe('REGISTRY.UNAVAILABLE');
    expect(err.message).toContain('retry after 17');
    expect(isRetryable(err)).toBe(true);
    expect(await client().listTags('acme/none')).toEqual([]);
    expect(await codeOf(client().listTags('a/b/c'))).toBe('REGISTRY.INVALID');
    expect(JSON.stringify(err)).not.toContain(PAT);
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
