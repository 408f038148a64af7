/**
 * SSH adapter (ssh2): key auth, pinned host key, connect/command timeouts, keepalive, streamed output.
 *
 * - The host key is pinned by its `SHA256:` fingerprint (or the full public key line): an unknown or
 *   changed key is refused before authentication ([SSH.HOST_KEY]).
 * - Output is streamed, never buffered whole: give `stdout` to receive it (backpressure is honoured
 *   through the SSH window); without it a capped copy is returned. stderr is always read (a channel
 *   whose output is not read never closes), split into lines for `onStderrLine`, its tail kept for errors.
 * - Error codes: SSH.CONFIG (bad key/fingerprint), SSH.CONNECT (unreachable, retryable),
 *   SSH.TIMEOUT (no SSH handshake within connectTimeoutMs, retryable), SSH.HOST_KEY, SSH.AUTH_FAILED,
 *   SSH.DISCONNECTED (connection lost mid-command, retryable), SSH.COMMAND_TIMEOUT (the remote command
 *   ran longer than timeoutMs; it is signalled and the channel closed; not retryable: the command may
 *   have had effects), SSH.COMMAND_FAILED (exit code != 0, with the stderr tail).
 * - When a command fails and its output went to a `stdout` stream through `exec()`/`stream()`, that
 *   stream is destroyed with the error instead of being ended, so a consumer such as a Blob upload never
 *   commits a truncated dump.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { Client, ClientChannel, utils as sshUtils } from 'ssh2';
import { PipelineError } from '../domain/errors';
import { Logger } from '../log';

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** OpenSSH or PEM private key (from configuration / Key Vault); never logged */
  privateKey: string;
  /** pinned host key: `SHA256:<base64>` fingerprint, or the host's public key line */
  hostKeyFingerprint: string;
}

export interface SshConnectOptions {
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  log?: Logger;
}

export interface SshRunOptions {
  stdin?: NodeJS.ReadableStream | Buffer | string;
  /** receives stdout as it arrives; ended when the command's output ends (see class doc for failures) */
  stdout?: NodeJS.WritableStream;
  /** command timeout (default: none) */
  timeoutMs?: number;
  onStderrLine?: (line: string) => void;
  /** environment sent with the exec request (the server must `AcceptEnv` the names) */
  env?: Record<string, string>;
  /** cap of the captured stdout when no stdout stream is given (default 1 MiB) */
  maxCapture?: number;
}

export interface SshRunResult {
  code: number;
  /** set when the command died from a signal */
  signal?: string;
  /** captured stdout, only when no stdout stream was given; capped at maxCapture */
  stdout?: string;
  /** true when the captured stdout was cut at maxCapture */
  stdoutTruncated?: boolean;
  /** last ~4 KiB of stderr */
  stderrTail: string;
}

const STDERR_TAIL = 4096;
const DEFAULT_CAPTURE = 1024 * 1024;

