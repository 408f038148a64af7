/**
 * The registry as deployProd uses it (resolve a tag, retag by manifest copy, list, delete), in memory,
 * for orchestration tests that are about approvals and steps rather than the registry protocol (the
 * protocol itself is tested against a real docker-registry: test/integration/registry*.test.ts, e2e).
 */
import type { RegistryClient } from '../../shared/adapters/registry';

export const uatImage = (v: string): string => `reg.local/odoo-mta:uat-v${v}`;
export const prodImage = (v: string): string => `reg.local/odoo-mta:prod-v${v}`;
/** a stable fake manifest digest for a name */
export const digestOf = (s: string): string =>
  `sha256:${Buffer.from(s).toString('hex').padEnd(64, '0').slice(0, 64)}`;

export function memoryRegistry(tags: Record<string, string>): RegistryClient & { tags: Map<string, string> } {
  const map = new Map(Object.entries(tags));
  return {
    kind: 'memory',
    tags: map,
    async listTags() {
      return [...map.keys()];
    },
    async resolve(_repo, tag) {
      const d = map.get(tag);
      return d ? { digest: d, mediaType: 'application/vnd.oci.image.manifest.v1+json' } : undefined;
    },
    async retag(_repo, from, to) {
      const d = map.get(from);
      if (!d) throw new Error(`[REGISTRY.NOT_FOUND] ${from}`);
      map.set(to, d);
      return { digest: d };
    },
    async deleteTag(_repo, tag) {
      map.delete(tag);
    },
  };
}
