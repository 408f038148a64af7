/**
 * Docker Hub: manifests (resolve, retag) through the distribution API of registry-1.docker.io with the
 * usual Bearer challenge (auth.docker.io); tags listed and deleted through the Hub API
 * (hub.docker.com), because Hub disables manifest DELETE. Hub token: POST /v2/auth/token
 * { identifier, secret } (a personal access token as secret). Rate limits: 429 with X-Retry-After →
 * [REGISTRY.UNAVAILABLE] (retryable).
 */
import { PipelineError } from '../domain/errors';
import { Logger } from '../log';
import type { RegistryClient, ResolvedManifest } from './registry';
import { checkRepo, checkTag, httpError, OciRegistryClient } from './registry-oci';

export interface DockerHubOptions {
  /** registry (default https://registry-1.docker.io) */
  url?: string;
  /** Hub API (default https://hub.docker.com) */
  hubUrl?: string;
  username?: string;
  password?: string;
  timeoutMs?: number;
  log?: Logger;
}

export class DockerHubClient implements RegistryClient {
  readonly kind = 'dockerhub';
  private readonly oci: OciRegistryClient;
  private readonly hub: string;
  private hubToken?: string;

  constructor(private readonly o: DockerHubOptions) {
    this.oci = new OciRegistryClient({
      url: o.url || 'https://registry-1.docker.io',
      username: o.username,
      password: o.password,
      timeoutMs: o.timeoutMs,
      log: o.log,
    });
    this.hub = (o.hubUrl || 'https://hub.docker.com').replace(/\/$/, '');
  }

  /** `library/x` for official images; Hub paths need namespace and name. */
  private split(repo: string): { ns: string; name: string } {
    checkRepo(repo);
    const parts = repo.split('/');
    if (parts.length === 1) return { ns: 'library', name: parts[0] };
    if (parts.length !== 2)
      throw new PipelineError(
        'REGISTRY.INVALID',
        `Docker Hub repositories are <namespace>/<name> (got "${repo}")`,
      );
    return { ns: parts[0], name: parts[1] };
  }

  private async hubFetch(
    method: string,
    path: string,
    what: string,
    ok: number[] = [200],
  ): Promise<Response> {
    const send = async () => {
      try {
        return await fetch(this.hub + path, {
          method,
          headers: this.hubToken ? { authorization: `Bearer ${this.hubToken}` } : {},
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 30000),
        });
      } catch (err) {
        throw new PipelineError('REGISTRY.UNAVAILABLE', `${what}: ${(err as Error).message}`, true);
      }
    };
    if (!this.hubToken && this.o.username) await this.login();
    let res = await send();
    if (res.status === 401 && this.o.username) {
      await res.arrayBuffer().catch(() => undefined);
      await this.login();
      res = await send();
    }
    if (!ok.includes(res.status)) throw httpError(res.status, what, await res.text(), res.headers);
    return res;
  }

  private async login(): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${this.hub}/v2/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ identifier: this.o.username, secret: this.o.password ?? '' }),
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 30000),
      });
    } catch (err) {
      throw new PipelineError('REGISTRY.UNAVAILABLE', `Docker Hub login: ${(err as Error).message}`, true);
    }
    const text = await res.text();
    if (!res.ok)
      throw httpError(res.status === 400 ? 401 : res.status, 'Docker Hub login', text, res.headers);
    const j = JSON.parse(text) as { access_token?: string; token?: string };
    this.hubToken = j.access_token ?? j.token;
    if (!this.hubToken) throw new PipelineError('REGISTRY.AUTH_FAILED', 'Docker Hub login returned no token');
  }

  async listTags(repo: string): Promise<string[]> {
    const { ns, name } = this.split(repo);
    const tags: string[] = [];
    let path: string | undefined = `/v2/namespaces/${ns}/repositories/${name}/tags?page_size=100`;
    for (let page = 0; path && page < 1000; page++) {
      let res: Response;
      try {
        res = await this.hubFetch('GET', path, `list tags of ${repo}`);
      } catch (err) {
        if (err instanceof PipelineError && err.code === 'REGISTRY.NOT_FOUND') return [];
        throw err;
      }
      const j = (await res.json()) as { results?: { name: string }[]; next?: string | null };
      for (const r of j.results ?? []) tags.push(r.name);
      path = j.next ? new URL(j.next).pathname + new URL(j.next).search : undefined;
    }
    return tags;
  }

  resolve(repo: string, tag: string): Promise<ResolvedManifest | undefined> {
    return this.oci.resolve(this.qualified(repo), tag);
  }

  retag(
    repo: string,
    fromTag: string,
    toTag: string,
    o?: { force?: boolean },
  ): Promise<{ digest: string; mediaType: string }> {
    return this.oci.retag(this.qualified(repo), fromTag, toTag, o);
  }

  async deleteTag(repo: string, tag: string): Promise<void> {
    checkTag(tag);
    const { ns, name } = this.split(repo);
    try {
      await this.hubFetch(
        'DELETE',
        `/v2/repositories/${ns}/${name}/tags/${tag}/`,
        `delete ${repo}:${tag}`,
        [200, 202, 204],
      );
    } catch (err) {
      if (err instanceof PipelineError && err.code === 'REGISTRY.NOT_FOUND') return;
      throw err;
    }
    this.o.log?.info('registry tag deleted', { repo, tag });
  }

  private qualified(repo: string): string {
    const { ns, name } = this.split(repo);
    return `${ns}/${name}`;
  }
}
