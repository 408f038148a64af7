import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

let cached: string | undefined;

/** The pipeline's own release version (the repository's VERSION file, semver). */
export function pipelineVersion(): string {
  if (cached) return cached;
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const file = path.join(dir, 'VERSION');
    if (existsSync(file)) return (cached = readFileSync(file, 'utf8').trim());
    dir = path.dirname(dir);
  }
  return (cached = '0.0.0');
}
