/**
 * SSH adapter against a real OpenSSH sshd on loopback.
 */
import { createHash } from 'node:crypto';
import { createServer, Server, type Socket } from 'node:net';
import { PassThrough, Readable, Writable } from 'node:stream';
import { errorCode, isRetryable } from '../../shared/domain/errors';
import { createLogger } from '../../shared/log';
import {
  fingerprintOfKeyBlob,
  normaliseHostKeyPin,
  shellQuote,
  SshClient,
  SshTarget,
} from '../../shared/adapters/ssh';
import { freePort } from '../../local/azurite';
import { fingerprintOf, generateKeyPair, startSshd, SshdHandle } from '../support/sshd';

const key = generateKeyPair();
let sshd: SshdHandle;
let target: SshTarget;
let client: SshClient;
const logLines: string[] = [];
const log = createLogger({ level: 'debug', sink: (l) => logLines.push(l) });

beforeAll(async () => {
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  target = {
    host: sshd.host,
    port: sshd.port,
    username: 'root',
    privateKey: key.privateKey,
    hostKeyFingerprint: sshd.hostKeyFingerprint,
  };
  client = await SshClient.connect(target, { log });
});
afterAll(async () => {
  await client?.close();
  await sshd?.stop();
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return errorCode(e);
  }
  return 'RESOLVED';
}

describe('SshClient', () => {
  test('run returns exit code, captured stdout and stderr tail', async () => {
    const r = await client.run('echo hello; echo oops >&2; exit 7');
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('hello\n');
    expect(r.stderrTail).toBe('oops\n');
  });

  test('exec throws SSH.COMMAND_FAILED with exit code and stderr tail', async () => {
    const err = await client.exec('echo "disk full" >&2; exit 3').catch((e) => e);
    expect(errorCode(err)).toBe('SSH.COMMAND_FAILED');
    expect(err.message).toContain('exited with 3');
    expect(err.message).toContain('disk full');
    expect(err.details.exitCode).toBe(3);
    expect(isRetryable(err)).toBe(false);
  });

  test('stdout is streamed into a writable with backpressure (50 MB, same bytes)', async () => {
    const hash = createHash('sha256');
    let bytes = 0;
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        hash.update(chunk);
        setImmediate(cb);
      },
    });
    const remote = await client.exec('head -c 50000000 /dev/zero | tr "\\0" "x"', { stdout: slow });
    expect(remote.stdout).toBeUndefined();
    expect(bytes).toBe(50_000_000);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(Buffer.alloc(50_000_000, 'x')).digest('hex'));
  });

  test('stdin from a stream, a string and a buffer', async () => {
    const data = Buffer.alloc(5_000_000, 7);
    const fromStream = await client.exec('sha256sum', {
      stdin: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
    });
    const expected = createHash('sha256').update(data).digest('hex');
    expect(fromStream.stdout?.split(' ')[0]).toBe(expected);
    expect((await client.exec('cat', { stdin: 'text in' })).stdout).toBe('text in');
    expect((await client.exec('wc -c', { stdin: Buffer.from('12345') })).stdout?.trim()).toBe('5');
  });

  test('stderr lines reach onStderrLine, including a last line without newline', async () => {
    const lines: string[] = [];
    await client.exec('printf "one\\ntwo\\nthree" >&2', { onStderrLine: (l) => lines.push(l) });
    expect(lines).toEqual(['one', 'two', 'three']);
  });

  test('captured stdout is capped', async () => {
    const r = await client.exec('head -c 10000 /dev/zero', { maxCapture: 100 });
    expect(r.stdout).toHaveLength(100);
    expect(r.stdoutTruncated).toBe(true);
  });

  test('stream(): output ends on success and errors on failure (never a silent truncation)', async () => {
    const ok = client.stream('seq 1 100000');
    const chunks: Buffer[] = [];
    for await (const c of ok.stdout) chunks.push(c as Buffer);
    await ok.done;
    expect(Buffer.concat(chunks).toString().split('\n')[99999]).toBe('100000');

    const bad = client.stream('echo partial; echo "pg_dump: error: connection lost" >&2; exit 1');
    const consume = (async () => {
      for await (const _ of bad.stdout) void _;
    })();
    await expect(consume).rejects.toThrow(/SSH.COMMAND_FAILED[\s\S]*connection lost/);
    expect(await codeOf(bad.done)).toBe('SSH.COMMAND_FAILED');
  });

  test('a command that runs too long is killed: SSH.COMMAND_TIMEOUT', async () => {
    expect(await codeOf(client.exec('sleep 30', { timeoutMs: 300 }))).toBe('SSH.COMMAND_TIMEOUT');
    // the connection stays usable
    expect((await client.exec('echo still-here')).stdout).toBe('still-here\n');
  });

  test('env is sent with the exec request', async () => {
    expect((await client.exec('echo "$OPS_TARGET"', { env: { OPS_TARGET: 'uat' } })).stdout).toBe('uat\n');
  });

  test('losing the connection mid-command gives SSH.DISCONNECTED (retryable) and later calls fail fast', async () => {
    const c2 = await SshClient.connect(target);
    // kill this session's sshd process from inside: the TCP connection drops
    const err = await c2.exec('sleep 0.2; kill -9 $PPID; sleep 10').catch((e) => e);
    expect(errorCode(err)).toBe('SSH.DISCONNECTED');
    expect(isRetryable(err)).toBe(true);
    expect(await codeOf(c2.exec('true'))).toBe('SSH.DISCONNECTED');
    await c2.close();
  });

  test('a failing stdout consumer stops the command', async () => {
    const broken = new Writable({
      write(_c, _e, cb) {
        cb(new Error('disk quota'));
      },
    });
    const err = await client.exec('yes', { stdout: broken }).catch((e) => e);
    expect(errorCode(err)).toBe('SSH.STDOUT');
  });

  test('a stream consumer that goes away ends the command instead of hanging it', async () => {
    const s = client.stream('yes');
    s.stdout.once('data', () => s.stdout.destroy());
    expect(await codeOf(s.done)).toBe('SSH.STDOUT');
    expect((await client.exec('echo alive')).stdout).toBe('alive\n');
  });

  test('stdin stream errors fail the command', async () => {
    const src = new PassThrough();
    const p = client.exec('cat > /dev/null', { stdin: src });
    src.write('abc');
    src.destroy(new Error('source gone'));
    expect(await codeOf(p)).toBe('SSH.STDIN');
  });
});

