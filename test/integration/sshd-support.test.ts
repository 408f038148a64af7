/**
 * The test sshd is a real OpenSSH server: check that key auth works, that the forced command and the
 * session environment are applied, that a key not listed is refused, and that the machine's /run is
 * untouched (sshd's /run/sshd lives only in its private mount namespace).
 */
import { existsSync } from 'node:fs';
import { Client } from 'ssh2';
import { fingerprintOf, generateKeyPair, startSshd, SshdHandle } from '../support/sshd';

function runOnce(
  h: SshdHandle,
  privateKey: string,
  command: string,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on('error', reject);
    c.on('ready', () => {
      c.exec(command, (err, ch) => {
        if (err) return reject(err);
        let out = '';
        let code: number | null = null;
        ch.on('data', (d: Buffer) => (out += d.toString()));
        ch.stderr.on('data', () => undefined);
        ch.on('exit', (c2: number | null) => (code = c2));
        ch.on('close', () => {
          c.end();
          resolve({ code, out });
        });
      });
    });
    c.connect({ host: h.host, port: h.port, username: 'root', privateKey, readyTimeout: 10000 });
  });
}

describe('test/support/sshd', () => {
  const key = generateKeyPair();
  let sshd: SshdHandle;
  const hadRunSshd = existsSync('/run/sshd');
  beforeAll(async () => {
    sshd = await startSshd({ authorizedKeys: [key.publicKey], env: { OPS_MARK: 'from-sshd' } });
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  test('generateKeyPair gives an OpenSSH ed25519 pair', () => {
    expect(key.privateKey).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(key.publicKey).toMatch(/^ssh-ed25519 AAAA/);
    expect(fingerprintOf(key.publicKey)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  test('key auth, command exit code, session env, and the real host key fingerprint', async () => {
    expect(sshd.hostKeyFingerprint).toBe(fingerprintOf(sshd.hostPublicKey));
    const r = await runOnce(sshd, key.privateKey, 'echo "$OPS_MARK"; exit 3');
    expect(r).toEqual({ code: 3, out: 'from-sshd\n' });
    // sshd's /run/sshd exists only inside its own mount namespace
    expect(existsSync('/run/sshd')).toBe(hadRunSshd);
  });

  test('an unknown key is refused', async () => {
    const other = generateKeyPair();
    await expect(runOnce(sshd, other.privateKey, 'true')).rejects.toThrow(/authentication/i);
  });

  test('forceCommand runs instead of the client command, which is passed in SSH_ORIGINAL_COMMAND', async () => {
    const forced = await startSshd({
      authorizedKeys: [key.publicKey],
      forceCommand: 'echo "forced:$SSH_ORIGINAL_COMMAND"',
    });
    try {
      const r = await runOnce(forced, key.privateKey, 'status uat');
      expect(r).toEqual({ code: 0, out: 'forced:status uat\n' });
    } finally {
      await forced.stop();
    }
  });
});
