/**
 * local/durable-host.ts without .NET running: what a newcomer without the SDK sees, the build cache key,
 * and host.json's durableTask section as the real engine receives it.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  durableHostHash,
  durableHostProjectDir,
  durableTaskOptions,
  ensureDurableHostBuilt,
} from '../../local/durable-host';

let tmp: string;
beforeAll(() => (tmp = mkdtempSync(path.join(os.tmpdir(), 'durable-host-unit-'))));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('without a .NET SDK: a clear DURABLE_HOST.NO_DOTNET error that says what to install, nothing built', async () => {
  const err = await ensureDurableHostBuilt({
    cacheDir: path.join(tmp, 'cache'),
    dotnet: path.join(tmp, 'no-such-dotnet'),
  }).catch((e: unknown) => e as Error & { code?: string; retryable?: boolean });
  expect(err).toBeInstanceOf(Error);
  expect((err as { code?: string }).code).toBe('DURABLE_HOST.NO_DOTNET');
  expect((err as Error).message).toMatch(/\.NET SDK 8 or later/);
  expect((err as Error).message).toMatch(/apt-get install dotnet-sdk-8\.0|learn\.microsoft\.com/);
  expect(existsSync(path.join(tmp, 'cache'))).toBe(false);
});

it('the build cache key is the project files: stable, and it changes with their content', () => {
  const dir = durableHostProjectDir();
  const h = durableHostHash(dir);
  expect(h).toMatch(/^[0-9a-f]{16}$/);
  expect(durableHostHash(dir)).toBe(h);
  // a copy with one byte changed in Program.cs hashes differently
  const copy = path.join(tmp, 'proj');
  mkdirSync(copy);
  for (const f of ['DurableHost.csproj', 'Program.cs'])
    writeFileSync(path.join(copy, f), readFileSync(path.join(dir, f)));
  expect(durableHostHash(copy)).toBe(h);
  appendFileSync(path.join(copy, 'Program.cs'), '\n');
  expect(durableHostHash(copy)).not.toBe(h);
});

it("host.json's durableTask reaches the engine with %SETTING% resolved; an unset one is refused", () => {
  const hostJson = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'host.json'), 'utf8'));
  const opts = durableTaskOptions(hostJson, { TASK_HUB_NAME: 'hubFromEnv' });
  expect(opts.hubName).toBe('hubFromEnv');
  expect(opts.storageProvider).toMatchObject({ type: 'AzureStorage' });
  // unset: the shared/config.ts default applies (what Azure's app settings would carry)
  expect(typeof durableTaskOptions(hostJson, {}).hubName).toBe('string');
  expect(() =>
    durableTaskOptions({ extensions: { durableTask: { hubName: '%NOT_A_SETTING_ANYWHERE%' } } }, {}),
  ).toThrow(/NOT_A_SETTING_ANYWHERE/);
  expect(() => durableTaskOptions({ extensions: {} }, {})).toThrow(/no extensions\.durableTask/);
});