describe('SshClient.connect refusals', () => {
  test('a wrong pinned host key is refused before authentication: SSH.HOST_KEY', async () => {
    const other = generateKeyPair();
    const err = await SshClient.connect({
      ...target,
      hostKeyFingerprint: fingerprintOf(other.publicKey),
    }).catch((e) => e);
    expect(errorCode(err)).toBe('SSH.HOST_KEY');
    expect(err.message).toContain(sshd.hostKeyFingerprint);
    expect(isRetryable(err)).toBe(false);
  });

  test('a changed host key (same port, new server key) is refused', async () => {
    const pinned = sshd.hostKeyFingerprint;
    const replaced = await startSshd({ authorizedKeys: [key.publicKey] });
    try {
      expect(
        await codeOf(SshClient.connect({ ...target, port: replaced.port, hostKeyFingerprint: pinned })),
      ).toBe('SSH.HOST_KEY');
    } finally {
      await replaced.stop();
    }
  });

  test('the pin may be the host public key line', async () => {
    const c = await SshClient.connect({ ...target, hostKeyFingerprint: sshd.hostPublicKey });
    expect((await c.exec('echo ok')).stdout).toBe('ok\n');
    await c.close();
    expect(normaliseHostKeyPin(sshd.hostPublicKey)).toBe(sshd.hostKeyFingerprint);
    expect(fingerprintOfKeyBlob(Buffer.from(sshd.hostPublicKey.split(' ')[1], 'base64'))).toBe(
      sshd.hostKeyFingerprint,
    );
  });

  test('a malformed pin or private key is a configuration error that does not echo the key', async () => {
    expect(await codeOf(SshClient.connect({ ...target, hostKeyFingerprint: 'md5:aa:bb' }))).toBe(
      'SSH.CONFIG',
    );
    // not a key: garbage between PEM armour lines, built at run time
    const armour = (w: string) => `-----${w} OPENSSH ${'PRIVATE'} KEY-----`;
    const bogus = `${armour('BEGIN')}\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n${armour('END')}\n`;
    const err = await SshClient.connect({ ...target, privateKey: bogus }).catch((e) => e);
    expect(errorCode(err)).toBe('SSH.CONFIG');
    expect(err.message).not.toContain('c2VjcmV0');
  });

  test('an unknown client key: SSH.AUTH_FAILED', async () => {
    const other = generateKeyPair();
    const err = await SshClient.connect({ ...target, privateKey: other.privateKey }).catch((e) => e);
    expect(errorCode(err)).toBe('SSH.AUTH_FAILED');
    expect(err.message).not.toContain('PRIVATE KEY');
  });

  test('nothing listening: SSH.CONNECT (retryable)', async () => {
    const port = await freePort();
    const err = await SshClient.connect({ ...target, port }).catch((e) => e);
    expect(errorCode(err)).toBe('SSH.CONNECT');
    expect(isRetryable(err)).toBe(true);
  });

  test('a server that never speaks SSH: SSH.TIMEOUT', async () => {
    // it accepts and never reads: its side of the connection never sees the client's close (the unread
    // banner comes first), so it is destroyed here, or it would keep the test process alive
    const accepted = new Set<Socket>();
    const silent: Server = createServer((s) => accepted.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      expect(await codeOf(SshClient.connect({ ...target, port }, { connectTimeoutMs: 500 }))).toBe(
        'SSH.TIMEOUT',
      );
    } finally {
      silent.close();
      for (const s of accepted) s.destroy();
    }
  });

  test('logs never contain the private key', () => {
    expect(logLines.join('\n')).not.toContain('PRIVATE KEY');
    expect(logLines.some((l) => l.includes('ssh connected'))).toBe(true);
  });

  test('shellQuote quotes single quotes', () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});
