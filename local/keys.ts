/**
 * Local host keys and generated secrets, created once under the data folder and kept (0600).
 * `function`/`admin` routes need a key locally too, like in Azure: `x-functions-key` header or `code`
 * query parameter; admin routes (and the host's own endpoints) need the master key.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface HostKeys {
  masterKey: string;
  functionKey: string;
}

function readOrCreate<T extends object>(file: string, make: () => T): T {
  if (existsSync(file)) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as T;
    } catch (err) {
      throw new Error(
        `[HOST.BAD_DATA] ${file} is not valid JSON (${(err as Error).message}); fix or delete it`,
      );
    }
  }
  mkdirSync(path.dirname(file), { recursive: true });
  const value = make();
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  return value;
}

const token = (bytes = 32) => randomBytes(bytes).toString('base64url');

export function loadOrCreateKeys(dataDir: string): HostKeys {
  return readOrCreate(path.join(dataDir, 'keys.json'), () => ({ masterKey: token(), functionKey: token() }));
}

/** Secrets the app needs that a developer should not have to invent: generated once, kept locally. */
export function loadOrCreateLocalSecrets(dataDir: string): Record<string, string> {
  return readOrCreate(path.join(dataDir, 'secrets.json'), () => ({
    GITHUB_WEBHOOK_SECRET: token(24),
    APPROVAL_SIGNING_KEY: token(48),
  }));
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Does the request carry a key good enough for `authLevel`? */
export function authorized(
  authLevel: string | undefined,
  presented: string | undefined,
  keys: HostKeys,
): boolean {
  const level = (authLevel ?? 'function').toLowerCase();
  if (level === 'anonymous') return true;
  if (!presented) return false;
  if (same(presented, keys.masterKey)) return true;
  return level === 'function' && same(presented, keys.functionKey);
}
