/**
 * Container registry port: list tags, resolve a tag's digest, retag by manifest copy (digest unchanged,
 * multi-arch index preserved), delete one tag, and keep-last-N retention with protected tags.
 * Three implementations behind one interface:
 * - `oci`: the OCI distribution API over HTTP (registry-oci.ts)
 * - `dockerhub`: Docker Hub's tag API for list/delete + the distribution API of registry-1 (registry-dockerhub.ts)
 * - `acr`: Azure Container Registry through `@azure/container-registry` (registry-acr.ts)
 */
import type { TokenCredential } from '@azure/core-auth';
import type { CommonClientOptions } from '@azure/core-client';
import { PipelineError } from '../domain/errors';
import { planTagRetention } from '../domain/retention';
import { Stage } from '../domain/versions';
import { Logger } from '../log';
import { OciRegistryClient } from './registry-oci';
import { DockerHubClient } from './registry-dockerhub';
import { AcrClient } from './registry-acr';

export interface ResolvedManifest {
  digest: string;
  mediaType: string;
}

export interface RegistryClient {
  readonly kind: string;
  listTags(repo: string): Promise<string[]>;
  resolve(repo: string, tag: string): Promise<ResolvedManifest | undefined>;
  /** copy the manifest of fromTag under toTag; refuses to move an existing different toTag unless force */
  retag(
    repo: string,
    fromTag: string,
    toTag: string,
    o?: { force?: boolean },
  ): Promise<{ digest: string; mediaType?: string }>;
  /** remove one tag (other tags on the same digest stay); no-op when absent */
  deleteTag(repo: string, tag: string): Promise<void>;
}

export interface RegistryConfig {
  kind: 'oci' | 'dockerhub' | 'acr';
  /** registry base URL (oci: e.g. http://127.0.0.1:5000; acr: https://<name>.azurecr.io; dockerhub: https://registry-1.docker.io) */
  url: string;
  username?: string;
  password?: string;
  /** dockerhub: the Hub API base (default https://hub.docker.com) */
  hubUrl?: string;
  /** acr: a token credential (default DefaultAzureCredential / managed identity) */
  credential?: TokenCredential;
  /** acr: extra Azure SDK client options (pipeline policies, retry options) */
  acrClientOptions?: CommonClientOptions;
  timeoutMs?: number;
  log?: Logger;
}

export function createRegistryClient(config: RegistryConfig): RegistryClient {
  switch (config.kind) {
    case 'oci':
      return new OciRegistryClient(config);
    case 'dockerhub':
      return new DockerHubClient(config);
    case 'acr':
      return new AcrClient({ ...config, clientOptions: config.acrClientOptions });
    default:
      throw new PipelineError(
        'REGISTRY.INVALID',
        `unknown registry kind "${(config as { kind?: string }).kind}" (oci, dockerhub or acr)`,
      );
  }
}

export interface KeepLastNResult {
  /** tags of the stage kept, newest first */
  kept: string[];
  /** tags deleted, oldest first */
  deleted: string[];
}

/**
 * Keep the newest n `<prefix>X.Y.Z` tags by semver; the protected ones (running, previous) are never
 * deleted, whatever their age, and still resolve to the same digest afterwards (checked: a registry
 * that deleted a shared digest would be caught here, loudly). Other tags are not touched.
 */
export async function keepLastN(
  client: RegistryClient,
  repo: string,
  prefix: string,
  n: number,
  protectedTags: string[],
): Promise<KeepLastNResult> {
  const m = /^(uat|prod)-v$/.exec(prefix);
  if (!m)
    throw new PipelineError('RETENTION.INVALID', `tag prefix must be "uat-v" or "prod-v" (got "${prefix}")`);
  const tags = await client.listTags(repo);
  const plan = planTagRetention(tags, m[1] as Stage, n, protectedTags);
  const before = new Map<string, string>();
  for (const t of protectedTags.filter((x) => x && tags.includes(x))) {
    const r = await client.resolve(repo, t);
    if (r) before.set(t, r.digest);
  }
  const deleted: string[] = [];
  for (const t of plan.deleted) {
    await client.deleteTag(repo, t);
    deleted.push(t);
  }
  for (const [t, digest] of before) {
    const after = await client.resolve(repo, t);
    if (after?.digest !== digest)
      throw new PipelineError(
        'REGISTRY.PROTECTED_LOST',
        `protected tag ${repo}:${t} no longer resolves to ${digest} after retention (now ${after?.digest ?? 'missing'})`,
      );
  }
  return { kept: plan.kept, deleted };
}
