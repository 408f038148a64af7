/**
 * Recorded backup verifications: when an operator (or the status API's verify route) re-reads a backup
 * and compares every part with its manifest (BackupStore.verify), the result is kept as
 * `backup-verifications/<backup id>.json` in LEDGER_CONTAINER, so the status page can show
 * "verified <when>" / "corrupt" without re-reading gigabytes on every page view. The deploys and the
 * refresh record the verification they do of every backup they take (`recordVerification`).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { parseBackupId } from './backup-store';
import { ensureContainer, readJson, writeJson } from './ledger';
import { messageOf } from '../domain/errors';
import type { Logger } from '../log';

export interface BackupVerification {
  id: string;
  ok: boolean;
  /** ISO time of the verification */
  at: string;
  problems: string[];
}

export interface VerificationStore {
  get(id: string): Promise<BackupVerification | undefined>;
  record(v: BackupVerification): Promise<void>;
}

export function createVerificationStore(container: ContainerClient): VerificationStore {
  const ensure = ensureContainer(container);
  const blob = (id: string) => {
    parseBackupId(id); // throws [BACKUP.INVALID_ID] on anything else
    return `backup-verifications/${id}.json`;
  };
  return {
    async get(id) {
      const v = await readJson<BackupVerification>(container, blob(id));
      return v && typeof v.ok === 'boolean' && typeof v.at === 'string' ? v : undefined;
    },
    async record(v) {
      const name = blob(v.id);
      await ensure();
      await writeJson(container, name, v);
    },
  };
}

/**
 * Record a verification the pipeline itself did (a deploy's backup, verified right after it was taken).
 * Never throws: the backup is good whatever happens to this note, so a failure to record is logged
 * (warn) and answered `false`; without a store (tests, tools) nothing is recorded.
 */
export async function recordVerification(
  store: VerificationStore | undefined,
  id: string,
  result: { ok: boolean; problems: string[] },
  log?: Pick<Logger, 'warn'>,
  at: Date = new Date(),
): Promise<boolean> {
  if (!store) return false;
  try {
    await store.record({ id, ok: result.ok, at: at.toISOString(), problems: result.problems });
    return true;
  } catch (err) {
    log?.warn('could not record the backup verification (the status page shows the backup as complete)', {
      backupId: id,
      error: messageOf(err),
    });
    return false;
  }
}
