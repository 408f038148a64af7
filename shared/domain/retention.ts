/**
 * Retention rules, pure (no I/O):
 * - image tags: keep the newest N tags of a stage by semver; the running and previous tags are always
 *   kept (and do not count against N only if they fall outside it — they are simply never deleted);
 *   tags that are not `<stage>-vX.Y.Z` are never touched.
 * - backups: keep those younger than keepDays; always keep the newest `keepAtLeast` complete backups
 *   whatever their age (a stale environment must not lose its last restore point).
 */
import { parseEnvTag, Stage } from './versions';
import semver from 'semver';

export interface TagRetentionPlan {
  /** tags kept, newest first */
  kept: string[];
  /** tags to delete, oldest first */
  deleted: string[];
}

export function planTagRetention(
  tags: string[],
  stage: Stage,
  keep: number,
  protectedTags: string[],
): TagRetentionPlan {
  if (!Number.isInteger(keep) || keep < 1)
    throw new Error(`[RETENTION.INVALID] keep must be a positive integer (got ${keep})`);
  // Stryker disable next-line MethodExpression: an empty protected name equals no release tag, so keeping it in the set changes nothing
  const prot = new Set(protectedTags.filter(Boolean));
  const ours = tags
    .map(parseEnvTag)
    .filter((t): t is NonNullable<typeof t> => !!t && t.stage === stage)
    .sort((a, b) => semver.rcompare(a.version, b.version));
  const kept: string[] = [];
  const deleted: string[] = [];
  ours.forEach((t, i) => {
    if (i < keep || prot.has(t.tag)) kept.push(t.tag);
    else deleted.push(t.tag);
  });
  return { kept, deleted: deleted.reverse() };
}

export interface BackupRef {
  id: string;
  createdAt: Date;
  complete: boolean;
}

export interface BackupRetentionPlan {
  kept: string[];
  deleted: string[];
}

/**
 * Which backups to delete. Incomplete backups (no manifest: a failed or running backup) older than
 * `incompleteGraceHours` are deleted; complete ones older than keepDays are deleted except the newest
 * `keepAtLeast` complete ones.
 */
export function planBackupRetention(
  backups: BackupRef[],
  keepDays: number,
  now: Date,
  opts: { keepAtLeast?: number; incompleteGraceHours?: number } = {},
): BackupRetentionPlan {
  if (!(keepDays > 0)) throw new Error(`[RETENTION.INVALID] keepDays must be positive (got ${keepDays})`);
  const keepAtLeast = opts.keepAtLeast ?? 1;
  const graceMs = (opts.incompleteGraceHours ?? 24) * 3600_000;
  const cutoff = now.getTime() - keepDays * 86400_000;
  const sorted = [...backups].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const kept: string[] = [];
  const deleted: string[] = [];
  let completeSeen = 0;
  for (const b of sorted) {
    if (!b.complete) {
      if (b.createdAt.getTime() < now.getTime() - graceMs) deleted.push(b.id);
      else kept.push(b.id);
      continue;
    }
    completeSeen++;
    if (completeSeen <= keepAtLeast || b.createdAt.getTime() >= cutoff) kept.push(b.id);
    else deleted.push(b.id);
  }
  return { kept, deleted };
}
