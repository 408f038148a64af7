import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpRequest } from '@azure/functions';
import { compileRoute } from '../../local/routes';
import { LocalHeaders, serializeCookie, toHttpRequest } from '../../local/http-bridge';
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
    log.info('calling with super-secret-value-123', {
      token: 'ghp_' + 'a'.repeat(30),
      url: 'https://x/api?code=abc&x=1',
    });
    const armour = (w: string) => `-----${w} OPENSSH ${'PRIVATE'} KEY-----`; // built at run time: not a key
    log.child({ instanceId: 'i1' }).debug(`${armour('BEGIN')}\nabc\n${armour('END')}`);
    expect(lines.join('\n')).not.toMatch(/super-secret-value-123|ghp_a|code=abc|BEGIN OPENSSH/);
    expect(JSON.parse(lines[1]).instanceId).toBe('i1');
    expect(redact('AccountKey=abc;')).toBe('***;');
    expect(
      redact('GET https://fn.example/api/approvals/eyJpbnN0YW5jZUlkIjoi.c2lnbmF0dXJlX2hlcmU?x=1 200'),
    ).toBe('GET https://fn.example/api/approvals/***?x=1 200');
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

describe('the HttpRequest the local host builds behaves like the library-built one', () => {
  // the reference: what @azure/functions builds from the same data (a full WHATWG Request)
  const reference = (method: string, body: Buffer, headers: Record<string, string> = {}) =>
    new HttpRequest({
      method,
      url: 'http://127.0.0.1/api/x?a=1&b=two',
      headers,
      query: { a: '1', b: 'two' },
      params: { id: '7' },
      body: body.length ? { bytes: body } : undefined,
    });
  const local = (method: string, body: Buffer, headers: Record<string, string> = {}) =>
    toHttpRequest({
      method,
      url: 'http://127.0.0.1/api/x?a=1&b=two',
      headers,
      query: { a: '1', b: 'two' },
      params: { id: '7' },
      body,
    });
  const both = (method: string, body: Buffer, headers?: Record<string, string>) => [
    reference(method, body, headers),
    local(method, body, headers),
  ];

  it('is an HttpRequest with the same url, method, headers, query and params', () => {
    for (const r of both('POST', Buffer.from('x'), {
      'content-type': 'text/plain',
      'x-ms-client-principal-name': 'ann',
    })) {
      expect(r).toBeInstanceOf(HttpRequest);
      expect(r.url).toBe('http://127.0.0.1/api/x?a=1&b=two');
      expect(r.method).toBe('POST');
      expect(r.headers.get('content-type')).toBe('text/plain');
      expect(r.query.get('b')).toBe('two');
      expect(r.params).toEqual({ id: '7' });
      expect(r.user).toBeNull();
    }
  });

  it('text(), json() and arrayBuffer() give the same values (BOM stripped, bad UTF-8 replaced)', async () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":"é"}')]);
    const bad = Buffer.from([0x61, 0xc3, 0x28, 0x62]);
    for (const body of [bom, bad, Buffer.alloc(9000, 0x41)]) {
      const [a, b] = both('POST', body);
      expect(await b.text()).toBe(await a.text());
      const [c, d] = both('POST', body);
      expect(Buffer.from(await d.arrayBuffer())).toEqual(Buffer.from(await c.arrayBuffer()));
    }
    const [j1, j2] = both('POST', bom);
    expect(await j2.json()).toEqual(await j1.json());
    const [e1, e2] = both('POST', Buffer.from('{nope'));
    // (by name: undici's errors come from Node's realm, not jest's)
    await expect(e1.json()).rejects.toMatchObject({ name: 'SyntaxError' });
    await expect(e2.json()).rejects.toMatchObject({ name: 'SyntaxError' });
  });

  it('a body can be read once: bodyUsed, then TypeError, as with fetch', async () => {
    for (const r of both('POST', Buffer.from('once'))) {
      expect(r.bodyUsed).toBe(false);
      expect(await r.text()).toBe('once');
      expect(r.bodyUsed).toBe(true);
      await expect(r.text()).rejects.toMatchObject({
        name: 'TypeError',
        message: expect.stringMatching(/unusable/),
      });
      await expect(r.formData()).rejects.toMatchObject({
        name: 'TypeError',
        message: expect.stringMatching(/unusable/),
      });
    }
  });

  it('formData() reads urlencoded and multipart forms; text() reads the raw form', async () => {
    const form = Buffer.from('token=abc%2F1&decision=APPROVE&note=a+b');
    const hdr = { 'content-type': 'application/x-www-form-urlencoded' };
    for (const r of both('POST', form, hdr)) {
      const f = await r.formData();
      expect([f.get('token'), f.get('decision'), f.get('note')]).toEqual(['abc/1', 'APPROVE', 'a b']);
    }
    expect(await local('POST', form, hdr).text()).toBe('token=abc%2F1&decision=APPROVE&note=a+b');
    const boundary = 'XyZ';
    const multipart = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="k"\r\n\r\nv1\r\n--${boundary}--\r\n`,
    );
    const mh = { 'content-type': `multipart/form-data; boundary=${boundary}` };
    for (const r of both('POST', multipart, mh)) expect((await r.formData()).get('k')).toBe('v1');
  });

  it('body is a readable stream; blob() and clone() work; GET carries no body', async () => {
    for (const r of both('POST', Buffer.from('streamed'))) {
      const chunks: Uint8Array[] = [];
      const reader = r.body!.getReader();
      for (let c = await reader.read(); !c.done; c = await reader.read()) chunks.push(c.value);
      expect(Buffer.concat(chunks).toString()).toBe('streamed');
      expect(r.bodyUsed).toBe(true);
    }
    for (const r of both('POST', Buffer.from('blob'))) expect(await (await r.blob()).text()).toBe('blob');
    for (const r of both('PUT', Buffer.from('twice'))) {
      const c = r.clone();
      expect(await c.text()).toBe('twice');
      expect(await r.text()).toBe('twice');
    }
    const [g1, g2] = both('GET', Buffer.alloc(0));
    expect(g1.body).toBeNull();
    expect(g2.body).toBeNull();
    expect(await g2.text()).toBe('');
  });
});

describe('the request headers a function reads behave like fetch Headers', () => {
  // node:http's record: names lower case, repeated fields already joined with ", "
  const record = {
    'x-hub-signature-256': 'sha256=ab',
    'content-type': 'application/json',
    accept: 'a/b, c/d',
    'x-empty': '',
  };
  const pair = () => [new Headers(record), new LocalHeaders(record)] as const;

  it('answers get/has case-insensitively and iterates sorted by name, like Headers', () => {
    const [ref, local] = pair();
    for (const name of ['Content-Type', 'ACCEPT', 'x-empty', 'missing', 'X-Hub-Signature-256']) {
      expect(local.get(name)).toBe(ref.get(name));
      expect(local.has(name)).toBe(ref.has(name));
    }
    expect([...local]).toEqual([...ref]);
    expect([...local.keys()]).toEqual([...ref.keys()]);
    expect([...local.values()]).toEqual([...ref.values()]);
    const seen: string[] = [];
    local.forEach((v, k, parent) => {
      expect(parent).toBe(local);
      seen.push(`${k}=${v}`);
    });
    expect(seen).toEqual([...ref].map(([k, v]) => `${k}=${v}`));
    expect(Object.prototype.toString.call(local)).toBe('[object Headers]');
    expect(local.getSetCookie()).toEqual([]);
  });

  it('set, append and delete change it the same way, and refuse bad names and values with a TypeError', () => {
    const [ref, local] = pair();
    for (const h of [ref, local]) {
      h.set('X-New', '  padded  ');
      h.append('accept', 'e/f');
      h.append('X-Twice', '1');
      h.append('x-twice', '2');
      h.delete('Content-Type');
    }
    expect([...local]).toEqual([...ref]);
    expect(local.get('x-twice')).toBe('1, 2');
    // (by name: undici's errors come from Node's realm, not jest's)
    const thrown = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return (e as Error).name;
      }
      return 'nothing';
    };
    for (const h of [ref, local]) {
      expect(thrown(() => h.set('bad name', 'v'))).toBe('TypeError');
      expect(thrown(() => h.append('x', 'a\r\nb'))).toBe('TypeError');
      expect(thrown(() => h.delete(''))).toBe('TypeError');
    }
  });

  it('is what HttpRequest.headers gives the function, and a WHATWG Request built later sees the same headers', async () => {
    const req = toHttpRequest({
      method: 'POST',
      url: 'http://127.0.0.1/api/x',
      headers: record,
      query: {},
      params: {},
      body: Buffer.from('{}'),
    });
    expect(req.headers).toBeInstanceOf(LocalHeaders);
    expect(req.headers.get('Accept')).toBe('a/b, c/d');
    const clone = req.clone(); // needs the real Request
    expect(clone.headers.get('x-hub-signature-256')).toBe('sha256=ab');
    expect(await clone.text()).toBe('{}');
  });
});

describe('Set-Cookie from a function cookie', () => {
  it('writes every attribute the Functions host writes', () => {
    expect(
      serializeCookie({
        name: 'csrf',
        value: 'v1',
        path: '/api',
        domain: 'example.com',
        expires: Date.UTC(2030, 0, 1),
        maxAge: 60,
        secure: true,
        httpOnly: true,
        sameSite: 'Strict',
      }),
    ).toBe(
      'csrf=v1; Domain=example.com; Path=/api; Expires=Tue, 01 Jan 2030 00:00:00 GMT; Max-Age=60; Secure; HttpOnly; SameSite=Strict',
    );
    expect(serializeCookie({ name: 'a', value: 'b' })).toBe('a=b');
  });
});
