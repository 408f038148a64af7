/**
 * Registry adapter against a real distribution registry (Debian docker-registry 2.8) on loopback.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRegistryClient, keepLastN, RegistryClient } from '../../shared/adapters/registry';
import { OciRegistryClient, MEDIA_TYPES } from '../../shared/adapters/registry-oci';
import { errorCode, isRetryable } from '../../shared/domain/errors';
import { freePort } from '../../local/azurite';
import { MT, RegistryHandle, startRegistry } from '../support/registry';

let reg: RegistryHandle;
let client: OciRegistryClient;

beforeAll(async () => {
  reg = await startRegistry();
  client = createRegistryClient({ kind: 'oci', url: reg.url }) as OciRegistryClient;
});
afterAll(async () => {
  await reg?.stop();
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return errorCode(e);
  }
  return 'RESOLVED';
}

async function manifestStatus(repo: string, ref: string): Promise<number> {
  return (
    await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
      headers: { accept: Object.values(MEDIA_TYPES).join(', ') },
    })
  ).status;
}

describe('OCI registry client', () => {
  test('list tags and resolve digests (Docker v2, OCI manifest, OCI index)', async () => {
    const a = await reg.pushImage('odoo-mta', 'uat-v1.0.0');
    const b = await reg.pushImage('odoo-mta', 'uat-v1.1.0', { oci: true });
    const c = await reg.pushIndex('odoo-mta', 'uat-v2.0.0');
    expect((await client.listTags('odoo-mta')).sort()).toEqual(['uat-v1.0.0', 'uat-v1.1.0', 'uat-v2.0.0']);
    expect(await client.resolve('odoo-mta', 'uat-v1.0.0')).toEqual({
      digest: a.digest,
      mediaType: MT.dockerManifest,
    });
    expect(await client.resolve('odoo-mta', 'uat-v1.1.0')).toEqual({
      digest: b.digest,
      mediaType: MT.ociManifest,
    });
    expect(await client.resolve('odoo-mta', 'uat-v2.0.0')).toEqual({
      digest: c.digest,
      mediaType: MT.ociIndex,
    });
    expect(await client.resolve('odoo-mta', 'uat-v9.9.9')).toBeUndefined();
    expect(await client.listTags('no-such-repo')).toEqual([]);
  });

  test('retag by manifest copy keeps the digest and the multi-arch index', async () => {
    const idx = await reg.pushIndex('retag', 'uat-v3.0.0');
    const r = await client.retag('retag', 'uat-v3.0.0', 'prod-v3.0.0');
    expect(r.digest).toBe(idx.digest);
    expect(await client.resolve('retag', 'prod-v3.0.0')).toEqual({
      digest: idx.digest,
      mediaType: MT.ociIndex,
    });
    const body = (await client.getManifest('retag', 'prod-v3.0.0'))!.body.toString();
    expect(
      JSON.parse(body).manifests.map((m: { digest: string; platform: { architecture: string } }) => [
        m.platform.architecture,
        m.digest,
      ]),
    ).toEqual([
      ['amd64', idx.platformDigests[0]],
      ['arm64', idx.platformDigests[1]],
    ]);
    for (const d of idx.platformDigests) expect(await manifestStatus('retag', d)).toBe(200);

    const img = await reg.pushImage('retag', 'uat-v3.1.0');
    expect((await client.retag('retag', 'uat-v3.1.0', 'prod-v3.1.0')).digest).toBe(img.digest);
  });

  test('retag is idempotent, refuses to move an existing different tag, and needs a source', async () => {
    await reg.pushImage('retag2', 'uat-v1.0.0');
    const other = await reg.pushImage('retag2', 'prod-v1.0.0', { seed: 'something else' });
    const src = await client.resolve('retag2', 'uat-v1.0.0');
    expect(await codeOf(client.retag('retag2', 'uat-v1.0.0', 'prod-v1.0.0'))).toBe('REGISTRY.TAG_EXISTS');
    expect((await client.resolve('retag2', 'prod-v1.0.0'))?.digest).toBe(other.digest);
    expect((await client.retag('retag2', 'uat-v1.0.0', 'prod-v1.0.0', { force: true })).digest).toBe(
      src!.digest,
    );
    expect((await client.retag('retag2', 'uat-v1.0.0', 'prod-v1.0.0')).digest).toBe(src!.digest);
    expect(await codeOf(client.retag('retag2', 'uat-v7.0.0', 'prod-v7.0.0'))).toBe('REGISTRY.NOT_FOUND');
  });

  test('deleteTag: an unshared tag takes its manifest with it', async () => {
    const img = await reg.pushImage('del', 'uat-v1.0.0');
    await client.deleteTag('del', 'uat-v1.0.0');
    expect(await client.resolve('del', 'uat-v1.0.0')).toBeUndefined();
    expect(await manifestStatus('del', img.digest)).toBe(404);
    await client.deleteTag('del', 'uat-v1.0.0'); // absent: no-op
  });

  test('deleteTag on a shared digest removes only that tag (distribution would delete all of them)', async () => {
    const idx = await reg.pushIndex('shared', 'uat-v1.0.0');
    await client.retag('shared', 'uat-v1.0.0', 'prod-v1.0.0');
    await client.deleteTag('shared', 'uat-v1.0.0');
    expect(await client.resolve('shared', 'uat-v1.0.0')).toBeUndefined();
    expect(await client.resolve('shared', 'prod-v1.0.0')).toEqual({
      digest: idx.digest,
      mediaType: MT.ociIndex,
    });
    expect(await client.listTags('shared')).toEqual(['prod-v1.0.0']);
  });

  test('bad names and unreachable registries give clear coded errors', async () => {
    expect(await codeOf(client.listTags('Bad/Repo'))).toBe('REGISTRY.INVALID');
    expect(await codeOf(client.resolve('odoo-mta', 'bad tag'))).toBe('REGISTRY.INVALID');
    expect(() => createRegistryClient({ kind: 'oci', url: 'not a url' })).toThrow(/REGISTRY.INVALID/);
    expect(() => createRegistryClient({ kind: 'nope' as 'oci', url: reg.url })).toThrow(/REGISTRY.INVALID/);
    const down = createRegistryClient({ kind: 'oci', url: `http://127.0.0.1:${await freePort()}` });
    const err = await down.listTags('x').catch((e) => e);
    expect(errorCode(err)).toBe('REGISTRY.UNAVAILABLE');
    expect(isRetryable(err)).toBe(true);
  });
});

describe('keepLastN', () => {
  test('keep-last-5 by semver never deletes the running or previous tag, nor tags of the other stage', async () => {
    const versions = ['1.0.0', '1.1.0', '1.2.0', '1.9.0', '1.10.0', '1.11.0', '2.0.0-rc.1', '2.0.0', '2.1.0'];
    for (const v of versions) await reg.pushImage('keep', `uat-v${v}`);
    // the running PROD release 1.0.0 was promoted: prod-v1.0.0 shares uat-v1.0.0's digest
    await client.retag('keep', 'uat-v1.0.0', 'prod-v1.0.0');
    await reg.pushImage('keep', 'latest');
    const prodDigest = (await client.resolve('keep', 'prod-v1.0.0'))!.digest;

    // running uat-v1.1.0 (rolled back), previous uat-v1.0.0
    const r = await keepLastN(client, 'keep', 'uat-v', 5, ['uat-v1.1.0', 'uat-v1.0.0']);
    expect(r.kept).toEqual([
      'uat-v2.1.0',
      'uat-v2.0.0',
      'uat-v2.0.0-rc.1',
      'uat-v1.11.0',
      'uat-v1.10.0',
      'uat-v1.1.0',
      'uat-v1.0.0',
    ]);
    expect(r.deleted).toEqual(['uat-v1.2.0', 'uat-v1.9.0']);
    const left = (await client.listTags('keep')).sort();
    expect(left).toEqual([...r.kept, 'prod-v1.0.0', 'latest'].sort());
    expect((await client.resolve('keep', 'prod-v1.0.0'))?.digest).toBe(prodDigest);

    // a second run deletes nothing
    expect((await keepLastN(client, 'keep', 'uat-v', 5, ['uat-v1.1.0', 'uat-v1.0.0'])).deleted).toEqual([]);
  });

  test('deleting an old UAT tag whose digest a protected PROD tag shares keeps the PROD tag', async () => {
    for (const v of ['1.0.0', '1.1.0', '1.2.0']) await reg.pushImage('keep2', `uat-v${v}`);
    await client.retag('keep2', 'uat-v1.0.0', 'prod-v1.0.0');
    const r = await keepLastN(client, 'keep2', 'uat-v', 2, []);
    expect(r.deleted).toEqual(['uat-v1.0.0']);
    expect(await client.resolve('keep2', 'prod-v1.0.0')).toBeDefined();
  });

  test('a client that deletes by digest (removing every tag on it) is caught: REGISTRY.PROTECTED_LOST', async () => {
    for (const v of ['1.0.0', '1.1.0']) await reg.pushImage('naive', `uat-v${v}`);
    await client.retag('naive', 'uat-v1.0.0', 'uat-v0.9.0'); // an old tag sharing the previous release's digest
    const naive: RegistryClient = {
      kind: 'naive',
      listTags: (repo) => client.listTags(repo),
      resolve: (repo, tag) => client.resolve(repo, tag),
      retag: (repo, a, b) => client.retag(repo, a, b),
      async deleteTag(repo, tag) {
        const d = await client.resolve(repo, tag);
        await fetch(`${reg.url}/v2/${repo}/manifests/${d!.digest}`, { method: 'DELETE' });
      },
    };
    expect(await codeOf(keepLastN(naive, 'naive', 'uat-v', 1, ['uat-v1.0.0']))).toBe(
      'REGISTRY.PROTECTED_LOST',
    );
  });

  test('invalid retention input', async () => {
    expect(await codeOf(keepLastN(client, 'keep', 'dev-v', 5, []))).toBe('RETENTION.INVALID');
    await expect(keepLastN(client, 'keep', 'uat-v', 0, [])).rejects.toThrow(/RETENTION.INVALID/);
  });
});

describe('Bearer token challenge', () => {
  let tokenServer: Server;
  let authReg: RegistryHandle;
  const seen: string[] = [];
  beforeAll(async () => {
    tokenServer = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push(`${req.url} ${req.headers.authorization ?? ''}`);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token: 'issued-token' }));
    });
    await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', () => r()));
    const realm = `http://127.0.0.1:${(tokenServer.address() as { port: number }).port}/token`;
    authReg = await startRegistry({ sillyAuth: { realm, service: 'test-registry' } });
  });
  afterAll(async () => {
    await authReg?.stop();
    tokenServer?.close();
  });

  test('a 401 Bearer challenge is answered with a token for the scope, then cached', async () => {
    await authReg.pushImage('private/odoo', 'uat-v1.0.0');
    const c = createRegistryClient({ kind: 'oci', url: authReg.url, username: 'ci', password: 'pw-secret' });
    expect(await c.listTags('private/odoo')).toEqual(['uat-v1.0.0']);
    expect((await c.retag('private/odoo', 'uat-v1.0.0', 'prod-v1.0.0')).digest).toMatch(/^sha256:/);
    expect(seen[0]).toMatch(/scope=repository%3Aprivate%2Fodoo%3Apull.*Basic /);
    expect(seen[0]).toContain('service=test-registry');
    const n = seen.length;
    await c.listTags('private/odoo');
    expect(seen.length).toBe(n); // cached token
  });

  test('a challenge without credentials configured still gets an anonymous token', async () => {
    const c = createRegistryClient({ kind: 'oci', url: authReg.url });
    expect(await c.resolve('private/odoo', 'uat-v1.0.0')).toBeDefined();
  });
});
