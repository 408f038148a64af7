/**
 * What `npm run demo` needs from the machine, found or installed before anything starts: the sandbox's
 * Debian packages (dockerd, compose, registry, sshd, zstd, curl, jq, debootstrap…). As root on a
 * Debian-like machine the missing ones are installed with apt-get through
 * scripts/install-debian-packages.sh (the same list `.ci/run` installs), saying so; otherwise the demo
 * stops before starting anything, with the command to run.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

const SCRIPT = 'scripts/install-debian-packages.sh';

export interface PrerequisiteOptions {
  /** what the sandbox still lacks on this machine (test/support/sandbox.ts sandboxMissing) */
  missing: () => string[];
  /** the repository root (where scripts/ is) */
  root: string;
  say: (line: string) => void;
  /** the environment of the install script (PATH) */
  env?: NodeJS.ProcessEnv;
  isRoot?: boolean;
}

function runScript(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  say: (l: string) => void,
): Promise<{ code: number; tail: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [file, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-2000));
    child.stdout.on('data', (d: Buffer) => {
      keep(d);
      for (const line of d.toString().split('\n')) if (line.trim()) say(`    ${line}`);
    });
    child.stderr.on('data', keep);
    child.on('error', (e) => resolve({ code: 127, tail: e.message }));
    child.on('exit', (code) => resolve({ code: code ?? 1, tail }));
  });
}

/**
 * Resolves when the sandbox has everything it needs, installing the sandbox's Debian packages first when
 * some are missing and this process is root. Throws an Error that says what is missing and how to get it.
 */
export async function ensureSandboxPrerequisites(o: PrerequisiteOptions): Promise<void> {
  const before = o.missing();
  if (before.length === 0) return;
  const isRoot = o.isRoot ?? process.getuid?.() === 0;
  const command = `sudo bash ${SCRIPT} sandbox`;
  if (!isRoot)
    throw new Error(
      `the demo's sandbox VMs need root (dockerd, sshd and debootstrap), and this machine lacks: ${before.join(', ')}. ` +
        `Run the demo as root; missing Debian packages are then installed for you (or first: ${command}).`,
    );
  o.say(
    `Installing the sandbox's Debian packages with apt-get (missing here: ${before.join(', ')}): bash ${SCRIPT} sandbox`,
  );
  const r = await runScript(path.join(o.root, SCRIPT), ['sandbox'], o.env ?? process.env, o.say);
  if (r.code !== 0)
    throw new Error(
      `installing the sandbox's Debian packages failed (${SCRIPT} exit ${r.code}); nothing was started:\n${r.tail.trim()}`,
    );
  const after = o.missing();
  if (after.length)
    throw new Error(
      `still missing after installing the sandbox's Debian packages: ${after.join(', ')} (install them, or put them on PATH)`,
    );
  o.say('Debian packages installed.');
}
