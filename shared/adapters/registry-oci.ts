/**
 * OCI distribution API client (plain HTTP via fetch): list tags, resolve a tag to its digest, retag by
 * manifest copy, delete a tag. Works with any distribution-compatible registry (distribution/registry,
 * Harbor, GHCR, Docker Hub's registry-1, ACR's /v2 API), anonymous, Basic or Bearer (token
 * challenge per the distribution auth spec).
 *
 * Retag: GET the manifest with Accept listing OCI index, Docker manifest list, OCI manifest and Docker
 * v2 manifest (an OCI manifest is 404 on distribution 2.8 without it), PUT the exact bytes under the
 * new tag with Content-Type = its media type: no pull, no rebuild, a multi-arch index stays an index
 * and the digest does not change (checked).
 *
 * Delete: the distribution API cannot delete a tag, only a manifest by digest — which removes EVERY tag
 * pointing at that digest (after a retag `uat-v1.2.0` and `prod-v1.2.0` share one). So deleteTag
 * deletes the manifest only when no other tag points at it; otherwise it first moves the tag onto a
 * unique, empty placeholder manifest and deletes that placeholder by digest — only this tag goes away,
 * every other tag (and the shared image) stays. If the delete is refused the tag is put back.
 */
import { createHash, randomUUID } from 'node:crypto';
import { PipelineError } from '../domain/errors';
import { Logger } from '../log';
import type { RegistryClient, ResolvedManifest } from './registry';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
].join(', ');

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const EMPTY_CONFIG = Buffer.from('{}');

export function checkRepo(repo: string): void {
  if (!REPO_RE.test(repo ?? ''))
    throw new PipelineError('REGISTRY.INVALID', `invalid repository name "${repo}"`);
}
export function checkTag(tag: string): void {
  if (!TAG_RE.test(tag ?? '')) throw new PipelineError('REGISTRY.INVALID', `invalid tag "${tag}"`);
}

export const sha256Digest = (b: Buffer | string): string =>
  'sha256:' + createHash('sha256').update(b).digest('hex');

export interface OciRegistryOptions {
  url: string;
  username?: string;
  password?: string;
  timeoutMs?: number;
  log?: Logger;
}

type Fetched = { res: Response; body: Buffer };

/** Map an HTTP failure to a coded error (never echoing credentials). */
export function httpError(status: number, what: string, body: string, headers?: Headers): PipelineError {
  let detail = '';
  try {
    const j = JSON.parse(body) as { errors?: { code?: string; message?: string }[]; message?: string };
    detail = j.errors?.map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ') || j.message || '';
  } catch {
    detail = body.slice(0, 200);
  }
  const suffix = detail ? `: ${detail}` : '';
  if (status === 401)
    return new PipelineError('REGISTRY.AUTH_FAILED', `${what}: unauthorized (401)${suffix}`);
  if (status === 403) return new PipelineError('REGISTRY.FORBIDDEN', `${what}: forbidden (403)${suffix}`);
  if (status === 404) return new PipelineError('REGISTRY.NOT_FOUND', `${what}: not found${suffix}`);
  if (status === 429) {
    const after = headers?.get('x-retry-after') ?? headers?.get('retry-after');
    return new PipelineError(
      'REGISTRY.UNAVAILABLE',
      `${what}: rate limited (429)${after ? `, retry after ${after}` : ''}`,
      true,
      { rateLimited: true, retryAfter: after },
    );
  }
  if (status >= 500)
    return new PipelineError('REGISTRY.UNAVAILABLE', `${what}: registry error ${status}${suffix}`, true);
  return new PipelineError('REGISTRY.FAILED', `${what}: HTTP ${status}${suffix}`);
}

export class OciRegistryClient implements RegistryClient {
  readonly kind: string = 'oci';
  private readonly base: string;
  private readonly tokens = new Map<string, string>();
  private basicFallback = false;

  constructor(private readonly o: OciRegistryOptions) {
    let u: URL;
    try {
      u = new URL(o.url);
    } catch {
      throw new PipelineError('REGISTRY.INVALID', `registry URL "${o.url}" is not a URL`);
    }
    this.base = u.origin;
  }

  private basicAuth(): string | undefined {
    if (!this.o.username) return undefined;
    return 'Basic ' + Buffer.from(`${this.o.username}:${this.o.password ?? ''}`).toString('base64');
  }

