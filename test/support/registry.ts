/**
 * A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) serving on
 * 127.0.0.1:<free port>, filesystem storage in a temp folder, deletes enabled. Test images are pushed
 * through the distribution API itself (blob upload POST + PUT ?digest=, then manifest PUT) — no docker
 * needed — including an OCI image index with two platform manifests. `.ci/run` installs docker-registry.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../local/azurite';

export const REGISTRY_BIN = process.env.REGISTRY_BIN || '/usr/bin/docker-registry';

export const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface RegistryHandle {
  url: string;
  port: number;
  dir: string;
  log(): string;
  pushBlob(repo: string, data: Buffer): Promise<{ digest: string; size: number }>;
  pushManifest(repo: string, reference: string, body: Buffer | string, mediaType: string): Promise<string>;
  /** a single-platform image (Docker v2 manifest by default, or OCI) under `tag`; seed makes it unique */
  pushImage(
    repo: string,
    tag: string,
    o?: { seed?: string; oci?: boolean },
  ): Promise<{ digest: string; mediaType: string }>;
  /** an OCI image index with linux/amd64 and linux/arm64 manifests under `tag` */
  pushIndex(
    repo: string,
    tag: string,
    o?: { seed?: string },
  ): Promise<{ digest: string; mediaType: string; platformDigests: string[] }>;
  stop(): Promise<void>;
}

const sha = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/**
 * `sillyAuth`: distribution's "silly" auth — every request without an Authorization header gets a
 * 401 Bearer challenge pointing at `realm`, any Authorization header is accepted (exercises a client's
 * token dance; the token server at `realm` is the test's).
 */
export async function startRegistry(
  o: { timeoutMs?: number; sillyAuth?: { realm: string; service?: string } } = {},
): Promise<RegistryHandle> {
  if (!existsSync(REGISTRY_BIN))
    throw new Error(
      `docker-registry not installed (${REGISTRY_BIN} missing): apt-get install docker-registry (see .ci/run)`,
    );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'registry-'));
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(o.sillyAuth
        ? [
            'auth:',
            '  silly:',
            `    realm: ${o.sillyAuth.realm}`,
            `    service: ${o.sillyAuth.service ?? 'test-registry'}`,
          ]
        : []),
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = (d: Buffer) => {
    output = (output + d.toString()).slice(-100_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (o.timeoutMs ?? 10000);
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`docker-registry exited with ${child.exitCode}: ${output.slice(-1000)}`);
    try {
      const r = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200 || (o.sillyAuth && r.status === 401)) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not answer on ${url}: ${output.slice(-1000)}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }

  const auth: Record<string, string> = o.sillyAuth ? { authorization: 'Bearer test-support' } : {};
  const check = async (res: Response, what: string) => {
    if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  };

  const handle: RegistryHandle = {
    url,
    port,
    dir,
    log: () => output,
    async pushBlob(repo, data) {
      const digest = sha(data);
      const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
      await check(start, `start upload to ${repo}`);
      const loc = new URL(start.headers.get('location') ?? '', url);
      loc.searchParams.set('digest', digest);
      const put = await fetch(loc, {
        method: 'PUT',
        body: data,
        headers: {
          ...auth,
          'content-type': 'application/octet-stream',
          'content-length': String(data.length),
        },
      });
      await check(put, `upload blob to ${repo}`);
      return { digest, size: data.length };
    },
    async pushManifest(repo, reference, body, mediaType) {
      const res = await fetch(`${url}/v2/${repo}/manifests/${reference}`, {
        method: 'PUT',
        body,
        headers: { ...auth, 'content-type': mediaType },
      });
      await check(res, `put manifest ${repo}:${reference}`);
      return res.headers.get('docker-content-digest') ?? sha(body);
    },
    async pushImage(repo, tag, opts = {}) {
      const seed = opts.seed ?? tag;
      const oci = !!opts.oci;
      const cfg = await handle.pushBlob(
        repo,
        Buffer.from(
          JSON.stringify({
            architecture: 'amd64',
            os: 'linux',
            config: { Labels: { seed } },
            rootfs: { type: 'layers', diff_ids: [] },
          }),
        ),
      );
      const layer = await handle.pushBlob(repo, Buffer.from(`layer for ${seed}`));
      const mediaType = oci ? MT.ociManifest : MT.dockerManifest;
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { mediaType: oci ? MT.ociConfig : MT.dockerConfig, digest: cfg.digest, size: cfg.size },
        layers: [{ mediaType: oci ? MT.ociLayer : MT.dockerLayer, digest: layer.digest, size: layer.size }],
      });
      const digest = await handle.pushManifest(repo, tag, manifest, mediaType);
      return { digest, mediaType };
    },
    async pushIndex(repo, tag, opts = {}) {
      const seed = opts.seed ?? tag;
      const manifests: {
        mediaType: string;
        digest: string;
        size: number;
        platform: { architecture: string; os: string };
      }[] = [];
      for (const arch of ['amd64', 'arm64']) {
        const cfg = await handle.pushBlob(
          repo,
          Buffer.from(
            JSON.stringify({
              architecture: arch,
              os: 'linux',
              config: { Labels: { seed } },
              rootfs: { type: 'layers', diff_ids: [] },
            }),
          ),
        );
        const layer = await handle.pushBlob(repo, Buffer.from(`layer ${arch} ${seed}`));
        const body = JSON.stringify({
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          config: { mediaType: MT.ociConfig, digest: cfg.digest, size: cfg.size },
          layers: [{ mediaType: MT.ociLayer, digest: layer.digest, size: layer.size }],
        });
        const digest = await handle.pushManifest(repo, sha(body), body, MT.ociManifest);
        manifests.push({
          mediaType: MT.ociManifest,
          digest,
          size: Buffer.byteLength(body),
          platform: { architecture: arch, os: 'linux' },
        });
      }
      const index = JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests });
      const digest = await handle.pushManifest(repo, tag, index, MT.ociIndex);
      return { digest, mediaType: MT.ociIndex, platformDigests: manifests.map((m) => m.digest) };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        const cleanup = () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return cleanup();
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(t);
          cleanup();
        });
        child.kill('SIGTERM');
      }),
  };
  return handle;
}
