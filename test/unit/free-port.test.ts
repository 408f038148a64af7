/**
 * freePort (local/azurite.ts): the ports the project chooses for its local servers (Azurite, the test
 * registry, sshd, the sandbox's Odoo) are outside the kernel's ephemeral range, where no outgoing
 * connection or port-0 server elsewhere on the machine can take them between the choice and the bind.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ephemeralRange, freePort } from '../../local/azurite';

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