  /** A request with the distribution auth dance (Basic or Bearer challenge), timeouts and error mapping. */
  async request(
    method: string,
    pathAndQuery: string,
    o: {
      headers?: Record<string, string>;
      body?: Buffer | string;
      scope: string;
      what: string;
      ok?: number[];
    },
  ): Promise<Fetched> {
    const url = pathAndQuery.startsWith('http') ? pathAndQuery : this.base + pathAndQuery;
    const send = async (auth?: string): Promise<Response> => {
      try {
        return await fetch(url, {
          method,
          headers: { ...o.headers, ...(auth ? { authorization: auth } : {}) },
          body: o.body,
          redirect: 'follow',
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 30000),
        });
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        throw new PipelineError(
          'REGISTRY.UNAVAILABLE',
          `${o.what}: ${e.name === 'TimeoutError' ? 'timed out' : (e.cause?.code ?? e.message)}`,
          true,
        );
      }
    };
    let auth = this.tokens.get(o.scope) ?? (this.basicFallback ? this.basicAuth() : undefined);
    let res = await send(auth);
    if (res.status === 401) {
      await res.arrayBuffer().catch(() => undefined);
      const challenge = res.headers.get('www-authenticate') ?? '';
      if (/^bearer/i.test(challenge)) {
        const token = await this.fetchToken(challenge, o.scope);
        this.tokens.set(o.scope, `Bearer ${token}`);
        auth = `Bearer ${token}`;
      } else if (this.basicAuth()) {
        this.basicFallback = true;
        auth = this.basicAuth();
      } else
        throw new PipelineError(
          'REGISTRY.AUTH_FAILED',
          `${o.what}: the registry wants credentials and none are configured`,
        );
      res = await send(auth);
    }
    const body = Buffer.from(await res.arrayBuffer());
    if (!(o.ok ?? [200]).includes(res.status))
      throw httpError(res.status, o.what, body.toString('utf8'), res.headers);
    return { res, body };
  }

  private async fetchToken(challenge: string, scope: string): Promise<string> {
    const params: Record<string, string> = {};
    for (const m of challenge.replace(/^bearer\s+/i, '').matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
    if (!params.realm) throw new PipelineError('REGISTRY.AUTH_FAILED', 'bearer challenge without a realm');
    const u = new URL(params.realm);
    if (params.service) u.searchParams.set('service', params.service);
    u.searchParams.set('scope', scope);
    let res: Response;
    try {
      res = await fetch(u, {
        headers: this.basicAuth() ? { authorization: this.basicAuth() as string } : {},
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 30000),
      });
    } catch (err) {
      throw new PipelineError(
        'REGISTRY.UNAVAILABLE',
        `token endpoint ${u.host}: ${(err as Error).message}`,
        true,
      );
    }
    const text = await res.text();
    if (!res.ok)
      throw httpError(res.status === 404 ? 401 : res.status, `token for ${scope}`, text, res.headers);
    const j = JSON.parse(text) as { token?: string; access_token?: string };
    const token = j.token ?? j.access_token;
    if (!token) throw new PipelineError('REGISTRY.AUTH_FAILED', `token endpoint ${u.host} returned no token`);
    return token;
  }

  async listTags(repo: string): Promise<string[]> {
    checkRepo(repo);
    const tags: string[] = [];
    let next: string | undefined = `/v2/${repo}/tags/list?n=1000`;
    for (let page = 0; next && page < 1000; page++) {
      let r: Fetched;
      try {
        r = await this.request('GET', next, {
          scope: `repository:${repo}:pull`,
          what: `list tags of ${repo}`,
        });
      } catch (err) {
        if (err instanceof PipelineError && err.code === 'REGISTRY.NOT_FOUND') return [];
        throw err;
      }
      const j = JSON.parse(r.body.toString('utf8')) as { tags?: string[] | null };
      for (const t of j.tags ?? []) if (!tags.includes(t)) tags.push(t);
      // RFC 5988 Link: <...>; rel="next" (distribution 2.8 ignores ?n= and returns everything at once)
      const link = r.res.headers.get('link');
      const m = link ? /<([^>]+)>;\s*rel="?next"?/.exec(link) : null;
      next = m ? m[1] : undefined;
    }
    return tags;
  }

  /** Manifest bytes, media type and digest of a tag (or digest); undefined when it does not exist. */
  async getManifest(
    repo: string,
    reference: string,
  ): Promise<(ResolvedManifest & { body: Buffer }) | undefined> {
    checkRepo(repo);
    let r: Fetched;
    try {
      r = await this.request('GET', `/v2/${repo}/manifests/${reference}`, {
        headers: { accept: MANIFEST_ACCEPT },
        scope: `repository:${repo}:pull`,
        what: `get manifest ${repo}:${reference}`,
      });
    } catch (err) {
      if (err instanceof PipelineError && err.code === 'REGISTRY.NOT_FOUND') return undefined;
      throw err;
    }
    const mediaType =
      (r.res.headers.get('content-type') ?? '').split(';')[0].trim() ||
      (JSON.parse(r.body.toString('utf8')) as { mediaType?: string }).mediaType ||
      '';
    const digest = sha256Digest(r.body);
    const claimed = r.res.headers.get('docker-content-digest');
    if (claimed && claimed.startsWith('sha256:') && claimed !== digest)
      throw new PipelineError(
        'REGISTRY.DIGEST_MISMATCH',
        `${repo}:${reference}: the registry says ${claimed} but the bytes hash to ${digest}`,
      );
    return { digest, mediaType, body: r.body };
  }

  async resolve(repo: string, tag: string): Promise<ResolvedManifest | undefined> {
    checkTag(tag);
    checkRepo(repo);
    try {
      const r = await this.request('HEAD', `/v2/${repo}/manifests/${tag}`, {
        headers: { accept: MANIFEST_ACCEPT },
        scope: `repository:${repo}:pull`,
        what: `resolve ${repo}:${tag}`,
      });
      const digest = r.res.headers.get('docker-content-digest');
      const mediaType = (r.res.headers.get('content-type') ?? '').split(';')[0].trim();
      if (digest && mediaType) return { digest, mediaType };
    } catch (err) {
      if (err instanceof PipelineError && err.code === 'REGISTRY.NOT_FOUND') return undefined;
      throw err;
    }
    const m = await this.getManifest(repo, tag);
    return m && { digest: m.digest, mediaType: m.mediaType };
  }

  async putManifest(repo: string, tag: string, body: Buffer, mediaType: string): Promise<string> {
    const r = await this.request('PUT', `/v2/${repo}/manifests/${tag}`, {
      headers: { 'content-type': mediaType },
      body,
      scope: `repository:${repo}:pull,push`,
      what: `put manifest ${repo}:${tag}`,
      ok: [200, 201, 202],
    });
    return r.res.headers.get('docker-content-digest') ?? sha256Digest(body);
  }

  async retag(
    repo: string,
    fromTag: string,
    toTag: string,
    o: { force?: boolean } = {},
  ): Promise<{ digest: string; mediaType: string }> {
    checkTag(fromTag);
    checkTag(toTag);
    const src = await this.getManifest(repo, fromTag);
    if (!src) throw new PipelineError('REGISTRY.NOT_FOUND', `${repo}:${fromTag} does not exist`);
    const existing = await this.resolve(repo, toTag);
    if (existing && existing.digest === src.digest) return { digest: src.digest, mediaType: src.mediaType }; // idempotent
    if (existing && !o.force)
      throw new PipelineError(
        'REGISTRY.TAG_EXISTS',
        `${repo}:${toTag} already points at ${existing.digest}, not ${src.digest}; refusing to move it`,
      );
    const digest = await this.putManifest(repo, toTag, src.body, src.mediaType);
    if (digest !== src.digest)
      throw new PipelineError(
        'REGISTRY.DIGEST_CHANGED',
        `retag ${fromTag} → ${toTag} produced ${digest} instead of ${src.digest}`,
      );
    this.o.log?.info('registry retag', { repo, from: fromTag, to: toTag, digest });
    return { digest, mediaType: src.mediaType };
  }

  private async ensureEmptyConfig(repo: string): Promise<{ digest: string; size: number }> {
    const digest = sha256Digest(EMPTY_CONFIG);
    try {
      await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, {
        scope: `repository:${repo}:pull`,
        what: 'check placeholder config',
      });
      return { digest, size: EMPTY_CONFIG.length };
    } catch (err) {
      if (!(err instanceof PipelineError && err.code === 'REGISTRY.NOT_FOUND')) throw err;
    }
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, {
      scope: `repository:${repo}:pull,push`,
      what: 'start placeholder upload',
      ok: [202],
    });
    const loc = new URL(start.res.headers.get('location') ?? '', this.base);
    loc.searchParams.set('digest', digest);
    await this.request('PUT', loc.toString(), {
      headers: { 'content-type': 'application/octet-stream' },
      body: EMPTY_CONFIG,
      scope: `repository:${repo}:pull,push`,
      what: 'upload placeholder config',
      ok: [201],
    });
    return { digest, size: EMPTY_CONFIG.length };
  }

  private async deleteManifest(repo: string, digest: string): Promise<void> {
    await this.request('DELETE', `/v2/${repo}/manifests/${digest}`, {
      scope: `repository:${repo}:delete`,
      what: `delete manifest ${repo}@${digest}`,
      ok: [200, 202],
    });
  }

  async deleteTag(repo: string, tag: string): Promise<void> {
    checkTag(tag);
    const current = await this.getManifest(repo, tag);
    if (!current) return; // already gone
    const tags = await this.listTags(repo);
    const others = tags.filter((t) => t !== tag);
    let shared = false;
    for (const t of others) {
      const r = await this.resolve(repo, t);
      if (r?.digest === current.digest) {
        shared = true;
        break;
      }
    }
    if (!shared) {
      await this.deleteManifest(repo, current.digest);
      this.o.log?.info('registry tag deleted', { repo, tag, digest: current.digest });
      return;
    }
    // shared digest: move only this tag onto a unique placeholder, then delete the placeholder
    const cfg = await this.ensureEmptyConfig(repo);
    const placeholder = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg.digest, size: cfg.size },
        layers: [],
        annotations: { 'org.odoo-mta.deleted-tag': tag, 'org.odoo-mta.nonce': randomUUID() },
      }),
    );
    const phDigest = await this.putManifest(repo, tag, placeholder, MEDIA_TYPES.ociManifest);
    try {
      await this.deleteManifest(repo, phDigest);
    } catch (err) {
      // put the tag back where it was before failing
      await this.putManifest(repo, tag, current.body, current.mediaType).catch(() => undefined);
      throw err;
    }
    this.o.log?.info('registry tag deleted (shared digest kept)', { repo, tag, digest: current.digest });
  }
}
