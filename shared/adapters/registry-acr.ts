/**
 * Azure Container Registry through `@azure/container-registry` (Entra ID token, managed identity in
 * Azure): tags from the repository's manifest properties, manifests through the content client (which
 * checks digests itself), per-tag delete (ACR untags without touching other tags on the same digest).
 */
import type { TokenCredential } from '@azure/core-auth';
import type { CommonClientOptions } from '@azure/core-client';
import { ContainerRegistryClient, ContainerRegistryContentClient } from '@azure/container-registry';
import { PipelineError } from '../domain/errors';
import { Logger } from '../log';
import type { RegistryClient, ResolvedManifest } from './registry';
import { checkRepo, checkTag, httpError } from './registry-oci';

function acrError(err: unknown, what: string): PipelineError {
  if (err instanceof PipelineError) return err;
  const e = err as { statusCode?: number; message?: string; name?: string };
  if (e?.name === 'DigestMismatchError')
    return new PipelineError('REGISTRY.DIGEST_MISMATCH', `${what}: ${e.message}`);
  if (typeof e?.statusCode === 'number') return httpError(e.statusCode, what, e.message ?? '');
  return new PipelineError('REGISTRY.UNAVAILABLE', `${what}: ${e?.message ?? String(err)}`, true);
}

export class AcrClient implements RegistryClient {
  readonly kind = 'acr';
  private readonly client: ContainerRegistryClient;
  private readonly credential: TokenCredential;
  private readonly contents = new Map<string, ContainerRegistryContentClient>();

  constructor(
    private readonly o: {
      url: string;
      credential?: TokenCredential;
      log?: Logger;
      clientOptions?: CommonClientOptions;
    },
  ) {
    if (o.credential) this.credential = o.credential;
    else {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
      this.credential = new DefaultAzureCredential();
    }
    this.client = new ContainerRegistryClient(o.url, this.credential, o.clientOptions);
  }

  private content(repo: string): ContainerRegistryContentClient {
    let c = this.contents.get(repo);
    if (!c) {
      c = new ContainerRegistryContentClient(this.o.url, repo, this.credential, this.o.clientOptions);
      this.contents.set(repo, c);
    }
    return c;
  }

  async listTags(repo: string): Promise<string[]> {
    checkRepo(repo);
    const tags: string[] = [];
    try {
      for await (const m of this.client.getRepository(repo).listManifestProperties())
        tags.push(...(m.tags ?? []));
    } catch (err) {
      const e = acrError(err, `list tags of ${repo}`);
      if (e.code === 'REGISTRY.NOT_FOUND') return [];
      throw e;
    }
    return tags;
  }

  async resolve(repo: string, tag: string): Promise<ResolvedManifest | undefined> {
    checkRepo(repo);
    checkTag(tag);
    try {
      const m = await this.content(repo).getManifest(tag);
      return { digest: m.digest, mediaType: m.mediaType };
    } catch (err) {
      const e = acrError(err, `resolve ${repo}:${tag}`);
      if (e.code === 'REGISTRY.NOT_FOUND') return undefined;
      throw e;
    }
  }

  async retag(
    repo: string,
    fromTag: string,
    toTag: string,
    o: { force?: boolean } = {},
  ): Promise<{ digest: string; mediaType: string }> {
    checkRepo(repo);
    checkTag(fromTag);
    checkTag(toTag);
    const c = this.content(repo);
    let src;
    try {
      src = await c.getManifest(fromTag);
    } catch (err) {
      throw acrError(err, `get ${repo}:${fromTag}`);
    }
    const existing = await this.resolve(repo, toTag);
    if (existing?.digest === src.digest) return { digest: src.digest, mediaType: src.mediaType };
    if (existing && !o.force)
      throw new PipelineError(
        'REGISTRY.TAG_EXISTS',
        `${repo}:${toTag} already points at ${existing.digest}, not ${src.digest}; refusing to move it`,
      );
    let digest: string;
    try {
      digest = (await c.setManifest(src.content, { tag: toTag, mediaType: src.mediaType })).digest;
    } catch (err) {
      throw acrError(err, `put ${repo}:${toTag}`);
    }
    if (digest !== src.digest)
      throw new PipelineError(
        'REGISTRY.DIGEST_CHANGED',
        `retag ${fromTag} → ${toTag} produced ${digest} instead of ${src.digest}`,
      );
    this.o.log?.info('registry retag', { repo, from: fromTag, to: toTag, digest });
    return { digest, mediaType: src.mediaType };
  }

  async deleteTag(repo: string, tag: string): Promise<void> {
    checkRepo(repo);
    checkTag(tag);
    try {
      await this.client.getArtifact(repo, tag).deleteTag(tag);
    } catch (err) {
      const e = acrError(err, `delete ${repo}:${tag}`);
      if (e.code === 'REGISTRY.NOT_FOUND') return;
      throw e;
    }
    this.o.log?.info('registry tag deleted', { repo, tag });
  }
}
