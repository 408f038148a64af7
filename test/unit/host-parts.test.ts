import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compileRoute } from '../../local/routes';
import { authorized, loadOrCreateKeys, loadOrCreateLocalSecrets } from '../../local/keys';
import { createLogger, redact, registerSecret } from '../../shared/log';
import { errorCode, isRetryable, messageOf, PipelineError } from '../../shared/domain/errors';

describe('route templates', () => {
  it('matches literals case-insensitively and binds parameters', () => {
    const r = compileRoute('deployments/{id}');
    expect(r.match('/Deployments/abc')).toEqual({ id: 'abc' });
    expect(r.match('/deployments')).toBeUndefined();
    expect(r.match('/deployments/a/b')).toBeUndefined();
  });
  it('supports optional, catch-all and constrained parameters', () => {
    expect(compileRoute('deployments/{id?}').match('/deployments')).toEqual({});
    expect(compileRoute('files/{*path}').match('/files/a/b%20c')).toEqual({ path: 'a/b c' });
    expect(compileRoute('items/{n:int}').match('/items/12')).toEqual({ n: '12' });
    expect(compileRoute('items/{n:int}').match('/items/x')).toBeUndefined();
    expect(compileRoute('approvals/{token}').match('/approvals/%E0%A4%A')).toBeUndefined();
  });
});

describe('host keys and local secrets', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'keys-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('are generated once, kept private, and reused', () => {
    const a = loadOrCreateKeys(dir);
    expect(a.masterKey).not.toEqual(a.functionKey);
    expect(loadOrCreateKeys(dir)).toEqual(a);
    expect(statSync(path.join(dir, 'keys.json')).mode & 0o077).toBe(0);
    const s = loadOrCreateLocalSecrets(dir);
    expect(s.GITHUB_WEBHOOK_SECRET.length).toBeGreaterThanOrEqual(16);
    expect(s.APPROVAL_SIGNING_KEY.length).toBeGreaterThanOrEqual(32);
    expect(loadOrCreateLocalSecrets(dir)).toEqual(s);
  });

  it('a corrupted key file gives a clear error', () => {
    writeFileSync(path.join(dir, 'keys.json'), '{nope');
    expect(() => loadOrCreateKeys(dir)).toThrow(/keys.json is not valid JSON/);
  });

  it('auth levels: anonymous, function, admin', () => {
    const keys = { masterKey: 'm'.repeat(20), functionKey: 'f'.repeat(20) };
    expect(authorized('anonymous', undefined, keys)).toBe(true);
    expect(authorized('function', undefined, keys)).toBe(false);
    expect(authorized('function', keys.functionKey, keys)).toBe(true);
    expect(authorized('function', keys.masterKey, keys)).toBe(true);
    expect(authorized('function', 'wrong', keys)).toBe(false);
    expect(authorized('admin', keys.functionKey, keys)).toBe(false);
    expect(authorized('admin', keys.masterKey, keys)).toBe(true);
  });
});

describe('logging never carries secrets', () => {
  it('masks registered secrets and token shapes', () => {
    registerSecret('super-secret-value-123');
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', sink: (l) => lines.push(l) });
    log.info('calling with super-secret-value-123', { token: 'ghp_' + 'a'.repeat(30), url: 'https://x/api?code=abc&x=1' });
    const armour = (w: string) => `-----${w} OPENSSH ${'PRIVATE'} KEY-----`; // built at run time: not a key
    log.child({ instanceId: 'i1' }).debug(`${armour('BEGIN')}\nabc\n${armour('END')}`);
    expect(lines.join('\n')).not.toMatch(/super-secret-value-123|ghp_a|code=abc|BEGIN OPENSSH/);
    expect(JSON.parse(lines[1]).instanceId).toBe('i1');
    expect(redact('AccountKey=abc;')).toBe('***;');
  });
  it('respects the level and a pretty format', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', sink: (l) => lines.push(l), pretty: true });
    log.info('hidden');
    log.error('shown', { n: 1 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ERROR shown n=1/);
  });
});

describe('error codes survive the orchestrator boundary', () => {
  it('are read back from plain messages', () => {
    const e = new PipelineError('SSH.AUTH_FAILED', 'key refused', false);
    expect(e.message).toBe('[SSH.AUTH_FAILED] key refused');
    expect(errorCode(new Error(e.message))).toBe('SSH.AUTH_FAILED');
    expect(errorCode(e)).toBe('SSH.AUTH_FAILED');
    expect(errorCode('nothing here')).toBeUndefined();
    expect(isRetryable(new Error('[SSH.CONNECT_FAILED] refused'))).toBe(true);
    expect(isRetryable(new Error('[MIGRATION.FAILED] boom'))).toBe(false);
    expect(isRetryable(new PipelineError('X.Y', 'z', true))).toBe(true);
    expect(messageOf(42)).toBe('42');
  });
});
