/**
 * `npm start`: the embedded local host. Flags: --port N, --data-dir DIR, --functions DIR, --verbose.
 * Stops cleanly on SIGINT/SIGTERM (history and queue are on disk either way: a SIGKILL loses nothing).
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../shared/config';
import { createLogger } from '../shared/log';
import { describeHost, startLocalHost } from './host';

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      functions: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npm start -- [--port 7071] [--data-dir .data] [--functions dist/functions] [--verbose]',
    );
    return;
  }
  const log = createLogger({
    level: values.verbose ? 'debug' : undefined,
    fields: { component: 'local-host' },
  });
  const port = values.port !== undefined ? Number(values.port) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    console.error(`--port must be an integer 0-65535 (got ${values.port})`);
    process.exit(2);
  }
  let host;
  try {
    host = await startLocalHost({
      port,
      dataDir: values['data-dir'],
      functionsDir: values.functions,
      log,
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78);
    }
    console.error(`local host failed to start: ${(err as Error).message}`);
    process.exit(1);
  }
  for (const line of describeHost(host)) console.log(line);
  console.log('\nready. Ctrl-C to stop.');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    void host.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

if (require.main === module) void main();
