/**
 * Release versions and environment image tags: `uat-vX.Y.Z`, `prod-vX.Y.Z` (semver, optional
 * pre-release/build as semver allows, e.g. `uat-v1.4.0-rc.1`). Pure functions, no I/O.
 */
import semver from 'semver';

export type Stage = 'uat' | 'prod';
export const STAGES: readonly Stage[] = ['uat', 'prod'];

export interface EnvTag {
  stage: Stage;
  /** normalised semver, without the leading `v` */
  version: string;
  tag: string;
}

/** Normalise a version (`v1.2.3`, `1.2.3`) to `1.2.3`; undefined when it is not valid semver. */
export function normaliseVersion(input: string): string | undefined {
  if (typeof input !== 'string') return undefined;
  // Stryker disable next-line MethodExpression: semver.valid trims and drops one leading v itself, so skipping both here gives the same answer
  const t = input.trim().replace(/^v(?=\d)/, '');
  // strict: no coercion ("1.2" is not a release version)
  return semver.valid(t) ?? undefined;
}

/** `tagFor('uat', '1.2.3')` → `uat-v1.2.3`; throws on an invalid version. */
export function tagFor(stage: Stage, version: string): string {
  if (!STAGES.includes(stage))
    throw new Error(`[VERSION.INVALID] unknown stage "${stage}" (expected uat or prod)`);
  const v = normaliseVersion(version);
  if (!v) throw new Error(`[VERSION.INVALID] "${version}" is not a semantic version (X.Y.Z)`);
  return `${stage}-v${v}`;
}

/** Parse `uat-v1.2.3` / `prod-v1.2.3`; undefined for any other tag. */
export function parseEnvTag(tag: string): EnvTag | undefined {
  // Stryker disable next-line StringLiteral: any text without the uat-/prod-v prefix (the fallback for a missing tag) matches nothing
  const m = /^(uat|prod)-v(.+)$/.exec(tag ?? '');
  if (!m) return undefined;
  const v = semver.valid(m[2]);
  if (!v || v !== m[2]) return undefined;
  return { stage: m[1] as Stage, version: v, tag };
}

/** Tags of one stage, sorted by semver, newest first (other tags ignored). */
export function sortEnvTags(tags: string[], stage: Stage): EnvTag[] {
  return tags
    .map(parseEnvTag)
    .filter((t): t is EnvTag => !!t && t.stage === stage)
    .sort((a, b) => semver.rcompare(a.version, b.version));
}

/** The `prod-v…` tag a `uat-v…` tag is promoted to. */
export function promoteTag(uatTag: string): string {
  const t = parseEnvTag(uatTag);
  if (!t || t.stage !== 'uat') throw new Error(`[VERSION.INVALID] "${uatTag}" is not a uat-vX.Y.Z tag`);
  return tagFor('prod', t.version);
}

export function compareVersions(a: string, b: string): number {
  const va = normaliseVersion(a);
  const vb = normaliseVersion(b);
  if (!va || !vb) throw new Error(`[VERSION.INVALID] cannot compare "${a}" and "${b}"`);
  return semver.compare(va, vb);
}
