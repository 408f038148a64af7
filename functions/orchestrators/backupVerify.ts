/**
 * Verifies one backup in the background (POST /api/backups/{env}/{name}/verify → 202 + status URL):
 * one activity re-reads the backup; storage hiccups are retried with back-off. The result is the
 * orchestration's output (GET .../verify/{id}) and is recorded for the status page.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler } from 'durable-functions';
import type { BackupVerifyInput } from '../activities/backups';

export const BACKUP_VERIFY_ORCHESTRATOR = 'backupVerify';

export const backupVerify: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = context.df.getInput() as BackupVerifyInput;
  context.df.setCustomStatus({ step: 'verifying', backup: input.id });
  const retry = new df.RetryOptions(5000, 3);
  retry.backoffCoefficient = 2;
  const result: unknown = yield context.df.callActivityWithRetry('backupVerifyRun', retry, { id: input.id });
  context.df.setCustomStatus({ step: 'done', backup: input.id });
  return result;
};

df.app.orchestration(BACKUP_VERIFY_ORCHESTRATOR, backupVerify);
