/**
 * Backup verification as a durable activity: re-reads every part of a backup and compares its size and
 * sha256 with the manifest, then records the result (GET /api/backups and the status page show it).
 * A PROD backup takes longer to read than an HTTP request may last, so POST /api/backups/{env}/{name}/verify
 * starts the `backupVerify` orchestration and answers 202 with a status URL (functions/backups.ts).
 */
import * as df from 'durable-functions';
import { loadConfig } from '../../shared/config';
import { ledgerContainer } from '../../shared/adapters/ledger';
import { createVerificationStore } from '../../shared/adapters/backup-verifications';
import { backupStoreFromConfig } from '../status';

export interface BackupVerifyInput {
  /** `<env>/<name>` */
  id: string;
}

export interface BackupVerifyResult {
  id: string;
  ok: boolean;
  at: string;
  problems: string[];
  /** verified | corrupt (manifest present, a part differs) | incomplete (no manifest) */
  state: 'verified' | 'corrupt' | 'incomplete';
}

export async function verifyAndRecord(i: BackupVerifyInput): Promise<BackupVerifyResult> {
  const config = loadConfig(process.env);
  const store = backupStoreFromConfig(config);
  const v = await store.verify(i.id);
  const record = { id: i.id, ok: v.ok, at: new Date().toISOString(), problems: v.problems };
  await createVerificationStore(ledgerContainer(config)).record(record);
  return { ...record, state: v.ok ? 'verified' : v.manifest ? 'corrupt' : 'incomplete' };
}

df.app.activity('backupVerifyRun', { handler: (i: BackupVerifyInput) => verifyAndRecord(i) });
