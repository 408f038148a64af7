/**
 * Recorded backup verifications: when an operator (or the status API's verify route) re-reads a backup
 * and compares every part with its manifest (BackupStore.verify), the result is kept as
 * `backup-verifications/<backup id>.json` in LEDGER_CONTAINER, so the status page can show
 * "verified <when>" / "corrupt" without re-reading gigabytes on every page view.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { parseBackupId } from './backup-store';
import { ensureContainer, readJson, writeJson } from './ledger';

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
