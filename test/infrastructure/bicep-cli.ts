/**
 * Finds and runs the real Bicep CLI: BICEP_CLI, then .tools/bicep/bicep (scripts/install-bicep.sh),
 * then `bicep` on PATH. Without it the infrastructure tests fail (never skip) with what to do.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const INFRA = path.join(ROOT, 'infrastructure');

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findBicep(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [env.BICEP_CLI, path.join(ROOT, '.tools', 'bicep', 'bicep')];
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean))
    candidates.push(path.join(dir, 'bicep'));
  const found = candidates.find((c): c is string => !!c && executable(c));
  if (!found) {
    throw new Error(
      'The Bicep CLI is missing: run scripts/install-bicep.sh (installs .tools/bicep/bicep from NuGet), ' +
        'or set BICEP_CLI to a bicep binary. The infrastructure tests do not skip without it.',
    );
  }
  return found;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runBicep(
  bicep: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      bicep,
      args,
      {
        cwd: ROOT,
        maxBuffer: 64 * 1024 * 1024,
        timeout: 300_000,
        env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1', ...env },
      },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Diagnostics lines (`file(line,col) : Level CODE: text`) in CLI output. */
export function diagnostics(out: string): string[] {
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /\)\s*:\s*(Error|Warning|Info)\s/.test(l));
}
