/**
 * freePort (local/azurite.ts): the ports the project chooses for its local servers (Azurite, the test
 * registry, sshd, the sandbox's Odoo) are outside the kernel's ephemeral range, where no outgoing
 * connection or port-0 server elsewhere on the machine can take them between the choice and the bind.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ephemeralRange, freePort, portSlice } from '../../local/azurite';

const listenable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });

it("chooses ports just below the kernel's ephemeral range, each free to listen on, none twice", async () => {
  const [low, high] = ephemeralRange();
  expect(low).toBeGreaterThan(1024);
  expect(high).toBeGreaterThanOrEqual(low);
  const ports: number[] = [];
  for (let i = 0; i < 30; i++) ports.push(await freePort());
  for (const p of ports) {
    expect(p).toBeLessThan(low);
    expect(p).toBeGreaterThanOrEqual(Math.max(1024, low - 12000));
    expect(await listenable(p)).toBe(true);
  }
  expect(new Set(ports).size).toBe(ports.length);
});

describe('the kernel range, read from the file the kernel exposes', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'free-port-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (text: string) => {
    const f = path.join(dir, `range-${Math.random()}`);
    writeFileSync(f, text);
    return f;
  };

  it('is parsed (tab-separated, as the kernel writes it); unreadable or nonsense: Linux’s default', () => {
    expect(ephemeralRange(file('40000\t50000\n'))).toEqual([40000, 50000]);
    expect(ephemeralRange(path.join(dir, 'missing'))).toEqual([32768, 60999]);
    expect(ephemeralRange(file('high low\n'))).toEqual([32768, 60999]);
    expect(ephemeralRange(file('50000 40000\n'))).toEqual([32768, 60999]);
  });

  it('with no room below the range (1024–65535): the OS’s choice, still free to listen on', async () => {
    const p = await freePort(file('1024\t65535\n'));
    expect(p).toBeGreaterThanOrEqual(1024);
    expect(await listenable(p)).toBe(true);
  });

  it('a range starting at 15000: ports from 3000 up to 14999', async () => {
    for (let i = 0; i < 10; i++) {
      const p = await freePort(file('15000 60999\n'));
      expect(p).toBeGreaterThanOrEqual(3000);
      expect(p).toBeLessThan(15000);
    }
  });
});

describe('LOCAL_PORT_SLICE: processes that choose side by side take a slice each', () => {
  const saved = process.env.LOCAL_PORT_SLICE;
  afterEach(() => {
    if (saved === undefined) delete process.env.LOCAL_PORT_SLICE;
    else process.env.LOCAL_PORT_SLICE = saved;
  });

  it('npm test’s two jest processes choose in different halves of the room below the range', async () => {
    const [low] = ephemeralRange();
    const room = Math.max(1024, low - 12000);
    const half = Math.floor((low - room) / 2);
    process.env.LOCAL_PORT_SLICE = '0/2';
    const first: number[] = [];
    for (let i = 0; i < 20; i++) first.push(await freePort());
    process.env.LOCAL_PORT_SLICE = '1/2';
    const second: number[] = [];
    for (let i = 0; i < 20; i++) second.push(await freePort());
    for (const p of first) expect([p >= room, p < room + half]).toEqual([true, true]);
    for (const p of second) expect([p >= room + half, p < room + 2 * half]).toEqual([true, true]);
  });

  it('slices are contiguous, equal and inside the room; no slice: the whole room', () => {
    expect(portSlice(20768, 32768, undefined)).toEqual([20768, 32768]);
    expect(portSlice(20768, 32768, '')).toEqual([20768, 32768]);
    expect(portSlice(20768, 32768, '0/2')).toEqual([20768, 26768]);
    expect(portSlice(20768, 32768, ' 1/2 ')).toEqual([26768, 32768]);
    expect(portSlice(20768, 32768, '2/3')).toEqual([28768, 32768]);
    expect(portSlice(3000, 15000, '0/1')).toEqual([3000, 15000]);
  });

  it.each(['2/2', '1/0', 'half', '-1/2', '1/17', '1/2/3'])(
    'a malformed slice %j is a clear error',
    (slice) => {
      expect(() => portSlice(20768, 32768, slice)).toThrow(
        `[CONFIG.INVALID] LOCAL_PORT_SLICE must be i/n with 0 <= i < n <= 16 (slice i of n of the local ports), got ${JSON.stringify(slice)}`,
      );
    },
  );
});
