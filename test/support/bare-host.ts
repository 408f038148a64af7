/**
 * The embedded host with only what the test file registered (an empty functions folder) and its Azurite
 * (where the Durable Task engine keeps the orchestrations), quiet: for tests of the host's own doors
 * (sign-in) or of one orchestrator with the activities the test registers. `stop()` also puts
 * process.env back as it was (the host applies its settings there).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalHost, type LocalHost } from '../../local/host';
import { createLogger } from '../../shared/log';

export async function startBareHost(prefix: string): Promise<{ host: LocalHost; stop(): Promise<void> }> {
  const saved = { ...process.env };
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const functionsDir = mkdtempSync(path.join(os.tmpdir(), `${prefix}fns-`));
  const host = await startLocalHost({
    dataDir: dir,
    port: 0,
    functionsDir,
    log: createLogger({ level: 'error', sink: () => undefined }),
    env: { LOG_LEVEL: 'error' },
  });
  return {
    host,
    async stop() {
      await host.stop();
      process.env = saved;
      for (const d of [dir, functionsDir]) rmSync(d, { recursive: true, force: true });
    },
  };
}
