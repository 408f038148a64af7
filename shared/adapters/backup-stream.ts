/**
 * The one loop that streams a VM's backup into Blob: each `odoo-ops --json <verb>` runs over SSH and its
 * stdout goes straight into a BackupWriter part (size + sha256 computed on the fly, see backup-store.ts).
 * Used by the UAT deploy, the PROD deploy and the refresh (UAT backup, fresh PROD dump).
 *
 * Error handling, the same for every caller: when either side fails, the SSH stdout is destroyed and the
 * command's own end is awaited (no stray remote process, no unhandled rejection); a non-zero exit
 * (`SSH.COMMAND_FAILED`) becomes `[BACKUP.FAILED] <verb>[ on <vm>] failed: …`; any other error (an upload
 * error, `BACKUP.EXISTS`, a disconnect) is rethrown as it is, so the caller's retry rules still apply.
 */
import type { Readable } from 'node:stream';
import { PipelineError, errorCode, messageOf } from '../domain/errors';
import type { BackupWriter, PartInfo } from './backup-store';

/** What the loop needs of an SSH session (SshClient and the activities' RemoteShell satisfy it). */
export interface StreamingShell {
  stream(command: string, o?: { timeoutMs?: number }): { stdout: Readable; done: Promise<unknown> };
}

/** The parts of a VM backup, in order: odoo-ops verb → part name. */
export const VM_BACKUP_PARTS: ReadonlyArray<readonly [verb: string, part: string]> = [
  ['backup-db', 'db.dump'],
  ['backup-filestore', 'filestore.tar'],
];

export interface StreamBackupOptions {
  /** the odoo-ops command on the VM (default `odoo-ops`) */
  ops?: string;
  /** remote command timeout (ms) */
  timeoutMs?: number;
  /** named in the failure message (`backup-db on prod failed: …`); omit to name only the verb */
  where?: string;
}

/** Stream one `odoo-ops --json <verb>` into the part `part` of `writer`. */
export async function streamOpsPart(
  writer: BackupWriter,
  sh: StreamingShell,
  verb: string,
  part: string,
  o: StreamBackupOptions = {},
): Promise<PartInfo> {
  const s = sh.stream(`${o.ops ?? 'odoo-ops'} --json ${verb}`, { timeoutMs: o.timeoutMs });
  try {
    const [info] = await Promise.all([writer.part(part, s.stdout), s.done]);
    return info;
  } catch (err) {
    s.stdout.destroy();
    await s.done.catch(() => undefined);
    if (errorCode(err) === 'SSH.COMMAND_FAILED')
      throw new PipelineError(
        'BACKUP.FAILED',
        `${verb}${o.where ? ` on ${o.where}` : ''} failed: ${messageOf(err)}`,
      );
    throw err;
  }
}

/** Stream every part of a VM backup (database, then filestore) into `writer`, one after the other. */
export async function streamVmBackup(
  writer: BackupWriter,
  sh: StreamingShell,
  o: StreamBackupOptions = {},
): Promise<Record<string, PartInfo>> {
  const parts: Record<string, PartInfo> = {};
  for (const [verb, part] of VM_BACKUP_PARTS) parts[part] = await streamOpsPart(writer, sh, verb, part, o);
  return parts;
}
