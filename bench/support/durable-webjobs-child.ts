/**
 * Child process of `npm run bench -- durable` for the real engine: Azurite (blob, queue, table) under
 * <dataDir>/azurite, the function modules of <functionsDir>, and the .NET Durable Task host of
 * local/durable-host running them. Prints `ready. rpc=<extension HTTP API> hub=<task hub>` when the
 * extension is up. Not a product entry point: the embedded host (`npm start`) does not use the real
 * engine yet (issue #19).
 * usage: node dist/bench/support/durable-webjobs-child.js <dataDir> <functionsDir>
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startAzurite } from '../../local/azurite';
import { durableTaskOptions, startDurableHost } from '../../local/durable-host';
import { registeredFunctions } from '../../local/functions-core';
import { loadFunctions } from '../../local/registrations';
import { createLogger } from '../../shared/log';

async function main(): Promise<void> {
  const [dataDir, functionsDir] = process.argv.slice(2);
  if (!dataDir || !functionsDir) throw new Error('usage: durable-webjobs-child <dataDir> <functionsDir>');
  const log = createLogger({ level: 'warn', sink: (l) => process.stderr.write(l + '\n') });
  loadFunctions(functionsDir);
  const azurite = await startAzurite({
    dir: path.join(dataDir, 'azurite'),
    keyFolder: dataDir,
    queueAndTable: true,
    timeoutMs: 60000,
  });
  const root = path.resolve(__dirname, '..', '..', '..');
  const hostJson = JSON.parse(readFileSync(path.join(root, 'host.json'), 'utf8')) as unknown;
  const host = await startDurableHost({
    localRpcEndpoint: true, // this file talks to the extension's own endpoint directly (no embedded host)
    functions: registeredFunctions(),
    storageConnection: azurite.connectionString,
    durableTask: durableTaskOptions(hostJson),
    log,
  });
  console.log(
    `ready. rpc=${host.rpcBaseUrl} hub=${host.taskHubName} build=${host.build.built ? host.build.buildMs : 'cached'}`,
  );
  const stop = () =>
    void host
      .stop()
      .then(() => azurite.stop())
      .then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error(`durable-webjobs-child failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
