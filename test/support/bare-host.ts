/**
 * The embedded host with only what the test file registered (an empty functions folder), no Azurite
 * (except on LOCAL_DURABLE_ENGINE=webjobs), quiet: for tests of the host's own doors (sign-in) or of one orchestrator with the activities the
 * test registers. `stop()` also puts process.env back as it was (the host applies its settings there).
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
    // no Azurite — unless the orchestrations run on the real engine (LOCAL_DURABLE_ENGINE=webjobs), whose state lives there
    azurite: process.env.LOCAL_DURABLE_ENGINE === 'webjobs',
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