/** `SHA256:<base64 without padding>` of an SSH public key blob, as OpenSSH prints it. */
export function fingerprintOfKeyBlob(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Normalise a pinned host key (fingerprint or public key line) to `SHA256:...`. */
export function normaliseHostKeyPin(pin: string): string {
  const t = (pin ?? '').trim();
  const fp = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(t);
  if (fp) return `SHA256:${fp[1]}`;
  const line = /^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+)\s+([A-Za-z0-9+/]+={0,2})(\s|$)/.exec(t);
  if (line) return fingerprintOfKeyBlob(Buffer.from(line[2], 'base64'));
  throw new PipelineError(
    'SSH.CONFIG',
    'pinned host key must be a SHA256:<base64> fingerprint or a public key line',
  );
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
export { shellQuote };

function isStdio(w: NodeJS.WritableStream): boolean {
  return w === process.stdout || w === process.stderr;
}

export class SshClient {
  private closed = false;
  private readonly active = new Set<(err: Error) => void>();

  private constructor(
    private readonly conn: Client,
    readonly target: Omit<SshTarget, 'privateKey'>,
    private readonly log?: Logger,
  ) {
    conn.on('close', () => {
      this.closed = true;
      const err = new PipelineError(
        'SSH.DISCONNECTED',
        `connection to ${target.host}:${target.port} closed`,
        true,
      );
      for (const fail of [...this.active]) fail(err);
    });
    conn.on('error', (e) => {
      log?.warn('ssh connection error', { host: target.host, err: e.message });
    });
  }

  static async connect(t: SshTarget, o: SshConnectOptions = {}): Promise<SshClient> {
    const pin = normaliseHostKeyPin(t.hostKeyFingerprint);
    const parsed = sshUtils.parseKey(t.privateKey ?? '');
    if (parsed instanceof Error || (Array.isArray(parsed) && parsed.length === 0)) {
      // never echo the key or the parser's detail (it can quote key material)
      throw new PipelineError(
        'SSH.CONFIG',
        'the SSH private key cannot be parsed (expected an unencrypted OpenSSH or PEM private key)',
      );
    }
    const connectTimeoutMs = o.connectTimeoutMs ?? 20000;
    const conn = new Client();
    const where = `${t.username}@${t.host}:${t.port}`;
    let seenFingerprint: string | undefined;
    let hostKeyRejected = false;
    const started = Date.now();
    return new Promise<SshClient>((resolve, reject) => {
      let settled = false;
      const fail = (err: PipelineError) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        conn.removeAllListeners('ready');
        conn.on('error', () => undefined);
        conn.end();
        o.log?.warn('ssh connect failed', { target: where, code: err.code });
        reject(err);
      };
      // an outer guard: ssh2's readyTimeout does not cover every stall (e.g. a TCP connect that hangs)
      const guard = setTimeout(
        () =>
          fail(
            new PipelineError(
              'SSH.TIMEOUT',
              `no SSH session with ${where} within ${connectTimeoutMs} ms`,
              true,
            ),
          ),
        connectTimeoutMs + 1000,
      );
      conn.once('ready', () => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        o.log?.info('ssh connected', { target: where, ms: Date.now() - started });
        resolve(
          new SshClient(
            conn,
            { host: t.host, port: t.port, username: t.username, hostKeyFingerprint: pin },
            o.log,
          ),
        );
      });
      conn.on('error', (err: Error & { level?: string; code?: string }) => {
        if (hostKeyRejected) {
          return fail(
            new PipelineError(
              'SSH.HOST_KEY',
              `host key of ${t.host}:${t.port} (${seenFingerprint}) does not match the pinned key ${pin}: refusing to connect`,
              false,
              {
                expected: pin,
                actual: seenFingerprint,
              },
            ),
          );
        }
        if (err.level === 'client-authentication')
          return fail(
            new PipelineError(
              'SSH.AUTH_FAILED',
              `authentication as ${t.username} on ${t.host}:${t.port} was refused`,
            ),
          );
        if (err.level === 'client-timeout')
          return fail(
            new PipelineError(
              'SSH.TIMEOUT',
              `no SSH session with ${where} within ${connectTimeoutMs} ms`,
              true,
            ),
          );
        return fail(
          new PipelineError(
            'SSH.CONNECT',
            `cannot connect to ${t.host}:${t.port}: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' '),
            true,
          ),
        );
      });
      conn.on('close', () =>
        fail(
          new PipelineError(
            'SSH.CONNECT',
            `connection to ${t.host}:${t.port} closed during the handshake`,
            true,
          ),
        ),
      );
      conn.connect({
        host: t.host,
        port: t.port,
        username: t.username,
        privateKey: t.privateKey,
        readyTimeout: connectTimeoutMs,
        // AES-GCM first: hardware-accelerated on both ends (OpenSSH's default prefers chacha20, which
        // costs the VM's sshd about twice the CPU per byte on a large backup stream)
        algorithms: {
          cipher: [
            'aes128-gcm@openssh.com',
            'aes256-gcm@openssh.com',
            'chacha20-poly1305@openssh.com',
            'aes128-ctr',
            'aes256-ctr',
          ],
        },
        keepaliveInterval: o.keepaliveIntervalMs ?? 15000,
        keepaliveCountMax: o.keepaliveCountMax ?? 4,
        hostVerifier: (key: Buffer) => {
          seenFingerprint = fingerprintOfKeyBlob(key);
          hostKeyRejected = seenFingerprint !== pin;
          return !hostKeyRejected;
        },
      });
    });
  }

  /** Run a command; resolves with its exit code (non-zero is not an error here). */
  run(command: string, o: SshRunOptions = {}): Promise<SshRunResult> {
    return this.runInternal(command, o, false);
  }

  /** Run a command; rejects with SSH.COMMAND_FAILED (exit code + stderr tail) when it exits non-zero. */
  exec(command: string, o: SshRunOptions = {}): Promise<SshRunResult> {
    return this.runInternal(command, o, true);
  }

  /**
   * Run a command whose stdout is consumed as a stream (e.g. piped into a Blob upload). `stdout` errors
   * (instead of ending) when the command fails, so a consumer never takes a truncated output for a whole
   * one; `done` rejects the same way. Always await `done`.
   */
  stream(
    command: string,
    o: Omit<SshRunOptions, 'stdout'> & { highWaterMark?: number } = {},
  ): { stdout: Readable; done: Promise<SshRunResult> } {
    const out = new PassThrough({ highWaterMark: o.highWaterMark ?? 1024 * 1024 });
    // not waiting for the PassThrough to drain: its reader is the caller, who may await `done` first
    const done = this.runInternal(command, { ...o, stdout: out }, true, false);
    done.catch(() => undefined); // the caller awaits it; avoid an unhandled rejection in between
    return { stdout: out, done };
  }

  private runInternal(
    command: string,
    o: SshRunOptions,
    throwOnFail: boolean,
    waitForSink = true,
  ): Promise<SshRunResult> {
    if (this.closed)
      return Promise.reject(
        new PipelineError('SSH.DISCONNECTED', `connection to ${this.target.host} is closed`, true),
      );
    const started = Date.now();
    const log = this.log;
    const shortCmd = command.length > 200 ? command.slice(0, 200) + '…' : command;
    return new Promise<SshRunResult>((resolve, reject) => {
      let settled = false;
      let channel: ClientChannel | undefined;
      let timer: NodeJS.Timeout | undefined;
      let stderrTail = '';
      let stderrPartial = '';
      let code: number | undefined;
      let signal: string | undefined;
      const captured: Buffer[] = [];
      let capturedBytes = 0;
      let truncated = false;
      const cap = o.maxCapture ?? DEFAULT_CAPTURE;
      const sink = o.stdout;

      const finish = (err: PipelineError | undefined, result?: SshRunResult) => {
        if (settled) return;
        settled = true;
        this.active.delete(onDisconnect);
        if (timer) clearTimeout(timer);
        if (sink && !isStdio(sink)) {
          if (err && throwOnFail) (sink as Writable).destroy?.(err);
          else if (!err) {
            sink.end();
            if (!waitForSink) return done(err, result);
            // resolve once everything written has been flushed by the sink
            const w = sink as Writable;
            if (w.writableFinished) return done(err, result);
            let once = false;
            const after = (e?: Error) => {
              if (once) return;
              once = true;
              if (e)
                done(
                  new PipelineError('SSH.STDOUT', `writing the output of ${shortCmd} failed: ${e.message}`),
                );
              else done(undefined, result);
            };
            w.once('finish', () => after());
            w.once('close', () =>
              after(
                w.writableFinished
                  ? undefined
                  : new Error('the output stream closed before all data was written'),
              ),
            );
            w.once('error', (e) => after(e));
            return;
          }
        }
        done(err, result);
      };
      const done = (err: PipelineError | undefined, result?: SshRunResult) => {
        if (err) {
          log?.warn('ssh command failed', { command: shortCmd, code: err.code, ms: Date.now() - started });
          try {
            channel?.close();
          } catch {
            /* already closed */
          }
          reject(err);
        } else {
          log?.info('ssh command done', {
            command: shortCmd,
            exitCode: result?.code,
            ms: Date.now() - started,
          });
          resolve(result as SshRunResult);
        }
      };
      const onDisconnect = (err: Error) => finish(err as PipelineError);
      this.active.add(onDisconnect);

      if (o.timeoutMs && o.timeoutMs > 0) {
        timer = setTimeout(() => {
          try {
            channel?.signal('KILL');
          } catch {
            /* not supported */
          }
          finish(
            new PipelineError(
              'SSH.COMMAND_TIMEOUT',
              `command did not finish within ${o.timeoutMs} ms on ${this.target.host}: ${shortCmd}`,
              false,
              {
                stderrTail: stderrTail.slice(-STDERR_TAIL),
              },
            ),
          );
        }, o.timeoutMs);
      }

      const input = o.stdin;
      const srcStream =
        input !== undefined && typeof input !== 'string' && !Buffer.isBuffer(input)
          ? (input as Readable)
          : undefined;
      srcStream?.on('error', (e) =>
        finish(new PipelineError('SSH.STDIN', `reading the input for ${shortCmd} failed: ${e.message}`)),
      );
      if (sink)
        (sink as Writable).on?.('error', (e: Error) =>
          finish(new PipelineError('SSH.STDOUT', `writing the output of ${shortCmd} failed: ${e.message}`)),
        );
      // a consumer that goes away (destroyed without an error) must not leave the command hanging
      if (sink && !isStdio(sink))
        (sink as Writable).on?.('close', () => {
          if (!settled && !(sink as Writable).writableFinished)
            finish(
              new PipelineError(
                'SSH.STDOUT',
                `the output consumer of ${shortCmd} went away before the command finished`,
              ),
            );
        });

      const execOpts = o.env ? { env: o.env } : {};
      this.conn.exec(command, execOpts, (err, ch) => {
        if (err)
          return finish(
            new PipelineError(
              'SSH.CHANNEL',
              `cannot open a session on ${this.target.host}: ${err.message}`,
              true,
            ),
          );
        if (settled) {
          ch.close();
          return;
        }
        channel = ch;
        // stdout: to the sink with backpressure, or captured (capped); always consumed
        if (sink) {
          ch.pipe(sink as Writable, { end: false });
        } else {
          ch.on('data', (d: Buffer) => {
            if (capturedBytes < cap) {
              const part = d.subarray(0, cap - capturedBytes);
              captured.push(part);
              capturedBytes += part.length;
              if (part.length < d.length) truncated = true;
            } else truncated = true;
          });
        }
        ch.stderr.on('data', (d: Buffer) => {
          const text = d.toString('utf8');
          stderrTail = (stderrTail + text).slice(-STDERR_TAIL);
          if (o.onStderrLine) {
            const lines = (stderrPartial + text).split('\n');
            stderrPartial = lines.pop() ?? '';
            for (const l of lines) o.onStderrLine(l.replace(/\r$/, ''));
          }
        });
        ch.on('exit', (c: number | null, sig?: string) => {
          if (typeof c === 'number') code = c;
          if (sig) signal = sig;
        });
        ch.on('close', () => {
          if (o.onStderrLine && stderrPartial) o.onStderrLine(stderrPartial);
          stderrPartial = '';
          const exit = code ?? (signal ? 128 : 255);
          const result: SshRunResult = { code: exit, stderrTail, ...(signal ? { signal } : {}) };
          if (!sink) {
            result.stdout = Buffer.concat(captured).toString('utf8');
            if (truncated) result.stdoutTruncated = true;
          }
          if (throwOnFail && exit !== 0) {
            const why = signal ? `was killed by signal ${signal}` : `exited with ${exit}`;
            return finish(
              new PipelineError(
                'SSH.COMMAND_FAILED',
                `remote command ${why} on ${this.target.host}: ${shortCmd}${stderrTail ? `\n--- stderr (tail) ---\n${stderrTail.slice(-1500)}` : ''}`,
                false,
                {
                  exitCode: exit,
                  signal,
                  stderrTail,
                },
              ),
              result,
            );
          }
          finish(undefined, result);
        });
        // stdin
        if (srcStream) srcStream.pipe(ch);
        else if (input === undefined) ch.end();
        else ch.end(input);
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      this.conn.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.conn.end();
    });
    this.closed = true;
  }
}
